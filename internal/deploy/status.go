package deploy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// StatusTimeout bounds a whole status: a person is waiting at a terminal,
// and a host that stops answering must become a row saying so.
var StatusTimeout = 20 * time.Second

// Status shows every service of every host as it is now: one command per
// host for what the engine sees of every unit (state, uptime, installed
// version, its rendered files as on disk), in parallel with each role's
// own view (role.Statuser). It changes nothing, on the hosts or here: the
// facts command is read-only, no lock is taken, and the secrets file, read
// to render configs as apply would, is never written. A host in
// s.Unreachable is one row saying why.
func (s *Session) Status(ctx context.Context) status.Report {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, StatusTimeout)
	defer cancel()

	// Without the secrets the configs cannot be rendered as apply would
	// render them; everything else can still be shown.
	var secErr error
	if s.Secrets == nil && len(s.Conns) > 0 {
		s.Secrets, secErr = OpenSecrets(s.Inv, s.Roles)
	}

	hosts := make([][]*statusRow, len(s.Inv.Hosts))
	fromRoles := make([][]status.Service, len(s.Roles))
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hosts[i] = s.statusHost(ctx, h, secErr)
		}()
	}
	env := s.env(nil)
	for i, r := range s.Roles {
		st, ok := r.(role.Statuser)
		if !ok || len(r.Hosts(s.Inv)) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fromRoles[i] = st.Status(ctx, env)
		}()
	}
	wg.Wait()

	for i, svcs := range fromRoles {
		for _, svc := range svcs {
			hosts = mergeService(hosts, s.Inv, s.Roles[i].Name(), svc)
		}
	}
	var rep status.Report
	for _, rows := range hosts {
		for _, r := range rows {
			rep.Rows = append(rep.Rows, r.finish())
		}
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// statusRow is a row being built: what the engine saw, and what it needs
// to judge it once the roles have had their say.
type statusRow struct {
	status.Row
	versionSaid  string   // what the version command printed
	own          []string // the engine's problems
	roleProblems []string
}

// statusHost is the engine's view of one host: a row per unit of every
// role on it (and one for a role that renders files but runs no unit),
// from one read-only command.
func (s *Session) statusHost(ctx context.Context, h inventory.Host, secErr error) []*statusRow {
	conn, ok := s.Conns[h.Name]
	if !ok {
		why := "not connected"
		if err := s.Unreachable[h.Name]; err != nil {
			why = "cannot connect: " + err.Error()
		}
		return []*statusRow{{Row: status.Row{Host: h.Name}, own: []string{why}}}
	}
	hostRow := func(problem string) []*statusRow {
		return []*statusRow{{Row: status.Row{Host: h.Name, Reachable: true}, own: []string{problem}}}
	}
	parts, err := s.renderParts(h, nil)
	if err != nil {
		return hostRow(err.Error())
	}
	d, err := desired.Merge(h.Name, parts...)
	if err != nil {
		return hostRow(err.Error())
	}
	files, names := rendered(d)
	versions := map[string]string{}
	for _, u := range d.Units {
		if u.VersionCmd != "" {
			versions[u.Name] = u.VersionCmd
		}
	}
	fh, err := look(ctx, conn, facts.Paths{Files: pathsOf(files), Units: names, ReadOnly: true, Uptime: true, Versions: versions})
	if err != nil {
		return hostRow("read the host's state: " + err.Error())
	}

	var rows []*statusRow
	for _, p := range parts {
		// A file belongs to the unit that names it as its service or as
		// its unit file; one that names no unit of the role belongs to
		// all of them.
		owned := func(u desired.Unit) []desired.File {
			var out []desired.File
			for _, f := range p.Host.Files {
				if f.Content == nil {
					continue
				}
				mine := f.Service == u.Name || f.Path == u.UnitFile
				if mine || !unitOf(p.Host.Units, f) {
					out = append(out, f)
				}
			}
			return out
		}
		units := p.Host.Units
		if len(units) == 0 {
			units = []desired.Unit{{}} // a role with files and no service
		}
		for _, u := range units {
			r := &statusRow{Row: status.Row{Host: h.Name, Role: p.Role, Unit: u.Name, Reachable: true}}
			if secErr != nil {
				r.own = append(r.own, "config not compared: "+secErr.Error())
			} else {
				r.ConfigOK, r.Config = compareFiles(owned(u), fh)
				if !r.ConfigOK {
					r.own = append(r.own, r.Config)
				}
			}
			if u.Name != "" {
				fu := fh.Units[u.Name]
				r.State, r.Enabled = orUnknown(fu.State), fu.Enabled
				r.Uptime, r.UptimeKnown = fu.Uptime, fu.UptimeKnown
				if u.VersionCmd != "" {
					r.WantVersion, r.versionSaid = u.Version, fu.Version
					r.Version = status.VersionIn(fu.Version)
				}
				switch {
				case !fu.Active:
					r.own = append(r.own, fmt.Sprintf("%s is %s (run apply to start it)", u.Name, r.State))
				case !fu.Enabled:
					r.own = append(r.own, u.Name+" is not enabled (run apply to enable it)")
				}
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// unitOf reports whether f belongs to one of units.
func unitOf(units []desired.Unit, f desired.File) bool {
	for _, u := range units {
		if f.Service == u.Name || f.Path == u.UnitFile {
			return true
		}
	}
	return false
}

// mergeService adds what a role says about one of its services to that
// service's row, or, for a service the engine has no row for, a row of
// its own after the host's others.
func mergeService(hosts [][]*statusRow, inv *inventory.Inventory, roleName string, svc status.Service) [][]*statusRow {
	for i, h := range inv.Hosts {
		if h.Name != svc.Host {
			continue
		}
		for _, r := range hosts[i] {
			if r.Unit == svc.Unit && r.Reachable {
				if svc.Version != "" {
					r.Version, r.versionSaid = svc.Version, svc.Version
				}
				r.Details = append(r.Details, svc.Details...)
				r.roleProblems = append(r.roleProblems, svc.Problems...)
				return hosts
			}
		}
		hosts[i] = append(hosts[i], &statusRow{
			Row:          status.Row{Host: svc.Host, Role: roleName, Unit: svc.Unit, Reachable: true, Version: svc.Version, Details: svc.Details},
			roleProblems: svc.Problems,
		})
		return hosts
	}
	return hosts // a host not in the inventory: nothing to show it against
}

// finish judges the version, now that a role may have said which one runs,
// and lists every problem, the engine's first.
func (r *statusRow) finish() status.Row {
	row := r.Row
	row.Problems = append(row.Problems, r.own...)
	if r.WantVersion != "" {
		switch {
		case r.Version == "":
			row.Problems = append(row.Problems, fmt.Sprintf("cannot tell its version: %q (want %s)", r.versionSaid, r.WantVersion))
		case r.Version != r.WantVersion:
			row.Problems = append(row.Problems, fmt.Sprintf("runs version %s, the inventory asks for %s (run apply)", r.Version, r.WantVersion))
		}
	}
	row.Problems = append(row.Problems, r.roleProblems...)
	return row
}
