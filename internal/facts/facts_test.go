package facts

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
)

// The script is run by the real /bin/sh on this machine against a temp dir,
// so the quoting, stat format and parsing are tested together.
func TestScriptOnLocalShell(t *testing.T) {
	dir := t.TempDir()
	withSpace := filepath.Join(dir, "a file.conf")
	if err := os.WriteFile(withSpace, []byte("hello\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "data dir")
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	out, err := exec.Command("sh", "-c", Script(Paths{
		Users: []string{"root", "no-such-user-natsdeploy"},
		Files: []string{withSpace, missing},
		Dirs:  []string{sub, missing},
	})).CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	h, err := Parse(out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if h.Arch == "" || h.OS == "" {
		t.Errorf("os/arch empty: %+v", h)
	}
	if !h.Users["root"] || h.Users["no-such-user-natsdeploy"] {
		t.Errorf("users = %v", h.Users)
	}
	f, ok := h.Files[withSpace]
	if !ok {
		t.Fatalf("file with space not found in %v", h.Files)
	}
	// sha256("hello\n")
	if f.SHA256 != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" || f.Mode != 0o640 {
		t.Errorf("file fact = %+v", f)
	}
	if _, ok := h.Files[missing]; ok {
		t.Error("missing file reported present")
	}
	if d, ok := h.Dirs[sub]; !ok || d.Mode != 0o750 {
		t.Errorf("dir fact = %+v, %v", d, ok)
	}
	if _, ok := h.Dirs[missing]; ok {
		t.Error("missing dir reported present")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, h Host)
		wantErr bool
	}{
		{"unit active", "unit enabled active 1234 nats-server.service\n", func(t *testing.T, h Host) {
			u := h.Units["nats-server.service"]
			if !u.Enabled || !u.Active || u.MainPID != 1234 {
				t.Errorf("unit = %+v", u)
			}
		}, false},
		{"unit unknown", "unit   0 nats-server.service\n", func(t *testing.T, h Host) {
			u, ok := h.Units["nats-server.service"]
			if !ok || u.Enabled || u.Active {
				t.Errorf("unit = %+v", u)
			}
		}, false},
		{"pending", "pending restart nats-server.service\npending reload other.service\n", func(t *testing.T, h Host) {
			if h.Pending["nats-server.service"] != desired.Restart || h.Pending["other.service"] != desired.Reload {
				t.Errorf("pending = %v", h.Pending)
			}
			if got := h.PendingServices(); len(got) != 2 || got[0] != "nats-server.service" {
				t.Errorf("PendingServices = %v", got)
			}
		}, false},
		{"bad mode", "file 9z9 root root abc /x\n", nil, true},
		{"short file", "file 644 root\n", nil, true},
		{"unknown record", "surprise x\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}
