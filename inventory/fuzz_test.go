package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds Load arbitrary files. Whatever the bytes, it must return
// (no panic, no hang) and every error must name the file, on every line
// of it, so a user always knows what to fix. The seeds are the shipped
// inventories and a few broken ones; `go test` runs them, `make fuzz`
// searches beyond them.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"lab.toml", "example.toml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		base,
		"",
		"[",
		"[[hosts]]\nname = \"n1\"\naddress = \"::ffff:10.0.0.1\"\n",
		"[nats]\nversion = \"2.14.9\"\ndata_dir = \"/etc/nats/../ssh\"\n",
		"[nats]\nlame_duck_duration = \"999999h\"\n",
		"[ssh]\nuser = \"\"\n",
		"[[accounts]]\nname = \"A\"\n[[accounts.users]]\nname = \"u\"\npassword = trustNo1\n",
		"a.b.c.d = { e = [1, [2, {f = 3}]] }\n",
		"[monitoring]\nhost = \"x\"\nprometheus.rule_files = [\"\"]\n",
		"\"\"\"\n\x00\xff",
		"hosts = [{name = \"n1\", address = \"10.0.0.1\", ssh_port = -1}]\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := LoadWithOptions(path, LoadOptions{SkipFileChecks: true})
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load did not return in 10s on %q", data)
		}
		if err == nil {
			return
		}
		var probs *Problems
		if errors.As(err, &probs) && len(probs.List) == 0 {
			t.Fatalf("an empty *Problems for %q", data)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, path) {
				t.Fatalf("a line of the error does not name the file:\n%s\nfor %q", err, data)
			}
		}
	})
}
