package grafana

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestDatasourceYAML(t *testing.T) {
	got, err := DatasourceYAML(Datasource{Name: "Prometheus", URL: "http://127.0.0.1:9090", ScrapeInterval: "15s"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "datasource.yaml", got)

	// Without a scrape interval there is no jsonData at all.
	got, err = DatasourceYAML(Datasource{Name: `Prometheus "main"`, URL: "http://prom.example:9090"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "datasource-minimal.yaml", got)

	if _, err := DatasourceYAML(Datasource{Name: "x"}); err == nil {
		t.Error("a datasource without url rendered")
	}
}

func TestProviderYAML(t *testing.T) {
	got, err := ProviderYAML(Provider{Name: "natsdeploy", Folder: "NATS", Path: "/var/lib/grafana/dashboards/natsdeploy", UpdateIntervalSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "dashboards.yaml", got)

	for _, p := range []Provider{
		{Name: "natsdeploy", UpdateIntervalSeconds: 30},
		{Name: "natsdeploy", Path: "/d", UpdateIntervalSeconds: 0},
	} {
		if _, err := ProviderYAML(p); err == nil {
			t.Errorf("%+v rendered", p)
		}
	}
}
