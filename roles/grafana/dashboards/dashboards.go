// Package dashboards builds natsdeploy's Grafana dashboards (the five the
// seed names) with the Grafana Foundation SDK. Each dashboard is described
// once, here, as rows of panels whose queries say which role's metrics they
// read; All renders the JSON Grafana provisions, Queries lists what a
// verifier runs against Prometheus to prove every panel shows data.
package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DatasourceUID is the uid of the Prometheus datasource natsdeploy
// provisions. Every panel and query names it, so renaming the datasource
// never breaks a dashboard (TiUP's rewritten datasource names did).
const DatasourceUID = "natsdeploy-prometheus"

// The roles whose metrics a query reads. A verifier reports a panel whose
// source role is disabled as skipped instead of failed.
const (
	SourceExporter   = "exporter"
	SourceSurveyor   = "surveyor"
	SourcePrometheus = "prometheus"
)

// Dashboard is one rendered dashboard: its fixed uid and title, the file
// name it is provisioned under, and its JSON.
type Dashboard struct {
	UID, Title, File string
	JSON             []byte
}

// Query is one panel query: the panel's title, the PromQL as the panel sends
// it (with Grafana variables such as $instance and $__rate_interval), and
// the role whose metrics it reads.
type Query struct {
	Panel, Expr, Source string
}

// All renders every dashboard, in a fixed order, as indented JSON that is
// the same bytes on every run.
func All() ([]Dashboard, error) {
	out := make([]Dashboard, 0, len(specs))
	for _, s := range specs {
		b, err := s.render()
		if err != nil {
			return nil, fmt.Errorf("dashboard %q: %w", s.title, err)
		}
		out = append(out, Dashboard{UID: s.uid, Title: s.title, File: s.uid + ".json", JSON: b})
	}
	return out, nil
}

// Queries lists every panel query of d, in panel order; nil for a dashboard
// this package did not build.
func Queries(d Dashboard) []Query {
	for _, s := range specs {
		if s.uid != d.UID {
			continue
		}
		var qs []Query
		for _, r := range s.rows {
			for _, p := range r.panels {
				for _, t := range p.targets {
					qs = append(qs, Query{Panel: p.title, Expr: t.expr, Source: t.source})
				}
			}
		}
		return qs
	}
	return nil
}

type kind int

const (
	timeSeries kind = iota
	singleStat
)

type target struct{ expr, legend, source string }

type panel struct {
	kind        kind
	title, unit string
	description string
	targets     []target
}

type row struct {
	title  string
	panels []panel
}

// variable is a query variable listing one label's values; multi-select
// with "All" as the regex .* so that the query matchers stay =~"$name".
type variable struct {
	name, label, metric, labelName string
}

type spec struct {
	uid, title, description string
	vars                    []variable
	rows                    []row
}

func datasource() common.DataSourceRef {
	typ, uid := "prometheus", DatasourceUID
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

func (s spec) render() ([]byte, error) {
	// The classic dashboard JSON (schema v1), not the SDK's dashboardv2:
	// file provisioning reads v1 in every Grafana a user may run, while v2
	// is Grafana 12's newer schema that older releases cannot load.
	//lint:ignore SA1019 v1 is deliberate, see above
	b := dashboard.NewDashboardBuilder(s.title).
		Uid(s.uid).
		Description(s.description).
		Tags([]string{"nats", "natsdeploy"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly()
	for _, v := range s.vars {
		q := fmt.Sprintf("label_values(%s, %s)", v.metric, v.labelName)
		all := ".*"
		b.WithVariable(dashboard.NewQueryVariableBuilder(v.name).
			Label(v.label).
			Datasource(datasource()).
			Query(dashboard.StringOrMap{String: &q}).
			Definition(q).
			Multi(true).
			IncludeAll(true).
			AllValue(all).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc))
	}
	id := uint32(0)
	for _, r := range s.rows {
		id++
		b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			b.WithPanel(p.builder(id))
		}
	}
	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func (p panel) builder(id uint32) cog.Builder[dashboard.Panel] {
	targets := make([]*prometheus.DataqueryBuilder, 0, len(p.targets))
	for i, t := range p.targets {
		q := prometheus.NewDataqueryBuilder().
			Datasource(datasource()).
			RefId(string(rune('A' + i))).
			Expr(t.expr).
			LegendFormat(t.legend)
		if p.kind == singleStat {
			q.Instant()
		} else {
			q.Range()
		}
		targets = append(targets, q)
	}
	switch p.kind {
	case singleStat:
		b := stat.NewPanelBuilder().Id(id).Title(p.title).
			Datasource(datasource()).Height(4).Span(4).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
		if p.description != "" {
			b.Description(p.description)
		}
		if p.unit != "" {
			b.Unit(p.unit)
		}
		for _, q := range targets {
			b.WithTarget(q)
		}
		return b
	default:
		b := timeseries.NewPanelBuilder().Id(id).Title(p.title).
			Datasource(datasource()).Height(8).Span(12).
			FillOpacity(10).ShowPoints(common.VisibilityModeNever)
		if p.description != "" {
			b.Description(p.description)
		}
		if p.unit != "" {
			b.Unit(p.unit)
		}
		for _, q := range targets {
			b.WithTarget(q)
		}
		return b
	}
}

// Expand replaces Grafana's variables the way Grafana does before it sends
// a query with every variable at "All": a multi-value variable becomes the
// regex .*, and $__rate_interval a duration that spans several scrapes.
// The verifier runs panel queries expanded like this.
func Expand(expr string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$instance", ".*",
		"$account", ".*",
		"$server", ".*",
	).Replace(expr)
}
