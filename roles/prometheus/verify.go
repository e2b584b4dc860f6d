package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

// settle is how long verify waits for a Prometheus that has just started
// or reloaded: targets are "unknown" until their first scrape, and a rate()
// needs two samples.
var settle = 45 * time.Second

// api calls Prometheus's HTTP API on the host's loopback and decodes data.
type api struct {
	c    *http.Client
	base string
}

func (a api) get(ctx context.Context, path string, data any) error {
	body, code, err := health.Get(ctx, a.c, a.base+path)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s answered %d: %s", path, code, health.Trim(body))
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

func verifyHost(ctx context.Context, env role.Env, h inventory.Host) []report.Result {
	rem := env.Remote(h.Name)
	if rem == nil {
		return []report.Result{{Check: "prometheus/targets", Target: h.Name, Expected: "a connection", Seen: "not connected"}}
	}
	a := api{c: rem.HTTPClient(), base: base(env.Inv.Monitoring.Prometheus.Port)}
	out := []report.Result{
		timed(func() report.Result { return checkTargets(ctx, a, env.Inv, h) }),
		timed(func() report.Result { return checkRules(ctx, a, h) }),
		timed(func() report.Result { return checkAlerts(ctx, a, h) }),
	}
	ds, err := dashboards.All()
	if err != nil {
		return append(out, report.Result{Check: "dashboard/queries", Target: h.Name, Expected: "the dashboards", Seen: err.Error()})
	}
	for _, d := range ds {
		out = append(out, timed(func() report.Result { return checkQueries(ctx, a, env.Inv, d) }))
	}
	return out
}

func timed(f func() report.Result) report.Result {
	start := time.Now()
	r := f()
	r.Duration = time.Since(start)
	return r
}

// retry calls f until it reports done or settle passes; the last answer
// stands. Checks report done at once when Prometheus does not answer, so
// a Prometheus that is down costs one failed row each, not a wait each.
func retry(ctx context.Context, f func() (report.Result, bool)) report.Result {
	deadline := time.Now().Add(settle)
	for {
		r, done := f()
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func checkTargets(ctx context.Context, a api, inv *inventory.Inventory, h inventory.Host) report.Result {
	var want []string
	for _, j := range Jobs(inv, h) {
		for _, t := range j.Targets {
			want = append(want, j.Name+"/"+t.Instance)
		}
	}
	slices.Sort(want)
	expected := "every target up: " + strings.Join(want, ", ")
	return retry(ctx, func() (report.Result, bool) {
		res := report.Result{Check: "prometheus/targets", Target: h.Name, Expected: expected}
		var data struct {
			Active []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := a.get(ctx, "/api/v1/targets?state=active", &data); err != nil {
			// Prometheus not answering is a verdict, not a wait.
			res.Seen = err.Error()
			return res, true
		}
		var seen, bad []string
		for _, t := range data.Active {
			id := t.Labels["job"] + "/" + t.Labels["instance"]
			seen = append(seen, id)
			if t.Health != "up" {
				bad = append(bad, fmt.Sprintf("%s %s %s", id, t.Health, t.LastError))
			}
		}
		slices.Sort(seen)
		switch {
		case !slices.Equal(seen, want):
			res.Seen = "targets " + strings.Join(seen, ", ")
			return res, false
		case len(bad) > 0:
			res.Seen = strings.Join(bad, "; ")
			return res, false
		}
		res.OK, res.Seen = true, fmt.Sprintf("%d targets up", len(seen))
		return res, true
	})
}

func checkRules(ctx context.Context, a api, h inventory.Host) report.Result {
	return retry(ctx, func() (report.Result, bool) {
		res := report.Result{Check: "prometheus/rules", Target: h.Name, Expected: "natsdeploy's rules loaded, none failing"}
		var data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := a.get(ctx, "/api/v1/rules", &data); err != nil {
			// Prometheus not answering is a verdict, not a wait.
			res.Seen = err.Error()
			return res, true
		}
		n := 0
		var bad []string
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				n++
				// "unknown" until the first evaluation; an error is final.
				if r.Health == "err" {
					bad = append(bad, fmt.Sprintf("%s: %s", r.Name, r.LastError))
				}
			}
		}
		switch {
		case n == 0:
			res.Seen = "no rules loaded"
			return res, false
		case len(bad) > 0:
			res.Seen = strings.Join(bad, "; ")
			return res, true
		}
		res.OK, res.Seen = true, fmt.Sprintf("%d rules in %d groups, none failing", n, len(data.Groups))
		return res, true
	})
}

func checkAlerts(ctx context.Context, a api, h inventory.Host) report.Result {
	res := report.Result{Check: "prometheus/alerts", Target: h.Name, Expected: "no alert pending or firing"}
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := a.get(ctx, "/api/v1/alerts", &data); err != nil {
		res.Seen = err.Error()
		return res
	}
	var active []string
	for _, al := range data.Alerts {
		active = append(active, fmt.Sprintf("%s on %s %s", al.Labels["alertname"], al.Labels["instance"], al.State))
	}
	if len(active) > 0 {
		res.Seen = strings.Join(active, "; ")
		return res
	}
	res.OK, res.Seen = true, "none active"
	return res
}

// sourceOn says whether the role a query reads is enabled, and why not.
func sourceOn(inv *inventory.Inventory, source string) (bool, string) {
	m := inv.Monitoring
	switch source {
	case dashboards.SourceExporter:
		return m.Exporter.On(), "monitoring.exporter is disabled"
	case dashboards.SourceSurveyor:
		return m.Surveyor.On(), "monitoring.surveyor is disabled"
	}
	return true, ""
}

// checkQueries runs every panel query of d as Grafana would with every
// variable at "All", over Prometheus's latest data: each must return at
// least one series. A panel whose source role is disabled is skipped.
func checkQueries(ctx context.Context, a api, inv *inventory.Inventory, d dashboards.Dashboard) report.Result {
	qs := dashboards.Queries(d)
	var run []dashboards.Query
	skipped := map[string]int{}
	for _, q := range qs {
		if on, why := sourceOn(inv, q.Source); !on {
			skipped[why]++
			continue
		}
		run = append(run, q)
	}
	var whys []string
	for why, n := range skipped {
		whys = append(whys, fmt.Sprintf("%d skipped: %s", n, why))
	}
	slices.Sort(whys)
	note := strings.Join(whys, "; ")
	if len(run) == 0 {
		return report.Result{Check: "dashboard/queries", Target: d.Title, Skipped: true, Seen: "no query to run: " + note}
	}
	return retry(ctx, func() (report.Result, bool) {
		res := report.Result{Check: "dashboard/queries", Target: d.Title, Expected: "every panel's query returns data"}
		var empty []string
		final := false
		for _, q := range run {
			var data struct {
				Result []json.RawMessage `json:"result"`
			}
			if err := a.get(ctx, "/api/v1/query?query="+url.QueryEscape(dashboards.Expand(q.Expr)), &data); err != nil {
				empty = append(empty, fmt.Sprintf("%q (%s): %v", q.Panel, q.Expr, err))
				final = true // an error, unlike missing data, does not pass with time
				continue
			}
			if len(data.Result) == 0 {
				empty = append(empty, fmt.Sprintf("%q (%s): no series", q.Panel, q.Expr))
			}
		}
		if len(empty) > 0 {
			res.Seen = strings.Join(empty, "; ")
			return res, final
		}
		res.OK = true
		res.Seen = fmt.Sprintf("%d queries return data", len(run))
		if note != "" {
			res.Seen += "; " + note
		}
		return res, true
	})
}
