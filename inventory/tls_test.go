package inventory

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// loadBase writes base with extra appended beside a temp dir and loads
// it with every file check on.
func loadBase(t *testing.T, extra string) (*Inventory, string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "stage.toml")
	text := strings.Replace(base, "[ssh]\n", "[ssh]\nknown_hosts = \"known_hosts\"\n", 1) + extra
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	inv, err := LoadWithOptions(path, LoadOptions{})
	return inv, dir, err
}

// [tls] values at their edges, and the files it names checked only when
// named: what a valid [tls] looks like is accepted as it is.
func TestTLSEdges(t *testing.T) {
	for _, tc := range []struct {
		name, tls string
		want      string // "" for accepted
	}{
		{"no CA named: nothing to check", "clients = true\n", ""},
		{"valid_for at its minimum", "clients = true\nvalid_for = \"24h\"\nrenew_before = \"1h\"\n", ""},
		{"valid_for under its minimum", "clients = true\nvalid_for = \"23h\"\nrenew_before = \"1h\"\n", "tls.valid_for"},
		{"renew_before equal to valid_for", "clients = true\nvalid_for = \"100h\"\nrenew_before = \"100h\"\n", "tls.renew_before"},
		{"renew_before just under valid_for", "clients = true\nvalid_for = \"100h\"\nrenew_before = \"99h\"\n", ""},
		{"dir an existing folder", "clients = true\ndir = \"certs\"\n", ""},
		{"dir a file", "clients = true\ndir = \"stage.toml\"\n", "tls.dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, dir, err := loadBase(t, "\n[tls]\n"+tc.tls)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if strings.Contains(tc.tls, "certs") && inv.TLS.Dir != filepath.Join(dir, "certs") {
					t.Errorf("dir = %q, want %q", inv.TLS.Dir, filepath.Join(dir, "certs"))
				}
				if !strings.Contains(tc.tls, "dir =") && inv.TLS.Dir != filepath.Join(dir, "stage.tls") {
					t.Errorf("default dir = %q, want %q beside the inventory", inv.TLS.Dir, filepath.Join(dir, "stage.tls"))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a problem at %s", err, tc.want)
			}
		})
	}
}

// The valid ways to encrypt the secrets file are accepted with their own
// keys (and only the other way's keys are refused).
func TestSecretsEncryptAccepted(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATSDEPLOY_TEST_PASSPHRASE", "a passphrase long enough")
	for _, sec := range []string{
		"encrypt = \"passphrase\"\npassphrase_env = \"NATSDEPLOY_TEST_PASSPHRASE\"\n",
		"encrypt = \"ssh-key\"\nidentity = \"" + key + "\"\n",
	} {
		if _, _, err := loadBase(t, "\n[secrets]\n"+sec); err != nil {
			t.Errorf("[secrets] %q refused: %v", sec, err)
		}
	}
}
