package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// PlanDestroy reads every host's facts (one command each, in parallel)
// and works out what destroy removes there: what the roles render for the
// host and the host has. It needs no artifacts, so it works from any
// machine with the inventory and its secrets file.
func (s *Session) PlanDestroy(ctx context.Context, purge bool) error {
	n := len(s.Inv.Hosts)
	out := make([]plan.Teardown, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Events.Event(progress.Event{Host: h.Name, Phase: progress.Facts, Kind: progress.Start, Quiet: true})
			out[i], errs[i] = s.planDestroyHost(ctx, h, purge)
			s.Events.Event(phaseEnd(h.Name, progress.Facts, errs[i]))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nnothing was changed on any host", err)
	}
	s.Teardowns = out
	return nil
}

func (s *Session) planDestroyHost(ctx context.Context, h inventory.Host, purge bool) (plan.Teardown, error) {
	parts, err := s.renderParts(h, nil)
	if err != nil {
		return plan.Teardown{}, err
	}
	merged, err := desired.Merge(h.Name, parts...)
	if err != nil {
		return plan.Teardown{}, err
	}
	p := facts.PathsOf(merged)
	p.Dirs = append(p.Dirs, facts.StateDir)
	raw, err := s.Conns[h.Name].Exec(ctx, facts.Script(p))
	if err != nil {
		return plan.Teardown{}, gatherError(h.Name, err)
	}
	f, err := facts.Parse([]byte(raw))
	if err != nil {
		return plan.Teardown{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return plan.ComputeTeardown(h.Name, parts, f, purge)
}

// NothingToDestroy reports whether no host has anything of any role left
// (natsdeploy's own state aside).
func (s *Session) NothingToDestroy() bool {
	for _, t := range s.Teardowns {
		if !t.Empty() {
			return false
		}
	}
	return true
}

// PrintDestroy writes what destroy will remove and keep on each host,
// then the count.
func (s *Session) PrintDestroy(w io.Writer) {
	for _, t := range s.Teardowns {
		if t.Empty() && len(t.Kept) == 0 {
			fmt.Fprintf(w, "%s: nothing to remove\n", t.Name)
			continue
		}
		fmt.Fprintf(w, "%s:\n", t.Name)
		for _, line := range t.Lines() {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	fmt.Fprintln(w, plan.TeardownSummary(s.Teardowns))
}

// Destroy carries out the plans of PlanDestroy role by role (the last
// role to start goes first), releases the run lock, then removes
// natsdeploy's state directory from every host.
func (s *Session) Destroy(ctx context.Context) error {
	order := make([]string, 0, len(s.Roles))
	for i := len(s.Roles) - 1; i >= 0; i-- {
		order = append(order, s.Roles[i].Name())
	}
	targets := make([]apply.TeardownTarget, len(s.Teardowns))
	for i, t := range s.Teardowns {
		targets[i] = apply.TeardownTarget{Name: t.Name, Conn: s.Conns[t.Name], Plan: t, Events: s.Events}
	}
	if err := apply.Teardown(ctx, order, targets, s.Logf); err != nil {
		return err
	}
	// The lock lives in the state directory: released first, so the
	// directory can go, and only if no other run took it since.
	s.Unlock(ctx)
	return apply.Each(asTargets(targets), func(t apply.Target) error {
		kept, err := apply.RemoveStateDir(ctx, t.Name, t.Conn)
		if kept != "" {
			s.Logf(t.Name, "kept %s", kept)
		}
		return err
	})
}

func asTargets(ts []apply.TeardownTarget) []apply.Target {
	out := make([]apply.Target, len(ts))
	for i, t := range ts {
		out[i] = apply.Target{Name: t.Name, Conn: t.Conn}
	}
	return out
}
