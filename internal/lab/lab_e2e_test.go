//go:build e2e

package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFaults drives every fault this package offers against the running lab
// (make lab-up) and checks the host comes back each time with the same host
// key. It leaves the lab as it found it, then resets it.
func TestFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Ready(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := Locate()
	if err != nil {
		t.Fatal(err)
	}
	h := Hosts()[2]
	t.Cleanup(func() {
		ctx := context.Background()
		_ = Unpause(ctx, h.Container)
		_ = Connect(ctx, h.Container)
		_ = Start(ctx, h.Container)
	})
	knownBefore, err := os.ReadFile(p.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}

	out, err := Exec(ctx, h.Name, "hostname")
	if err != nil || strings.TrimSpace(out) != h.Name {
		t.Fatalf("Exec hostname = %q, %v", out, err)
	}
	if _, err := Exec(ctx, h.Name, "sh", "-c", "echo oops >&2; exit 3"); err == nil {
		t.Fatal("Exec of a failing command: no error")
	} else if ce, ok := err.(*CommandError); !ok || ce.ExitCode() != 3 || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("Exec error = %#v (%v), want exit 3 carrying stderr", err, err)
	}
	if st, err := SystemState(ctx, h.Container); err != nil || (st != "running" && st != "degraded") {
		t.Fatalf("SystemState = %q, %v", st, err)
	}

	step := func(name string, fault func(context.Context, string) error, down func(State) bool, back func(context.Context, string) error) {
		t.Helper()
		start := time.Now()
		if err := fault(ctx, h.Container); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := fault(ctx, h.Container); err != nil && name != "Pause" {
			t.Fatalf("%s twice: %v", name, err)
		}
		st, err := Inspect(ctx, h.Container)
		if err != nil || !down(st) {
			t.Fatalf("%s: state %+v, %v", name, st, err)
		}
		if err := Ready(ctx); err == nil {
			t.Fatalf("%s: Ready says the lab is fine", name)
		}
		if err := back(ctx, h.Container); err != nil {
			t.Fatalf("after %s: %v", name, err)
		}
		if err := Ready(ctx); err != nil {
			t.Fatalf("after %s: %v", name, err)
		}
		t.Logf("%s and back: %v", name, time.Since(start).Round(time.Millisecond))
	}
	step("Disconnect", Disconnect, func(s State) bool { return s.Running && !s.Connected }, Connect)
	step("Stop", Stop, func(s State) bool { return !s.Running }, Start)
	step("Kill", Kill, func(s State) bool { return !s.Running }, Start)
	step("Pause", Pause, func(s State) bool { return s.Paused }, Unpause)

	if err := WriteKnownHosts(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(p.KnownHosts); string(after) != string(knownBefore) {
		t.Fatalf("host keys changed across faults:\n%s\nvs\n%s", knownBefore, after)
	}

	start := time.Now()
	if err := Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Reset: %v", time.Since(start).Round(time.Millisecond))
	if err := Ready(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(p.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) == string(knownBefore) || len(strings.Split(strings.TrimSpace(string(after)), "\n")) != 3 {
		t.Fatalf("known_hosts after Reset:\n%s", after)
	}
}
