package shell

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "/etc/nats/nats-server.conf", "a b", "it's", `"$HOME"`, "`id`", "a;b|c&d", "*", "new\nline", "'"} {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("sh for %q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) = %s: shell read back %q", s, Quote(s), out)
		}
	}
}

func TestJoin(t *testing.T) {
	if got, want := Join("chown", "nats:nats", "/a b"), "chown nats:nats '/a b'"; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
}
