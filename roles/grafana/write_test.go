package grafana

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteDashboards(t *testing.T) {
	dir := t.TempDir()
	got, err := WriteDashboards(dir, "http://prom.example:9090")
	if err != nil {
		t.Fatal(err)
	}
	uids := allUIDs(t)
	if len(got) != len(uids)+2 {
		t.Fatalf("wrote %v", got)
	}
	for i, uid := range uids {
		if got[i] != filepath.Join(dir, "dashboards", uid+".json") {
			t.Errorf("file %d is %s", i, got[i])
		}
		var d struct{ UID string }
		b, _ := os.ReadFile(got[i])
		if err := json.Unmarshal(b, &d); err != nil || d.UID != uid {
			t.Errorf("%s: uid %q, %v", got[i], d.UID, err)
		}
	}
	ds, _ := os.ReadFile(filepath.Join(dir, "provisioning", "datasources", "natsdeploy.yaml"))
	prov, _ := os.ReadFile(filepath.Join(dir, "provisioning", "dashboards", "natsdeploy.yaml"))
	if !strings.Contains(string(ds), `url: "http://prom.example:9090"`) {
		t.Errorf("datasource:\n%s", ds)
	}
	// The provider finds the dashboards where they were written.
	if !strings.Contains(string(prov), `path: "`+filepath.Join(dir, "dashboards")+`"`) {
		t.Errorf("provider:\n%s", prov)
	}
	if _, err := WriteDashboards(dir, ""); err == nil {
		t.Error("no Prometheus URL was accepted")
	}
}
