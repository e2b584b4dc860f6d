// Package health reads a nats-server's monitoring endpoints. The engine
// reaches them through the host's SSH connection (127.0.0.1 on the host), so
// monitoring ports never have to be open to the control machine.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Varz is the part of /varz the engine uses.
type Varz struct {
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	ConfigDigest string `json:"config_digest"`
}

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
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return body, resp.StatusCode, nil
}

// Healthz returns nil when /healthz answers 200. Without parameters this is
// the JetStream catch-up gate: a meta leader is known and every local
// replica is current, which is what a rolling restart must wait for.
func Healthz(ctx context.Context, c *http.Client, url string) error {
	body, code, err := Get(ctx, c, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", url, code, trim(body))
	}
	return nil
}

// GetVarz reads /varz.
func GetVarz(ctx context.Context, c *http.Client, url string) (Varz, error) {
	var v Varz
	body, code, err := Get(ctx, c, url)
	if err != nil {
		return v, err
	}
	if code != http.StatusOK {
		return v, fmt.Errorf("%s answered %d: %s", url, code, trim(body))
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("%s: %w", url, err)
	}
	return v, nil
}

// WaitHealthy polls /healthz until it answers 200 or timeout passes; the
// error then carries the last answer seen.
func WaitHealthy(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error { return Healthz(ctx, c, url) })
}

// WaitDigest polls /varz until config_digest equals want: a SIGHUP whose
// reload failed is only logged by nats-server, so this is the proof.
func WaitDigest(ctx context.Context, c *http.Client, url, want string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		v, err := GetVarz(ctx, c, url)
		if err != nil {
			return err
		}
		if v.ConfigDigest != want {
			return fmt.Errorf("config_digest is %q, want %q (the reload did not take effect)", v.ConfigDigest, want)
		}
		return nil
	})
}

func poll(ctx context.Context, timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
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
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func trim(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

// Jsz is the part of /jsz that tells whether the JetStream meta group is
// whole. Only the meta leader lists the replicas.
type Jsz struct {
	Meta struct {
		Leader      string `json:"leader"`
		ClusterSize int    `json:"cluster_size"`
		Replicas    []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// MetaSettled returns nil when the meta leader sees all other members of
// the JetStream meta group current and online. names[i] is the server name
// of the node at urls[i]; only the leader's own view counts (since 2.15
// followers list replicas too, with the other followers not current). A
// restarted node answers /healthz before the leader counts it back in;
// until then new R3 assets cannot be placed, and taking the next node down
// would leave the group one short.
func MetaSettled(ctx context.Context, clients []*http.Client, urls, names []string) error {
	n := len(names)
	var last string
	for i, c := range clients {
		body, code, err := Get(ctx, c, urls[i])
		if err != nil || code != http.StatusOK {
			last = fmt.Sprintf("%s: %v %d", urls[i], err, code)
			continue
		}
		var j Jsz
		if err := json.Unmarshal(body, &j); err != nil {
			last = fmt.Sprintf("%s: %v", urls[i], err)
			continue
		}
		if j.Meta.Leader != names[i] {
			continue // a follower's view
		}
		var behind []string
		for _, r := range j.Meta.Replicas {
			if !r.Current || r.Offline {
				behind = append(behind, r.Name)
			}
		}
		if len(j.Meta.Replicas) != n-1 || len(behind) > 0 {
			return fmt.Errorf("meta leader %s sees %d of %d peers, not current: %v", j.Meta.Leader, len(j.Meta.Replicas), n-1, behind)
		}
		return nil
	}
	if last == "" {
		last = "no node reports itself meta leader"
	}
	return fmt.Errorf("JetStream meta group not settled: %s", last)
}

// WaitMetaSettled polls MetaSettled until it holds or timeout passes.
func WaitMetaSettled(ctx context.Context, clients []*http.Client, urls, names []string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error { return MetaSettled(ctx, clients, urls, names) })
}
