package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runOut runs the CLI with stdout and stderr apart.
func runOut(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	app := newApp(&out)
	app.ErrWriter = &errOut
	err = app.RunContext(context.Background(), append([]string{"natsdeploy"}, args...))
	return out.String(), errOut.String(), err
}

// With --json, stdout is JSON lines and nothing else, even when no host
// can be reached: an event per host saying why, then the summary, last,
// failed; and a password of the inventory is nowhere in it.
func TestJSONOutputUnreachable(t *testing.T) {
	const secret = "Zq8-unique-Secret-47x"
	inv := offlineLab(t)
	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "name = \"admin\"\n", "name = \"admin\"\n  password = \""+secret+"\"\n", 1)
	if !strings.Contains(text, secret) {
		t.Fatal("the password did not go into the inventory")
	}
	if err := os.WriteFile(inv, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"plan", "--json", inv},
		{"apply", "--json", inv},
		{"restart", "--json", inv},
		{"destroy", "--json", "--yes", inv},
	} {
		t.Run(args[0], func(t *testing.T) {
			stdout, stderr, err := runOut(args...)
			if err == nil || exitCode(err) != 1 {
				t.Fatalf("exit %v, want 1 (no host reachable)", err)
			}
			if strings.Contains(stdout+stderr+err.Error(), secret) {
				t.Errorf("the password is in the output")
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			failed := map[string]bool{}
			for i, l := range lines {
				var e struct {
					Time  string `json:"time"`
					Host  string `json:"host"`
					Phase string `json:"phase"`
					Event string `json:"event"`
				}
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("stdout line %d is not JSON (%v): %q", i+1, err, l)
				}
				if e.Time == "" || e.Event == "" {
					t.Errorf("line %d lacks time or event: %s", i+1, l)
				}
				if e.Phase == "connect" && e.Event == "fail" {
					failed[e.Host] = true
				}
			}
			if len(failed) != 3 {
				t.Errorf("connect failures for %v, want nats-1..3:\n%s", failed, stdout)
			}
			var sum struct {
				Event   string `json:"event"`
				Command string `json:"command"`
				OK      bool   `json:"ok"`
				Error   string `json:"error"`
				Hosts   []struct {
					Host   string `json:"host"`
					Status string `json:"status"`
				} `json:"hosts"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Event != "summary" || sum.Command != args[0] || sum.OK || !strings.Contains(sum.Error, "cannot connect to 3 of 3 hosts") || len(sum.Hosts) != 3 {
				t.Errorf("summary: %+v", sum)
			}
			for _, h := range sum.Hosts {
				if h.Status != "failed" {
					t.Errorf("host %s: status %q, want failed", h.Host, h.Status)
				}
			}
		})
	}
}

// Without --json and off a terminal (this test's stdout is a buffer), the
// output stays plain lines: no escape sequence, and the closing summary
// names every host.
func TestPlainOutputUnreachable(t *testing.T) {
	inv := offlineLab(t)
	stdout, _, err := runOut("apply", inv)
	if err == nil {
		t.Fatal("apply succeeded with no host reachable")
	}
	if strings.Contains(stdout, "\x1b[") {
		t.Errorf("escape sequences in plain output: %q", stdout)
	}
	want := "apply summary: FAILED in "
	if !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout does not start with %q:\n%s", want, stdout)
	}
	for _, h := range []string{"nats-1", "nats-2", "nats-3"} {
		if !strings.Contains(stdout, "  "+h+"  FAILED") {
			t.Errorf("no summary line for %s:\n%s", h, stdout)
		}
	}
}

// The live view is chosen for a terminal unless TERM=dumb; NO_COLOR keeps
// it but without colour.
func TestViewModeFromEnvironment(t *testing.T) {
	inv := offlineLab(t)
	for _, tc := range []struct {
		name       string
		env        map[string]string
		terminal   bool
		wantColour bool
	}{
		{"pipe", map[string]string{"TERM": "xterm"}, false, false},
		{"terminal", map[string]string{"TERM": "xterm"}, true, true},
		{"terminal NO_COLOR", map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, true, false},
		{"terminal TERM=dumb", map[string]string{"TERM": "dumb"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldEnv, oldTerm := getenv, isTerminal
			defer func() { getenv, isTerminal = oldEnv, oldTerm }()
			getenv = func(k string) string { return tc.env[k] }
			isTerminal = func(io.Writer) bool { return tc.terminal }
			stdout, _, _ := runOut("apply", inv)
			if got := strings.Contains(stdout, "\x1b[3"); got != tc.wantColour {
				t.Errorf("colour = %v, want %v: %q", got, tc.wantColour, stdout)
			}
			// The live view's failed mark; plain output has none.
			plain := regexp.MustCompile(`\x1b\[[0-9;]*m`).ReplaceAllString(stdout, "")
			if got := strings.Contains(plain, "✗ nats-1"); got != (tc.terminal && tc.env["TERM"] != "dumb") {
				t.Errorf("live marks = %v: %q", got, stdout)
			}
			if !strings.Contains(stdout, "apply summary: FAILED") {
				t.Errorf("no summary: %q", stdout)
			}
		})
	}
}
