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
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/internal/verifycache"
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
	// TLS is the CA bundle and each node's certificate; nil when the
	// inventory turns TLS off, and in claims-only renders (then a role
	// renders placeholders for the certificate files).
	TLS *pki.Material
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
	// TLS is nil when the inventory turns TLS off.
	TLS *pki.Material
	// Proofs keeps what the roles' verifiers proved, for later runs; nil
	// keeps nothing.
	Proofs *verifycache.Store
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

// Departure is a member of a role's live cluster that the inventory no
// longer names: scale-in.
type Departure struct {
	Role, Name string
	// Address is where the member was last seen; "" when no member
	// reports a link to it (it is down): there is nothing to stop.
	Address string
	// Units are the role's units to stop and disable on it.
	Units []string
}

// Remover is implemented by a role whose members form a cluster that
// remembers them: removing a host from the inventory is then more than
// not deploying to it any more.
type Remover interface {
	// Departed asks the live cluster (through the hosts the inventory
	// still names) which members the inventory no longer names. A
	// cluster that does not run yet has none.
	Departed(ctx context.Context, env Env) ([]Departure, error)
	// CheckRemoval returns an error, before anything is changed, when
	// removing ds would lose data or leave the cluster short (say, a
	// stream with more replicas than members left); the error says why
	// and what to do. env.Remote reaches the departing members too, when
	// they could be reached.
	CheckRemoval(ctx context.Context, env Env, ds []Departure) error
	// Remove takes departed members out of the cluster once their
	// service is stopped, and waits until what they held is held by the
	// members left.
	Remove(ctx context.Context, env Env, ds []Departure, logf func(format string, args ...any)) error
}
