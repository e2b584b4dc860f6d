// Package role says what a role is to the engine. A role is one service
// natsdeploy installs (the NATS cluster, Prometheus, Grafana, ...): it picks
// its hosts from the inventory, names the release artifacts it needs, turns
// the inventory into the desired state of each of its hosts (users,
// directories, files, units with their gates) and adds its own checks to
// the verifier. The engine loops over roles and knows none of them by name.
package role

import (
	"context"

	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Role is one kind of service. Implementations are plain values; every
// method must be safe to call concurrently and must not touch a host.
type Role interface {
	// Name is the role's name in messages ("nats").
	Name() string
	// Hosts are the inventory hosts the role runs on, in inventory order;
	// none when the inventory does not enable it.
	Hosts(inv *inventory.Inventory) []inventory.Host
	// Artifacts describes the release archives the role needs for a host
	// of architecture arch (Go naming: "amd64"). The engine fetches and
	// verifies each once per run and passes the result to Desired.
	Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error)
	// Secrets names the secrets the role needs beyond the NATS users and
	// routes (a Grafana admin password, a surveyor credential): each is
	// resolved before any host is touched, generated when absent, and
	// kept in the secrets file. Role.Desired reads them from Input.Secrets.
	Secrets(inv *inventory.Inventory) []secrets.Slot
	// Desired is the role's part of one host's desired state.
	Desired(in Input) (desired.Host, error)
	// Verify adds the role's own checks to the report; the engine has
	// already checked every host's files and units.
	Verify(ctx context.Context, env Env) []report.Result
}

// Statuser is a role that adds its own view of its services to `natsdeploy
// status` (peers, leaders, use against limits): the engine already shows
// every unit's state, uptime, version and whether its files are as
// rendered. Optional. Status must change nothing and answer within
// seconds; a host for which Env.Remote is nil was not reached and gets no
// rows. A Service for a unit the role renders joins that unit's row.
type Statuser interface {
	Status(ctx context.Context, env Env) []status.Service
}

// Input is what a role renders a host from.
type Input struct {
	Inv  *inventory.Inventory
	Host inventory.Host
	// Secrets is nil when the engine only checks what roles claim on a
	// host (paths, users, units, ports), before any secret is resolved;
	// a role then renders with placeholders.
	Secrets *secrets.Store
	// Artifacts are the verified binaries, by Release.ID(). Nil when the
	// engine only needs paths and rendered files (facts probing, verify):
	// Binary then gives a placeholder.
	Artifacts map[string]artifact.Binary
}

// Binary returns the verified artifact name, or, when the engine renders
// without artifacts, a placeholder whose hash matches nothing.
func (in Input) Binary(name, version string) artifact.Binary {
	if b, ok := in.Artifacts[name]; ok {
		return b
	}
	return artifact.Binary{Path: "-", SHA256: "-", Version: version}
}

// Env is what a role's checks may use.
type Env struct {
	Inv     *inventory.Inventory
	Secrets *secrets.Store
	// Remote returns the connection to a host, or nil when there is none.
	Remote func(host string) desired.Remote
}

// On returns the roles of rs that run on the inventory host named host, in
// the order of rs.
func On(rs []Role, inv *inventory.Inventory, host string) []Role {
	var out []Role
	for _, r := range rs {
		for _, h := range r.Hosts(inv) {
			if h.Name == host {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
