package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
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
	os.MkdirAll(filepath.Join(dir, "artifacts"), 0o755)
	p := filepath.Join(dir, "inv.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
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
