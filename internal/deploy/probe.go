package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/remote"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// Probe lets the verifier see each node through its SSH connection: the
// monitoring endpoint on the host's loopback and the unit's state, so
// neither port 8222 nor systemd has to be reachable from here.
type Probe struct{ Run *Run }

// HTTPGet fetches path from the node's monitoring port.
func (p Probe) HTTPGet(ctx context.Context, h inventory.Host, path string) ([]byte, int, error) {
	c, ok := p.Run.Conns[h.Name]
	if !ok {
		return nil, 0, fmt.Errorf("host %s: not connected", h.Name)
	}
	return health.Get(ctx, c.HTTPClient(), fmt.Sprintf("http://127.0.0.1:%d%s", p.Run.Inv.NATS.HTTPPort, path))
}

// ServiceActive asks systemd whether nats-server is active.
func (p Probe) ServiceActive(ctx context.Context, h inventory.Host) (bool, string, error) {
	c, ok := p.Run.Conns[h.Name]
	if !ok {
		return false, "", fmt.Errorf("host %s: not connected", h.Name)
	}
	res, err := c.Run(ctx, "systemctl is-active "+nats.Service, nil)
	state := strings.TrimSpace(string(res.Stdout))
	var exit *remote.ExitError
	if err != nil && !errors.As(err, &exit) {
		return false, state, err
	}
	return state == "active", state, nil
}
