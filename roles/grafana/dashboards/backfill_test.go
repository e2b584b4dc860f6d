package dashboards_test

// Every dashboard query returns data from the real Prometheus, over series
// backfilled (promtool tsdb create-blocks-from openmetrics) with exactly the
// names and labels that the exporter, the surveyor and Prometheus itself
// put on them. The series come from testdata/metrics.txt, never from the
// queries: a dashboard that reads a name or a label the catalogue lacks
// gets no data here and fails. Jobs and instance labels come from the
// Prometheus role's own scrape jobs for the lab inventory, with the
// exporter and the surveyor turned on.
//
// This is an external test package because roles/prometheus imports this
// package (its verify runs every dashboard query).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/internal/promtest"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
	"github.com/natsdeploy/natsdeploy/roles/prometheus"
)

const (
	step   = 15 * time.Second // the default scrape interval
	window = 30 * time.Minute
	// promtool backfills any time range, but Prometheus's head block covers
	// roughly the last 3h and the storage docs advise against backfilling
	// into it, so the window ends well before.
	windowAge = 4 * time.Hour
	// The stock rules file's path on the host, the first half of the
	// rule_group label Prometheus sets.
	rulesPath = "/etc/prometheus/" + prometheus.RulesFile
	// A JetStream route pool opens this many connections per peer (the
	// nats-server default), each its own route in /routez and in statsz.
	routePool = 3
)

// filters are the dashboard variables a query is also run with one value
// of, instead of "All": every series left must carry that value (or have
// aggregated the label away), and the value must be one the variable's own
// query lists.
var filters = []struct{ variable, value string }{
	{"instance", "nats-2"},
	{"server", "nats-2"},
	{"account", "DEV"},
}

// filterLabels are the labels each variable selects on in the dashboards.
var filterLabels = map[string][]string{
	"instance": {"instance"},
	"server":   {"server_name"},
	"account":  {"account", "account_name"},
}

func TestQueriesReturnBackfilledData(t *testing.T) {
	began := time.Now()
	cat, err := promtest.LoadCatalog(filepath.Join("testdata", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	w := labWorld(t)
	end := time.Now().Add(-windowAge).Truncate(time.Minute)
	start := end.Add(-window)
	n := int(window/step) + 1
	fams, err := w.families(cat, n)
	if err != nil {
		t.Fatal(err)
	}
	var om bytes.Buffer
	if err := promtest.WriteOpenMetrics(&om, fams, start, step); err != nil {
		t.Fatal(err)
	}
	srv := promtest.StartWithData(t, promtest.Backfill(t, om.Bytes()))
	// Late in the window, so that rate() over $__rate_interval and the
	// 5m lookback both find samples, and nothing after it could mask a gap.
	at := end.Add(-2 * time.Minute)

	ds, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	queries, filtered := 0, 0
	for _, d := range ds {
		vars := variables(t, d)
		for _, v := range vars {
			res, err := srv.QueryAt(fmt.Sprintf("count by (%s) (%s)", v.label, v.metric), at)
			if err != nil {
				t.Errorf("%s: variable $%s (label_values(%s, %s)): %v", d.UID, v.name, v.metric, v.label, err)
			} else if len(res) == 0 {
				t.Errorf("%s: variable $%s (label_values(%s, %s)) lists nothing", d.UID, v.name, v.metric, v.label)
			}
			for _, f := range filters {
				if f.variable == v.name && !slices.ContainsFunc(res, func(s promtest.Sample) bool { return s.Metric[v.label] == f.value }) {
					t.Errorf("%s: variable $%s does not list %q", d.UID, v.name, f.value)
				}
			}
		}
		for _, q := range dashboards.Queries(d) {
			queries++
			expr := dashboards.Expand(q.Expr)
			all, err := srv.QueryAt(expr, at)
			if err != nil {
				t.Errorf("%s / %s: %s: %v", d.UID, q.Panel, expr, err)
				continue
			}
			if len(all) == 0 {
				t.Errorf("%s / %s: %s returned no series from the backfilled %s metrics (a name or label not in testdata/metrics.txt?)", d.UID, q.Panel, expr, q.Source)
				continue
			}
			for _, f := range filters {
				if !strings.Contains(q.Expr, "$"+f.variable) {
					continue
				}
				if !slices.ContainsFunc(vars, func(v variable) bool { return v.name == f.variable }) {
					t.Errorf("%s / %s: uses $%s, which the dashboard does not define", d.UID, q.Panel, f.variable)
				}
				filtered++
				one := dashboards.Expand(strings.ReplaceAll(q.Expr, "$"+f.variable, f.value))
				got, err := srv.QueryAt(one, at)
				if err != nil {
					t.Errorf("%s / %s: with $%s=%s, %s: %v", d.UID, q.Panel, f.variable, f.value, one, err)
					continue
				}
				if len(got) == 0 {
					t.Errorf("%s / %s: with $%s=%s, %s returned no series (a label not in testdata/metrics.txt?)", d.UID, q.Panel, f.variable, f.value, one)
					continue
				}
				if others := labelValues(all, filterLabels[f.variable], f.value); len(others) == 0 {
					t.Errorf("%s / %s: with $%s at All, no series other than %s: the filter is not tested", d.UID, q.Panel, f.variable, f.value)
				}
				if others := labelValues(got, filterLabels[f.variable], f.value); len(others) > 0 {
					t.Errorf("%s / %s: with $%s=%s, %s also returned %v", d.UID, q.Panel, f.variable, f.value, one, others)
				}
			}
		}
	}
	t.Logf("%d queries (%d also with one variable value) over %d backfilled families (%d bytes of OpenMetrics) in %s",
		queries, filtered, len(fams), om.Len(), time.Since(began).Round(time.Millisecond))
}

// labelValues lists the values of labels in res other than want.
func labelValues(res []promtest.Sample, labels []string, want string) []string {
	var out []string
	for _, s := range res {
		for _, l := range labels {
			if v, ok := s.Metric[l]; ok && v != want {
				out = append(out, l+"="+v)
			}
		}
	}
	return out
}

type variable struct{ name, metric, label string }

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variables reads the dashboard's template variables from its JSON, as
// Grafana would.
func variables(t *testing.T, d dashboards.Dashboard) []variable {
	t.Helper()
	var m struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(d.JSON, &m); err != nil {
		t.Fatal(err)
	}
	var out []variable
	for _, v := range m.Templating.List {
		sm := labelValuesQuery.FindStringSubmatch(v.Definition)
		if sm == nil {
			t.Errorf("%s: variable %s: %q is not label_values(metric, label)", d.UID, v.Name, v.Definition)
			continue
		}
		out = append(out, variable{v.Name, sm[1], sm[2]})
	}
	return out
}

// world is what the generated series describe: the lab's cluster with its
// JetStream accounts holding two R3 streams each, scraped as the
// Prometheus role configures it.
type world struct {
	cluster    string
	servers    []string            // NATS server names = inventory host names
	jobs       map[string][]string // scrape job -> instance labels
	accounts   []string            // accounts with JetStream
	streams    []string
	consumers  []string
	ruleGroups []string
}

func labWorld(t *testing.T) world {
	t.Helper()
	inv, err := inventory.LoadWithOptions(filepath.Join(lab.RepoRoot(), "inventory", "lab.toml"), inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	on := true
	inv.Monitoring.Exporter.Enabled = &on
	inv.Monitoring.Surveyor.Enabled = &on
	self, ok := inv.MonitoringHost()
	if !ok {
		t.Fatal("lab inventory: no monitoring host")
	}
	w := world{cluster: inv.NATS.ClusterName, jobs: map[string][]string{},
		streams: []string{"ORDERS", "EVENTS"}, consumers: []string{"worker", "audit"}}
	for _, h := range inv.NATSHosts() {
		w.servers = append(w.servers, h.Name)
	}
	for _, j := range prometheus.Jobs(inv, self) {
		for _, tg := range j.Targets {
			w.jobs[j.Name] = append(w.jobs[j.Name], tg.Instance)
		}
	}
	for _, a := range inv.Accounts {
		if a.JetStream != nil {
			w.accounts = append(w.accounts, a.Name)
		}
	}
	rules, err := prometheus.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^  - name: (\S+)$`).FindAllSubmatch(rules, -1) {
		w.ruleGroups = append(w.ruleGroups, string(m[1]))
	}
	if len(w.servers) < 3 || len(w.accounts) == 0 || len(w.ruleGroups) == 0 || len(w.jobs[prometheus.JobExporter]) == 0 || len(w.jobs[prometheus.JobSurveyor]) == 0 {
		t.Fatalf("lab world incomplete: %+v", w)
	}
	return w
}

// point is one series being built: its labels so far, and the NATS objects
// it is about, from which the remaining labels take their values.
type point struct {
	labels                            map[string]string
	server, account, stream, consumer string
	peer, route, ruleGroup            string
}

func (p point) with(f func(*point)) point {
	q := p
	q.labels = map[string]string{}
	for k, v := range p.labels {
		q.labels[k] = v
	}
	f(&q)
	return q
}

func has(labels []string, names ...string) bool {
	for _, l := range names {
		if slices.Contains(labels, l) {
			return true
		}
	}
	return false
}

// families builds every catalogue metric's series, n samples each.
func (w world) families(cat promtest.Catalog, n int) ([]promtest.Family, error) {
	names := make([]string, 0, len(cat))
	for name := range cat {
		names = append(names, name)
	}
	slices.Sort(names)
	var fams []promtest.Family
	for _, name := range names {
		e := cat[name]
		var pts []point
		// Who scrapes it: Prometheus adds job and instance to every series.
		switch {
		case e.Source == dashboards.SourceExporter:
			// Each exporter reads the NATS node on its own host.
			for _, inst := range w.jobs[prometheus.JobExporter] {
				pts = append(pts, point{labels: map[string]string{"job": prometheus.JobExporter, "instance": inst}, server: inst})
			}
		case e.Source == dashboards.SourceSurveyor:
			for _, inst := range w.jobs[prometheus.JobSurveyor] {
				pts = append(pts, point{labels: map[string]string{"job": prometheus.JobSurveyor, "instance": inst}})
			}
		case e.Source == dashboards.SourcePrometheus && strings.HasSuffix(e.File, ":scrape/scrape.go"):
			// Written by the scrape loop for every target of every job.
			for job, insts := range w.jobs {
				for _, inst := range insts {
					pts = append(pts, point{labels: map[string]string{"job": job, "instance": inst}})
				}
			}
		case e.Source == dashboards.SourcePrometheus:
			for _, inst := range w.jobs[prometheus.JobPrometheus] {
				pts = append(pts, point{labels: map[string]string{"job": prometheus.JobPrometheus, "instance": inst}})
			}
		default:
			return nil, fmt.Errorf("%s: unknown source %q", name, e.Source)
		}
		// What it is about: one series per object its labels name.
		if e.Source == dashboards.SourceSurveyor && has(e.Labels, "server_id", "server_name") {
			pts = fan(pts, w.servers, func(p *point, s string) { p.server = s })
		}
		if has(e.Labels, "stream_name", "stream") {
			// R3 streams: every node holds a replica.
			pts = fan(pts, w.accounts, func(p *point, a string) { p.account = a })
			pts = fan(pts, w.streams, func(p *point, s string) { p.stream = s })
		} else if has(e.Labels, "account", "account_name") {
			pts = fan(pts, w.accounts, func(p *point, a string) { p.account = a })
		}
		if has(e.Labels, "consumer_name") {
			pts = fan(pts, w.consumers, func(p *point, c string) { p.consumer = c })
		}
		if has(e.Labels, "server_route_name") {
			var next []point
			for _, p := range pts {
				for _, peer := range w.servers {
					if peer == p.server {
						continue
					}
					for i := range routePool {
						next = append(next, p.with(func(q *point) { q.peer, q.route = peer, fmt.Sprint(routeID(p.server, peer, i)) }))
					}
				}
			}
			pts = next
		}
		if has(e.Labels, "rule_group") {
			pts = fan(pts, w.ruleGroups, func(p *point, g string) { p.ruleGroup = g })
		}
		f := promtest.Family{Name: name}
		for _, p := range pts {
			for _, l := range e.Labels {
				v, err := w.value(l, p)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				p.labels[l] = v
			}
			f.Series = append(f.Series, promtest.Series{Labels: p.labels, Values: w.samples(name, p, n)})
		}
		fams = append(fams, f)
	}
	return fams, nil
}

func fan(pts []point, values []string, set func(*point, string)) []point {
	var out []point
	for _, p := range pts {
		for _, v := range values {
			out = append(out, p.with(func(q *point) { set(q, v) }))
		}
	}
	return out
}

// value is the value upstream gives label l on a series about p. A label
// the catalogue gains and this does not know fails the test, so that its
// values get written here rather than guessed.
func (w world) value(l string, p point) (string, error) {
	leader := func(of string) string { return w.servers[int(hash(of)%uint32(len(w.servers)))] }
	streamKey := p.account + "/" + p.stream
	need := func(v, what string) (string, error) {
		if v == "" {
			return "", fmt.Errorf("label %s needs a %s, and the series has none", l, what)
		}
		return v, nil
	}
	switch l {
	case "server_id":
		if _, err := need(p.server, "server"); err != nil {
			return "", err
		}
		return serverID(p.server), nil
	case "server_name":
		return need(p.server, "server")
	case "cluster", "server_cluster", "cluster_name":
		return w.cluster, nil
	case "domain":
		// natsdeploy sets no JetStream domain: upstream's label is empty,
		// which a scrape drops.
		return "", nil
	case "meta_leader":
		return w.servers[0], nil
	case "is_meta_leader":
		return fmt.Sprint(p.server == w.servers[0]), nil
	case "account", "account_id", "account_name":
		// Accounts from the config file: the account's id is its name.
		return need(p.account, "account")
	case "stream_name", "stream":
		return need(p.stream, "stream")
	case "stream_leader":
		return leader(streamKey), nil
	case "is_stream_leader":
		return fmt.Sprint(p.server == leader(streamKey)), nil
	case "stream_raft_group", "raft_group":
		return fmt.Sprintf("S-R3F-%08x", hash(streamKey)), nil
	case "consumer_name":
		return need(p.consumer, "consumer")
	case "consumer_leader":
		return leader(streamKey + "/" + p.consumer), nil
	case "is_consumer_leader":
		return fmt.Sprint(p.server == leader(streamKey+"/"+p.consumer)), nil
	case "consumer_desc":
		return p.consumer + " of " + p.stream, nil
	case "server_route_name":
		return need(p.peer, "route peer")
	case "server_route_name_id":
		return need(p.route, "route")
	case "rule_group":
		return rulesPath + ";" + p.ruleGroup, nil
	}
	return "", fmt.Errorf("no value known for label %q: add it to the generator in backfill_test.go", l)
}

// samples are n values for a series. Status metrics hold their healthy
// value; everything else grows steadily from a per-series level, so that a
// counter's rate() and increase() see traffic and a gauge reads a
// plausible non-zero number.
func (w world) samples(name string, p point, n int) []float64 {
	fixed := map[string]float64{
		"up": 1, "nats_up": 1, "prometheus_config_last_reload_successful": 1,
		"gnatsd_healthz_status": 0, "jetstream_server_jetstream_disabled": 0,
		"nats_survey_expected_count": float64(len(w.servers)), "nats_survey_surveyed_count": float64(len(w.servers)),
	}
	vs := make([]float64, n)
	if v, ok := fixed[name]; ok {
		for i := range vs {
			vs[i] = v
		}
		return vs
	}
	keys := make([]string, 0, len(p.labels))
	for k, v := range p.labels {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	h := hash(name + "{" + strings.Join(keys, ",") + "}")
	base, slope := float64(100+h%900), float64(1+h%7)
	for i := range vs {
		vs[i] = base + slope*float64(i)
	}
	return vs
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// serverID is a stable server id shaped like nats-server's: 56 characters
// of upper-case base32 starting with N.
func serverID(name string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := []byte{'N'}
	for i := 0; len(b) < 56; i++ {
		b = append(b, alphabet[hash(path.Join(name, fmt.Sprint(i)))%32])
	}
	return string(b)
}

func routeID(server, peer string, i int) uint32 { return hash(server+">"+peer)%1000 + uint32(i) }
