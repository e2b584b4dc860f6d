package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// yamlToJSON parses YAML with PyYAML, the only YAML parser at hand without
// a new module dependency; the test skips where it is missing.
func yamlToJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	cmd := exec.Command("python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = strings.NewReader(string(b))
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("no python3 with PyYAML to parse YAML: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDashboardsCommand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    func(t *testing.T, out string) []string
		promURL string
	}{
		{"no inventory", func(_ *testing.T, out string) []string { return []string{"dashboards", "--out", out} }, "http://127.0.0.1:9090"},
		{"the lab's monitoring host", func(t *testing.T, out string) []string {
			return []string{"dashboards", "--out", out, labWith(t, "", "")}
		}, "http://172.31.253.11:9090"},
		{"flag wins", func(t *testing.T, out string) []string {
			return []string{"dashboards", "--out", out, "--prometheus-url", "http://prom:9090", labWith(t, "", "")}
		}, "http://prom:9090"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			text, code := run(tc.args(t, out)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, text)
			}
			jsons, _ := filepath.Glob(filepath.Join(out, "dashboards", "*.json"))
			if len(jsons) != 5 {
				t.Errorf("dashboards %v", jsons)
			}
			for _, p := range jsons {
				b, _ := os.ReadFile(p)
				var d map[string]any
				if err := json.Unmarshal(b, &d); err != nil || d["uid"] == nil {
					t.Errorf("%s: %v", p, err)
				}
				if !strings.Contains(text, p) {
					t.Errorf("output does not name %s", p)
				}
			}
			ds, _ := os.ReadFile(filepath.Join(out, "provisioning", "datasources", "natsdeploy.yaml"))
			prov, _ := os.ReadFile(filepath.Join(out, "provisioning", "dashboards", "natsdeploy.yaml"))
			dsm := yamlToJSON(t, ds)
			src := dsm["datasources"].([]any)[0].(map[string]any)
			if dsm["apiVersion"] != 1.0 || src["url"] != tc.promURL || src["uid"] != "natsdeploy-prometheus" {
				t.Errorf("datasource %v", dsm)
			}
			pm := yamlToJSON(t, prov)
			opts := pm["providers"].([]any)[0].(map[string]any)["options"].(map[string]any)
			if opts["path"] != filepath.Join(out, "dashboards") {
				t.Errorf("provider %v", pm)
			}
		})
	}
	if text, code := run("dashboards"); code == 0 {
		t.Errorf("no --out: exit 0: %s", text)
	}
}
