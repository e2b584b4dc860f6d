package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/remote"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Each host is reached with the host's own settings, else [ssh]'s, else
// the ssh config's, else the defaults.
func TestSSHConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	sshConfig := filepath.Join(dir, "ssh_config")
	key := filepath.Join(dir, "fromconfig")
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sshConfig, []byte(`
Host 10.0.0.*
    User fromconfig
    Port 2200
    IdentityFile `+key+`
    ProxyJump cfgbastion

Host cfgbastion
    HostName 192.0.2.7
    Port 2022
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const hosts = `
[nats]
version = "2.14.9"

# The host with settings of its own comes first: the first host's
# settings count as much as any other's.
[[hosts]]
name = "n2"
address = "10.0.0.2"
ssh_user = "hostuser"
ssh_port = 2201
jump = "none"

[[hosts]]
name = "n1"
address = "10.0.0.1"

[[hosts]]
name = "n3"
address = "10.0.0.3"
jump = "h3jump:2"

[[accounts]]
name = "SYS"
system = true
  [[accounts.users]]
  name = "sys"
  allow = ["$SYS.>"]
`
	tests := []struct {
		name string
		ssh  string
		want [3]remote.Config // Host, Address, User, Port, IdentityFiles, Jump only
	}{
		{
			name: "the ssh config fills in what the inventory leaves out",
			ssh:  "config_file = " + quote(sshConfig),
			want: [3]remote.Config{
				{User: "hostuser", Port: 2201, IdentityFiles: []string{key}},
				{User: "fromconfig", Port: 2200, IdentityFiles: []string{key}, Jump: []remote.Hop{{Host: "192.0.2.7", Port: 2022}}},
				{User: "fromconfig", Port: 2200, IdentityFiles: []string{key}, Jump: []remote.Hop{{Host: "h3jump", Port: 2}}},
			},
		},
		{
			name: "[ssh] wins over the ssh config, hosts over [ssh]",
			ssh: "config_file = " + quote(sshConfig) + `
user = "deploy"
port = 22
identity_files = ["/keys/mine"]
jump = "ops@bastion"`,
			want: [3]remote.Config{
				{User: "hostuser", Port: 2201, IdentityFiles: []string{"/keys/mine"}},
				{User: "deploy", Port: 22, IdentityFiles: []string{"/keys/mine"}, Jump: []remote.Hop{{User: "ops", Host: "bastion"}}},
				{User: "deploy", Port: 22, IdentityFiles: []string{"/keys/mine"}, Jump: []remote.Hop{{Host: "h3jump", Port: 2}}},
			},
		},
		{
			name: "use_ssh_config = false",
			ssh:  "use_ssh_config = false",
			want: [3]remote.Config{
				{User: "hostuser", Port: 2201},
				{User: "root", Port: 22},
				{User: "root", Port: 22, Jump: []remote.Hop{{Host: "h3jump", Port: 2}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "[ssh]\n" + tt.ssh + "\n" + hosts
			inv, err := inventory.Parse(filepath.Join(dir, "inv.toml"), []byte(text), inventory.LoadOptions{SkipFileChecks: true})
			if err != nil {
				t.Fatal(err)
			}
			cfgs, err := sshConfigs(inv, newSudoPassword(""))
			if err != nil {
				t.Fatal(err)
			}
			for i, got := range cfgs {
				want := tt.want[i]
				want.Host, want.Address = inv.Hosts[i].Name, inv.Hosts[i].Address
				if got.SudoPassword == nil {
					t.Errorf("host %s: no way to get a sudo password", got.Host)
				}
				got = remote.Config{Host: got.Host, Address: got.Address, User: got.User, Port: got.Port, IdentityFiles: got.IdentityFiles, Jump: got.Jump}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("host %s:\n got  %+v\n want %+v", want.Host, got, want)
				}
			}
		})
	}
}

// A broken ssh config stops the run before any connection, naming the
// host and the file.
func TestSSHConfigErrorNamesHostAndFile(t *testing.T) {
	dir := t.TempDir()
	sshConfig := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(sshConfig, []byte("Host 10.0.0.1\n  Port seven\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := "[ssh]\nconfig_file = " + quote(sshConfig) + `
[nats]
version = "2.14.9"
[[hosts]]
name = "n1"
address = "10.0.0.1"
[[accounts]]
name = "SYS"
system = true
  [[accounts.users]]
  name = "sys"
  allow = ["$SYS.>"]
`
	inv, err := inventory.Parse(filepath.Join(dir, "inv.toml"), []byte(text), inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sshConfigs(inv, newSudoPassword(""))
	if err == nil {
		t.Fatal("no error for a port that is not a number")
	}
	for _, want := range []string{"host n1: ssh config " + sshConfig, `Port "seven"`, "nothing was changed on any host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func quote(s string) string { return `"` + s + `"` }
