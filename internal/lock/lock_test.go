package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// local runs commands with this machine's /bin/sh, standing in for a host.
type local struct{}

func (local) Exec(ctx context.Context, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
	return string(out), err
}

func TestAcquireRelease(t *testing.T) {
	Path = filepath.Join(t.TempDir(), "state", "lock")
	ctx := context.Background()
	now := time.Now()
	me := Me(now)
	if err := Acquire(ctx, "h1", local{}, me); err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	if fi, err := os.Stat(filepath.Dir(Path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi, err)
	}

	// Another live run on another machine is refused and named.
	other := me
	other.Machine, other.PID = "ops-laptop", 4242
	err := Acquire(ctx, "h1", local{}, other)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), me.Machine) || !strings.Contains(err.Error(), "expires") {
		t.Fatalf("second acquire error = %v", err)
	}
	// Release by a run that does not hold it leaves the lock.
	if err := Release(ctx, "h1", local{}, other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("lock removed by non-holder: %v", err)
	}
	if err := Release(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path); !os.IsNotExist(err) {
		t.Fatalf("lock still there after release: %v", err)
	}
}

func TestStaleLocksAreTakenOver(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	me := Me(now)
	cases := map[string]Holder{
		"expired": {Machine: "elsewhere", User: "x", PID: 99, Since: now.Add(-2 * TTL), Expires: now.Add(-TTL)},
		// A process of this machine that no longer exists (killed run).
		"dead pid here": {Machine: me.Machine, User: "x", PID: deadPID(t), Since: now, Expires: now.Add(TTL)},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			Path = filepath.Join(t.TempDir(), "lock")
			if err := os.WriteFile(Path, []byte(h.encode()), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Acquire(ctx, "h1", local{}, me); err != nil {
				t.Fatalf("acquire over stale lock: %v", err)
			}
			b, _ := os.ReadFile(Path)
			if decode(string(b)).PID != me.PID {
				t.Fatalf("lock now holds %q", b)
			}
		})
	}
}

func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
