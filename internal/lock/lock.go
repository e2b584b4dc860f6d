// Package lock keeps two runs of natsdeploy from changing the same hosts at
// once. The lock is a small file on each host that says who holds it and
// until when: it expires by itself, and a holder on this machine whose
// process is gone (Ctrl-C, kill -9) is recognised as stale at once.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Path of the lock file on every host.
var Path = path.Join(facts.StateDir, "lock")

// TTL bounds how long a lock from a vanished machine blocks others.
const TTL = 30 * time.Minute

// Execer runs a command as root on a host and returns its stdout.
type Execer interface {
	Exec(ctx context.Context, cmd string) (string, error)
}

// Holder identifies a run.
type Holder struct {
	Machine string // control machine host name
	User    string
	PID     int
	Since   time.Time
	Expires time.Time
}

func (h Holder) String() string {
	return fmt.Sprintf("%s@%s pid %d since %s (expires %s)", h.User, h.Machine, h.PID, h.Since.UTC().Format(time.RFC3339), h.Expires.UTC().Format(time.RFC3339))
}

func (h Holder) encode() string {
	return fmt.Sprintf("machine=%s\nuser=%s\npid=%d\nsince=%d\nexpires=%d\n", h.Machine, h.User, h.PID, h.Since.Unix(), h.Expires.Unix())
}

func decode(s string) Holder {
	var h Holder
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "machine":
			h.Machine = v
		case "user":
			h.User = v
		case "pid":
			h.PID = int(n)
		case "since":
			h.Since = time.Unix(n, 0)
		case "expires":
			h.Expires = time.Unix(n, 0)
		}
	}
	return h
}

// Me describes this process.
func Me(now time.Time) Holder {
	machine, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = strconv.Itoa(os.Getuid())
	}
	return Holder{Machine: machine, User: user, PID: os.Getpid(), Since: now, Expires: now.Add(TTL)}
}

// ErrHeld is returned when another live run holds the lock.
var ErrHeld = errors.New("locked by another run")

// stale reports whether h can be taken over.
func stale(h Holder, me Holder, now time.Time) bool {
	if h.PID == 0 || now.After(h.Expires) {
		return true
	}
	if h.Machine == me.Machine && h.PID != me.PID {
		// Signal 0 checks existence only; ESRCH means the holder is gone.
		err := syscall.Kill(h.PID, 0)
		return errors.Is(err, syscall.ESRCH)
	}
	return false
}

// Acquire takes the lock on one host. Creation is atomic (noclobber), so of
// two runs racing for a free lock exactly one wins.
func Acquire(ctx context.Context, host string, e Execer, me Holder) error {
	for attempt := 0; attempt < 2; attempt++ {
		cmd := fmt.Sprintf("mkdir -p -m 0700 %s && (set -C; printf %%s %s > %s) 2>/dev/null || { echo HELD; cat %s; }",
			shell.Quote(path.Dir(Path)), shell.Quote(me.encode()), shell.Quote(Path), shell.Quote(Path))
		out, err := e.Exec(ctx, cmd)
		if err != nil {
			return fmt.Errorf("host %s: take lock %s: %w", host, Path, err)
		}
		if !strings.HasPrefix(out, "HELD") {
			return nil
		}
		h := decode(strings.TrimPrefix(out, "HELD\n"))
		if !stale(h, me, time.Now()) {
			return fmt.Errorf("host %s: %w: %s holds %s; wait for it to finish, or if that run is gone, remove the file (it expires by itself at %s)",
				host, ErrHeld, h, Path, h.Expires.UTC().Format(time.RFC3339))
		}
		// Remove only the exact stale lock we read, so a lock a third run
		// took in between is left alone.
		rm := fmt.Sprintf("grep -qxF %s %s && grep -qxF %s %s && rm -f %s; true",
			shell.Quote(fmt.Sprintf("pid=%d", h.PID)), shell.Quote(Path), shell.Quote(fmt.Sprintf("since=%d", h.Since.Unix())), shell.Quote(Path), shell.Quote(Path))
		if _, err := e.Exec(ctx, rm); err != nil {
			return fmt.Errorf("host %s: remove stale lock: %w", host, err)
		}
	}
	return fmt.Errorf("host %s: could not take lock %s", host, Path)
}

// Release drops the lock if this run still holds it.
func Release(ctx context.Context, host string, e Execer, me Holder) error {
	cmd := fmt.Sprintf("if grep -qxF %s %s && grep -qxF %s %s; then rm -f %s; fi",
		shell.Quote(fmt.Sprintf("pid=%d", me.PID)), shell.Quote(Path), shell.Quote("machine="+me.Machine), shell.Quote(Path), shell.Quote(Path))
	if _, err := e.Exec(ctx, cmd); err != nil {
		return fmt.Errorf("host %s: release lock: %w", host, err)
	}
	return nil
}
