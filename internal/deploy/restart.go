package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// RestartChoice is what a restart on demand restarts.
type RestartChoice struct {
	Units []string            // in the order the roles start them
	Hosts []string            // in inventory order
	On    map[string][]string // by host: the units restarted there
}

// ChooseRestart resolves restart's roles and hosts against the inventory,
// before any connection. With no role named it picks every unit that has
// a cluster gate: a clustered service, the kind a rolling restart exists
// for. A role named picks all of that role's units. With hosts named,
// only those hosts. An unknown name, or a choice that restarts nothing, is
// an error that names what there is to choose from.
func ChooseRestart(inv *inventory.Inventory, rs []role.Role, roleNames, hostNames []string) (RestartChoice, error) {
	var known, running []string
	for _, r := range rs {
		known = append(known, r.Name())
		if len(r.Hosts(inv)) > 0 {
			running = append(running, r.Name())
		}
	}
	for _, n := range roleNames {
		switch {
		case !slices.Contains(known, n):
			return RestartChoice{}, fmt.Errorf("--role %s: no such role; the inventory runs %s", n, strings.Join(running, ", "))
		case !slices.Contains(running, n):
			return RestartChoice{}, fmt.Errorf("--role %s: the inventory does not run it; it runs %s", n, strings.Join(running, ", "))
		}
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	for _, n := range hostNames {
		if !slices.Contains(names, n) {
			return RestartChoice{}, fmt.Errorf("--host %s: no such host in %s; it has %s", n, inv.Path, strings.Join(names, ", "))
		}
	}
	c := RestartChoice{On: map[string][]string{}}
	for _, h := range inv.Hosts {
		if len(hostNames) > 0 && !slices.Contains(hostNames, h.Name) {
			continue
		}
		for _, r := range role.On(rs, inv, h.Name) {
			if len(roleNames) > 0 && !slices.Contains(roleNames, r.Name()) {
				continue
			}
			// Paths and gates are all a choice needs: no secrets, no
			// artifacts, as the registry's clash check renders.
			d, err := r.Desired(role.Input{Inv: inv, Host: h})
			if err != nil {
				return RestartChoice{}, fmt.Errorf("role %s on host %s: %w", r.Name(), h.Name, err)
			}
			for _, u := range d.Units {
				if len(roleNames) == 0 && u.Settled == nil {
					continue
				}
				c.On[h.Name] = append(c.On[h.Name], u.Name)
				if !slices.Contains(c.Units, u.Name) {
					c.Units = append(c.Units, u.Name)
				}
			}
		}
		if len(c.On[h.Name]) > 0 {
			c.Hosts = append(c.Hosts, h.Name)
		}
		if len(hostNames) > 0 && len(c.On[h.Name]) == 0 {
			what := "no clustered service"
			if len(roleNames) > 0 {
				what = "no unit of role " + strings.Join(roleNames, " or ")
			}
			return RestartChoice{}, fmt.Errorf("--host %s: it runs %s; nothing to restart there", h.Name, what)
		}
	}
	if len(c.Units) == 0 {
		return RestartChoice{}, fmt.Errorf("nothing to restart: no host runs a clustered service; name the role with --role (%s)", strings.Join(running, ", "))
	}
	return c, nil
}

// Restart restarts what c chose with apply's rolling restart, after
// checking that every host running those units is ready (see
// apply.Restart). It needs the connections only: no facts, no artifacts,
// and it changes no file.
func (s *Session) Restart(ctx context.Context, c RestartChoice, to apply.Timeouts) ([]apply.Restarted, error) {
	targets := make([]apply.Target, 0, len(s.Inv.Hosts))
	for _, h := range s.Inv.Hosts {
		d, err := s.render(h, nil)
		if err != nil {
			return nil, err
		}
		p := plan.Host{Name: h.Name, Handlers: map[string]desired.Handler{}, Units: d.Units}
		for _, u := range c.On[h.Name] {
			p.Handlers[u] = desired.Restart
		}
		targets = append(targets, apply.Target{Name: h.Name, Conn: s.Conns[h.Name], Desired: d, Plan: p, Events: s.Events})
	}
	return apply.Restart(ctx, targets, to, s.Logf)
}

// RestartSummary says, unit by unit, where a restart on demand restarted
// it (in the order it went) and, when it stopped short, where it did not.
func RestartSummary(c RestartChoice, done []apply.Restarted) []string {
	var out []string
	for _, u := range c.Units {
		var did, left []string
		for _, r := range done {
			if r.Unit == u {
				did = append(did, r.Host)
			}
		}
		for _, h := range c.Hosts {
			if slices.Contains(c.On[h], u) && !slices.Contains(did, h) {
				left = append(left, h)
			}
		}
		var parts []string
		if len(did) > 0 {
			parts = append(parts, "restarted on "+strings.Join(did, ", "))
		}
		if len(left) > 0 {
			parts = append(parts, "not restarted on "+strings.Join(left, ", "))
		}
		out = append(out, u+": "+strings.Join(parts, "; "))
	}
	return out
}
