package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
)

// labWith writes the lab inventory with one line replaced into a temp dir
// and returns its path. Nothing in it can be reached: a command that tried
// to connect would fail with exit 1, not 2.
func labWith(t *testing.T, old, new string) string {
	t.Helper()
	data, err := os.ReadFile("../../inventory/lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if old != "" {
		if !strings.Contains(text, old) {
			t.Fatalf("lab.toml has no %q", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	dir := t.TempDir()
	// The inventory's relative paths must exist for validation to pass.
	text = strings.ReplaceAll(text, `"../.lab/`, `"`+dir+`/`)
	os.WriteFile(filepath.Join(dir, "id_ed25519"), []byte("key"), 0o600)
	os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600)
	// The lab is offline: the release of its version must be there.
	os.MkdirAll(filepath.Join(dir, "artifacts", "nats-server", "v2.14.9"), 0o755)
	p := filepath.Join(dir, "inv.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// A real key, so the connection is what fails, not the key file.
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(args ...string) (string, int) {
	var out bytes.Buffer
	err := newApp(&out).RunContext(context.Background(), append([]string{"natsdeploy"}, args...))
	if err == nil {
		return out.String(), 0
	}
	return out.String() + err.Error(), exitCode(err)
}

func TestBadInputExitsTwoBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T) []string
		want []string
	}{
		{"no inventory", func(*testing.T) []string { return []string{"apply"} }, []string{"usage: natsdeploy apply INVENTORY.toml"}},
		{"two inventories", func(*testing.T) []string { return []string{"plan", "a.toml", "b.toml"} }, []string{"usage: natsdeploy plan INVENTORY.toml"}},
		{"missing file", func(*testing.T) []string { return []string{"verify", "/nonexistent/inv.toml"} }, []string{"/nonexistent/inv.toml", "nothing was changed"}},
		// Caught by the nats role only after connecting before roles
		// were first-class; now an inventory problem with its line.
		{"lame duck below the server's minimum", func(t *testing.T) []string {
			return []string{"apply", labWith(t, `[nats]`, "[nats]\nlame_duck_duration = \"10s\"\nlame_duck_grace_period = \"5s\"")}
		}, []string{"inv.toml:", "nats.lame_duck_duration", "30s", "nothing was changed"}},
		{"restart on a host the inventory lacks", func(t *testing.T) []string {
			return []string{"restart", "--host", "nats-9", labWith(t, "", "")}
		}, []string{"--host nats-9: no such host", "nats-1, nats-2, nats-3", "nothing was restarted"}},
		{"restart of a role the inventory does not run", func(t *testing.T) []string {
			return []string{"restart", "--role", "grafana", labWith(t, "", "")}
		}, []string{"--role grafana: the inventory does not run it", "nothing was restarted"}},
		{"restart with a flag after the inventory", func(t *testing.T) []string {
			return []string{"restart", labWith(t, "", ""), "--host", "nats-1"}
		}, []string{"--host comes after the inventory; put flags before it"}},
		{"unknown key", func(t *testing.T) []string {
			return []string{"plan", labWith(t, `cluster_name = "nats-cluster"`, `cluster_nam = "nats-cluster"`)}
		}, []string{"inv.toml:", "cluster_nam", "did you mean", "nothing was changed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.args(t)...)
			if code != 2 {
				t.Errorf("exit %d, want 2:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	if c := exitCode(errors.New("host nats-1: connection refused")); c != 1 {
		t.Errorf("host failure exits %d, want 1", c)
	}
	if c := exitCode(cli.Exit("bad", 2)); c != 2 {
		t.Errorf("usage exits %d, want 2", c)
	}
}

// offlineLab is the lab inventory with its hosts on 127.0.0.1-3 at an SSH
// port where nothing listens: every connection is refused at once, and no
// machine but this one is touched.
func offlineLab(t *testing.T) string {
	t.Helper()
	port := 0
	for tries := 0; port == 0 && tries < 50; tries++ {
		var held []net.Listener
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		free := true
		for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
			o, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p)))
			if err != nil {
				free = false
				break
			}
			held = append(held, o)
		}
		for _, h := range held {
			h.Close()
		}
		if free {
			port = p
		}
	}
	if port == 0 {
		t.Skip("no port free on 127.0.0.1-3")
	}
	p := labWith(t, "[ssh]", fmt.Sprintf("[ssh]\nport = %d", port))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(`"172.31.253.11"`, `"127.0.0.1"`, `"172.31.253.12"`, `"127.0.0.2"`, `"172.31.253.13"`, `"127.0.0.3"`).Replace(string(data))
	if strings.Contains(text, "172.31.253.") {
		t.Fatal("a lab address is left in the inventory")
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// A real key, so the connection is what fails, not the key file.
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runSplit runs the CLI and returns what it printed and its error apart,
// as a shell sees stdout apart from the message main prints on stderr.
func runSplit(args ...string) (string, error) {
	var out bytes.Buffer
	err := newApp(&out).RunContext(context.Background(), append([]string{"natsdeploy"}, args...))
	return out.String(), err
}

// status with no host reachable: a row per host saying so, the problems
// listed, exit 1; with --json, one JSON document on stdout saying the
// same. Neither writes the secrets file or known_hosts.
func TestStatusUnreachableHosts(t *testing.T) {
	inv := offlineLab(t)
	dir := filepath.Dir(inv)
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"text", []string{"status", inv}, func(t *testing.T, out string) {
			for _, h := range []string{"nats-1", "nats-2", "nats-3"} {
				if !regexp.MustCompile(`(?m)^` + h + `\s+-\s+unreachable\s`).MatchString(out) {
					t.Errorf("no unreachable row for %s:\n%s", h, out)
				}
				if !regexp.MustCompile(`  ` + h + `: cannot connect: host ` + h + `: cannot reach 127\.0\.0\.\d:\d+: .*connection refused`).MatchString(out) {
					t.Errorf("the problems do not say why %s was not reached:\n%s", h, out)
				}
			}
			if !strings.Contains(out, "status: 3 problem(s) on nats-1, nats-2, nats-3") {
				t.Errorf("no verdict line:\n%s", out)
			}
		}},
		{"json", []string{"status", "--json", inv}, func(t *testing.T, out string) {
			var doc struct {
				OK       bool `json:"ok"`
				Services []struct {
					Host      string   `json:"host"`
					Reachable bool     `json:"reachable"`
					Problems  []string `json:"problems"`
				} `json:"services"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
			}
			if doc.OK || len(doc.Services) != 3 {
				t.Fatalf("JSON %+v, want 3 services and ok false", doc)
			}
			for _, s := range doc.Services {
				if s.Reachable || len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "cannot connect") {
					t.Errorf("service %+v, want unreachable with why", s)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSplit(tc.args...)
			if code := exitCode(err); err == nil || code != 1 || !strings.Contains(err.Error(), "status: 3 problem(s)") {
				t.Errorf("exit %d (%v), want 1 saying how many problems", code, err)
			}
			tc.check(t, out)
			if _, err := os.Stat(filepath.Join(dir, "inv.secrets.toml")); !os.IsNotExist(err) {
				t.Errorf("status created the secrets file: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "known_hosts")); err != nil || len(b) != 0 {
				t.Errorf("status wrote known_hosts: %q %v", b, err)
			}
		})
	}
}

func TestStatusHelpSaysExitStatus(t *testing.T) {
	out, code := run("status", "--help")
	if code != 0 || !strings.Contains(out, "Exit status: 0 when every host is reached and every service is up and in sync") ||
		!strings.Contains(out, "1 otherwise") || !strings.Contains(out, "--json") {
		t.Errorf("status --help (exit %d):\n%s", code, out)
	}
}

// unlock with no host reachable says so for each host and exits 1: their
// locks, if any, are still there.
func TestUnlockUnreachableHosts(t *testing.T) {
	out, err := runSplit("unlock", offlineLab(t))
	if code := exitCode(err); code != 1 || !strings.Contains(err.Error(), "unlock: 3 host(s) may still be locked") {
		t.Errorf("exit %d (%v), want 1 saying how many hosts", code, err)
	}
	for _, h := range []string{"nats-1", "nats-2", "nats-3"} {
		if !regexp.MustCompile(`(?m)^` + h + `: cannot connect: host ` + h + `: cannot reach .*connection refused; its lock, if any, is left$`).MatchString(out) {
			t.Errorf("no line saying %s was not reached:\n%s", h, out)
		}
	}
}

func TestUnlockHelp(t *testing.T) {
	out, code := run("unlock", "--help")
	if code != 0 || !strings.Contains(out, "--force") || !strings.Contains(out, "still runs on this machine") || !strings.Contains(out, "Exit status: 0 when no host is locked") {
		t.Errorf("unlock --help (exit %d):\n%s", code, out)
	}
}

// Without a terminal to ask on, destroy refuses unless told --yes, before
// it connects to anything: exit 2, saying what to do.
func TestDestroyWithoutTerminalNeedsYes(t *testing.T) {
	tty := console.tty
	t.Cleanup(func() { console.tty = tty })
	console.tty = func() bool { return false }
	inv := labWith(t, "", "")
	for _, args := range [][]string{
		{"destroy", inv},
		{"destroy", "--purge-data", inv},
	} {
		out, code := run(args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, out)
		}
		for _, w := range []string{"no terminal to ask on", "pass --yes", "nothing was changed"} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out)
			}
		}
	}
	// --yes typed after the inventory is not read: refused as usage,
	// not taken for a missing --yes.
	out, code := run("destroy", inv, "--yes")
	if code != 2 || !strings.Contains(out, "--yes comes after the inventory; put flags before it") {
		t.Errorf("flag after the inventory: exit %d\n%s", code, out)
	}
}

func TestConfirm(t *testing.T) {
	tests := []struct {
		answer string
		want   bool
	}{
		{"yes\n", true},
		{"  yes \n", true},
		{"prod-cluster\n", true},
		{"prod-cluster", true}, // no newline before the end of input
		{"y\n", false},
		{"YES\n", false},
		{"no\n", false},
		{"\n", false},
		{"", false},
		{"prod\n", false},
	}
	for _, tc := range tests {
		var out strings.Builder
		if got := confirm(context.Background(), strings.NewReader(tc.answer), &out, "prod-cluster", 3); got != tc.want {
			t.Errorf("answer %q: confirmed %v, want %v", tc.answer, got, tc.want)
		}
		if !strings.Contains(out.String(), "Destroy cluster prod-cluster on 3 host(s) as shown? Type yes or the cluster name") {
			t.Errorf("prompt %q", out.String())
		}
	}
	// Ctrl-C while it waits: a no, at once, though no line ever comes.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	if confirm(ctx, pr, io.Discard, "prod-cluster", 3) {
		t.Error("an interrupt confirmed the destroy")
	}
}

// "nothing was changed on any host" is said once, whoever said it first.
func TestNothingChangedSaidOnce(t *testing.T) {
	for _, err := range []error{
		errors.New("host h1: locked by another run: ops@x pid 1\nnothing was changed on any host"),
		errors.New("host h1: gather facts: connection lost"),
	} {
		if got := nothingChanged(err).Error(); strings.Count(got, "nothing was changed on any host") != 1 || !strings.HasPrefix(got, err.Error()[:10]) {
			t.Errorf("nothingChanged(%q) = %q", err, got)
		}
	}
}
