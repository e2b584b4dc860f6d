// Package grafana is the Grafana role: the official release tarball,
// verified and unpacked on the monitoring host by the unit itself, a
// hardened grafana.service, grafana.ini without secrets (those come from
// root-only environment files), and the provisioning files Grafana reads at
// start: the Prometheus datasource, with the fixed uid every natsdeploy
// dashboard names, and the dashboards provider that loads the dashboard
// JSON files from a folder. Formats: Grafana's "Provision Grafana"
// documentation, apiVersion 1. WriteDashboards writes the same files for a
// Grafana natsdeploy does not run.
package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

// Datasource is the Prometheus datasource natsdeploy provisions.
type Datasource struct {
	// Name shown in Grafana; dashboards do not depend on it.
	Name string
	// URL of Prometheus as Grafana's server reaches it (access: proxy).
	URL string
	// ScrapeInterval, e.g. "15s", becomes jsonData.timeInterval, the
	// smallest step Grafana asks for, so $__rate_interval spans at least
	// four scrapes. Empty leaves Grafana's default.
	ScrapeInterval string
}

// DatasourceYAML renders provisioning/datasources/natsdeploy.yaml.
// The datasource is the default, not editable in the UI (a change made
// there would be lost at the next start), and keyed by DatasourceUID.
func DatasourceYAML(d Datasource) ([]byte, error) {
	if d.Name == "" || d.URL == "" {
		return nil, fmt.Errorf("grafana datasource: name and url are required")
	}
	var b bytes.Buffer
	b.WriteString("# natsdeploy: the Prometheus datasource every natsdeploy dashboard names by uid.\n")
	b.WriteString("apiVersion: 1\n")
	b.WriteString("datasources:\n")
	fmt.Fprintf(&b, "  - name: %s\n", q(d.Name))
	b.WriteString("    type: prometheus\n")
	fmt.Fprintf(&b, "    uid: %s\n", q(dashboards.DatasourceUID))
	b.WriteString("    access: proxy\n")
	fmt.Fprintf(&b, "    url: %s\n", q(d.URL))
	b.WriteString("    isDefault: true\n")
	b.WriteString("    editable: false\n")
	if d.ScrapeInterval != "" {
		b.WriteString("    jsonData:\n")
		fmt.Fprintf(&b, "      timeInterval: %s\n", q(d.ScrapeInterval))
	}
	return b.Bytes(), nil
}

// Provider is the dashboards provider natsdeploy provisions.
type Provider struct {
	// Name of the provider, and Folder the Grafana folder its dashboards
	// appear in ("" is Grafana's General folder).
	Name, Folder string
	// Path is the folder on the Grafana host holding the dashboard files.
	Path string
	// UpdateIntervalSeconds is how often Grafana re-reads Path: a changed
	// dashboard file needs no restart.
	UpdateIntervalSeconds int
}

// ProviderYAML renders provisioning/dashboards/natsdeploy.yaml. UI edits are
// refused (allowUiUpdates false) and deletion disabled: the files are the
// truth, and the next apply would undo any UI change anyway.
func ProviderYAML(p Provider) ([]byte, error) {
	if p.Name == "" || p.Path == "" {
		return nil, fmt.Errorf("grafana dashboards provider: name and path are required")
	}
	if p.UpdateIntervalSeconds <= 0 {
		return nil, fmt.Errorf("grafana dashboards provider: updateIntervalSeconds must be positive, not %d", p.UpdateIntervalSeconds)
	}
	var b bytes.Buffer
	b.WriteString("# natsdeploy: the dashboards natsdeploy writes, re-read without a restart.\n")
	b.WriteString("apiVersion: 1\n")
	b.WriteString("providers:\n")
	fmt.Fprintf(&b, "  - name: %s\n", q(p.Name))
	b.WriteString("    orgId: 1\n")
	fmt.Fprintf(&b, "    folder: %s\n", q(p.Folder))
	b.WriteString("    type: file\n")
	b.WriteString("    disableDeletion: true\n")
	fmt.Fprintf(&b, "    updateIntervalSeconds: %d\n", p.UpdateIntervalSeconds)
	b.WriteString("    allowUiUpdates: false\n")
	b.WriteString("    options:\n")
	fmt.Fprintf(&b, "      path: %s\n", q(p.Path))
	b.WriteString("      foldersFromFilesStructure: false\n")
	return b.Bytes(), nil
}

// q quotes s as a YAML double-quoted scalar: a JSON string is one, and it
// escapes everything YAML would otherwise read as syntax.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
