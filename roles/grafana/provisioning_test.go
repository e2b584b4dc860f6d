package grafana

import (
	"path/filepath"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/golden"
)

func TestDatasourceYAML(t *testing.T) {
	got, err := DatasourceYAML(Datasource{Name: "Prometheus", URL: "http://127.0.0.1:9090", ScrapeInterval: "15s"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "datasource.yaml"), got)

	// Without a scrape interval there is no jsonData at all.
	got, err = DatasourceYAML(Datasource{Name: `Prometheus "main"`, URL: "http://prom.example:9090"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "datasource-minimal.yaml"), got)

	if _, err := DatasourceYAML(Datasource{Name: "x"}); err == nil {
		t.Error("a datasource without url rendered")
	}
}

func TestProviderYAML(t *testing.T) {
	got, err := ProviderYAML(Provider{Name: "natsdeploy", Folder: "NATS", Path: "/var/lib/grafana/dashboards/natsdeploy", UpdateIntervalSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "dashboards.yaml"), got)

	for _, p := range []Provider{
		{Name: "natsdeploy", UpdateIntervalSeconds: 30},
		{Name: "natsdeploy", Path: "/d", UpdateIntervalSeconds: 0},
	} {
		if _, err := ProviderYAML(p); err == nil {
			t.Errorf("%+v rendered", p)
		}
	}
}
