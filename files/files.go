// Package files embeds the templates and static assets roles render onto
// hosts, so the natsdeploy binary is self-contained and a given build always
// renders the same bytes.
package files

import "embed"

// FS holds every template and asset under its path relative to this folder,
// e.g. "nats/nats-server.conf.tmpl" or "prometheus/rules/nats.rules.yml".
// Rule unit tests (*.rules.test.yml) stay out: hosts never need them.
//
//go:embed nats/*.tmpl exporter/*.tmpl surveyor/*.tmpl prometheus/*.tmpl prometheus/rules/*.rules.yml grafana/*.tmpl grafana/*.sh
var FS embed.FS
