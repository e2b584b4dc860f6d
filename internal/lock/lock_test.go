package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// Read names the holder; Remove takes away only the exact lock read, so a
// lock another run took since is left alone.
func TestReadAndRemove(t *testing.T) {
	Path = filepath.Join(t.TempDir(), "state", "lock")
	ctx := context.Background()
	if _, ok, err := Read(ctx, "h1", local{}); ok || err != nil {
		t.Fatalf("Read with no lock = %v, %v", ok, err)
	}
	me := Me(time.Now())
	if err := Acquire(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	h, ok, err := Read(ctx, "h1", local{})
	if err != nil || !ok || h.PID != me.PID || h.Machine != me.Machine || h.User != me.User || h.Since.Unix() != me.Since.Unix() || h.Expires.Unix() != me.Expires.Unix() {
		t.Fatalf("Read = %+v, %v, %v; want %+v", h, ok, err, me)
	}
	for name, other := range map[string]Holder{
		"another start": {Machine: h.Machine, PID: h.PID, Since: h.Since.Add(time.Second)},
		"another pid":   {Machine: h.Machine, PID: h.PID + 1, Since: h.Since},
		"another host":  {Machine: h.Machine + "-x", PID: h.PID, Since: h.Since},
	} {
		if removed, err := Remove(ctx, "h1", local{}, other); removed || err != nil {
			t.Errorf("Remove of %s = %v, %v; want the lock left", name, removed, err)
		}
	}
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("lock gone after removes that should not match: %v", err)
	}
	if removed, err := Remove(ctx, "h1", local{}, h); !removed || err != nil {
		t.Fatalf("Remove of the lock read = %v, %v", removed, err)
	}
	if _, ok, _ := Read(ctx, "h1", local{}); ok {
		t.Fatal("lock still there after Remove")
	}
}

func TestLiveHere(t *testing.T) {
	me := Me(time.Now())
	live := os.Getppid() // the go tool, running as long as this test
	for _, tc := range []struct {
		name string
		h    Holder
		want bool
	}{
		{"live process here", Holder{Machine: me.Machine, PID: live}, true},
		{"gone process here", Holder{Machine: me.Machine, PID: deadPID(t)}, false},
		{"another machine", Holder{Machine: me.Machine + "-elsewhere", PID: live}, false},
		{"this very process", Holder{Machine: me.Machine, PID: me.PID}, false},
		{"no pid", Holder{Machine: me.Machine}, false},
	} {
		if got := LiveHere(tc.h, me); got != tc.want {
			t.Errorf("%s: LiveHere = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Refresh moves the expiry of the caller's own lock, keeping who and
// since, and touches nothing that is not its own any more.
func TestRefresh(t *testing.T) {
	Path = filepath.Join(t.TempDir(), "state", "lock")
	ctx := context.Background()
	me := Me(time.Now())
	if err := Acquire(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	later := me
	later.Expires = me.Expires.Add(time.Hour)
	if err := Refresh(ctx, "h1", local{}, later); err != nil {
		t.Fatal(err)
	}
	h, _, _ := Read(ctx, "h1", local{})
	if h.Expires.Unix() != later.Expires.Unix() || h.Since.Unix() != me.Since.Unix() || h.PID != me.PID {
		t.Fatalf("after Refresh the lock is %+v, want %+v", h, later)
	}
	if leftovers, _ := filepath.Glob(Path + ".*"); len(leftovers) != 0 {
		t.Errorf("refresh left %v", leftovers)
	}

	other := later
	other.PID++
	other.Expires = later.Expires.Add(time.Hour)
	if err := Refresh(ctx, "h1", local{}, other); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "host h1") {
		t.Errorf("Refresh of another's lock = %v, want ErrLost naming the host", err)
	}
	if h, _, _ := Read(ctx, "h1", local{}); h.Expires.Unix() != later.Expires.Unix() {
		t.Errorf("another's refresh changed the lock: %+v", h)
	}

	if err := Release(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	if err := Refresh(ctx, "h1", local{}, later); !errors.Is(err, ErrLost) {
		t.Errorf("Refresh after release = %v, want ErrLost", err)
	}
	if _, ok, _ := Read(ctx, "h1", local{}); ok {
		t.Error("Refresh after release made a lock")
	}
}

// recorder is a host that records every command and answers refreshes
// as a host still holding the lock would, or fails when told to.
type recorder struct {
	name string
	cmds chan<- string
	fail error
}

func (r recorder) Exec(_ context.Context, cmd string) (string, error) {
	r.cmds <- r.name + ": " + cmd
	if r.fail != nil {
		return "", r.fail
	}
	return "refreshed\n", nil
}

// Keep refreshes every host at each tick, with the expiry the clock says
// then, warns about a host it cannot refresh and goes on, and does
// nothing once stopped.
func TestKeep(t *testing.T) {
	cmds := make(chan string, 10)
	tick := make(chan time.Time)
	clock := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	var warned []string
	me := Holder{Machine: "ctl", User: "ops", PID: 4242, Since: clock, Expires: clock.Add(TTL)}
	stop := Keep([]Held{
		{Host: "h1", Conn: recorder{name: "h1", cmds: cmds}},
		{Host: "h2", Conn: recorder{name: "h2", cmds: cmds, fail: errors.New("connection lost")}},
	}, me, tick, func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }, func(host string, err error) {
		mu.Lock()
		defer mu.Unlock()
		warned = append(warned, host+": "+err.Error())
	})

	for round, now := range []time.Time{clock.Add(10 * time.Minute), clock.Add(20 * time.Minute)} {
		mu.Lock()
		clock = now
		mu.Unlock()
		tick <- now
		want := fmt.Sprintf("expires=%d", now.Add(TTL).Unix())
		for _, host := range []string{"h1", "h2"} {
			select {
			case c := <-cmds:
				if !strings.HasPrefix(c, host+": ") || !strings.Contains(c, want) || !strings.Contains(c, fmt.Sprintf("since=%d", me.Since.Unix())) {
					t.Errorf("round %d: command %q, want %s's refresh to %s keeping since", round, c, host, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: no refresh of %s", round, host)
			}
		}
	}
	stop()
	mu.Lock()
	if len(warned) != 2 || !strings.HasPrefix(warned[0], "h2: host h2: refresh lock") || !strings.Contains(warned[0], "connection lost") {
		t.Errorf("warnings %q, want one per round about h2", warned)
	}
	mu.Unlock()
	select {
	case tick <- time.Now():
		t.Error("still refreshing after stop")
	default:
	}
	select {
	case c := <-cmds:
		t.Errorf("command after stop: %q", c)
	default:
	}
}

// Check reads a lock file's content as Acquire would: free, expired and
// a dead process of this machine let the run go on; a live holder is
// refused with the same message.
func TestCheck(t *testing.T) {
	now := time.Now()
	me := Holder{Machine: "here", User: "me", PID: 1000, Since: now, Expires: now.Add(TTL)}
	live := Holder{Machine: "elsewhere", User: "ops", PID: 42, Since: now, Expires: now.Add(time.Hour)}
	expired := live
	expired.Expires = now.Add(-time.Second)
	dead := Holder{Machine: "here", User: "me", PID: deadPID(t), Since: now, Expires: now.Add(time.Hour)}
	for _, tc := range []struct {
		name, content string
		held          bool
	}{
		{"none", "", false},
		{"live elsewhere", live.encode(), true},
		{"expired", expired.encode(), false},
		{"dead here", dead.encode(), false},
		{"garbage", "nonsense\n", false},
	} {
		err := Check("h1", tc.content, me)
		if got := errors.Is(err, ErrHeld); got != tc.held {
			t.Errorf("%s: Check = %v, want held %v", tc.name, err, tc.held)
		}
		if tc.held && !strings.Contains(err.Error(), "host h1: locked by another run: ops@elsewhere pid 42") {
			t.Errorf("%s: message %q", tc.name, err)
		}
	}
}

// AcquireThen runs its command only once the lock is taken, in the same
// command, and hands back what it printed; a failing command still
// leaves the lock taken, for the caller to release.
func TestAcquireThen(t *testing.T) {
	Path = filepath.Join(t.TempDir(), "state", "lock")
	ctx := context.Background()
	me := Me(time.Now())
	ran := filepath.Join(t.TempDir(), "ran")
	out, took, err := AcquireThen(ctx, "h1", local{}, me, "touch "+ran+"\necho facts; echo more")
	if err != nil || !took || out != "facts\nmore\n" {
		t.Fatalf("AcquireThen = %q, %v, %v; want the command's output, taken", out, took, err)
	}
	if b, err := os.ReadFile(Path); err != nil || decode(string(b)).PID != me.PID {
		t.Fatalf("lock file after AcquireThen: %q, %v", b, err)
	}

	// Held by another live run: refused, and the command does not run.
	os.Remove(ran)
	other := me
	other.Machine, other.PID = "ops-laptop", 4242
	out, took, err = AcquireThen(ctx, "h1", local{}, other, "touch "+ran)
	if !errors.Is(err, ErrHeld) || took || out != "" {
		t.Fatalf("AcquireThen on a held lock = %q, %v, %v; want ErrHeld", out, took, err)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Error("the command ran without the lock")
	}
	if err := Release(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}

	out, took, err = AcquireThen(ctx, "h1", local{}, me, "echo partial; exit 3")
	if err == nil || !took || out != "partial\n" {
		t.Fatalf("AcquireThen with a failing command = %q, %v, %v; want its error, taken", out, took, err)
	}
}

// restale is a host where a stale lock is back each time it is removed
// (runs that keep dying): it counts the attempts to take it.
type restale struct {
	stale string
	takes *int
}

func (r restale) Exec(_ context.Context, cmd string) (string, error) {
	if strings.Contains(cmd, "set -C") {
		*r.takes++
		return "HELD\n" + r.stale, nil
	}
	return "removed\n", nil
}

// Taking over a stale lock is tried twice, not forever: a lock that is
// stale again after its removal is reported.
func TestStaleLockThatKeepsComingBack(t *testing.T) {
	me := Me(time.Now())
	dead := me
	dead.PID = deadPID(t)
	takes := 0
	_, took, err := AcquireThen(context.Background(), "h1", restale{stale: dead.encode(), takes: &takes}, me, "echo facts")
	if err == nil || took || !strings.Contains(err.Error(), "host h1: could not take lock") {
		t.Fatalf("AcquireThen = %v, %v; want could not take lock", took, err)
	}
	if takes != 2 {
		t.Errorf("tried %d times, want 2", takes)
	}
}

// IfNewThen takes the lock only on a host without a state directory,
// creating it; on any other host it only runs its command. ReleaseNew
// takes the directory away again unless the run left something in it.
func TestIfNewThen(t *testing.T) {
	Path = filepath.Join(t.TempDir(), "state", "lock")
	dir := filepath.Dir(Path)
	ctx := context.Background()
	me := Me(time.Now())
	other := me
	other.Machine, other.PID = "ops-laptop", 4242
	run := func(h Holder) (string, bool) {
		t.Helper()
		out, err := local{}.Exec(ctx, IfNewThen(h, "echo facts"))
		if err != nil {
			t.Fatalf("IfNewThen: %v", err)
		}
		return TookNew(out)
	}

	if out, took := run(me); !took || out != "facts\n" {
		t.Fatalf("new host: %q, took %v; want the facts, taken", out, took)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi, err)
	}
	if b, err := os.ReadFile(Path); err != nil || decode(string(b)).PID != me.PID {
		t.Fatalf("lock file: %q, %v", b, err)
	}
	// The directory exists now: a second run only reads, and the lock
	// stays the first run's.
	if out, took := run(other); took || out != "facts\n" {
		t.Fatalf("host with a state dir: %q, took %v; want the facts, not taken", out, took)
	}
	if b, _ := os.ReadFile(Path); decode(string(b)).PID != me.PID {
		t.Fatalf("lock overwritten: %q", b)
	}
	// Released by another run: nothing happens.
	if err := ReleaseNew(ctx, "h1", local{}, other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("lock removed by non-holder: %v", err)
	}
	if err := ReleaseNew(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("empty state dir kept after ReleaseNew: %v", err)
	}

	// A run that left state behind keeps the directory; one that finds
	// the directory without a lock takes none.
	if _, took := run(me); !took {
		t.Fatal("not taken on a new host")
	}
	sums := filepath.Join(dir, "sums")
	if err := os.WriteFile(sums, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ReleaseNew(ctx, "h1", local{}, me); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path); !os.IsNotExist(err) {
		t.Fatalf("lock kept: %v", err)
	}
	if _, err := os.Stat(sums); err != nil {
		t.Fatalf("the run's state was removed: %v", err)
	}
	if _, took := run(me); took {
		t.Fatal("lock taken on a host that has its state dir")
	}
	if _, err := os.Stat(Path); !os.IsNotExist(err) {
		t.Fatalf("lock written on a host that has its state dir: %v", err)
	}
}
