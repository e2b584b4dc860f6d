package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func writeSSHConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSSHConfigApply(t *testing.T) {
	keys := t.TempDir()
	file := writeSSHConfig(t, `
Host nats-a
    HostName 10.0.0.5
    User alice
    Port 2201
    IdentityFile ~/.ssh/id_nats
    IdentityFile ~/.ssh/id_missing
    IdentityFile `+keys+`/%h
    ProxyJump bastion,ops@inner:2022

Host *.internal !direct.internal
    ProxyJump bastion

Match host matched.example
    Port 2333

Host proxied
    ProxyCommand nc %h %p

Host badport
    Port seven

Host badjump
    ProxyJump a,,b

Host bastion
    HostName 192.0.2.1
    User jump
    Port 2222

Host inner
    User ignored
    Port 9999

Host *
    User everyone
`)
	sc, err := LoadSSHConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	// The keys the file names exist, but for one, which is skipped.
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{filepath.Join(home, ".ssh/id_nats"), filepath.Join(keys, "10.0.0.5")} {
		os.MkdirAll(filepath.Dir(k), 0o700)
		writeFile(t, k, "key", 0o600)
	}
	base := Config{Host: "h", User: "root", Port: 22}
	tests := []struct {
		name    string
		address string
		given   Given
		in      func(*Config)
		want    func(*Config)
		wantErr string
	}{
		{name: "all from the file", address: "nats-a", want: func(c *Config) {
			c.Address, c.User, c.Port = "10.0.0.5", "alice", 2201
			c.IdentityFiles = []string{filepath.Join(home, ".ssh/id_nats"), filepath.Join(keys, "10.0.0.5")}
			c.Jump = []Hop{{User: "jump", Host: "192.0.2.1", Port: 2222}, {User: "ops", Host: "inner", Port: 2022}}
		}},
		{name: "inventory wins", address: "nats-a", given: Given{User: true, Port: true, IdentityFiles: true, Jump: true},
			in: func(c *Config) { c.IdentityFiles = []string{"/mine"}; c.Jump = []Hop{{Host: "bastion"}} },
			want: func(c *Config) {
				c.Address = "10.0.0.5"
				c.IdentityFiles = []string{"/mine"}
				// The inventory's hop is still looked up in the file.
				c.Jump = []Hop{{User: "jump", Host: "192.0.2.1", Port: 2222}}
			}},
		{name: "inventory none switches the file's jump off", address: "nats-a", given: Given{Jump: true},
			want: func(c *Config) {
				c.Address, c.User, c.Port = "10.0.0.5", "alice", 2201
				c.IdentityFiles = []string{filepath.Join(home, ".ssh/id_nats"), filepath.Join(keys, "10.0.0.5")}
			}},
		{name: "pattern", address: "db.internal", want: func(c *Config) {
			c.User = "everyone"
			c.Jump = []Hop{{User: "jump", Host: "192.0.2.1", Port: 2222}}
		}},
		{name: "negated pattern", address: "direct.internal", want: func(c *Config) { c.User = "everyone" }},
		{name: "Match host", address: "matched.example", want: func(c *Config) { c.User, c.Port = "everyone", 2333 }},
		{name: "no match but Host *", address: "10.1.1.1", want: func(c *Config) { c.User = "everyone" }},
		{name: "ProxyCommand refused", address: "proxied", wantErr: "ProxyCommand is set and natsdeploy does not run commands"},
		{name: "ProxyCommand is fine when the inventory jumps", address: "proxied", given: Given{Jump: true, User: true},
			want: func(c *Config) {}},
		{name: "bad port", address: "badport", wantErr: `host h: ssh config ` + file + `, for badport: Port "seven" is not a number`},
		{name: "bad jump", address: "badjump", wantErr: "for badjump: ProxyJump: empty jump host in the list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.Address = tt.address
			if tt.in != nil {
				tt.in(&in)
			}
			got, err := sc.Apply(in, tt.given)
			if tt.wantErr != "" {
				wantContains(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := base
			want.Address = tt.address
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadSSHConfig(t *testing.T) {
	sc, err := LoadSSHConfig(filepath.Join(t.TempDir(), "missing"))
	if err != nil {
		t.Fatalf("a missing file should be an empty config: %v", err)
	}
	cfg := Config{Host: "h", Address: "a", User: "root"}
	if got, err := sc.Apply(cfg, Given{}); err != nil || !reflect.DeepEqual(got, cfg) {
		t.Errorf("empty config changed %+v to %+v (%v)", cfg, got, err)
	}
	bad := writeSSHConfig(t, "Host a\n  Match exec true\n")
	_, err = LoadSSHConfig(bad)
	wantContains(t, err, "ssh config "+bad+": ", "use_ssh_config = false")
}

// The whole way an OpenSSH user writes it: the inventory says only the
// alias; the ssh config gives address, port, user, key and a jump host,
// itself an alias.
func TestDialWithSSHConfig(t *testing.T) {
	f := newJumpFixture(t, 1)
	j := f.jumps[0]
	file := writeSSHConfig(t, fmt.Sprintf(`
Host bastion
    HostName 127.0.0.1
    Port %d
    User hopper

Host nats-*
    HostName 127.0.0.1
    Port %d
    User alice
    IdentityFile %s
    ProxyJump bastion
`, j.port, f.srv.port, f.keyFile))
	sc, err := LoadSSHConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Host: "nats-1", Address: "nats-a", User: "root", KnownHosts: f.cfg.KnownHosts, Timeout: 5 * time.Second}
	cfg, err = sc.Apply(cfg, Given{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Fatal(err)
	}
	if got := j.logins(); !slices.Equal(got, []string{"hopper"}) {
		t.Errorf("jump host logins %v, want [hopper]", got)
	}
	if got := f.srv.logins(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("target logins %v, want [alice]", got)
	}
	if got := j.tunnelled(); !slices.Equal(got, []string{f.srv.addr}) {
		t.Errorf("jump host forwarded to %v, want %v", got, f.srv.addr)
	}
}
