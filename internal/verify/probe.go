package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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

// maxBody bounds what is read from a monitoring endpoint; /jsz and /routez
// of a busy server are far below it.
const maxBody = 8 << 20

func (p *HTTPProbe) HTTPGet(ctx context.Context, host inventory.Host, path string) ([]byte, int, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	url := fmt.Sprintf("http://%s:%d%s", host.Address, p.Port, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err // a *url.Error, which names method and URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return body, resp.StatusCode, nil
}

func (p *HTTPProbe) ServiceActive(context.Context, inventory.Host) (bool, string, error) {
	return false, "", fmt.Errorf("service state over HTTP: %w", ErrUnsupported)
}
