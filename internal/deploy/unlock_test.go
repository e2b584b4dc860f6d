package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/lock"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// lockedHost answers lock.Read and lock.Remove as a host whose lock file
// holds content ("" for none) would; taken says another run took the lock
// between the read and the remove.
type lockedHost struct {
	mu      sync.Mutex
	content string
	taken   bool
	cmds    []string
}

func (h *lockedHost) Exec(_ context.Context, cmd string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, cmd)
	switch {
	case strings.Contains(cmd, "echo LOCKED"):
		if h.content == "" {
			return "", nil
		}
		return "LOCKED\n" + h.content, nil
	case strings.Contains(cmd, "echo removed"):
		if h.taken || h.content == "" {
			return "", nil
		}
		h.content = ""
		return "removed\n", nil
	}
	return "", fmt.Errorf("unexpected command %q", cmd)
}

func (h *lockedHost) Upload(context.Context, io.Reader, string, os.FileMode, string, string) error {
	return errors.New("unlock uploads nothing")
}

func (h *lockedHost) HTTPClient() *http.Client { return nil }

func lockFile(machine string, pid int) string {
	now := time.Unix(1_700_000_000, 0)
	return fmt.Sprintf("machine=%s\nuser=ops\npid=%d\nsince=%d\nexpires=%d\n", machine, pid, now.Unix(), now.Add(lock.TTL).Unix())
}

func TestClearLocks(t *testing.T) {
	here, _ := os.Hostname()
	live := os.Getppid() // the go tool, running as long as this test
	tests := []struct {
		name    string
		content string
		taken   bool
		force   bool
		removed bool
		done    bool
		says    []string
	}{
		{name: "no lock", done: true, says: []string{"h1: not locked"}},
		{name: "another machine's lock", content: lockFile("ops-laptop", 4242), removed: true, done: true,
			says: []string{"h1: removed the lock of ops@ops-laptop pid 4242 since 2023-11-14T22:13:20Z"}},
		{name: "a dead process of this machine", content: lockFile(here, deadPID(t)), removed: true, done: true, says: []string{"removed the lock of"}},
		{name: "a live process of this machine", content: lockFile(here, live),
			says: []string{"NOT removed: that process still runs on this machine", fmt.Sprintf("pid %d", live), "--force"}},
		{name: "a live process of this machine, forced", content: lockFile(here, live), force: true, removed: true, done: true,
			says: []string{"removed the lock of", "although that process still runs on this machine (--force)"}},
		{name: "taken by another run meanwhile", content: lockFile("ops-laptop", 4242), taken: true,
			says: []string{"NOT removed: it changed while we looked"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h1 := &lockedHost{content: tc.content, taken: tc.taken}
			inv := &inventory.Inventory{Hosts: []inventory.Host{{Name: "h1"}, {Name: "h2"}}}
			s := New(inv, nil, nil, map[string]apply.Conn{"h1": h1}, io.Discard)
			s.Unreachable = map[string]error{"h2": errors.New("host h2: cannot reach 192.0.2.2:22: i/o timeout")}
			got := s.ClearLocks(context.Background(), tc.force)
			if len(got) != 2 {
				t.Fatalf("%d results, want one per host", len(got))
			}
			c := got[0]
			if c.Removed != tc.removed || c.Done() != tc.done {
				t.Errorf("removed %v done %v, want %v %v: %s", c.Removed, c.Done(), tc.removed, tc.done, c)
			}
			for _, w := range tc.says {
				if !strings.Contains(c.String(), w) {
					t.Errorf("%q does not say %q", c.String(), w)
				}
			}
			if (h1.content == "") != (tc.content == "" || tc.removed) {
				t.Errorf("lock file now %q", h1.content)
			}
			if !tc.removed && tc.content != "" && strings.Contains(strings.Join(h1.cmds, "\n"), "echo removed") && !tc.taken {
				t.Errorf("a remove was sent for a lock that must stay: %q", h1.cmds)
			}
			if got[1].Done() || !strings.Contains(got[1].String(), "h2: cannot connect: host h2: cannot reach") {
				t.Errorf("unreached host: %s", got[1])
			}
		})
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
