package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestKnownHostsLine(t *testing.T) {
	const key = "AAAAC3NzaC1lZDI1NTE5AAAAILqhi8QRZtQNVGNmyoNrEryntYqlG9Vp+JsjBVOvrwzT"
	got, err := KnownHostsLine("172.31.253.11", "ssh-ed25519 "+key+" root@nats-1\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "172.31.253.11 ssh-ed25519 " + key; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, tc := range []struct{ addr, pub, msg string }{
		{"nats-1", "ssh-ed25519 " + key, "not an IP address"},
		{"172.31.253.11", "", "malformed public key"},
		{"172.31.253.11", "ssh-ed25519", "malformed public key"},
		{"172.31.253.11", "bogus " + key, "unknown key type"},
		{"172.31.253.11", "ssh-ed25519 not-base64!", "not base64"},
	} {
		if _, err := KnownHostsLine(tc.addr, tc.pub); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("KnownHostsLine(%q, %q) = %v, want error containing %q", tc.addr, tc.pub, err, tc.msg)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, id := range []string{"nats-2", "natsdeploy-lab-2", "172.31.253.12"} {
		h, err := Lookup(id)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", id, err)
		}
		if h != (Host{Name: "nats-2", Container: "natsdeploy-lab-2", Address: "172.31.253.12"}) {
			t.Errorf("Lookup(%q) = %+v", id, h)
		}
	}
	if h, err := Lookup("natsdeploy-lab-9"); err != nil || h.Address != "172.31.253.19" || h.Name != "nats-9" {
		t.Errorf("Lookup(natsdeploy-lab-9) = %+v, %v: the lab grows to 9", h, err)
	}
	for _, id := range []string{"nats-10", "nats-0", "172.31.253.20"} {
		if _, err := Lookup(id); err == nil {
			t.Errorf("Lookup(%s): no error", id)
		}
	}
	if hs := HostsN(5); len(hs) != 5 || hs[4].Name != "nats-5" || len(Hosts()) != DefaultHosts {
		t.Errorf("HostsN(5) = %v, Hosts() has %d", hs, len(Hosts()))
	}
	hs := Hosts()
	hs[0].Name = "changed"
	if Hosts()[0].Name != "nats-1" {
		t.Error("Hosts() shares its backing array")
	}
	if got := hs[1].SSHAddress(); got != "172.31.253.12:22" {
		t.Errorf("SSHAddress = %q", got)
	}
}

func TestParseInspect(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want State
	}{
		{"true false net:172.31.253.11\n", State{Exists: true, Running: true, Connected: true, Address: "172.31.253.11"}},
		{"true true net:172.31.253.11\n", State{Exists: true, Running: true, Paused: true, Connected: true, Address: "172.31.253.11"}},
		{"true false -\n", State{Exists: true, Running: true}},
		{"false false net:\n", State{Exists: true, Connected: true}},
	} {
		got, err := parseInspect(tc.out)
		if err != nil || got != tc.want {
			t.Errorf("parseInspect(%q) = %+v, %v; want %+v", tc.out, got, err, tc.want)
		}
	}
	if _, err := parseInspect("true"); err == nil {
		t.Error("parseInspect(short): no error")
	}
}

func TestModulePathAndRepoRoot(t *testing.T) {
	if got := modulePath([]byte("// c\nmodule \"example.com/x\"\n\ngo 1.26\n")); got != "example.com/x" {
		t.Errorf("modulePath = %q", got)
	}
	if got := modulePath([]byte("go 1.26\n")); got != "" {
		t.Errorf("modulePath without module = %q", got)
	}
	root := RepoRoot()
	if _, err := os.Stat(filepath.Join(root, "internal", "lab", "lab.sh")); err != nil {
		t.Errorf("RepoRoot %s: %v", root, err)
	}
	t.Chdir(t.TempDir()) // outside the repository: found from this source file
	if again, err := FindRepoRoot(); err != nil || again != root {
		t.Errorf("FindRepoRoot outside the repo = %q, %v; want %q", again, err, root)
	}
	t.Setenv("NATSDEPLOY_LAB_DIR", "/tmp/somewhere")
	p, err := Locate()
	if err != nil {
		t.Fatal(err)
	}
	if p.KnownHosts != "/tmp/somewhere/known_hosts" || p.Inventory != filepath.Join(root, "inventory", "lab.toml") {
		t.Errorf("Locate = %+v", p)
	}
}

func TestSSHBanner(t *testing.T) {
	if !isSSHBanner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n") {
		t.Error("OpenSSH banner refused")
	}
	if isSSHBanner("HTTP/1.1 400 Bad Request\r\n") {
		t.Error("HTTP accepted as SSH")
	}
}

// The script, this package and the lab inventory must describe the same lab.
func TestSameFactsEverywhere(t *testing.T) {
	root := RepoRoot()
	script, err := os.ReadFile(filepath.Join(root, "internal", "lab", "lab.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range allHosts {
		n := strings.TrimPrefix(h.Name, "nats-")
		if h.Container != "natsdeploy-lab-"+n || h.Address != "172.31.253.1"+n {
			t.Errorf("%s: container %s at %s; the script makes natsdeploy-lab-%s at 172.31.253.1%s", h.Name, h.Container, h.Address, n, n)
		}
	}
	for _, want := range []string{
		"\nNET=" + Network + "\n",
		"\nSUBNET=" + Subnet + "\n",
		"\nIMAGE=" + Image + "\n",
		"\nUSER_NAME=" + User + "\n",
		fmt.Sprintf("\nMAX_HOSTS=%d\n", MaxHosts),
		fmt.Sprintf("\nLAB_HOSTS=${NATSDEPLOY_LAB_HOSTS:-%d}\n", DefaultHosts),
		"\tNAMES+=(\"nats-$i\")\n\tADDRS+=(\"172.31.253.1$i\")\n",
		"container() { printf 'natsdeploy-lab-%s' \"${1#nats-}\"; }",
		"\nNATS_SERVER_VERSIONS=(" + strings.Join(NATSServerVersions, " ") + ")\n",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("lab.sh lacks %q", strings.TrimSpace(want))
		}
	}
	inv, err := os.ReadFile(filepath.Join(root, "inventory", "lab.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		re := regexp.MustCompile(`name = "` + regexp.QuoteMeta(h.Name) + `"\s*\n\s*address = "` + regexp.QuoteMeta(h.Address) + `"`)
		if !re.Match(inv) {
			t.Errorf("inventory/lab.toml has no host %s at %s", h.Name, h.Address)
		}
	}
	if m := regexp.MustCompile(`(?m)^version = "([^"]+)"`).FindSubmatch(inv); m == nil || !slices.Contains(NATSServerVersions, string(m[1])) {
		t.Errorf("inventory/lab.toml's nats version is not one the lab builds (%v)", NATSServerVersions)
	}
	for _, want := range []string{`user = "` + User + `"`, `"../.lab/id_ed25519"`, `"../.lab/known_hosts"`, `"../.lab/artifacts"`} {
		if !strings.Contains(string(inv), want) {
			t.Errorf("inventory/lab.toml lacks %s", want)
		}
	}
}
