package remote

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestParseJump(t *testing.T) {
	tests := []struct {
		in      string
		want    []Hop
		wantErr string
	}{
		{in: "bastion", want: []Hop{{Host: "bastion"}}},
		{in: "ops@bastion:2222", want: []Hop{{User: "ops", Host: "bastion", Port: 2222}}},
		{in: "a, ops@b:22 ,c", want: []Hop{{Host: "a"}, {User: "ops", Host: "b", Port: 22}, {Host: "c"}}},
		{in: "ssh://ops@b:2200", want: []Hop{{User: "ops", Host: "b", Port: 2200}}},
		{in: "[2001:db8::1]:2222", want: []Hop{{Host: "2001:db8::1", Port: 2222}}},
		{in: "2001:db8::1", want: []Hop{{Host: "2001:db8::1"}}},
		{in: "none", want: nil},
		{in: "", wantErr: "empty jump host"},
		{in: "a,,b", wantErr: "empty jump host in the list"},
		{in: "@b", wantErr: "empty user"},
		{in: "ops@", wantErr: "no host name"},
		{in: "b:0", wantErr: `port "0" is not a number in 1-65535`},
		{in: "b:ssh", wantErr: `port "ssh" is not a number`},
		{in: "b:70000", wantErr: "1-65535"},
		{in: "[::1", wantErr: "missing ]"},
		{in: "[::1]x", wantErr: "expected :port after ]"},
		{in: "-oProxyCommand=x", wantErr: "is not a host name"},
		{in: "bas tion", wantErr: "is not a host name"},
		{in: "o ps@b", wantErr: "is not a login name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseJump(tt.in)
			if tt.wantErr != "" {
				wantContains(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseJump(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// jumpFixture is a target host behind jump hosts: every server trusts the
// same client key, and one known_hosts file holds all their keys.
type jumpFixture struct {
	*fixture
	jumps []*testServer
}

func newJumpFixture(t *testing.T, hops int) *jumpFixture {
	t.Helper()
	f := &jumpFixture{fixture: newFixture(t)}
	pub := f.srv.authKeys[0]
	var spec []string
	for range hops {
		j := newTestServer(t, pub)
		f.jumps = append(f.jumps, j)
		f.addKnown(t, j)
		spec = append(spec, "jumper@"+j.addr)
	}
	hs, err := ParseJump(strings.Join(spec, ","))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Jump = hs
	return f
}

func (f *jumpFixture) addKnown(t *testing.T, s *testServer) {
	t.Helper()
	old := readFile(t, f.cfg.KnownHosts)
	for _, k := range s.hostKeys {
		old += s.knownHostsLine(k.PublicKey())
	}
	writeFile(t, f.cfg.KnownHosts, old, 0o600)
}

// Two hops: each jump host is asked to forward to the next one only, logs
// in its own user, and the commands reach the target.
func TestDialThroughJumpHosts(t *testing.T) {
	f := newJumpFixture(t, 2)
	c := f.dial(t)
	res, err := c.Run(context.Background(), "echo through", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "through" {
		t.Errorf("stdout %q", got)
	}
	if got, want := f.jumps[0].tunnelled(), []string{f.jumps[1].addr}; !slices.Equal(got, want) {
		t.Errorf("first jump host forwarded to %v, want %v", got, want)
	}
	if got, want := f.jumps[1].tunnelled(), []string{f.srv.addr}; !slices.Equal(got, want) {
		t.Errorf("second jump host forwarded to %v, want %v", got, want)
	}
	for i, j := range f.jumps {
		if got := j.logins(); !slices.Equal(got, []string{"jumper"}) {
			t.Errorf("jump host %d logins %v, want [jumper]", i, got)
		}
		if got := j.recorded(); len(got) != 0 {
			t.Errorf("jump host %d ran commands %q; it should only forward", i, got)
		}
	}
	if got := f.srv.logins(); !slices.Equal(got, []string{"deploy"}) {
		t.Errorf("target logins %v, want [deploy]", got)
	}
	if conns, _, _ := f.srv.stats(); conns != 1 {
		t.Errorf("target saw %d connections, want 1", conns)
	}
}

// A jump host is held to known_hosts like any host: a changed or unknown
// key is refused naming the jump host, and the target is never reached.
func TestJumpHostKeyChecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		known func(f *jumpFixture) string
		want  HostKeyProblem
	}{
		{"changed", func(f *jumpFixture) string {
			return f.srv.knownHostsLine(f.srv.hostKeys[0].PublicKey()) +
				f.jumps[0].knownHostsLine(newSigner(t, "ed25519").PublicKey())
		}, HostKeyChanged},
		{"unknown", func(f *jumpFixture) string {
			return f.srv.knownHostsLine(f.srv.hostKeys[0].PublicKey())
		}, HostKeyUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newJumpFixture(t, 1)
			writeFile(t, f.cfg.KnownHosts, tc.known(f), 0o600)
			_, err := Dial(context.Background(), f.cfg)
			var hke *HostKeyError
			if !errors.As(err, &hke) || hke.Problem != tc.want {
				t.Fatalf("got %v, want a HostKeyError %d", err, tc.want)
			}
			wantContains(t, err, "host nats-1: ", "jumper@"+f.jumps[0].addr+" (jump host)", f.jumps[0].addr)
			if conns, _, _ := f.srv.stats(); conns != 0 {
				t.Errorf("the target was reached through an unchecked jump host")
			}
			if got := f.jumps[0].tunnelled(); len(got) != 0 {
				t.Errorf("tunnels opened through a refused jump host: %v", got)
			}
		})
	}
}

// A jump host that refuses the key stops the dial with an authentication
// error naming the jump host, not the target.
func TestJumpHostRefusesAuth(t *testing.T) {
	f := newJumpFixture(t, 1)
	f.jumps[0].authKeys = []ssh.PublicKey{newSigner(t, "ed25519").PublicKey()}
	_, err := Dial(context.Background(), f.cfg)
	wantContains(t, err, "host nats-1: host jumper@"+f.jumps[0].addr+" (jump host): ssh authentication as jumper failed")
}

// Hosts behind one jump host share one connection to it, and it is closed
// when the last of them is.
func TestJumpConnectionShared(t *testing.T) {
	f := newJumpFixture(t, 1)
	cfgs := []Config{f.cfg}
	for i := 2; i <= 3; i++ {
		other := newFixture(t)
		// The same client key as f, so one identity file serves all.
		other.srv.authKeys = f.srv.authKeys
		f.addKnown(t, other.srv)
		cfg := f.cfg
		cfg.Host = fmt.Sprintf("nats-%d", i)
		cfg.Port = other.srv.port
		cfgs = append(cfgs, cfg)
	}
	clients, err := DialAll(context.Background(), cfgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if _, err := c.Run(context.Background(), "true", nil); err != nil {
			t.Errorf("%s: %v", c.Host(), err)
		}
	}
	if conns, _, _ := f.jumps[0].stats(); conns != 1 {
		t.Errorf("jump host saw %d connections for 3 hosts, want 1", conns)
	}
	if got := len(f.jumps[0].tunnelled()); got != 3 {
		t.Errorf("jump host forwarded %d times, want 3", got)
	}
	clients["nats-1"].Close()
	if _, err := clients["nats-2"].Run(context.Background(), "true", nil); err != nil {
		t.Errorf("closing one host closed the shared jump connection: %v", err)
	}
	if err := CloseAll(clients); err != nil {
		t.Fatal(err)
	}
	waitOpen(t, f.jumps[0], 0)
}

func waitOpen(t *testing.T, s *testServer, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, open, _ := s.stats()
		if open == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", open, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A target the jump host cannot forward to is reported with the jump host
// that refused.
func TestJumpHostCannotForward(t *testing.T) {
	f := newJumpFixture(t, 1)
	f.srv.Close()
	_, err := Dial(context.Background(), f.cfg)
	wantContains(t, err, "host nats-1: cannot reach "+f.srv.addr+" through jump host jumper@"+f.jumps[0].addr+": ")
	// The connection to the jump host is not kept for nothing.
	waitOpen(t, f.jumps[0], 0)
}
