package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// cluRole is a clustered service the engine has never heard of: on the
// hosts it names, a helper unit and a clustered unit with every gate, the
// gates reading the state the test sets.
type cluRole struct {
	name  string
	on    []string // host names; every host when nil
	units []desired.Unit
}

func (r cluRole) Name() string { return r.name }
func (r cluRole) Hosts(inv *inventory.Inventory) []inventory.Host {
	var out []inventory.Host
	for _, h := range inv.Hosts {
		if r.on == nil || strings.Contains(" "+strings.Join(r.on, " ")+" ", " "+h.Name+" ") {
			out = append(out, h)
		}
	}
	return out
}
func (cluRole) Secrets(*inventory.Inventory) []secrets.Slot { return nil }
func (cluRole) Artifacts(*inventory.Inventory, string) ([]artifact.Release, error) {
	return nil, nil
}
func (r cluRole) Desired(in role.Input) (desired.Host, error) {
	return desired.Host{Name: in.Host.Name, Units: r.units}, nil
}
func (cluRole) Verify(context.Context, role.Env) []report.Result { return nil }

// cluster is the state the clustered unit's gates read.
type cluster struct {
	mu     sync.Mutex
	leader string
	down   map[string]bool
}

func (c *cluster) units() []desired.Unit {
	return []desired.Unit{
		{Name: "helper.service"},
		{
			Name: "clu.service",
			Ready: &desired.Gate{Desc: "ready", Check: func(_ context.Context, n desired.Node) error {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.down[n.Name] {
					return fmt.Errorf("%s answers 503", n.Name)
				}
				return nil
			}},
			Settled: &desired.ClusterGate{Desc: "settled", Check: func(context.Context, []desired.Node) error { return nil }},
			Order: &desired.OrderGate{Desc: "the leader", Last: func(context.Context, []desired.Node) (string, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.leader, nil
			}},
		},
	}
}

func threeHosts() *inventory.Inventory {
	return &inventory.Inventory{Path: "test.toml", Hosts: []inventory.Host{
		{Name: "h1", Address: "192.0.2.1"}, {Name: "h2", Address: "192.0.2.2"}, {Name: "h3", Address: "192.0.2.3"},
	}}
}

func restartRoles(c *cluster) []role.Role {
	return []role.Role{
		cluRole{name: "clu", units: c.units()},
		cluRole{name: "mon", on: []string{"h2"}, units: []desired.Unit{{Name: "mon.service"}}},
		cluRole{name: "off", on: []string{"nowhere"}, units: []desired.Unit{{Name: "off.service"}}},
	}
}

func TestChooseRestart(t *testing.T) {
	rs := restartRoles(&cluster{})
	tests := []struct {
		name         string
		roles, hosts []string
		want         string // units | hosts | on, or the error
	}{
		{"default: the clustered units everywhere", nil, nil, "clu.service | h1 h2 h3 | h1=clu.service h2=clu.service h3=clu.service"},
		{"one host", nil, []string{"h2"}, "clu.service | h2 | h2=clu.service"},
		{"hosts in inventory order whatever the flags' order", nil, []string{"h3", "h1"}, "clu.service | h1 h3 | h1=clu.service h3=clu.service"},
		{"a role: all its units", []string{"clu"}, nil, "helper.service clu.service | h1 h2 h3 | h1=helper.service,clu.service h2=helper.service,clu.service h3=helper.service,clu.service"},
		{"a role on one host", []string{"mon"}, nil, "mon.service | h2 | h2=mon.service"},
		{"two roles", []string{"mon", "clu"}, []string{"h2"}, "helper.service clu.service mon.service | h2 | h2=helper.service,clu.service,mon.service"},
		{"a host without the role", []string{"mon"}, []string{"h1"}, "error: --host h1: it runs no unit of role mon; nothing to restart there"},
		{"unknown role", []string{"nope"}, nil, "error: --role nope: no such role; the inventory runs clu, mon"},
		{"role not in this inventory", []string{"off"}, nil, "error: --role off: the inventory does not run it; it runs clu, mon"},
		{"unknown host", nil, []string{"h9"}, "error: --host h9: no such host in test.toml; it has h1, h2, h3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ChooseRestart(threeHosts(), rs, tc.roles, tc.hosts)
			got := ""
			if err != nil {
				got = "error: " + err.Error()
			} else {
				var on []string
				for _, h := range c.Hosts {
					on = append(on, h+"="+strings.Join(c.On[h], ","))
				}
				got = strings.Join(c.Units, " ") + " | " + strings.Join(c.Hosts, " ") + " | " + strings.Join(on, " ")
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	// No clustered unit anywhere: a role must be named.
	_, err := ChooseRestart(threeHosts(), rs[1:], nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing to restart: no host runs a clustered service; name the role with --role (mon)") {
		t.Errorf("no clustered unit: %v", err)
	}
}

func restartSession(t *testing.T, c *cluster) (*Session, *[]string) {
	t.Helper()
	inv := threeHosts()
	var log []string
	var mu sync.Mutex
	conns := map[string]apply.Conn{}
	for _, h := range inv.Hosts {
		conns[h.Name] = &host{name: h.Name, log: &log, mu: &mu}
	}
	return New(inv, restartRoles(c), nil, conns, io.Discard), &log
}

var fastRestart = apply.Timeouts{Health: time.Second, Preflight: 200 * time.Millisecond}

// The session rolls the chosen hosts with every host of the unit in view:
// the leader last, and a host not chosen still has to be ready.
func TestSessionRestart(t *testing.T) {
	c := &cluster{leader: "h1", down: map[string]bool{}}
	s, log := restartSession(t, c)
	choice, err := ChooseRestart(s.Inv, s.Roles, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.Restart(context.Background(), choice, fastRestart)
	if err != nil {
		t.Fatal(err)
	}
	restarts := func() string {
		var out []string
		for _, l := range *log {
			if strings.Contains(l, "systemctl restart") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "; ")
	}
	if got := restarts(); got != "h2: systemctl restart clu.service; h3: systemctl restart clu.service; h1: systemctl restart clu.service" {
		t.Errorf("restarts: %s", got)
	}
	if got := RestartSummary(choice, done); strings.Join(got, "\n") != "clu.service: restarted on h2, h3, h1" {
		t.Errorf("summary %q", got)
	}

	*log = nil
	c.down["h3"] = true
	choice, _ = ChooseRestart(s.Inv, s.Roles, nil, []string{"h1"})
	done, err = s.Restart(context.Background(), choice, fastRestart)
	if err == nil || !strings.Contains(err.Error(), "host h3: clu.service is not ready") || len(done) != 0 {
		t.Fatalf("with h3 down: %v, %v", done, err)
	}
	if got := restarts(); got != "" {
		t.Errorf("restarted with h3 down: %s", got)
	}
	if got := RestartSummary(choice, done); strings.Join(got, "\n") != "clu.service: not restarted on h1" {
		t.Errorf("summary %q", got)
	}
}

func TestRestartSummary(t *testing.T) {
	r := func(h, u string) apply.Restarted { return apply.Restarted{Host: h, Unit: u} }
	c := RestartChoice{
		Units: []string{"a.service", "b.service"},
		Hosts: []string{"h1", "h2", "h3"},
		On:    map[string][]string{"h1": {"a.service", "b.service"}, "h2": {"a.service", "b.service"}, "h3": {"a.service"}},
	}
	tests := []struct {
		name string
		done []apply.Restarted
		want string
	}{
		{"all", []apply.Restarted{r("h2", "a.service"), r("h3", "a.service"), r("h1", "a.service"), r("h1", "b.service"), r("h2", "b.service")},
			"a.service: restarted on h2, h3, h1 | b.service: restarted on h1, h2"},
		{"stopped in the first unit", []apply.Restarted{r("h2", "a.service")},
			"a.service: restarted on h2; not restarted on h1, h3 | b.service: not restarted on h1, h2"},
		{"nothing", nil, "a.service: not restarted on h1, h2, h3 | b.service: not restarted on h1, h2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(RestartSummary(c, tc.done), " | "); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
