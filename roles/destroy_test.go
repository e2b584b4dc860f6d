package roles

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/planfixture"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// allMonitoring is the lab inventory with every monitoring role on, so
// every role's teardown is pinned: nats-1 runs all five, nats-2 and
// nats-3 the nats role and the exporter.
func allMonitoring(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv := labInventory(t)
	on := true
	m := inv.Monitoring
	m.Prometheus.Enabled, m.Grafana.Enabled, m.Exporter.Enabled, m.Surveyor.Enabled = &on, &on, &on, &on
	if err := Check(inv, All); err != nil {
		t.Fatal(err)
	}
	return inv
}

// installedHost renders every role on h as destroy does (no secrets, no
// artifacts) and returns the parts and the facts of a host where all of
// it is installed and running, with natsdeploy's state directory.
func installedHost(t *testing.T, inv *inventory.Inventory, h inventory.Host) ([]desired.Part, desired.Host, facts.Host) {
	t.Helper()
	var parts []desired.Part
	for _, r := range role.On(All, inv, h.Name) {
		d, err := r.Desired(role.Input{Inv: inv, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, desired.Part{Role: r.Name(), Host: d})
	}
	merged, err := desired.Merge(h.Name, parts...)
	if err != nil {
		t.Fatal(err)
	}
	text := planfixture.ConvergedFacts(merged) + "dir 700 root root " + facts.StateDir + "\n"
	f, err := facts.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return parts, merged, f
}

func teardownOrder() []string {
	var out []string
	for i := len(All) - 1; i >= 0; i-- {
		out = append(out, All[i].Name())
	}
	return out
}

// destroyHost plans and carries out destroy on one installed host and
// returns the plan's lines and the commands sent, as a golden file has
// them.
func destroyHost(t *testing.T, inv *inventory.Inventory, h inventory.Host, purge bool) (string, []string) {
	t.Helper()
	parts, _, f := installedHost(t, inv, h)
	td, err := plan.ComputeTeardown(h.Name, parts, f, purge)
	if err != nil {
		t.Fatal(err)
	}
	c := &planfixture.Conn{}
	ctx := context.Background()
	if err := apply.Teardown(ctx, teardownOrder(), []apply.TeardownTarget{{Name: h.Name, Conn: c, Plan: td}}, func(string, string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	c.Log = append(c.Log, "# after the lock is released")
	if _, err := apply.RemoveStateDir(ctx, h.Name, c); err != nil {
		t.Fatal(err)
	}
	text := "# plan\n" + strings.Join(td.Lines(), "\n") + "\n# commands\n" + strings.Join(c.Log, "\n") + "\n"
	return text, c.Log
}

// Destroy on a lab-like cluster with every role, host by host, with data
// kept and purged: the plan a person is shown and every command sent,
// pinned in testdata/destroy/<mode>/<host>.txt (go test ./roles -run
// TestDestroyGolden -update rewrites them; review the diff).
func TestDestroyGolden(t *testing.T) {
	inv := allMonitoring(t)
	for _, mode := range []string{"keep", "purge"} {
		for _, name := range []string{"nats-1", "nats-2"} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				got, _ := destroyHost(t, inv, planfixture.Host(t, inv, name), mode == "purge")
				golden.Check(t, filepath.Join("testdata", "destroy", mode, name+".txt"), []byte(got))
			})
		}
	}
}

// Whatever the golden files say, on every host of the lab-like cluster:
// a purge names every path, unit and user the roles render for removal,
// and nothing else; keeping data never names a data directory or a user
// in a removal, and removes everything else the same way.
func TestDestroyCoversWhatRolesRender(t *testing.T) {
	inv := allMonitoring(t)
	for _, h := range inv.Hosts {
		_, d, _ := installedHost(t, inv, h)
		for _, purge := range []bool{true, false} {
			_, cmds := destroyHost(t, inv, h, purge)
			removed := map[string]bool{} // what an rm, rmdir or userdel names
			var stopped []string
			for _, c := range cmds {
				for _, line := range strings.Split(c, "\n") {
					f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "exec "))
					switch {
					case len(f) > 2 && f[0] == "rm" && f[1] == "-f" && f[2] == "--":
						for _, p := range f[3:] {
							removed[p] = true
						}
					case len(f) > 2 && f[0] == "rm" && f[1] == "-rf":
						for _, p := range f[3:] {
							removed[p] = true
						}
					case len(f) > 0 && f[0] == "if" && strings.Contains(line, " rmdir "):
						for i := range f[:len(f)-1] {
							if f[i] == "rmdir" {
								removed[f[i+1]] = true
							}
						}
					case len(f) == 2 && f[0] == "userdel":
						removed["user "+f[1]] = true
					case len(f) == 3 && f[0] == "systemctl" && f[1] == "stop":
						stopped = append(stopped, f[2])
					}
				}
			}
			for _, file := range d.Files {
				if !removed[file.Path] {
					t.Errorf("%s purge=%v: %s is not removed", h.Name, purge, file.Path)
				}
			}
			for _, dir := range d.Dirs {
				keep := !purge && dir.Holds == desired.Data
				if removed[dir.Path] == keep {
					t.Errorf("%s purge=%v: directory %s (%s) removed=%v", h.Name, purge, dir.Path, dir.Holds, removed[dir.Path])
				}
			}
			for _, u := range d.Users {
				if removed["user "+u.Name] != purge {
					t.Errorf("%s purge=%v: user %s removed=%v", h.Name, purge, u.Name, removed["user "+u.Name])
				}
			}
			var units []string
			for _, u := range d.Units {
				units = append(units, u.Name)
			}
			if len(stopped) != len(units) {
				t.Errorf("%s: stopped %v, want every unit of %v", h.Name, stopped, units)
			}
			// Nothing outside what the roles render, and what an
			// interrupted apply stages beside it.
			rendered := map[string]bool{facts.StateDir: true}
			for _, f := range d.Files {
				rendered[f.Path] = true
			}
			for _, dir := range d.Dirs {
				rendered[dir.Path] = true
			}
			for p := range removed {
				if rendered[p] || strings.HasPrefix(p, "user ") || strings.Contains(p, ".natsdeploy-") {
					continue
				}
				t.Errorf("%s purge=%v: removes %s, which no role renders", h.Name, purge, p)
			}
		}
	}
}
