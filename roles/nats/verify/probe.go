package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// NodeProbe reaches one node's monitoring endpoint and its service manager.
// The engine implements it over its SSH connections (so the monitoring port
// need not be open to the control machine); HTTPProbe does it over plain
// HTTP.
type NodeProbe interface {
	// HTTPGet fetches path (e.g. "/varz") from the node's monitoring port.
	HTTPGet(ctx context.Context, host inventory.Host, path string) (body []byte, status int, err error)
	// ServiceActive reports whether nats-server.service is active, with the
	// state as the service manager words it ("active", "failed", ...).
	// An error wrapping ErrUnsupported turns the check into a skip.
	ServiceActive(ctx context.Context, host inventory.Host) (active bool, state string, err error)
}

// ErrUnsupported is returned by a probe that cannot answer a question.
var ErrUnsupported = errors.New("not supported by this probe")

// HTTPProbe is a NodeProbe over plain HTTP to address:Port. It cannot see
// systemd, so ServiceActive is unsupported.
type HTTPProbe struct {
	Port   int          // monitoring port, the inventory's http_port
	Client *http.Client // default: 5s timeout
}

func (p *HTTPProbe) HTTPGet(ctx context.Context, host inventory.Host, path string) ([]byte, int, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return health.Get(ctx, client, fmt.Sprintf("http://%s:%d%s", host.Address, p.Port, path))
}

func (p *HTTPProbe) ServiceActive(context.Context, inventory.Host) (bool, string, error) {
	return false, "", fmt.Errorf("service state over HTTP: %w", ErrUnsupported)
}
