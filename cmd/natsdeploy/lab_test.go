package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// userKeyPair writes an ed25519 public key file and a stand-in private key
// beside it (the inventory only checks that it exists) and returns the
// public key's path.
func userKeyPair(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	p := filepath.Join(dir, "id_ed25519")
	os.WriteFile(p, []byte("stand-in"), 0o600)
	os.WriteFile(p+".pub", ssh.MarshalAuthorizedKey(sp), 0o644)
	return p + ".pub"
}

// TestLabMultipassThenAddresses runs the commands as the lab's README
// says, with a saved multipass info standing in for Multipass.
func TestLabMultipassThenAddresses(t *testing.T) {
	key := userKeyPair(t)
	lab := filepath.Join(t.TempDir(), "lab")
	out, code := run("lab", "multipass", "--key", key, "--nodes", "3", lab)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, f := range []string{"cloud-init-nats-1.yaml", "cloud-init-nats-3.yaml", "inventory.toml", "known_hosts", "README.md"} {
		if !strings.Contains(out, filepath.Join(lab, f)) {
			t.Errorf("output does not list %s:\n%s", f, out)
		}
	}
	out, code = run("lab", "addresses", "--multipass-json", "../../internal/vmlab/testdata/multipass-info/running.json", lab)
	if code != 0 {
		t.Fatalf("addresses: exit %d: %s", code, out)
	}
	inv, err := inventory.Load(filepath.Join(lab, "inventory.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"nats-1": "10.147.29.84", "nats-2": "10.147.29.85", "nats-3": "10.147.29.86"}
	for _, h := range inv.Hosts {
		if h.Address != want[h.Name] {
			t.Errorf("%s: address %s, want %s", h.Name, h.Address, want[h.Name])
		}
	}
	if inv.SSH.IdentityFiles[0] != strings.TrimSuffix(key, ".pub") {
		t.Errorf("identity file %s, want the private key beside %s", inv.SSH.IdentityFiles[0], key)
	}
}

func TestLabRefusals(t *testing.T) {
	key := userKeyPair(t)
	existing := t.TempDir()
	os.WriteFile(filepath.Join(existing, "inventory.toml"), []byte("mine"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no dir", []string{"lab", "multipass", "--key", key}, 2, "usage: natsdeploy lab multipass"},
		{"two nodes", []string{"lab", "vagrant", "--key", key, "--nodes", "2", t.TempDir() + "/x"}, 2, "no quorum"},
		{"private key given", []string{"lab", "multipass", "--key", strings.TrimSuffix(key, ".pub"), t.TempDir() + "/x"}, 2, "ending in .pub"},
		{"key missing", []string{"lab", "multipass", "--key", key + "x.pub", t.TempDir() + "/x"}, 2, "no such file"},
		{"existing lab kept", []string{"lab", "vagrant", "--key", key, existing}, 2, "already exists"},
		{"addresses of nothing", []string{"lab", "addresses", t.TempDir()}, 2, "write the lab first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
	if data, _ := os.ReadFile(filepath.Join(existing, "inventory.toml")); string(data) != "mine" {
		t.Errorf("an existing inventory was overwritten: %q", data)
	}
}

// TestLabAddressesVagrant: a Vagrant lab's addresses are in its files from
// the start, so the command changes nothing.
func TestLabAddressesVagrant(t *testing.T) {
	key := userKeyPair(t)
	lab := filepath.Join(t.TempDir(), "lab")
	if out, code := run("lab", "vagrant", "--key", key, lab); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	before, _ := os.ReadFile(filepath.Join(lab, "inventory.toml"))
	out, code := run("lab", "addresses", lab)
	after, _ := os.ReadFile(filepath.Join(lab, "inventory.toml"))
	if code != 0 || !strings.Contains(out, "nothing to do") || string(before) != string(after) {
		t.Errorf("exit %d, inventory changed: %v:\n%s", code, string(before) != string(after), out)
	}
}

// TestIdentityFile: a key under the home directory is written as ~/..., so
// the lab's inventory keeps working when copied to another account.
func TestIdentityFile(t *testing.T) {
	t.Setenv("HOME", "/home/me")
	tests := []struct{ pub, want, err string }{
		{"/home/me/.ssh/id_ed25519.pub", "~/.ssh/id_ed25519", ""},
		{"/srv/keys/lab.pub", "/srv/keys/lab", ""},
		{"/home/meme/k.pub", "/home/meme/k", ""},
		{"/home/me/..k.pub", "~/..k", ""},
		{"/home/me/.ssh/id_ed25519", "", "ending in .pub"},
	}
	for _, tt := range tests {
		got, err := identityFile(tt.pub)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: got %q, %v; want an error with %q", tt.pub, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.pub, got, err, tt.want)
		}
	}
}
