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
var Path = facts.LockFile

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
		return !running(h.PID)
	}
	return false
}

// running reports whether process pid exists on this machine. Signal 0
// checks existence only; ESRCH means it is gone (EPERM: it runs as
// someone else).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// LiveHere reports whether h is held by a process of this machine that
// still runs: most likely an apply in progress (it refreshes its lock), or
// one stuck. Clearing its lock would let another run change the hosts
// under it.
func LiveHere(h, me Holder) bool {
	return h.PID > 0 && h.Machine == me.Machine && h.PID != me.PID && running(h.PID)
}

// Acquire takes the lock on one host. Creation is atomic (noclobber), so of
// two runs racing for a free lock exactly one wins.
func Acquire(ctx context.Context, host string, e Execer, me Holder) error {
	_, _, err := AcquireThen(ctx, host, e, me, "")
	return err
}

// AcquireThen is Acquire that also runs then, in the same command, once
// the lock is taken, and returns what it printed: reading the facts under
// the lock costs no round trip of its own. took reports that the lock was
// taken, also when then failed (the caller releases it).
func AcquireThen(ctx context.Context, host string, e Execer, me Holder, then string) (out string, took bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		cmd := fmt.Sprintf("if ! { mkdir -p -m 0700 %s && (set -C; printf %%s %s > %s) 2>/dev/null; }; then echo HELD; cat %s; exit 0; fi\necho %s\n%s",
			shell.Quote(path.Dir(Path)), shell.Quote(me.encode()), shell.Quote(Path), shell.Quote(Path), taken, then)
		out, err := e.Exec(ctx, cmd)
		if rest, ok := strings.CutPrefix(out, taken+"\n"); ok {
			return rest, true, err // then's own error: its caller says what it was
		}
		if err != nil {
			return "", false, fmt.Errorf("host %s: take lock %s: %w", host, Path, err)
		}
		if !strings.HasPrefix(out, "HELD") {
			return "", false, fmt.Errorf("host %s: take lock %s: unexpected answer %q", host, Path, out)
		}
		h := decode(strings.TrimPrefix(out, "HELD\n"))
		if !stale(h, me, time.Now()) {
			return "", false, heldErr(host, h)
		}
		// Remove only the exact stale lock we read, so a lock a third run
		// took in between is left alone.
		if _, err := Remove(ctx, host, e, h); err != nil {
			return "", false, fmt.Errorf("host %s: remove stale lock: %w", host, err)
		}
	}
	return "", false, fmt.Errorf("host %s: could not take lock %s", host, Path)
}

// taken is the line AcquireThen's command prints once it holds the lock.
const taken = "LOCKED"

// IfNewThen is the command that runs then and, before it, takes the lock
// if the host has no state directory yet: the directory is created by
// this very command (mkdir without -p, so of two runs racing for a new
// host exactly one creates it), so no other run can hold a lock in it,
// and a host natsdeploy never touched always has something to change.
// A fresh apply so reads its facts under the lock in its first command,
// one round trip fewer than taking the lock after the facts. A host that
// has the directory is only read; see AcquireThen for taking its lock.
func IfNewThen(me Holder, then string) string {
	dir := path.Dir(Path)
	return fmt.Sprintf("if mkdir -m 0700 %s 2>/dev/null && (set -C; printf %%s %s > %s) 2>/dev/null; then echo %s; fi\n%s",
		shell.Quote(dir), shell.Quote(me.encode()), shell.Quote(Path), taken, then)
}

// TookNew splits what an IfNewThen command printed into then's output
// and whether it took the lock (and created the state directory: the
// caller releases it with ReleaseNew).
func TookNew(out string) (rest string, took bool) {
	if rest, ok := strings.CutPrefix(out, taken+"\n"); ok {
		return rest, true
	}
	return out, false
}

func heldErr(host string, h Holder) error {
	return fmt.Errorf("host %s: %w: %s holds %s; wait for it to finish, or if that run is gone, remove the file (it expires by itself at %s)",
		host, ErrHeld, h, Path, h.Expires.UTC().Format(time.RFC3339))
}

// Check tells, from the lock file's content as read (facts.Host.Lock;
// "" for none), whether me could take the lock on host: nil when it is
// free or stale, the error Acquire would give when another live run
// holds it.
func Check(host, content string, me Holder) error {
	if content == "" {
		return nil
	}
	if h := decode(content); !stale(h, me, time.Now()) {
		return heldErr(host, h)
	}
	return nil
}

// Release drops the lock if this run still holds it.
func Release(ctx context.Context, host string, e Execer, me Holder) error {
	return release(ctx, host, e, me, "")
}

// ReleaseNew is Release for a lock IfNewThen took: it also removes the
// state directory that command created if the run left nothing in it,
// so a run stopped before any change leaves the host as it found it.
func ReleaseNew(ctx context.Context, host string, e Execer, me Holder) error {
	return release(ctx, host, e, me, " && { rmdir "+shell.Quote(path.Dir(Path))+" 2>/dev/null || true; }")
}

func release(ctx context.Context, host string, e Execer, me Holder, after string) error {
	cmd := fmt.Sprintf("if grep -qxF %s %s && grep -qxF %s %s; then rm -f %s%s; fi",
		shell.Quote(fmt.Sprintf("pid=%d", me.PID)), shell.Quote(Path), shell.Quote("machine="+me.Machine), shell.Quote(Path), shell.Quote(Path), after)
	if _, err := e.Exec(ctx, cmd); err != nil {
		return fmt.Errorf("host %s: release lock: %w", host, err)
	}
	return nil
}

// held is a shell condition: the lock file is h's (same machine, pid and
// start), not another's taken since.
func held(h Holder) string {
	q := shell.Quote(Path)
	return fmt.Sprintf("grep -qxF %s %s && grep -qxF %s %s && grep -qxF %s %s",
		shell.Quote("machine="+h.Machine), q, shell.Quote(fmt.Sprintf("pid=%d", h.PID)), q, shell.Quote(fmt.Sprintf("since=%d", h.Since.Unix())), q)
}

// Read returns the holder of the lock on host, and whether there is one.
func Read(ctx context.Context, host string, e Execer) (Holder, bool, error) {
	q := shell.Quote(Path)
	out, err := e.Exec(ctx, fmt.Sprintf("if [ -f %s ]; then echo LOCKED; cat %s; fi", q, q))
	if err != nil {
		return Holder{}, false, fmt.Errorf("host %s: read lock %s: %w", host, Path, err)
	}
	rest, ok := strings.CutPrefix(out, "LOCKED\n")
	if !ok {
		return Holder{}, false, nil
	}
	return decode(rest), true, nil
}

// Remove deletes the lock on host if it is still exactly h's, so a lock
// another run took in between is left alone; it reports whether it did.
func Remove(ctx context.Context, host string, e Execer, h Holder) (bool, error) {
	out, err := e.Exec(ctx, fmt.Sprintf("if %s; then rm -f %s && echo removed; fi", held(h), shell.Quote(Path)))
	if err != nil {
		return false, fmt.Errorf("host %s: remove lock %s: %w", host, Path, err)
	}
	return strings.TrimSpace(out) == "removed", nil
}

// ErrLost is returned by Refresh when the lock is no longer the caller's:
// it expired and another run took it over, or someone cleared it.
var ErrLost = errors.New("lock lost")

// Refresh rewrites the lock me holds on host with me.Expires, so a run
// longer than TTL keeps it. It writes nothing unless the lock is still
// me's (ErrLost otherwise), and replaces the file by a rename, so a reader
// never sees half a lock.
func Refresh(ctx context.Context, host string, e Execer, me Holder) error {
	tmp := shell.Quote(fmt.Sprintf("%s.%d", Path, me.PID))
	cmd := fmt.Sprintf("if %s; then printf %%s %s > %s && mv -f %s %s && echo refreshed; fi",
		held(me), shell.Quote(me.encode()), tmp, tmp, shell.Quote(Path))
	out, err := e.Exec(ctx, cmd)
	if err != nil {
		return fmt.Errorf("host %s: refresh lock %s: %w", host, Path, err)
	}
	if strings.TrimSpace(out) != "refreshed" {
		return fmt.Errorf("host %s: %w: %s is no longer this run's (it expired and another run took it, or it was cleared); another run may change this host now", host, ErrLost, Path)
	}
	return nil
}

// Held is one host whose lock a run holds.
type Held struct {
	Host string
	Conn Execer
}

// RefreshTimeout bounds one refresh command.
const RefreshTimeout = 30 * time.Second

// Keep refreshes the lock me holds on every host at each tick, to expire
// TTL after now(), until stop is called; stop returns once no refresh is
// under way. A refresh that fails is passed to warn and tried again at the
// next tick: the run goes on, as the lock only keeps other runs out. The
// caller owns tick (a time.Ticker's channel; a test's own).
func Keep(hosts []Held, me Holder, tick <-chan time.Time, now func() time.Time, warn func(host string, err error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			me.Expires = now().Add(TTL)
			for _, h := range hosts {
				rctx, rcancel := context.WithTimeout(ctx, RefreshTimeout)
				err := Refresh(rctx, h.Host, h.Conn, me)
				rcancel()
				if err != nil && ctx.Err() == nil {
					warn(h.Host, err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
