package remote

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DialTCP opens a TCP connection from the host to addr (host:port, as the
// host resolves it), carried over the SSH connection as a direct-tcpip
// channel. "127.0.0.1:8222" reaches the host's own loopback, so monitoring
// ports need not be open to the control machine. The returned conn does not
// support deadlines (SSH channels have none): use a context.
func (c *Client) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := c.ssh.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("host %s: open tunnel to %s: %w", c.cfg.Host, addr, c.connErr(err))
	}
	return conn, nil
}

// HTTPTimeout bounds one request of HTTPClient, in case the caller's
// context has no deadline.
const HTTPTimeout = 30 * time.Second

// HTTPClient returns an HTTP client whose connections are opened by
// DialTCP: http://127.0.0.1:8222/healthz is the host's own monitoring
// port. It never uses a proxy from the environment (that would send the
// request somewhere else entirely). One client per connection, so idle
// tunnels are reused across health checks.
func (c *Client) HTTPClient() *http.Client {
	c.httpMu.Lock()
	defer c.httpMu.Unlock()
	if c.http == nil {
		c.http = &http.Client{
			Timeout: HTTPTimeout,
			Transport: &http.Transport{
				Proxy: nil,
				DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
					return c.DialTCP(ctx, addr)
				},
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       30 * time.Second,
				ResponseHeaderTimeout: HTTPTimeout,
				DisableCompression:    true,
			},
		}
	}
	return c.http
}
