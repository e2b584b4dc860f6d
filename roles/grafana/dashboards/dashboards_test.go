package dashboards

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/files"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/promtest"
)

// The five dashboards the seed names, with uids that never change: Grafana
// keys provisioned dashboards (and users' bookmarks) by uid.
func TestAllIsTheSeedsFive(t *testing.T) {
	ds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ uid, title string }{
		{"natsdeploy-nats-overview", "NATS Overview"},
		{"natsdeploy-nats-servers", "NATS Servers"},
		{"natsdeploy-jetstream", "JetStream"},
		{"natsdeploy-nats-surveyor", "NATS Surveyor"},
		{"natsdeploy-prometheus-exporter", "Prometheus Exporter"},
	}
	if len(ds) != len(want) {
		t.Fatalf("All() = %d dashboards, want %d", len(ds), len(want))
	}
	for i, d := range ds {
		if d.UID != want[i].uid || d.Title != want[i].title || d.File != d.UID+".json" {
			t.Errorf("dashboard %d = %q %q %q, want %q %q", i, d.UID, d.Title, d.File, want[i].uid, want[i].title)
		}
		// Grafana accepts uids of at most 40 characters.
		if len(d.UID) > 40 {
			t.Errorf("%s: uid longer than 40 characters", d.UID)
		}
		var m map[string]any
		if err := json.Unmarshal(d.JSON, &m); err != nil {
			t.Fatalf("%s: %v", d.UID, err)
		}
		if m["uid"] != d.UID || m["title"] != d.Title {
			t.Errorf("%s: JSON has uid %v title %v", d.UID, m["uid"], m["title"])
		}
	}
}

// Rendering twice gives the same bytes, and they match testdata/ (go test
// -update rewrites it): a dashboard change is always a reviewed diff, and a
// re-apply never rewrites an unchanged file.
func TestGolden(t *testing.T) {
	a, err := All()
	if err != nil {
		t.Fatal(err)
	}
	b, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range a {
		if !bytes.Equal(d.JSON, b[i].JSON) {
			t.Errorf("%s: two renderings differ", d.UID)
		}
		golden.Check(t, filepath.Join("testdata", d.File), d.JSON)
	}
}

// Every panel, and every query in it, names the provisioned datasource by
// its fixed uid; so does every template variable.
func TestEveryPanelUsesTheFixedDatasource(t *testing.T) {
	ds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		var m struct {
			Panels []struct {
				Type       string          `json:"type"`
				Title      string          `json:"title"`
				Datasource *dsRef          `json:"datasource"`
				Targets    []targetJSON    `json:"targets"`
				GridPos    json.RawMessage `json:"gridPos"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Name       string `json:"name"`
					Datasource *dsRef `json:"datasource"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(d.JSON, &m); err != nil {
			t.Fatal(err)
		}
		panels := 0
		for _, p := range m.Panels {
			if p.Type == "row" {
				continue
			}
			panels++
			if !p.Datasource.ok() {
				t.Errorf("%s / %s: panel datasource %+v", d.UID, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s / %s: no query", d.UID, p.Title)
			}
			for _, q := range p.Targets {
				if !q.Datasource.ok() || q.Expr == "" || q.RefID == "" {
					t.Errorf("%s / %s: query %+v", d.UID, p.Title, q)
				}
			}
		}
		if panels == 0 {
			t.Errorf("%s: no panels", d.UID)
		}
		for _, v := range m.Templating.List {
			if !v.Datasource.ok() {
				t.Errorf("%s: variable %s datasource %+v", d.UID, v.Name, v.Datasource)
			}
		}
	}
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func (r *dsRef) ok() bool { return r != nil && r.Type == "prometheus" && r.UID == DatasourceUID }

type targetJSON struct {
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`
	RefID      string `json:"refId"`
}

// Queries lists exactly the queries in the JSON, each with a known source.
func TestQueriesMatchTheJSON(t *testing.T) {
	ds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		var m struct {
			Panels []struct {
				Title   string       `json:"title"`
				Targets []targetJSON `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(d.JSON, &m); err != nil {
			t.Fatal(err)
		}
		var inJSON []Query
		for _, p := range m.Panels {
			for _, q := range p.Targets {
				inJSON = append(inJSON, Query{Panel: p.Title, Expr: q.Expr})
			}
		}
		qs := Queries(d)
		if len(qs) != len(inJSON) {
			t.Fatalf("%s: Queries = %d, JSON has %d", d.UID, len(qs), len(inJSON))
		}
		for i, q := range qs {
			if q.Panel != inJSON[i].Panel || q.Expr != inJSON[i].Expr {
				t.Errorf("%s: query %d = %q %q, JSON has %q %q", d.UID, i, q.Panel, q.Expr, inJSON[i].Panel, inJSON[i].Expr)
			}
			if !slices.Contains([]string{SourceExporter, SourceSurveyor, SourcePrometheus}, q.Source) {
				t.Errorf("%s / %s: source %q", d.UID, q.Panel, q.Source)
			}
		}
	}
	if Queries(Dashboard{UID: "not-ours"}) != nil {
		t.Error("Queries of an unknown dashboard is not nil")
	}
}

func expand(expr string) string { return Expand(expr) }

// Every query parses with Prometheus's own parser, runs, and reads only
// metric names and labels that the exporter, the surveyor or Prometheus
// really export (testdata/metrics.txt, taken from upstream source).
//
// The parser is the real Prometheus binary on loopback, not
// github.com/prometheus/prometheus/promql/parser imported into this test:
// that import would add Prometheus and its dependency tree to go.mod for
// one test, while the binary is the very build the lab deploys.
func TestQueriesParseAndUseUpstreamNames(t *testing.T) {
	ds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := promtest.LoadCatalog(filepath.Join("testdata", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.Start(t)
	used := map[string]bool{}
	for _, d := range ds {
		for _, q := range Queries(d) {
			expr := expand(q.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s / %s: unexpanded variable in %s", d.UID, q.Panel, expr)
				continue
			}
			u, err := srv.Parse(expr)
			if err != nil {
				t.Errorf("%s / %s: %s: %v", d.UID, q.Panel, expr, err)
				continue
			}
			if _, err := srv.Query(expr); err != nil {
				t.Errorf("%s / %s: query %s: %v", d.UID, q.Panel, expr, err)
			}
			for _, p := range cat.Check(u) {
				t.Errorf("%s / %s: %s", d.UID, q.Panel, p)
			}
			for m := range u.Metrics {
				used[m] = true
				if e, ok := cat[m]; ok && e.Source != q.Source && e.Source != SourcePrometheus {
					t.Errorf("%s / %s: %s comes from the %s, but the query says %s", d.UID, q.Panel, m, e.Source, q.Source)
				}
			}
		}
		// Variables query label values of a metric: the same rules apply.
		for _, v := range specByUID(d.UID).vars {
			u, err := srv.Parse(v.metric)
			if err != nil {
				t.Errorf("%s: variable %s: %v", d.UID, v.name, err)
				continue
			}
			u.Grouping = append(u.Grouping, v.labelName)
			for _, p := range cat.Check(u) {
				t.Errorf("%s: variable %s: %s", d.UID, v.name, p)
			}
		}
	}
	// The parser must really be Prometheus's: a broken query is refused.
	if _, err := srv.Parse(`sum(rate(gnatsd_varz_in_msgs[1m])`); err == nil {
		t.Error("an unbalanced query parsed")
	} else if e, ok := err.(*promtest.APIError); !ok || e.Status != 400 || e.ErrorType != "bad_data" {
		t.Errorf("an unbalanced query: %v, want HTTP 400 bad_data", err)
	}
	t.Logf("%d distinct metrics used; catalogue has %d", len(used), len(cat))
}

var word = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// The catalogue holds only names in use, so that a reviewer checks what
// matters: every entry is read by a dashboard or by the alert rules.
func TestCatalogueHasNoUnusedNames(t *testing.T) {
	cat, err := promtest.LoadCatalog(filepath.Join("testdata", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := files.FS.ReadFile("prometheus/rules/nats.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	texts := []string{string(rules)}
	for _, s := range specs {
		for _, v := range s.vars {
			texts = append(texts, v.metric)
		}
		for _, r := range s.rows {
			for _, p := range r.panels {
				for _, tg := range p.targets {
					texts = append(texts, tg.expr)
				}
			}
		}
	}
	for _, text := range texts {
		for _, w := range word.FindAllString(text, -1) {
			used[w] = true
		}
	}
	for name := range cat {
		if !used[name] {
			t.Errorf("%s is in testdata/metrics.txt but no dashboard or rule reads it", name)
		}
	}
}

func specByUID(uid string) spec {
	for _, s := range specs {
		if s.uid == uid {
			return s
		}
	}
	return spec{}
}
