// Package prometheus is the Prometheus role. For now it holds what the
// monitoring stack agrees on before the role itself is wired into the
// engine: the alert rules shipped with natsdeploy and the scrape job names
// those rules (and the Grafana dashboards) select on.
package prometheus

import (
	"github.com/natsdeploy/natsdeploy/files"
)

// Scrape job names. The rules select exporter targets by job, and count the
// NATS nodes as the targets of JobExporter, so the scrape configuration the
// role renders must use exactly these.
const (
	JobExporter   = "nats-exporter"
	JobSurveyor   = "nats-surveyor"
	JobPrometheus = "prometheus"
)

// RulesAsset is the alert rules file inside files.FS; RulesFile is its name
// in the rules directory on the host.
const (
	RulesAsset = "prometheus/rules/nats.rules.yml"
	RulesFile  = "nats.rules.yml"
)

// Rules returns the alert rules file, byte for byte as embedded.
func Rules() ([]byte, error) { return files.FS.ReadFile(RulesAsset) }
