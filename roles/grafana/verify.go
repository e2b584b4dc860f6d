package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

func base(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// readyGate: /api/health needs no login and answers 200 with "database":
// "ok" once Grafana serves and reaches its database (503 and "failing"
// otherwise; pkg/api/http_server.go apiHealthHandler).
func readyGate(port int) *desired.Gate {
	return &desired.Gate{
		Desc: "/api/health",
		Check: func(ctx context.Context, n desired.Node) error {
			return (&client{http: n.Remote.HTTPClient(), base: base(port)}).health(ctx)
		},
	}
}

// client calls Grafana's HTTP API on the host's loopback.
type client struct {
	http *http.Client
	base string
}

// errStatus is an answer with an unexpected status code.
type errStatus struct {
	path string
	code int
	body []byte
}

func (e *errStatus) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.path, e.code, strings.TrimSpace(health.Trim(e.body)))
}

// get fetches path, with basic auth when user is set, and decodes a 200
// answer into out.
func (c *client) get(ctx context.Context, path, user, pass string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, health.MaxBody))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &errStatus{path: path, code: resp.StatusCode, body: body}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: %w: %s", path, err, health.Trim(body))
	}
	return nil
}

func (c *client) health(ctx context.Context) error {
	var h struct {
		Database string `json:"database"`
	}
	if err := c.get(ctx, "/api/health", "", "", &h); err != nil {
		return err
	}
	if h.Database != "ok" {
		return fmt.Errorf("/api/health: database is %q", h.Database)
	}
	return nil
}

// settle is how long verify waits for a Grafana that has just started:
// provisioning and the first datasource query can take a few seconds.
var settle = 30 * time.Second

// retry calls f until it returns nil or settle passes; the last error
// stands.
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(settle)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// weakPasswords are logins that must fail: Grafana's default admin
// password and the seed's.
var weakPasswords = []string{"admin", "admin123"}

// verifyHost runs the four checks against one Grafana; c is nil when the
// host is not connected. Every check is one row, so the report's rows are
// the same whatever fails.
func verifyHost(ctx context.Context, c *client, host, password string) []report.Result {
	ds, dsErr := dashboards.All()
	var uids []string
	for _, d := range ds {
		uids = append(uids, d.UID)
	}
	checks := []struct {
		name, expected string
		run            func() error
		// once: never retried. Grafana counts failed logins and locks
		// the user out after a few within minutes (its brute-force
		// protection), so the login check makes at most one attempt per
		// password, last, after every login that must work.
		once bool
	}{
		{"grafana/health", "/api/health 200, database ok", func() error { return c.health(ctx) }, false},
		{"grafana/datasource", "datasource " + dashboards.DatasourceUID + " health OK", func() error { return checkDatasource(ctx, c, password) }, false},
		{"grafana/dashboards", "dashboards " + strings.Join(uids, ", "), func() error {
			if dsErr != nil {
				return dsErr
			}
			return checkDashboards(ctx, c, password, uids)
		}, false},
		{"grafana/login", AdminUser + " logs in with the stored password, not with " + strings.Join(weakPasswords, " or "),
			func() error { return checkLogin(ctx, c, password) }, true},
	}
	out := make([]report.Result, 0, len(checks))
	for _, ch := range checks {
		start := time.Now()
		res := report.Result{Check: ch.name, Target: host, Expected: ch.expected}
		switch {
		case c == nil:
			res.Seen = "not connected"
		case password == "" && ch.name != "grafana/health":
			res.Seen = "no admin password in the secrets store"
		default:
			run := ch.run
			if !ch.once {
				run = func() error { return retry(ctx, ch.run) }
			}
			if err := run(); err != nil {
				res.Seen = err.Error()
			} else {
				res.OK, res.Seen = true, "ok"
			}
		}
		res.Duration = time.Since(start)
		out = append(out, res)
	}
	return out
}

// checkDatasource asks Grafana to run its own health check of the
// provisioned datasource: Grafana's server querying Prometheus, the path
// every panel takes.
func checkDatasource(ctx context.Context, c *client, password string) error {
	var h struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := c.get(ctx, "/api/datasources/uid/"+url.PathEscape(dashboards.DatasourceUID)+"/health", AdminUser, password, &h); err != nil {
		return err
	}
	if h.Status != "OK" {
		return fmt.Errorf("datasource health %s: %s", h.Status, h.Message)
	}
	return nil
}

func checkDashboards(ctx context.Context, c *client, password string, want []string) error {
	var hits []struct {
		UID string `json:"uid"`
	}
	if err := c.get(ctx, "/api/search?type=dash-db&limit=5000", AdminUser, password, &hits); err != nil {
		return err
	}
	have := make([]string, len(hits))
	for i, h := range hits {
		have[i] = h.UID
	}
	var missing []string
	for _, uid := range want {
		if !slices.Contains(have, uid) {
			missing = append(missing, uid)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not provisioned: %s (Grafana lists %d dashboards)", strings.Join(missing, ", "), len(hits))
	}
	return nil
}

func checkLogin(ctx context.Context, c *client, password string) error {
	if err := c.get(ctx, "/api/user", AdminUser, password, nil); err != nil {
		return fmt.Errorf("the stored password: %w", err)
	}
	for _, weak := range weakPasswords {
		if weak == password {
			return fmt.Errorf("the stored admin password is the well-known %q; set another", weak)
		}
		err := c.get(ctx, "/api/user", AdminUser, weak, nil)
		var st *errStatus
		switch {
		case err == nil:
			return fmt.Errorf("%s/%s is accepted", AdminUser, weak)
		case errors.As(err, &st) && st.code == http.StatusUnauthorized:
		default:
			return fmt.Errorf("%s/%s: want 401, got %w", AdminUser, weak, err)
		}
	}
	return nil
}
