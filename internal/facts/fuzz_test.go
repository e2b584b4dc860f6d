package facts

import (
	"reflect"
	"testing"
)

// FuzzParse: whatever a host prints (a broken shell, a hostile host, a
// truncated stream), Parse returns an error or a Host; it never panics,
// and the same output always reads the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"os debian 12\narch x86_64\nsystemd 252\n",
		"unit enabled active 1234 nats-server.service\n",
		"uptime 90 a.service\nunit enabled active 7 a.service\nversion a.service prog: v1.2.3 (x)\n",
		"file 644 root root abc /x\ndir 750 root nats /etc/nats\nuser nats\n",
		"pending restart nats-server.service\npending reload other.service\n",
		"port 4222 nats-server\n",
		"file 9z9 root root abc /x\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		a, errA := Parse(out)
		b, errB := Parse(out)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("Parse is not deterministic: %v / %v", errA, errB)
		}
		if errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("Parse read the same output two ways:\n%+v\n%+v", a, b)
		}
		if errA == nil {
			for p, f := range a.Files {
				if p == "" {
					t.Fatalf("file with an empty path: %+v", f)
				}
			}
		}
	})
}
