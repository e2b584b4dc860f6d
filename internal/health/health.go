// Package health is what the engine needs to wait on a service: fetch a URL
// on a host's loopback (reached through the SSH connection, so monitoring
// ports never have to be open to the control machine) and poll a check
// until it passes. What "ready" means is each role's own business.
package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBody bounds what is read from an endpoint; monitoring JSON of a busy
// server is far below it.
const MaxBody = 8 << 20

// Get fetches url and returns the body and status code.
func Get(ctx context.Context, c *http.Client, url string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return body, resp.StatusCode, nil
}

// OK returns nil when url answers 200; otherwise the error carries the
// status and the start of the body, which is where services say why.
func OK(ctx context.Context, c *http.Client, url string) error {
	body, code, err := Get(ctx, c, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", url, code, Trim(body))
	}
	return nil
}

// Interval is the longest Poll waits between two tries. The first wait is
// FirstInterval and each next one doubles up to Interval: most services
// answer within a few tenths of a second of their start, and a fixed
// quarter second cost up to that much on every start and reload.
var (
	Interval      = 250 * time.Millisecond
	FirstInterval = 20 * time.Millisecond
)

// after is time.After; tests record the waits through it.
var after = time.After

// Poll calls try until it returns nil or timeout passes; the error then
// carries the last answer seen, so a timeout always says why.
func Poll(ctx context.Context, timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	wait := min(FirstInterval, Interval)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-after(wait):
		}
		wait = min(2*wait, Interval)
	}
}

// Trim shortens a body for an error message.
func Trim(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}
