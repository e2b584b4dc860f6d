package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plan changes nothing, here either: with no host reachable it fails at
// the connection (exit 1) and has written no secrets file and made no
// folder for one; apply, given the same, keeps its promise to save the
// secrets before any host is touched.
func TestPlanWritesNoSecretsFile(t *testing.T) {
	inv := offlineLab(t)
	dir := filepath.Dir(inv)
	sub := filepath.Join(dir, "private")
	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	// A secrets file in a folder that does not exist yet, so creating
	// the folder would show too.
	text := "secrets_file = \"private/inv.secrets.toml\"\n" + string(data)
	if err := os.WriteFile(inv, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// plan and verify only look: neither the secrets file (nor its
	// folder) nor the TLS directory with a CA and keys is made.
	for _, cmd := range []string{"plan", "verify"} {
		out, code := run(cmd, inv)
		if code != 1 || !strings.Contains(out, "connection refused") {
			t.Fatalf("%s: exit %d, want 1 for the refused connections:\n%s", cmd, code, out)
		}
		for _, p := range []string{sub, filepath.Join(dir, "lab.tls")} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("%s created %s (or cannot tell: %v)", cmd, p, err)
			}
		}
	}
	out, code := run("apply", inv)
	if code != 1 {
		t.Fatalf("apply: exit %d, want 1:\n%s", code, out)
	}
	fi, err := os.Stat(filepath.Join(sub, "inv.secrets.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("apply did not save the secrets before connecting: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "lab.tls", "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("apply did not save its CA key (0600) before connecting: %v", err)
	}
}

// A secrets file others can read is a usage problem: exit 2 before any
// connection, naming the file and the chmod to run.
func TestReadableSecretsFileExitsTwo(t *testing.T) {
	inv := labWith(t, "", "")
	sec := filepath.Join(filepath.Dir(inv), "inv.secrets.toml")
	if err := os.WriteFile(sec, []byte("# natsdeploy secrets\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply", "verify", "status"} {
		out, code := run(cmd, inv)
		if code != 2 || !strings.Contains(out, sec) || !strings.Contains(out, "chmod 600 "+sec) || !strings.Contains(out, "nothing was changed") {
			t.Errorf("%s: exit %d, want 2 naming %s and the chmod:\n%s", cmd, code, sec, out)
		}
	}
}
