package grafana

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

// WriteDashboards writes natsdeploy's dashboards and the provisioning
// files that load them into dir, for a Grafana natsdeploy does not run:
//
//	dir/dashboards/<uid>.json
//	dir/provisioning/datasources/natsdeploy.yaml   Prometheus at promURL
//	dir/provisioning/dashboards/natsdeploy.yaml    loads dir/dashboards
//
// The provider names dir/dashboards by its absolute path; a Grafana that
// reads the files elsewhere needs that path changed. It returns the paths
// written, in that order.
func WriteDashboards(dir string, promURL string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	ds, err := dashboards.All()
	if err != nil {
		return nil, err
	}
	dsYAML, err := DatasourceYAML(Datasource{Name: "Prometheus", URL: promURL})
	if err != nil {
		return nil, err
	}
	dashDir := filepath.Join(abs, "dashboards")
	provYAML, err := ProviderYAML(provider(dashDir))
	if err != nil {
		return nil, err
	}
	type out struct {
		path string
		data []byte
	}
	var files []out
	for _, d := range ds {
		files = append(files, out{filepath.Join(dashDir, d.File), d.JSON})
	}
	files = append(files,
		out{filepath.Join(abs, "provisioning", "datasources", "natsdeploy.yaml"), dsYAML},
		out{filepath.Join(abs, "provisioning", "dashboards", "natsdeploy.yaml"), provYAML},
	)
	var written []string
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return written, err
		}
		// World-readable like any Grafana config: nothing here is secret.
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", f.path, err)
		}
		written = append(written, f.path)
	}
	return written, nil
}
