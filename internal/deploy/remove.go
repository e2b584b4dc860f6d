package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/remote"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/shell"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// env is what the roles' live checks use: the session's connections, and
// extra ones (to departing members) when given.
func (s *Session) env(extra map[string]apply.Conn) role.Env {
	return role.Env{Inv: s.Inv, Secrets: s.Secrets, TLS: s.TLS, Proofs: s.Proofs, Remote: func(host string) desired.Remote {
		if c, ok := s.Conns[host]; ok {
			return c
		}
		if c, ok := extra[host]; ok {
			return c
		}
		return nil
	}}
}

// Departures asks every role whose cluster remembers its members which
// members the inventory no longer names (scale-in). It changes nothing.
func (s *Session) Departures(ctx context.Context) ([]role.Departure, error) {
	var out []role.Departure
	for _, r := range s.Roles {
		rm, ok := r.(role.Remover)
		if !ok || len(r.Hosts(s.Inv)) == 0 {
			continue
		}
		ds, err := rm.Departed(ctx, s.env(nil))
		if err != nil {
			return nil, fmt.Errorf("role %s: find members the inventory no longer names: %w", r.Name(), err)
		}
		out = append(out, ds...)
	}
	return out, nil
}

// DescribeDepartures is one line per departing member, for a refusal or a
// plan.
func DescribeDepartures(ds []role.Departure) string {
	var b strings.Builder
	for _, d := range ds {
		where := "down: nothing to stop"
		if d.Address != "" {
			where = "at " + d.Address
		}
		fmt.Fprintf(&b, "  %s (%s member, %s): not in the inventory; --allow-remove stops %s on it and removes it from the cluster, its data moved to the members left\n",
			d.Name, d.Role, where, strings.Join(d.Units, ", "))
	}
	return b.String()
}

// dialDeparted reaches a member no longer in the inventory the way the
// inventory's [ssh] section and the ssh config say.
func dialDeparted(ctx context.Context, inv *inventory.Inventory, sc *remote.SSHConfig, sudo *sudoPassword, d role.Departure) (*remote.Client, error) {
	cfg, err := sshConfig(inv, sc, inventory.Host{Name: d.Name, Address: d.Address}, -1)
	if err != nil {
		return nil, err
	}
	cfg.SudoPassword = sudo.get
	return remote.Dial(ctx, cfg)
}

// RemoveDeparted takes the departing members out, role by role: it checks
// that nothing would be lost (refusing before any change), stops and
// disables their services over SSH, and has the role move their data to
// the members left. Their files and data stay on them.
func (s *Session) RemoveDeparted(ctx context.Context, ds []role.Departure) error {
	extra := map[string]apply.Conn{}
	sc, err := loadSSHConfig(s.Inv)
	if err != nil {
		return err
	}
	sudo := s.sudo
	if sudo == nil {
		sudo = newSudoPassword(s.Inv.SSH.SudoPasswordEnv)
	}
	for _, d := range ds {
		if d.Address == "" || extra[d.Name] != nil {
			continue
		}
		c, err := dialDeparted(ctx, s.Inv, sc, sudo, d)
		if err != nil {
			s.Logf(d.Name, "cannot reach it: %v", err)
			continue
		}
		defer c.Close()
		extra[d.Name] = Conn{c}
	}
	env := s.env(extra)
	byRole := map[string][]role.Departure{}
	for _, d := range ds {
		byRole[d.Role] = append(byRole[d.Role], d)
	}
	for _, r := range s.Roles {
		rm, ok := r.(role.Remover)
		if !ok || len(byRole[r.Name()]) == 0 {
			continue
		}
		if err := rm.CheckRemoval(ctx, env, byRole[r.Name()]); err != nil {
			return fmt.Errorf("not removing %s: %w\nnothing was changed", names(byRole[r.Name()]), err)
		}
	}
	for _, r := range s.Roles {
		rm, ok := r.(role.Remover)
		if !ok || len(byRole[r.Name()]) == 0 {
			continue
		}
		for _, d := range byRole[r.Name()] {
			c := extra[d.Name]
			if c == nil {
				continue
			}
			var q []string
			for _, u := range d.Units {
				q = append(q, shell.Quote(u))
			}
			s.Logf(d.Name, "stop and disable %s (no longer in the inventory)", strings.Join(d.Units, ", "))
			if _, err := c.Exec(ctx, "systemctl disable --now "+strings.Join(q, " ")); err != nil {
				return fmt.Errorf("host %s: stop %s: %w", d.Name, strings.Join(d.Units, ", "), err)
			}
		}
		err := rm.Remove(ctx, env, byRole[r.Name()], func(format string, args ...any) { s.Logf("", format, args...) })
		if err != nil {
			return fmt.Errorf("role %s: %w", r.Name(), err)
		}
	}
	return nil
}

func names(ds []role.Departure) string {
	var n []string
	for _, d := range ds {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}
