package prometheus

import (
	"bytes"
	"context"
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/promtest"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/testbin"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

var update = flag.Bool("update", false, "rewrite golden files")

func labInventory(t *testing.T, edit func(*inventory.Inventory)) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions("../../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(inv)
	}
	return inv
}

func on() *bool { b := true; return &b }

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended):\n%s", name, got)
	}
}

func TestRenderGolden(t *testing.T) {
	lab := labInventory(t, nil)
	all := labInventory(t, func(inv *inventory.Inventory) {
		inv.Monitoring.Exporter.Enabled, inv.Monitoring.Surveyor.Enabled = on(), on()
	})
	for _, tc := range []struct {
		name string
		inv  *inventory.Inventory
	}{{"lab", lab}, {"all", all}} {
		h, _ := tc.inv.MonitoringHost()
		r, err := Render(tc.inv, h)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "prometheus-"+tc.name+".yml", r.Config)
		golden(t, "prometheus-"+tc.name+".service", r.Unit)
		again, _ := Render(tc.inv, h)
		if !bytes.Equal(again.Config, r.Config) || !bytes.Equal(again.Unit, r.Unit) {
			t.Errorf("%s: rendering is not byte-stable", tc.name)
		}
	}
}

func TestRoleHostsAndArtifacts(t *testing.T) {
	inv := labInventory(t, nil)
	hosts := Role{}.Hosts(inv)
	if len(hosts) != 1 || hosts[0].Name != "nats-1" {
		t.Errorf("hosts %+v, want the monitoring host", hosts)
	}
	rels, err := Role{}.Artifacts(inv, "x86_64")
	if err != nil || len(rels) != 2 {
		t.Fatalf("artifacts %+v, %v", rels, err)
	}
	for i, want := range []struct{ key, member string }{
		{"prometheus", "prometheus-3.16.0.linux-amd64/prometheus"},
		{"promtool", "prometheus-3.16.0.linux-amd64/promtool"},
	} {
		r := rels[i]
		if r.ID() != want.key || r.Member != want.member || r.Asset != "prometheus-3.16.0.linux-amd64.tar.gz" ||
			r.Sums != "sha256sums.txt" || r.Name != "prometheus" || r.Tag != "v3.16.0" || r.BaseURL != "" {
			t.Errorf("release %d: %+v", i, r)
		}
	}
	off := labInventory(t, func(inv *inventory.Inventory) { inv.Monitoring.Prometheus.Enabled = new(bool) })
	if len(Role{}.Hosts(off)) != 0 {
		t.Error("a disabled Prometheus still has hosts")
	}
	official := labInventory(t, func(inv *inventory.Inventory) { inv.Monitoring.DownloadURL = nil })
	if rels, _ := (Role{}).Artifacts(official, "arm64"); rels[0].BaseURL != ReleaseURL || rels[0].Asset != "prometheus-3.16.0.linux-arm64.tar.gz" {
		t.Errorf("official release: %+v", rels[0])
	}
}

// Prometheus and the NATS node share the monitoring host: their desired
// states merge without a clash.
func TestDesiredMergesWithNATS(t *testing.T) {
	inv := labInventory(t, nil)
	h, _ := inv.MonitoringHost()
	pd, err := Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := nats.Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := desired.Merge(h.Name, desired.Part{Role: "nats", Host: nd}, desired.Part{Role: "prometheus", Host: pd})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if len(merged.Units) != 3 {
		t.Errorf("units %+v", merged.Units)
	}
	var cfg desired.File
	for _, f := range pd.Files {
		if f.Path == "/etc/prometheus/prometheus.yml" {
			cfg = f
		}
	}
	if cfg.OnChange != desired.Reload || cfg.ValidateGroup != ValidateGroup || cfg.Mode != 0o640 || cfg.Group != User {
		t.Errorf("config file %+v", cfg)
	}
}

// writeConfig renders the lab's config and rules into dir, with the self
// scrape target on port.
func writeConfig(t *testing.T, dir string, port int) {
	t.Helper()
	inv := labInventory(t, func(inv *inventory.Inventory) { inv.Monitoring.Prometheus.Port = port })
	h, _ := inv.MonitoringHost()
	r, err := Render(inv, h)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), r.Config, 0o644)
	os.WriteFile(filepath.Join(dir, RulesFile), r.Rules, 0o644)
}

// The staging check is promtool's own: it accepts what natsdeploy renders
// and refuses a config Prometheus would refuse.
func TestPromtoolChecksTheRenderedConfig(t *testing.T) {
	tool := promtest.Promtool(t)
	dir := t.TempDir()
	writeConfig(t, dir, 9090)
	if out, err := exec.Command(tool, "check", "config", filepath.Join(dir, ConfigFile)).CombinedOutput(); err != nil {
		t.Fatalf("promtool refuses the rendered config: %v\n%s", err, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	os.WriteFile(filepath.Join(dir, ConfigFile), bytes.Replace(cfg, []byte("scrape_interval: 5s"), []byte("scrape_interval: banana"), 1), 0o644)
	if out, err := exec.Command(tool, "check", "config", filepath.Join(dir, ConfigFile)).CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a broken config:\n%s", out)
	}
}

type localRemote struct{}

func (localRemote) Exec(context.Context, string) (string, error) { return "", nil }
func (localRemote) HTTPClient() *http.Client                     { return &http.Client{Timeout: 5 * time.Second} }

// The reload gate against a real Prometheus: a good config's reload is
// confirmed by the reload metrics; a config it refuses is reported as
// refused, not as reloaded.
func TestReloadGateRealPrometheus(t *testing.T) {
	bin := testbin.Find(t, "PROMETHEUS_BIN", "prometheus")
	dir := t.TempDir()
	port := freePort(t)
	writeConfig(t, dir, port)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, ConfigFile), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx := context.Background()
	n := desired.Node{Name: "nats-1", Remote: localRemote{}}
	ready := readyGate(port)
	deadline := time.Now().Add(60 * time.Second)
	for ready.Check(ctx, n) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	g := reloadGate(port)
	reload := func() string {
		want, err := g.Want(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // the metric has second resolution
		cmd.Process.Signal(syscall.SIGHUP)
		return want
	}
	want := reload()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = g.Check(ctx, n, want); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("good reload not confirmed: %v\n%s", err, logs.String())
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	os.WriteFile(filepath.Join(dir, ConfigFile), bytes.Replace(cfg, []byte("scrape_interval: 5s"), []byte("scrape_interval: banana"), 1), 0o644)
	want = reload()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = g.Check(ctx, n, want); err != nil && strings.Contains(err.Error(), "refused") {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "Prometheus refused the new config") {
		t.Fatalf("a refused reload gave %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestMetricValue(t *testing.T) {
	body := []byte("# HELP x\nprometheus_config_last_reload_successful 1\nprometheus_config_last_reload_success_timestamp_seconds 1.764e+09\nother{a=\"b\"} 3\n")
	if v, ok := metricValue(body, reloadOK); !ok || v != 1 {
		t.Errorf("ok = %v %v", v, ok)
	}
	if v, ok := metricValue(body, reloadTime); !ok || v != 1.764e9 {
		t.Errorf("time = %v %v", v, ok)
	}
	if _, ok := metricValue(body, "prometheus_config"); ok {
		t.Error("a prefix matched")
	}
}
