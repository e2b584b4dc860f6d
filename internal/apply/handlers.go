package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Timeouts for the handlers; a field so tests and slow fleets can change them.
type Timeouts struct {
	Start  time.Duration // a cold start: all hosts of a cluster must find each other
	Health time.Duration // a restarted host to be ready again
	Reload time.Duration // a reload to be confirmed
	// Preflight is how long a restart on demand gives a host that is not
	// ready before refusing: enough to ride out a blip, short enough to
	// report a real problem at once.
	Preflight time.Duration
	// Hold is how long a cluster gate must keep passing after a reload
	// before the cluster counts as settled: members that re-make their
	// links after a reload can drop one again a second or two after all
	// were up (a duplicate resolved, a late refusal of old credentials).
	Hold time.Duration
}

// DefaultTimeouts suit a VM fleet; a cluster that must catch up on a lot
// of data after a restart may need more.
var DefaultTimeouts = Timeouts{Start: 2 * time.Minute, Health: 2 * time.Minute, Reload: 20 * time.Second, Preflight: 10 * time.Second, Hold: 5 * time.Second}

// Logf reports progress for a host.
type Logf func(host, format string, args ...any)

// Handlers runs what the committed changes need, unit by unit, across
// every host that runs it, with the gates each unit's role supplies:
//   - stopped units start together, then wait to be ready together: a
//     clustered service may need most of its members before any is ready, so
//     starting one at a time and waiting would hang; a unit whose file
//     orders it before the next (StartsBefore) starts in the same
//     command as that one;
//   - reloads run in parallel, each confirmed by the unit's reload gate;
//   - restarts roll one host at a time, each only while every other host
//     is ready, each waiting for its own host to be ready and then for
//     the unit's cluster gate; the host the unit's order gate names goes
//     last.
func Handlers(ctx context.Context, targets []Target, to Timeouts, logf Logf) error {
	for _, g := range startGroups(unitsOf(targets)) {
		if err := startStopped(ctx, targets, g, to, logf); err != nil {
			return err
		}
		for _, u := range g {
			if err := reloadAll(ctx, targets, u, to, logf); err != nil {
				return err
			}
			if _, err := rollingRestart(ctx, targets, u, to, logf); err != nil {
				return err
			}
		}
	}
	return nil
}

// startGroups splits units, in order, into the groups one command starts:
// a unit goes with the next when its StartsBefore names that one.
func startGroups(units []desired.Unit) [][]desired.Unit {
	var out [][]desired.Unit
	for i, u := range units {
		if i > 0 && units[i-1].StartsBefore == u.Name {
			out[len(out)-1] = append(out[len(out)-1], u)
			continue
		}
		out = append(out, []desired.Unit{u})
	}
	return out
}

// Restarted is one host's restart of a unit, done by Restart.
type Restarted struct{ Host, Unit string }

// Restart restarts on demand, with apply's own roll, the units each
// target's plan marks Restart, unit by unit, on those targets only. The
// other targets take part as apply's roll has them do: each must be
// ready before a host goes down. Before touching anything it checks that
// every host running one of those units is ready now, and each unit's
// cluster settled; if not, it refuses and names every host in the way.
// It returns the restarts done, in order, also when it fails midway.
func Restart(ctx context.Context, targets []Target, to Timeouts, logf Logf) ([]Restarted, error) {
	var units []desired.Unit
	for _, u := range unitsOf(targets) {
		for _, t := range targets {
			if t.Plan.Handlers[u.Name] == desired.Restart {
				units = append(units, u)
				break
			}
		}
	}
	if len(units) == 0 {
		return nil, errors.New("nothing to restart")
	}
	var problems []string
	for _, u := range units {
		var running []Target
		var hosts []string
		for _, t := range targets {
			if _, ok := unitOf(t, u.Name); ok {
				running = append(running, t)
				hosts = append(hosts, t.Name)
			}
		}
		// All at once: with several hosts down, the refusal comes after
		// one wait, not one per host.
		notReady := make([]string, len(running))
		var wg sync.WaitGroup
		for i, t := range running {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tu, _ := unitOf(t, u.Name)
				if err := health.Poll(ctx, to.Preflight, func() error { return checkReady(ctx, t, tu) }); err != nil {
					notReady[i] = fmt.Sprintf("host %s: %s is not ready: %v", t.Name, u.Name, err)
				}
			}()
		}
		wg.Wait()
		before := len(problems)
		for _, p := range notReady {
			if p != "" {
				problems = append(problems, p)
			}
		}
		if len(problems) > before {
			continue
		}
		if err := waitSettled(ctx, targets, u, to.Preflight); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		logf("", "%s is ready on %s", u.Name, strings.Join(hosts, ", "))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("not restarting anything: taking a host down while another is not ready could stop the cluster:\n  %s\nnothing was restarted; fix that first, then run restart again",
			strings.Join(problems, "\n  "))
	}
	var done []Restarted
	for _, u := range units {
		hosts, err := rollingRestart(ctx, targets, u, to, logf)
		for _, h := range hosts {
			done = append(done, Restarted{Host: h, Unit: u.Name})
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// checkReady asks a unit's ready gate once; a unit without one is ready
// when systemd says it is active.
func checkReady(ctx context.Context, t Target, u desired.Unit) error {
	if u.Ready != nil {
		return u.Ready.Check(ctx, node(t))
	}
	out, err := t.Conn.Exec(ctx, "systemctl is-active "+shell.Quote(u.Name)+" || true")
	if err != nil {
		return err
	}
	if state := strings.TrimSpace(out); state != "active" {
		return fmt.Errorf("systemd says %s", orUnknown(state))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func unitsOf(targets []Target) []desired.Unit {
	seen := map[string]bool{}
	var out []desired.Unit
	for _, t := range targets {
		for _, u := range t.Desired.Units {
			if !seen[u.Name] {
				seen[u.Name] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// UnitNames names the targets' units, each once, in the order unitsOf
// gives.
func UnitNames(targets []Target) []string {
	var out []string
	for _, u := range unitsOf(targets) {
		out = append(out, u.Name)
	}
	return out
}

func unitOf(t Target, name string) (desired.Unit, bool) {
	for _, u := range t.Desired.Units {
		if u.Name == name {
			return u, true
		}
	}
	return desired.Unit{}, false
}

// Each runs fn for every target and joins the errors in target order.
func Each(targets []Target, fn func(Target) error) error {
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(t)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startStopped starts, on every target, the units of group g its plan
// starts, in one command per host, and waits for them to be ready.
func startStopped(ctx context.Context, targets []Target, g []desired.Unit, to Timeouts, logf Logf) error {
	var starting []Target
	names := map[string][]string{}
	for _, t := range targets {
		for _, u := range g {
			if slices.Contains(t.Plan.Start, u.Name) {
				names[t.Name] = append(names[t.Name], u.Name)
			}
		}
		if len(names[t.Name]) > 0 {
			starting = append(starting, t)
		}
	}
	if len(starting) == 0 {
		return nil
	}
	for _, u := range g {
		all := !slices.ContainsFunc(targets, func(t Target) bool { return !slices.Contains(names[t.Name], u.Name) })
		if all && len(targets) > 1 && u.Settled != nil {
			logf("", "starting %s on all %d hosts together (members of a cold cluster may need each other before any is ready)", u.Name, len(targets))
		}
	}
	err := Each(starting, func(t Target) error {
		cmd := "systemctl start"
		for _, n := range names[t.Name] {
			say(t, logf, progress.Event{Phase: progress.Starting, Kind: progress.Start, Unit: n}, "start %s", n)
			cmd += " " + shell.Quote(n)
		}
		if _, err := t.Conn.Exec(ctx, cmd); err != nil {
			// The last is the group's main unit: the others start before it.
			last, _ := unitOf(t, names[t.Name][len(names[t.Name])-1])
			return fmt.Errorf("host %s: start %s: %w%s", t.Name, strings.Join(names[t.Name], " and "), err, diagnose(ctx, t, last))
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = Each(starting, func(t Target) error {
		for _, n := range names[t.Name] {
			tu, _ := unitOf(t, n)
			if err := waitReady(ctx, t, tu, to.Start); err != nil {
				return err
			}
			say(t, logf, progress.Event{Phase: progress.Starting, Kind: progress.Done, Unit: n}, "%s is running and healthy", n)
		}
		return clearPending(ctx, t, names[t.Name]...)
	})
	if err != nil {
		return err
	}
	for _, u := range g {
		if err := waitSettled(ctx, targets, u, to.Start); err != nil {
			return err
		}
	}
	return nil
}

func node(t Target) desired.Node { return desired.Node{Name: t.Name, Remote: t.Conn} }

// waitSettled polls the unit's cluster gate over every target that runs it.
func waitSettled(ctx context.Context, targets []Target, u desired.Unit, timeout time.Duration) error {
	if u.Settled == nil {
		return nil
	}
	var nodes []desired.Node
	var members []Target
	for _, t := range targets {
		if _, ok := unitOf(t, u.Name); ok {
			nodes = append(nodes, node(t))
			members = append(members, t)
		}
	}
	if len(nodes) < 2 {
		return nil
	}
	// Said on every member: the wait is the cluster's, and at 9 hosts it
	// can take seconds after every member answers healthy.
	for _, t := range members {
		t.quiet(progress.Event{Phase: progress.Settle, Kind: progress.Start, Unit: u.Name})
	}
	err := health.Poll(ctx, timeout, func() error { return u.Settled.Check(ctx, nodes) })
	for _, t := range members {
		if err != nil {
			t.quiet(progress.Event{Phase: progress.Settle, Kind: progress.Fail, Unit: u.Name, Detail: err.Error()})
		} else {
			t.quiet(progress.Event{Phase: progress.Settle, Kind: progress.Done, Unit: u.Name})
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", u.Name, err)
	}
	return nil
}

func reloadAll(ctx context.Context, targets []Target, u desired.Unit, to Timeouts, logf Logf) error {
	var reloading []Target
	for _, t := range targets {
		if t.Plan.Handlers[u.Name] == desired.Reload && !slices.Contains(t.Plan.Start, u.Name) {
			reloading = append(reloading, t)
		}
	}
	if len(reloading) == 0 {
		return nil
	}
	err := Each(reloading, func(t Target) error {
		tu, _ := unitOf(t, u.Name)
		say(t, logf, progress.Event{Phase: progress.Reload, Kind: progress.Start, Unit: u.Name}, "reload %s", u.Name)
		want := ""
		if g := tu.Reload; g != nil {
			var err error
			if want, err = g.Want(ctx, node(t)); err != nil {
				return fmt.Errorf("host %s: before reloading %s: %s: %w", t.Name, u.Name, g.Desc, err)
			}
		}
		if _, err := t.Conn.Exec(ctx, "systemctl reload "+shell.Quote(u.Name)); err != nil {
			return fmt.Errorf("host %s: reload %s: %w%s", t.Name, u.Name, err, diagnose(ctx, t, tu))
		}
		if g := tu.Reload; g != nil {
			err := health.Poll(ctx, to.Reload, func() error { return g.Check(ctx, node(t), want) })
			if err != nil {
				// The pending file stays: the next apply owes the reload.
				return fmt.Errorf("host %s: reload of %s not confirmed: %w%s", t.Name, u.Name, err, diagnose(ctx, t, tu))
			}
			say(t, logf, progress.Event{Phase: progress.Reload, Kind: progress.Done, Unit: u.Name}, "reload confirmed: %s %s", g.Desc, want)
		} else {
			t.quiet(progress.Event{Phase: progress.Reload, Kind: progress.Done, Unit: u.Name})
		}
		return waitReady(ctx, t, tu, to.Health)
	})
	if err != nil {
		return err
	}
	// The pending records stay until the cluster has settled: an apply
	// stopped before that owes the reload, and its repair, again.
	if err := settleAfterReload(ctx, targets, u, to, logf); err != nil {
		return err
	}
	return Each(reloading, func(t Target) error { return clearPending(ctx, t, u.Name) })
}

// settleAfterReload waits for the unit's cluster gate after a reload. A
// reload can make members drop and re-form their links to each other (new
// route credentials do); they normally come back within seconds. If they
// have not within the reload timeout, the members the gate names as
// lagging are restarted one at a time, worst first, until it passes: a
// restarted member makes every link afresh. The others keep working
// meanwhile, which is why no two are restarted at once.
func settleAfterReload(ctx context.Context, targets []Target, u desired.Unit, to Timeouts, logf Logf) error {
	if u.Settled == nil {
		return nil
	}
	err := waitStable(ctx, targets, u, to.Reload, to.Hold)
	for tries := 0; err != nil && tries < len(targets); tries++ {
		var lag *desired.Lagging
		if !errors.As(err, &lag) || len(lag.Nodes) == 0 {
			break
		}
		t, ok := targetNamed(targets, lag.Nodes[0])
		if !ok {
			break
		}
		tu, _ := unitOf(t, u.Name)
		say(t, logf, progress.Event{Phase: progress.Restart, Kind: progress.Start, Unit: u.Name},
			"%s has not settled %s after the reload (%v); restarting %s to make its links afresh", u.Name, to.Reload, err, u.Name)
		if _, rerr := t.Conn.Exec(ctx, "systemctl restart "+shell.Quote(u.Name)); rerr != nil {
			return fmt.Errorf("host %s: restart %s to repair the cluster after a reload: %w%s", t.Name, u.Name, rerr, diagnose(ctx, t, tu))
		}
		if rerr := waitReady(ctx, t, tu, to.Health); rerr != nil {
			return rerr
		}
		t.quiet(progress.Event{Phase: progress.Restart, Kind: progress.Done, Unit: u.Name})
		err = waitStable(ctx, targets, u, to.Reload, to.Hold)
	}
	if err != nil {
		return fmt.Errorf("not settled after the reload: %w; run apply again (it owes the reload and the settling), or look at each member's routes", err)
	}
	logf("", "%s settled after the reload: %s", u.Name, u.Settled.Desc)
	return nil
}

// waitStable is waitSettled that also wants the gate to keep passing for
// hold; a failure within hold starts the wait for it over.
func waitStable(ctx context.Context, targets []Target, u desired.Unit, timeout, hold time.Duration) error {
	deadline := time.Now().Add(timeout + hold)
	for {
		if err := waitSettled(ctx, targets, u, time.Until(deadline).Round(10*time.Millisecond)); err != nil {
			return err
		}
		var err error
		for since := time.Now(); err == nil && time.Since(since) < hold; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(health.Interval):
			}
			err = waitSettled(ctx, targets, u, 0)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func targetNamed(targets []Target, name string) (Target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// rollingRestart restarts u, one host at a time, on every target whose
// plan owes it a restart, and returns the hosts restarted, in order. The
// unit's order gate, asked before each step, names a host to keep for
// last; the others go in inventory order.
func rollingRestart(ctx context.Context, targets []Target, u desired.Unit, to Timeouts, logf Logf) ([]string, error) {
	var todo []Target
	for _, t := range targets {
		if t.Plan.Handlers[u.Name] == desired.Restart && !slices.Contains(t.Plan.Start, u.Name) {
			todo = append(todo, t)
		}
	}
	total := len(todo)
	var done []string
	warned := false
	for len(todo) > 0 {
		i, last, err := nextToRestart(ctx, targets, todo, u)
		if err != nil && !warned {
			// The order only spares the cluster extra leader changes;
			// not knowing it is no reason to stop.
			logf("", "warning: cannot tell which host %s should restart last (%s): %v; going in inventory order", u.Name, u.Order.Desc, err)
			warned = true
		}
		t := todo[i]
		todo = slices.Delete(todo, i, i+1)
		if err := othersReady(ctx, targets, t, u, to); err != nil {
			return done, err
		}
		tu, _ := unitOf(t, u.Name)
		note := ""
		if last {
			note = "; " + u.Order.Desc + ", so last"
		}
		say(t, logf, progress.Event{Phase: progress.Restart, Kind: progress.Start, Unit: u.Name},
			"restart %s (%d of %d, one host at a time%s)", u.Name, len(done)+1, total, note)
		if _, err := t.Conn.Exec(ctx, "systemctl restart "+shell.Quote(u.Name)); err != nil {
			return done, fmt.Errorf("host %s: restart %s: %w%s", t.Name, u.Name, err, diagnose(ctx, t, tu))
		}
		if err := waitReady(ctx, t, tu, to.Health); err != nil {
			return done, err
		}
		if err := waitSettled(ctx, targets, tu, to.Health); err != nil {
			return done, fmt.Errorf("host %s restarted, but %w", t.Name, err)
		}
		say(t, logf, progress.Event{Phase: progress.Restart, Kind: progress.Done, Unit: u.Name}, "%s restarted and healthy", u.Name)
		done = append(done, t.Name)
		if err := clearPending(ctx, t, u.Name); err != nil {
			return done, err
		}
	}
	return done, nil
}

// nextToRestart picks the index in todo of the next host to restart: the
// first one the unit's order gate does not keep for last. last reports
// that the pick is the host the gate named, left alone until now.
func nextToRestart(ctx context.Context, targets, todo []Target, u desired.Unit) (i int, last bool, err error) {
	if u.Order == nil {
		return 0, false, nil
	}
	var nodes []desired.Node
	for _, t := range targets {
		if _, ok := unitOf(t, u.Name); ok {
			nodes = append(nodes, node(t))
		}
	}
	keep, err := u.Order.Last(ctx, nodes)
	if err != nil {
		return 0, false, err
	}
	for i, t := range todo {
		if t.Name != keep {
			return i, false, nil
		}
	}
	return 0, keep != "", nil
}

// othersReady refuses to take t down while another host of the unit is not
// ready: that could leave a cluster too few members to work. It says which
// host is the problem.
func othersReady(ctx context.Context, targets []Target, t Target, u desired.Unit, to Timeouts) error {
	for _, o := range targets {
		if o.Name == t.Name {
			continue
		}
		ou, ok := unitOf(o, u.Name)
		if !ok || ou.Ready == nil {
			continue
		}
		err := health.Poll(ctx, to.Health, func() error { return ou.Ready.Check(ctx, node(o)) })
		if err != nil {
			return fmt.Errorf("not restarting %s on %s: host %s is not ready (%v); taking a second member down now could stop the cluster; fix %s and run again", u.Name, t.Name, o.Name, err, o.Name)
		}
	}
	return nil
}

func waitReady(ctx context.Context, t Target, u desired.Unit, timeout time.Duration) error {
	if u.Ready == nil {
		return nil
	}
	t.quiet(progress.Event{Phase: progress.Health, Kind: progress.Start, Unit: u.Name})
	if err := health.Poll(ctx, timeout, func() error { return u.Ready.Check(ctx, node(t)) }); err != nil {
		t.quiet(progress.Event{Phase: progress.Health, Kind: progress.Fail, Unit: u.Name, Detail: err.Error()})
		return fmt.Errorf("host %s: %s did not become healthy: %w%s", t.Name, u.Name, err, diagnose(ctx, t, u))
	}
	t.quiet(progress.Event{Phase: progress.Health, Kind: progress.Done, Unit: u.Name})
	return nil
}

func clearPending(ctx context.Context, t Target, units ...string) error {
	cmd := "rm -f"
	for _, u := range units {
		cmd += " " + shell.Quote(PendingPath(u))
	}
	if _, err := t.Conn.Exec(ctx, cmd); err != nil {
		return fmt.Errorf("host %s: clear pending handler of %s: %w", t.Name, strings.Join(units, " and "), err)
	}
	return nil
}

// diagnose returns the unit's own explanation of a failure, indented, for
// appending to an error: a bare "timed out" helps nobody.
func diagnose(ctx context.Context, t Target, u desired.Unit) string {
	cmd := u.DiagnoseCmd
	if cmd == "" {
		cmd = "journalctl -u " + shell.Quote(u.Name) + " -n 20 --no-pager"
	}
	out, err := t.Conn.Exec(context.WithoutCancel(ctx), cmd+" 2>&1")
	if err != nil && out == "" {
		return ""
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	return "\n  last lines from " + t.Name + ":\n    " + strings.ReplaceAll(out, "\n", "\n    ")
}
