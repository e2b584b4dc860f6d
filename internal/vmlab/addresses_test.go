package vmlab

import (
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/natsdeploy/natsdeploy/inventory"
)

var three = []string{"nats-1", "nats-2", "nats-3"}

func TestParseMultipassInfo(t *testing.T) {
	tests := []struct {
		name   string
		sample string // under testdata/multipass-info, or inline JSON
		names  []string
		want   map[string]string
		errs   []string
	}{
		{
			name: "three running, the first with a second address", sample: "running.json", names: three,
			want: map[string]string{"nats-1": "10.147.29.84", "nats-2": "10.147.29.85", "nats-3": "10.147.29.86"},
		},
		{
			name: "only the VMs asked for", sample: "running.json", names: []string{"nats-2"},
			want: map[string]string{"nats-2": "10.147.29.85"},
		},
		{
			name: "stopped, and running without an address", sample: "stopped-and-booting.json", names: three,
			errs: []string{"nats-2: Stopped, not Running (multipass start nats-2)", "nats-3: running but has no IPv4 address yet"},
		},
		{
			name: "a VM not launched", sample: "running.json", names: []string{"nats-1", "nats-4"},
			errs: []string{"nats-4: no such VM"},
		},
		{
			name: "not JSON", sample: `info "nats-1" does not exist`, names: three,
			errs: []string{"not the JSON expected"},
		},
		{
			name: "an IPv6 address first", sample: `{"errors":[],"info":{"nats-1":{"state":"Running","ipv4":["fd42::1"]}}}`, names: []string{"nats-1"},
			errs: []string{`"fd42::1" is not an IPv4 address`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.sample)
			if strings.HasSuffix(tt.sample, ".json") {
				var err error
				if data, err = os.ReadFile(filepath.Join("testdata", "multipass-info", tt.sample)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ParseMultipassInfo(data, tt.names)
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
					}
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSetAddresses(t *testing.T) {
	const inv = `# top comment: address = "keep"
[ssh]
user = "deploy"

[[hosts]]
name = "nats-1"
address = "nats-1.invalid"  # placeholder until: natsdeploy lab addresses DIR

[[hosts]]
# a comment of the user's
name = "nats-2"
address   =   "10.0.0.1"   # my own comment

[other]
name = "nats-3"
address = "not a host table"

[[hosts]]
address = "nats-3.invalid"
name = "nats-3"
`
	tests := []struct {
		name  string
		addrs map[string]string
		want  string
		err   string
	}{
		{
			name:  "placeholder comment dropped, the user's kept, other tables untouched",
			addrs: map[string]string{"nats-1": "10.1.1.1", "nats-2": "10.1.1.2", "nats-3": "10.1.1.3"},
			want: strings.NewReplacer(
				`address = "nats-1.invalid"  # placeholder until: natsdeploy lab addresses DIR`, `address = "10.1.1.1"`,
				`address   =   "10.0.0.1"   # my own comment`, `address   =   "10.1.1.2"   # my own comment`,
				`address = "nats-3.invalid"`, `address = "10.1.1.3"`,
			).Replace(inv),
		},
		{
			name:  "only the hosts given",
			addrs: map[string]string{"nats-2": "10.1.1.2"},
			want:  strings.Replace(inv, `"10.0.0.1"`, `"10.1.1.2"`, 1),
		},
		{
			name:  "a host the inventory lacks",
			addrs: map[string]string{"nats-1": "10.1.1.1", "nats-9": "10.1.1.9"},
			err:   "no [[hosts]] table with a one-line address for nats-9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetAddresses(inv, tt.addrs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	if got := HostNames(inv); !reflect.DeepEqual(got, three) {
		t.Errorf("HostNames: %v, want %v", got, three)
	}
}

func TestSetKnownHosts(t *testing.T) {
	const kh = "# comment\nnats-1 ssh-ed25519 AAAA1\nnats-2,10.0.0.2 ssh-ed25519 AAAA2\nnats-3 ssh-ed25519 AAAA3\n"
	tests := []struct {
		name  string
		addrs map[string]string
		want  string
		err   string
	}{
		{
			name:  "added, and an earlier address replaced",
			addrs: map[string]string{"nats-1": "10.1.1.1", "nats-2": "10.1.1.2"},
			want:  "# comment\nnats-1,10.1.1.1 ssh-ed25519 AAAA1\nnats-2,10.1.1.2 ssh-ed25519 AAAA2\nnats-3 ssh-ed25519 AAAA3\n",
		},
		{
			name:  "a VM without a key",
			addrs: map[string]string{"nats-4": "10.1.1.4"},
			err:   "no key for nats-4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetKnownHosts(kh, tt.addrs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v:\n%s\nwant:\n%s", err, got, tt.want)
			}
		})
	}
}

// TestAddressesThenLoad fills a generated Multipass lab from the sample
// output and loads the result as apply would: the addresses are the VMs',
// and each is in known_hosts with the key generated for it.
func TestAddressesThenLoad(t *testing.T) {
	lab, _ := writeLab(t, Multipass, 3)
	invPath, khPath := filepath.Join(lab, "inventory.toml"), filepath.Join(lab, "known_hosts")
	info, _ := os.ReadFile("testdata/multipass-info/running.json")
	text, _ := os.ReadFile(invPath)
	addrs, err := ParseMultipassInfo(info, HostNames(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	newInv, err := SetAddresses(string(text), addrs)
	if err != nil {
		t.Fatal(err)
	}
	kh, _ := os.ReadFile(khPath)
	newKH, err := SetKnownHosts(string(kh), addrs)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(invPath, []byte(newInv), 0o644)
	os.WriteFile(khPath, []byte(newKH), 0o644)
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range inv.Hosts {
		if h.Address != addrs[h.Name] {
			t.Errorf("%s: address %s, want %s", h.Name, h.Address, addrs[h.Name])
		}
		if !strings.Contains(newKH, h.Name+","+addrs[h.Name]+" ssh-ed25519 ") {
			t.Errorf("known_hosts has no key for %s at %s:\n%s", h.Name, addrs[h.Name], newKH)
		}
	}
	// The check natsdeploy's SSH client makes (x/crypto's knownhosts)
	// accepts each VM's own key at its address, and no other.
	check, err := knownhosts.New(khPath)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := NewHostKey(rand.Reader, "")
	strangerKey, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(stranger.Public))
	for _, h := range inv.Hosts {
		signer, err := ssh.ParsePrivateKey(userDataHostKey(t, lab, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		addr := &net.TCPAddr{IP: net.ParseIP(h.Address), Port: 22}
		if err := check(net.JoinHostPort(h.Address, "22"), addr, signer.PublicKey()); err != nil {
			t.Errorf("%s: its own host key is refused: %v", h.Name, err)
		}
		if err := check(net.JoinHostPort(h.Address, "22"), addr, strangerKey); err == nil {
			t.Errorf("%s: another key is accepted", h.Name)
		}
	}
	if strings.Contains(newInv, "# placeholder until") || strings.Contains(newInv, ".invalid") {
		t.Errorf("a placeholder is left:\n%s", newInv)
	}
	if len(strings.Split(newInv, "\n")) != len(strings.Split(string(text), "\n")) {
		t.Error("the inventory's line count changed: only address lines may be rewritten")
	}
}
