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
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Timeouts for the handlers; a field so tests and slow fleets can change them.
type Timeouts struct {
	Start  time.Duration // a cold start: all hosts of a cluster must find each other
	Health time.Duration // a restarted host to be ready again
	Reload time.Duration // a reload to be confirmed
}

// DefaultTimeouts suit a VM fleet; a cluster that must catch up on a lot
// of data after a restart may need more.
var DefaultTimeouts = Timeouts{Start: 2 * time.Minute, Health: 2 * time.Minute, Reload: 20 * time.Second}

// Logf reports progress for a host.
type Logf func(host, format string, args ...any)

// Handlers runs what the committed changes need, unit by unit, across
// every host that runs it, with the gates each unit's role supplies:
//   - stopped units start together, then wait to be ready together: a
//     clustered service may need most of its members before any is ready, so
//     starting one at a time and waiting would hang;
//   - reloads run in parallel, each confirmed by the unit's reload gate;
//   - restarts roll one host at a time, each only while every other host
//     is ready, each waiting for its own host to be ready and then for
//     the unit's cluster gate.
func Handlers(ctx context.Context, targets []Target, to Timeouts, logf Logf) error {
	units := unitsOf(targets)
	for _, u := range units {
		if err := startStopped(ctx, targets, u, to, logf); err != nil {
			return err
		}
		if err := reloadAll(ctx, targets, u, to, logf); err != nil {
			return err
		}
		if err := rollingRestart(ctx, targets, u, to, logf); err != nil {
			return err
		}
	}
	return nil
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

func startStopped(ctx context.Context, targets []Target, u desired.Unit, to Timeouts, logf Logf) error {
	var starting []Target
	for _, t := range targets {
		if slices.Contains(t.Plan.Start, u.Name) {
			starting = append(starting, t)
		}
	}
	if len(starting) == 0 {
		return nil
	}
	if len(starting) == len(targets) && len(targets) > 1 && u.Settled != nil {
		logf("", "starting %s on all %d hosts together (members of a cold cluster may need each other before any is ready)", u.Name, len(targets))
	}
	err := Each(starting, func(t Target) error {
		logf(t.Name, "start %s", u.Name)
		if _, err := t.Conn.Exec(ctx, "systemctl start "+shell.Quote(u.Name)); err != nil {
			return fmt.Errorf("host %s: start %s: %w%s", t.Name, u.Name, err, diagnose(ctx, t, u))
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = Each(starting, func(t Target) error {
		tu, _ := unitOf(t, u.Name)
		if err := waitReady(ctx, t, tu, to.Start); err != nil {
			return err
		}
		logf(t.Name, "%s is running and healthy", u.Name)
		return clearPending(ctx, t, u.Name)
	})
	if err != nil {
		return err
	}
	return waitSettled(ctx, targets, u, to.Start)
}

func node(t Target) desired.Node { return desired.Node{Name: t.Name, Remote: t.Conn} }

// waitSettled polls the unit's cluster gate over every target that runs it.
func waitSettled(ctx context.Context, targets []Target, u desired.Unit, timeout time.Duration) error {
	if u.Settled == nil {
		return nil
	}
	var nodes []desired.Node
	for _, t := range targets {
		if _, ok := unitOf(t, u.Name); ok {
			nodes = append(nodes, node(t))
		}
	}
	if len(nodes) < 2 {
		return nil
	}
	err := health.Poll(ctx, timeout, func() error { return u.Settled.Check(ctx, nodes) })
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
		logf(t.Name, "reload %s", u.Name)
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
			logf(t.Name, "reload confirmed: %s %s", g.Desc, want)
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
	err := waitSettled(ctx, targets, u, to.Reload)
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
		logf(t.Name, "%s has not settled %s after the reload (%v); restarting %s to make its links afresh", u.Name, to.Reload, err, u.Name)
		if _, rerr := t.Conn.Exec(ctx, "systemctl restart "+shell.Quote(u.Name)); rerr != nil {
			return fmt.Errorf("host %s: restart %s to repair the cluster after a reload: %w%s", t.Name, u.Name, rerr, diagnose(ctx, t, tu))
		}
		if rerr := waitReady(ctx, t, tu, to.Health); rerr != nil {
			return rerr
		}
		err = waitSettled(ctx, targets, u, to.Reload)
	}
	if err != nil {
		return fmt.Errorf("not settled after the reload: %w; run apply again (it owes the reload and the settling), or look at each member's routes", err)
	}
	logf("", "%s settled after the reload: %s", u.Name, u.Settled.Desc)
	return nil
}

func targetNamed(targets []Target, name string) (Target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

func rollingRestart(ctx context.Context, targets []Target, u desired.Unit, to Timeouts, logf Logf) error {
	for i, t := range targets {
		if t.Plan.Handlers[u.Name] != desired.Restart || slices.Contains(t.Plan.Start, u.Name) {
			continue
		}
		// Taking a host down while another is not ready could leave a
		// cluster too few members to work; refuse and say which host is
		// the problem.
		for j, o := range targets {
			if j == i {
				continue
			}
			ou, ok := unitOf(o, u.Name)
			if !ok || ou.Ready == nil {
				continue
			}
			err := health.Poll(ctx, to.Health, func() error { return ou.Ready.Check(ctx, node(o)) })
			if err != nil {
				return fmt.Errorf("not restarting %s on %s: host %s is not ready (%v); taking a second member down now could stop the cluster; fix %s and run apply again", u.Name, t.Name, o.Name, err, o.Name)
			}
		}
		tu, _ := unitOf(t, u.Name)
		logf(t.Name, "restart %s (%d of rolling restart)", u.Name, i+1)
		if _, err := t.Conn.Exec(ctx, "systemctl restart "+shell.Quote(u.Name)); err != nil {
			return fmt.Errorf("host %s: restart %s: %w%s", t.Name, u.Name, err, diagnose(ctx, t, tu))
		}
		if err := waitReady(ctx, t, tu, to.Health); err != nil {
			return err
		}
		if err := waitSettled(ctx, targets, tu, to.Health); err != nil {
			return fmt.Errorf("host %s restarted, but %w", t.Name, err)
		}
		logf(t.Name, "%s restarted and healthy", u.Name)
		if err := clearPending(ctx, t, u.Name); err != nil {
			return err
		}
	}
	return nil
}

func waitReady(ctx context.Context, t Target, u desired.Unit, timeout time.Duration) error {
	if u.Ready == nil {
		return nil
	}
	if err := health.Poll(ctx, timeout, func() error { return u.Ready.Check(ctx, node(t)) }); err != nil {
		return fmt.Errorf("host %s: %s did not become healthy: %w%s", t.Name, u.Name, err, diagnose(ctx, t, u))
	}
	return nil
}

func clearPending(ctx context.Context, t Target, unit string) error {
	if _, err := t.Conn.Exec(ctx, "rm -f "+shell.Quote(PendingPath(unit))); err != nil {
		return fmt.Errorf("host %s: clear pending handler of %s: %w", t.Name, unit, err)
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
