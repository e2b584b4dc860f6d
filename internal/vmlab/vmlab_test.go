package vmlab

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles"
)

const userKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd3Y0T4ZuW6d5WmWbq5tCkZ4cGk6m4mWl0uRkR0fBqD me@laptop"

// fixedHostKey keeps golden files stable: the public key comes from a
// seed, the private one is a stand-in (OpenSSH's private key format holds
// a random check number, so a real one would differ on every run).
func fixedHostKey(name string) (HostKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return HostKey{}, err
	}
	return HostKey{
		Private: "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in for " + name + "'s private host key\n-----END OPENSSH PRIVATE KEY-----\n",
		Public:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))),
	}, nil
}

func options(nodes int, image string) Options {
	return Options{Nodes: nodes, AuthorizedKey: userKey, IdentityFile: "~/.ssh/id_ed25519", Image: image, HostKey: fixedHostKey}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		gen  func(Options) ([]File, error)
		opts Options
	}{
		{"multipass-3", Multipass, options(3, "24.04")},
		{"vagrant-3", Vagrant, options(3, "debian/bookworm64")},
		{"multipass-1", Multipass, options(1, "22.04")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := tt.gen(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join("testdata", "golden", tt.name)
			if golden.Update() {
				os.RemoveAll(dir)
			}
			seen := map[string]bool{}
			for _, f := range files {
				p := filepath.Join(dir, f.Name)
				seen[filepath.ToSlash(p)] = true
				golden.Check(t, p, f.Data)
			}
			// A file the generator stopped writing must not linger as golden.
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() && !seen[filepath.ToSlash(p)] {
					t.Errorf("golden file %s is no longer generated", p)
				}
				return nil
			})
		})
	}
}

// TestModes: files holding a private host key are readable by their owner
// only.
func TestModes(t *testing.T) {
	for _, gen := range []func(Options) ([]File, error){Multipass, Vagrant} {
		files, err := gen(options(3, "x"))
		if err != nil {
			t.Fatal(err)
		}
		private := 0
		for _, f := range files {
			holds := bytes.Contains(f.Data, []byte("PRIVATE KEY-----\n"))
			if holds {
				private++
			}
			if holds != (f.Mode == 0o600) {
				t.Errorf("%s: mode %o, holds a private key: %v", f.Name, f.Mode, holds)
			}
		}
		if private != 3 {
			t.Errorf("%d files hold a private host key, want one per VM (3)", private)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"two nodes", func(o *Options) { o.Nodes = 2 }, "no quorum"},
		{"ten nodes", func(o *Options) { o.Nodes = 10 }, "3 to 9"},
		{"zero nodes", func(o *Options) { o.Nodes = 0 }, "3 to 9"},
		{"not a key", func(o *Options) { o.AuthorizedKey = "hello" }, "authorized key"},
		{"quote in comment", func(o *Options) { o.AuthorizedKey = userKey + `"` }, "without quotes"},
		{"image with space", func(o *Options) { o.Image = "24.04 --evil" }, "one word"},
		{"no image", func(o *Options) { o.Image = "" }, "one word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(3, "24.04")
			tt.edit(&o)
			for _, gen := range []func(Options) ([]File, error){Multipass, Vagrant} {
				_, err := gen(o)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v, want an error with %q", err, tt.want)
				}
			}
		})
	}
}

func TestNewHostKey(t *testing.T) {
	k, err := NewHostKey(rand.Reader, "root@nats-1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(k.Private))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if got != k.Public {
		t.Errorf("public key %q does not match the private key's %q", k.Public, got)
	}
	other, _ := NewHostKey(rand.Reader, "root@nats-2")
	if other.Public == k.Public {
		t.Error("two generated host keys are the same")
	}
}

func TestReadAuthorizedKey(t *testing.T) {
	dir := t.TempDir()
	k, _ := NewHostKey(rand.Reader, "")
	tests := []struct {
		name, data, want, err string
	}{
		{"one key", userKey + "\n", userKey, ""},
		{"first of two", userKey + "\n" + k.Public + "\n", userKey, ""},
		{"private key", k.Private, "", "is a private key"},
		{"garbage", "hello\n", "", "not an SSH public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			os.WriteFile(p, []byte(tt.data), 0o600)
			got, err := ReadAuthorizedKey(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// writeLab writes a lab with real host keys and an identity file the
// inventory can find, and returns its directory.
func writeLab(t *testing.T, gen func(Options) ([]File, error), nodes int) (string, []File) {
	t.Helper()
	dir := t.TempDir()
	ident := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(ident, []byte("stand-in"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Nodes: nodes, AuthorizedKey: userKey, IdentityFile: ident, Image: "24.04"}
	files, err := gen(o)
	if err != nil {
		t.Fatal(err)
	}
	lab := filepath.Join(dir, "lab")
	if err := Write(lab, files); err != nil {
		t.Fatal(err)
	}
	return lab, files
}

// TestInventoryLoads runs the generated inventories through natsdeploy's
// own loader and the roles' checks, as apply would.
func TestInventoryLoads(t *testing.T) {
	tests := []struct {
		name  string
		gen   func(Options) ([]File, error)
		nodes int
		addr  func(i int) string
	}{
		{"multipass", Multipass, 3, func(i int) string { return Placeholder(NodeName(i)) }},
		{"multipass-9", Multipass, 9, func(i int) string { return Placeholder(NodeName(i)) }},
		{"vagrant", Vagrant, 3, VagrantAddress},
		{"vagrant-1", Vagrant, 1, VagrantAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lab, _ := writeLab(t, tt.gen, tt.nodes)
			inv, err := inventory.Load(filepath.Join(lab, "inventory.toml"))
			if err == nil {
				err = roles.Check(inv, roles.All)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Hosts) != tt.nodes {
				t.Fatalf("%d hosts, want %d", len(inv.Hosts), tt.nodes)
			}
			for i, h := range inv.Hosts {
				if h.Name != NodeName(i+1) || h.Address != tt.addr(i+1) {
					t.Errorf("host %d: %s at %s, want %s at %s", i, h.Name, h.Address, NodeName(i+1), tt.addr(i+1))
				}
			}
			if inv.SSH.KnownHosts != filepath.Join(lab, "known_hosts") || inv.SSH.User != User {
				t.Errorf("ssh: user %q, known_hosts %q", inv.SSH.User, inv.SSH.KnownHosts)
			}
			if m, ok := inv.MonitoringHost(); !ok || m.Name != "nats-1" || !inv.Monitoring.Prometheus.On() || inv.Monitoring.Grafana.On() {
				t.Errorf("monitoring: host %v (%v), prometheus %v, grafana %v", m.Name, ok, inv.Monitoring.Prometheus.On(), inv.Monitoring.Grafana.On())
			}
			if len(inv.Accounts) != 6 {
				t.Errorf("%d accounts, want the seed's 6", len(inv.Accounts))
			}
		})
	}
}

// userDataHostKey reads the private host key a VM's user-data gives it,
// as cloud-init reads the YAML block scalar.
func userDataHostKey(t *testing.T, lab, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lab, UserDataName(name)))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "  ed25519_private: |") {
			in = true
			continue
		}
		if in && strings.HasPrefix(l, "    ") {
			b.WriteString(strings.TrimPrefix(l, "    ") + "\n")
		} else {
			in = false
		}
	}
	return []byte(b.String())
}

// TestKnownHostsMatchHostKeys: the key natsdeploy will expect for each VM
// is the one the VM is given.
func TestKnownHostsMatchHostKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		gen  func(Options) ([]File, error)
		// hostKey finds the private key a VM is given.
		hostKey func(lab, name string) string
	}{
		{"multipass", Multipass, func(lab, name string) string {
			return string(userDataHostKey(t, lab, name))
		}},
		{"vagrant", Vagrant, func(lab, name string) string {
			data, _ := os.ReadFile(filepath.Join(lab, HostKeyName(name)))
			return string(data)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lab, _ := writeLab(t, tt.gen, 3)
			kh, err := os.ReadFile(filepath.Join(lab, "known_hosts"))
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				name := NodeName(i)
				signer, err := ssh.ParsePrivateKey([]byte(tt.hostKey(lab, name)))
				if err != nil {
					t.Fatalf("%s: host key: %v", name, err)
				}
				pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
				if !strings.Contains(string(kh), name+" "+pub+"\n") && !strings.Contains(string(kh), name+","+VagrantAddress(i)+" "+pub+"\n") {
					t.Errorf("known_hosts has no line for %s with key %s:\n%s", name, pub, kh)
				}
			}
		})
	}
}

func TestWriteRefusesExisting(t *testing.T) {
	lab, files := writeLab(t, Multipass, 3)
	before, _ := os.ReadFile(filepath.Join(lab, "known_hosts"))
	err := Write(lab, files[len(files)-1:])
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("got %v, want already exists", err)
	}
	after, _ := os.ReadFile(filepath.Join(lab, "known_hosts"))
	if !bytes.Equal(before, after) {
		t.Error("known_hosts changed")
	}
}

// tool returns the path of a checker, skipping when this machine lacks it
// (make deps installs it, so CI never skips).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s; make deps installs it): the generated files are not checked by it here", name, pkg)
	}
	return p
}

// TestCloudInitSchema checks each user-data file with cloud-init's own
// schema validator, and that the validator catches a bad file.
func TestCloudInitSchema(t *testing.T) {
	ci := tool(t, "cloud-init", "cloud-init")
	lab, files := writeLab(t, Multipass, 3)
	checked := 0
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "cloud-init-") {
			continue
		}
		checked++
		out, err := exec.Command(ci, "schema", "--config-file", filepath.Join(lab, f.Name)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
			t.Errorf("%s: %v\n%s", f.Name, err, out)
		}
	}
	if checked != 3 {
		t.Errorf("checked %d user-data files, want 3", checked)
	}
	// The validator does fail on a bad value.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	data, _ := os.ReadFile(filepath.Join(lab, UserDataName("nats-1")))
	os.WriteFile(bad, bytes.Replace(data, []byte("ssh_genkeytypes: [ed25519]"), []byte("ssh_genkeytypes: []"), 1), 0o600)
	if out, err := exec.Command(ci, "schema", "--config-file", bad).CombinedOutput(); err == nil {
		t.Errorf("cloud-init schema accepted ssh_genkeytypes: []:\n%s", out)
	}
}

// TestVagrantfile checks the Vagrantfile's syntax with ruby -c, then runs
// it against a stand-in for Vagrant's configuration objects to check what
// it defines, and the provisioning script with bash -n.
func TestVagrantfile(t *testing.T) {
	ruby := tool(t, "ruby", "ruby")
	lab, _ := writeLab(t, Vagrant, 3)
	vf := filepath.Join(lab, "Vagrantfile")
	if out, err := exec.Command(ruby, "-c", vf).CombinedOutput(); err != nil {
		t.Fatalf("ruby -c: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "Vagrantfile")
	data, _ := os.ReadFile(vf)
	os.WriteFile(bad, bytes.Replace(data, []byte("\nend\n"), []byte("\n"), 1), 0o644)
	if err := exec.Command(ruby, "-c", bad).Run(); err == nil {
		t.Error("ruby -c accepted a Vagrantfile with an end missing")
	}

	out, err := exec.Command(ruby, "testdata/fake_vagrant.rb", vf).Output()
	if err != nil {
		t.Fatalf("evaluating the Vagrantfile: %v", err)
	}
	var got struct {
		Box      string
		Machines map[string]struct {
			Hostname string
			Networks []struct{ Kind, IP string }
			// Vagrant's keys are symbols, printed as strings.
			Provisions []struct {
				Kind   string
				Inline string
				Env    map[string]string
			}
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Box != "24.04" || len(got.Machines) != 3 {
		t.Fatalf("box %q, %d machines", got.Box, len(got.Machines))
	}
	for i := 1; i <= 3; i++ {
		name := NodeName(i)
		m := got.Machines[name]
		if m.Hostname != name || len(m.Networks) != 1 || m.Networks[0].Kind != "private_network" || m.Networks[0].IP != VagrantAddress(i) {
			t.Errorf("%s: hostname %q, networks %+v", name, m.Hostname, m.Networks)
		}
		if len(m.Provisions) != 1 || m.Provisions[0].Kind != "shell" {
			t.Fatalf("%s: provisions %+v", name, m.Provisions)
		}
		env := m.Provisions[0].Env
		priv, _ := os.ReadFile(filepath.Join(lab, HostKeyName(name)))
		if env["HOST_KEY"] != strings.TrimSpace(string(priv)) || env["DEPLOY_KEY"] != userKey || env["DEPLOY_USER"] != User {
			t.Errorf("%s: provisioner env %v", name, env)
		}
		script := filepath.Join(t.TempDir(), "provision.sh")
		os.WriteFile(script, []byte(m.Provisions[0].Inline), 0o644)
		if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n on the provisioning script: %v\n%s", name, err, out)
		}
		for _, want := range []string{"NOPASSWD:ALL", "authorized_keys", "ssh_host_ed25519_key", "visudo -cf"} {
			if !strings.Contains(m.Provisions[0].Inline, want) {
				t.Errorf("%s: provisioning script lacks %q", name, want)
			}
		}
	}
}
