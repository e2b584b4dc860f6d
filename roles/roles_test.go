package roles

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

func labInventory(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions("../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestRegistryAcceptsTheShippedInventories(t *testing.T) {
	if err := Check(labInventory(t), All); err != nil {
		t.Fatalf("lab inventory: %v", err)
	}
	names := map[string]bool{}
	for _, r := range All {
		if names[r.Name()] {
			t.Errorf("two roles named %s", r.Name())
		}
		names[r.Name()] = true
	}
}

// intruder claims, on the first host only, what a second role might get
// wrong: a path, a user, a unit and a port the nats role already has.
type intruder struct{ d desired.Host }

func (intruder) Name() string { return "intruder" }
func (intruder) Hosts(inv *inventory.Inventory) []inventory.Host {
	return inv.Hosts[:1]
}
func (intruder) Secrets(*inventory.Inventory) []secrets.Slot                        { return nil }
func (intruder) Artifacts(*inventory.Inventory, string) ([]artifact.Release, error) { return nil, nil }
func (i intruder) Desired(in role.Input) (desired.Host, error)                      { return i.d, nil }
func (intruder) Verify(context.Context, role.Env) []report.Result                   { return nil }

func TestCheckRefusesClashes(t *testing.T) {
	tests := []struct {
		name string
		d    desired.Host
		want []string // each a line of the error, in order
	}{
		// The intruder's port key stands for its own section, which
		// the lab inventory does not have.
		{"port", desired.Host{Ports: []desired.Port{{Number: 8222, Key: "hosts.0.name"}}},
			[]string{`lab.toml:24: hosts[0].name: host nats-1: port 8222 is also nats.http_port (role nats); give one of them another port`}},
		{"path", desired.Host{Files: []desired.File{{Path: "/etc/nats/nats-server.conf"}}},
			[]string{`lab.toml:23: hosts[0]: host nats-1: path /etc/nats/nats-server.conf is claimed by role nats and by role intruder`}},
		{"user with other settings", desired.Host{Users: []desired.User{{Name: "nats", Home: "/srv/elsewhere"}}},
			[]string{`hosts[0]: host nats-1: system user nats (with different settings) is claimed by role nats and by role intruder`}},
		{"unit", desired.Host{Units: []desired.Unit{{Name: "nats-server.service"}}},
			[]string{`hosts[0]: host nats-1: unit nats-server.service is claimed by role nats and by role intruder`}},
		{"same user, same settings: shared", desired.Host{Users: []desired.User{{Name: "nats", Home: "/var/lib/nats", Shell: "/usr/sbin/nologin"}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := labInventory(t)
			err := Check(inv, append(append([]role.Role(nil), All...), intruder{tc.d}))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want no clash", err)
				}
				return
			}
			var probs *inventory.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Check = %v, want inventory problems (exit 2, file:line)", err)
			}
			if len(probs.List) != len(tc.want) {
				t.Fatalf("problems:\n%v\nwant %d", err, len(tc.want))
			}
			for i, w := range tc.want {
				if got := probs.List[i].String(); !strings.HasSuffix(got, w) || probs.List[i].Line == 0 {
					t.Errorf("problem %d = %q, want one ending %q with a line", i, got, w)
				}
			}
		})
	}
}

// exampleInventory is example.toml, which enables every role, with the
// passwords it reads from the environment set.
func exampleInventory(t *testing.T) *inventory.Inventory {
	t.Helper()
	t.Setenv("NATS_ADMIN_PASSWORD", "correct-horse-battery-staple")
	t.Setenv("NATS_PROD_PASSWORD", "another-long-password")
	inv, err := inventory.LoadWithOptions("../inventory/example.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// rendering is one role's desired state on each of its hosts.
type rendering struct {
	role  role.Role
	hosts []desired.Host
}

// renderAll renders every role on each of its hosts of inv, in the roles'
// order (the order apply runs them in).
func renderAll(t *testing.T, inv *inventory.Inventory) []rendering {
	t.Helper()
	var out []rendering
	for _, r := range All {
		rd := rendering{role: r}
		for _, h := range r.Hosts(inv) {
			d, err := r.Desired(role.Input{Inv: inv, Host: h})
			if err != nil {
				t.Fatalf("role %s on %s: %v", r.Name(), h.Name, err)
			}
			rd.hosts = append(rd.hosts, d)
		}
		out = append(out, rd)
	}
	return out
}

// Apply takes a role's files across every host as one wave, by the unit
// each names (apply.Waves): a file naming no unit of its own role would go
// with the first role's, and wait for nothing or be waited for.
func TestEveryFileNamesItsRolesUnit(t *testing.T) {
	inv := exampleInventory(t)
	seen := map[string]bool{}
	for _, rd := range renderAll(t, inv) {
		for _, d := range rd.hosts {
			seen[rd.role.Name()] = true
			units := map[string]bool{}
			for _, u := range d.Units {
				units[u.Name] = true
			}
			for _, f := range d.Files {
				if !units[f.Service] {
					t.Errorf("role %s on %s: %s names service %q, not one of the role's units", rd.role.Name(), d.Name, f.Path, f.Service)
				}
			}
		}
	}
	if len(seen) != len(All) {
		t.Errorf("roles rendered %v, want all %d: enable every role in example.toml", seen, len(All))
	}
}

// A unit's After can only be honoured for units of roles before its own
// (apply runs the roles in order): each must name one, on some host.
func TestAfterNamesAnEarlierRolesUnit(t *testing.T) {
	inv := exampleInventory(t)
	earlier := map[string]bool{}
	afters := 0
	for _, rd := range renderAll(t, inv) {
		var mine []string
		for _, d := range rd.hosts {
			for _, u := range d.Units {
				mine = append(mine, u.Name)
				for _, a := range u.After {
					afters++
					if !earlier[a] {
						t.Errorf("role %s: %s is after %s, which no earlier role runs", rd.role.Name(), u.Name, a)
					}
				}
			}
		}
		for _, u := range mine {
			earlier[u] = true
		}
	}
	if afters == 0 {
		t.Error("no unit names another in After; the surveyor and the exporter need NATS")
	}
}

// A unit that starts in one command with the next (StartsBefore) relies on
// its own unit file for the order, and on nothing else: the next unit must
// be the one listed after it, its file must say Before= that unit, and it
// has no ready gate that a start in one command would skip.
func TestStartsBeforeIsInTheUnitFile(t *testing.T) {
	inv := exampleInventory(t)
	pairs := 0
	for _, rd := range renderAll(t, inv) {
		r := rd.role
		for _, d := range rd.hosts {
			for i, u := range d.Units {
				if u.StartsBefore == "" {
					continue
				}
				pairs++
				if i+1 >= len(d.Units) || d.Units[i+1].Name != u.StartsBefore {
					t.Errorf("role %s: %s starts before %s, which is not the unit listed after it", r.Name(), u.Name, u.StartsBefore)
				}
				if u.Ready != nil {
					t.Errorf("role %s: %s starts before %s but has a ready gate", r.Name(), u.Name, u.StartsBefore)
				}
				var unitFile []byte
				for _, f := range d.Files {
					if f.Path == u.UnitFile {
						unitFile = f.Content
					}
				}
				if !regexp.MustCompile(`(?m)^Before=(.* )?` + regexp.QuoteMeta(u.StartsBefore) + `( |$)`).Match(unitFile) {
					t.Errorf("role %s: %s starts before %s, but its unit file %s has no Before= naming it:\n%s", r.Name(), u.Name, u.StartsBefore, u.UnitFile, unitFile)
				}
			}
		}
	}
	if pairs == 0 {
		t.Error("no unit starts before another; NATS' log copier starts before the server")
	}
}
