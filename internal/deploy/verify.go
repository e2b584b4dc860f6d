package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/report"
)

// Verify checks the live hosts against the inventory: first what every
// role shares (each host's rendered files as on disk, each unit enabled
// and running), then each role's own checks. It needs only the
// connections, not Gather: verify must work from a machine that has no
// artifact cache.
func (s *Session) Verify(ctx context.Context) report.Report {
	start := time.Now()
	// The host checks and every role's checks run at once: none reads
	// what another changes, and a default apply waits for the slowest
	// alone. The report keeps their order.
	parts := make([][]report.Result, len(s.Roles)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		parts[0] = s.hostChecks(ctx)
	}()
	env := s.env(nil)
	for i, r := range s.Roles {
		if len(r.Hosts(s.Inv)) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i+1] = r.Verify(ctx, env)
		}()
	}
	wg.Wait()
	var rep report.Report
	for _, p := range parts {
		rep.Results = append(rep.Results, p...)
	}
	// The proofs are a cache: not keeping them costs the next run time,
	// not correctness, so the report says so without failing.
	if err := s.Proofs.Save(); err != nil {
		rep.Results = append(rep.Results, report.Result{Check: "verify/cache", Target: "-", Skipped: true,
			Seen: "proofs not kept for the next run: " + err.Error()})
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// hostChecks compares every rendered file (configs and units, not the
// binaries, whose hashes need the artifacts) with the host's copy, and
// asks systemd about every unit, in one command per host. Together with a
// role's own proof that its service runs the config on disk, it shows each
// host runs what the inventory asks for, and catches a file edited by
// hand even after its reload.
func (s *Session) hostChecks(ctx context.Context) []report.Result {
	results := make([][]report.Result, len(s.Inv.Hosts))
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cfg := report.Result{Check: "node/config", Target: h.Name, Expected: "config and unit files as rendered from the inventory"}
			units := report.Result{Check: "node/units", Target: h.Name}
			defer func() {
				cfg.Duration, units.Duration = time.Since(start), time.Since(start)
				results[i] = []report.Result{cfg}
				if units.Expected != "" {
					results[i] = append(results[i], units)
				}
			}()
			d, err := s.render(h, nil)
			if err != nil {
				cfg.Seen = err.Error()
				return
			}
			files, names := rendered(d)
			if len(names) > 0 {
				units.Expected = strings.Join(names, ", ") + " enabled and active"
			}
			fh, from, err := s.hostFacts(ctx, h.Name, files, names)
			if err != nil {
				cfg.Seen, units.Seen = err.Error(), err.Error()
				return
			}
			cfg.OK, cfg.Seen = compareFiles(files, fh)
			units.OK, units.Seen = compareUnits(names, fh)
			cfg.Seen += from
			units.Seen += from
		}()
	}
	wg.Wait()
	var out []report.Result
	for _, rs := range results {
		out = append(out, rs...)
	}
	return out
}

// hostFacts reads what hostChecks compares: the facts apply has just
// read, when it found nothing to change since (they already say the host
// matches, and reading it again costs a command per host), else the
// host's own answer now. from says which, for the row.
func (s *Session) hostFacts(ctx context.Context, host string, files []desired.File, units []string) (facts.Host, string, error) {
	if s.factsCurrent() {
		for _, t := range s.Targets {
			if t.Name == host {
				return t.Facts, " (as this apply read them)", nil
			}
		}
	}
	conn, ok := s.Conns[host]
	if !ok {
		return facts.Host{}, "", errors.New("not connected")
	}
	// Read-only: these are only the rendered files, and a cache rewritten
	// from them would drop the binaries' sums, making the next apply hash
	// hundreds of MB again.
	fh, err := look(ctx, conn, facts.Paths{Files: pathsOf(files), Units: units, ReadOnly: true})
	return fh, "", err
}

// rendered returns the files of d that are rendered (configs and units,
// not binaries, whose hashes need the artifacts) and the names of its
// units: what verify and status compare with a host.
func rendered(d desired.Host) (files []desired.File, units []string) {
	for _, f := range d.Files {
		if f.Content != nil {
			files = append(files, f)
		}
	}
	for _, u := range d.Units {
		units = append(units, u.Name)
	}
	return files, units
}

func pathsOf(files []desired.File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

// look reads the facts p asks for, in one command.
func look(ctx context.Context, conn apply.Conn, p facts.Paths) (facts.Host, error) {
	out, err := conn.Exec(ctx, facts.Script(p))
	if err != nil {
		return facts.Host{}, err
	}
	return facts.Parse([]byte(out))
}

func compareFiles(files []desired.File, fh facts.Host) (bool, string) {
	var differ []string
	for _, f := range files {
		got, ok := fh.Files[f.Path]
		switch {
		case !ok:
			differ = append(differ, f.Path+" missing")
		case got.SHA256 != f.SHA256:
			differ = append(differ, f.Path+" changed")
		case got.Mode.Perm() != f.Mode.Perm() || got.Owner != f.Owner || got.Group != f.Group:
			differ = append(differ, fmt.Sprintf("%s is %s:%s %04o", f.Path, got.Owner, got.Group, got.Mode.Perm()))
		}
	}
	if len(differ) > 0 {
		return false, strings.Join(differ, ", ") + " (run apply to restore)"
	}
	return true, fmt.Sprintf("%d files as rendered", len(files))
}

func compareUnits(names []string, fh facts.Host) (bool, string) {
	var bad, good []string
	for _, n := range names {
		u := fh.Units[n]
		switch {
		case !u.Active:
			bad = append(bad, fmt.Sprintf("%s %s", n, orUnknown(u.State)))
		case !u.Enabled:
			bad = append(bad, n+" not enabled")
		default:
			good = append(good, n)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, ", ") + " (run apply to start and enable)"
	}
	return true, strings.Join(good, ", ") + " active"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
