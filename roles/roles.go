// Package roles is the registry: every role natsdeploy knows, in the order
// their units are started. Adding a role is a package under roles/ and a
// line here.
package roles

import (
	"errors"
	"fmt"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/exporter"
	"github.com/natsdeploy/natsdeploy/roles/grafana"
	"github.com/natsdeploy/natsdeploy/roles/nats"
	"github.com/natsdeploy/natsdeploy/roles/prometheus"
	"github.com/natsdeploy/natsdeploy/roles/surveyor"
)

// All is every role, in the order their units start: NATS first, then
// what watches it, Prometheus after them so its first scrapes find its
// targets, and Grafana, which reads Prometheus, last.
var All = []role.Role{
	nats.Role{},
	exporter.Role{},
	surveyor.Role{},
	prometheus.Role{},
	grafana.Role{},
}

// Check renders every host's desired state without artifacts or secrets
// and refuses two roles that claim the same path, unit or port, or a
// system user with different settings. It runs after inventory validation
// and before any connection; its problems carry file:line like the
// inventory's own.
func Check(inv *inventory.Inventory, rs []role.Role) error {
	var problems []inventory.Problem
	for _, h := range inv.Hosts {
		var parts []desired.Part
		for _, r := range role.On(rs, inv, h.Name) {
			d, err := r.Desired(role.Input{Inv: inv, Host: h, Secrets: nil})
			if err != nil {
				return fmt.Errorf("role %s on host %s: %w", r.Name(), h.Name, err)
			}
			parts = append(parts, desired.Part{Role: r.Name(), Host: d})
		}
		if _, err := desired.Merge(h.Name, parts...); err != nil {
			problems = append(problems, clashProblems(inv, h, err)...)
		}
	}
	return inventory.NewProblems(inv, problems)
}

func clashProblems(inv *inventory.Inventory, h inventory.Host, err error) []inventory.Problem {
	var out []inventory.Problem
	for _, e := range unjoin(err) {
		var c *desired.Clash
		if !errors.As(e, &c) {
			out = append(out, inventory.Problem{Key: inv.HostKey(h.Name), Msg: e.Error()})
			continue
		}
		key := c.Key
		if key == "" {
			key = inv.HostKey(h.Name)
		}
		out = append(out, inventory.Problem{Key: key, Msg: c.Error()})
	}
	return out
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
