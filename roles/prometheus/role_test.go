package prometheus

import (
	"bytes"
	"context"
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
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/promtest"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/internal/testbin"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

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
		golden.Check(t, filepath.Join("testdata", "prometheus-"+tc.name+".yml"), r.Config)
		golden.Check(t, filepath.Join("testdata", "prometheus-"+tc.name+".service"), r.Unit)
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

// userRulesInventory is the lab's inventory with rule_files naming the
// testdata files given.
func userRulesInventory(t *testing.T, names ...string) *inventory.Inventory {
	t.Helper()
	return labInventory(t, func(inv *inventory.Inventory) {
		for _, n := range names {
			p, err := filepath.Abs(filepath.Join("testdata", "user-rules", n))
			if err != nil {
				t.Fatal(err)
			}
			inv.Monitoring.Prometheus.RuleFiles = append(inv.Monitoring.Prometheus.RuleFiles, p)
		}
	})
}

// The operator's rule files are listed after natsdeploy's, under names
// that cannot be natsdeploy's; the rest of the config is unchanged.
func TestRenderUserRules(t *testing.T) {
	inv := userRulesInventory(t, "team.rules.yml", "broken.rules.yaml")
	h, _ := inv.MonitoringHost()
	r, err := Render(inv, h)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "prometheus-userrules.yml"), r.Config)
	if len(r.UserRules) != 2 || r.UserRules[0].Name != "user-team.rules.yml" || r.UserRules[1].Name != "user-broken.rules.yaml" {
		t.Fatalf("user rules %+v", r.UserRules)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "user-rules", "team.rules.yml"))
	if !bytes.Equal(r.UserRules[0].Content, want) {
		t.Error("a user rule file is not deployed byte for byte")
	}
	plain, _ := Render(labInventory(t, nil), h)
	if !bytes.Equal(plain.Config, bytes.Replace(r.Config, []byte("  - user-team.rules.yml\n  - user-broken.rules.yaml\n"), nil, 1)) {
		t.Error("user rule files change more of the config than its rule_files")
	}
}

// Each user rule file is a config file of Prometheus: in the config's
// validate group (so promtool checks it with the config before anything
// is swapped in), 0640 root:prometheus, a change is a reload.
func TestDesiredUserRules(t *testing.T) {
	inv := userRulesInventory(t, "team.rules.yml")
	h, _ := inv.MonitoringHost()
	d, err := Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "user-rules", "team.rules.yml"))
	var group []string
	var user *desired.File
	for i, f := range d.Files {
		if f.ValidateGroup == ValidateGroup {
			group = append(group, f.Path)
		}
		if f.Path == "/etc/prometheus/user-team.rules.yml" {
			user = &d.Files[i]
		}
	}
	if strings.Join(group, " ") != "/etc/prometheus/prometheus.yml /etc/prometheus/nats.rules.yml /etc/prometheus/user-team.rules.yml" {
		t.Errorf("validate group %q", group)
	}
	if user == nil {
		t.Fatalf("no user rule file in %+v", d.Files)
	}
	if user.ValidateCmd != ValidateCmd || user.Mode != 0o640 || user.Owner != "root" || user.Group != User ||
		user.Service != Service || user.OnChange != desired.Reload || user.Source != "" || user.Sensitive ||
		!bytes.Equal(user.Content, want) || user.SHA256 != sum(want) {
		t.Errorf("user rule file %+v", *user)
	}

	// A file that went away between load and apply is an error naming it.
	gone := labInventory(t, func(inv *inventory.Inventory) {
		inv.Monitoring.Prometheus.RuleFiles = []string{filepath.Join(t.TempDir(), "gone.yml")}
	})
	if _, err := (Role{}).Desired(role.Input{Inv: gone, Host: h}); err == nil || !strings.Contains(err.Error(), "gone.yml") {
		t.Errorf("a missing rule file gave %v", err)
	}
}

// promtool, run as apply runs it on the staged dir, accepts a valid user
// rule file and refuses one with an expression Prometheus cannot parse,
// naming the file: that is what keeps it from replacing the running
// config.
func TestPromtoolChecksUserRules(t *testing.T) {
	tool := promtest.Promtool(t)
	for _, tc := range []struct {
		file string
		ok   bool
	}{{"team.rules.yml", true}, {"broken.rules.yaml", false}} {
		inv := userRulesInventory(t, tc.file)
		h, _ := inv.MonitoringHost()
		r, err := Render(inv, h)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, ConfigFile), r.Config, 0o644)
		os.WriteFile(filepath.Join(dir, RulesFile), r.Rules, 0o644)
		for _, u := range r.UserRules {
			os.WriteFile(filepath.Join(dir, u.Name), u.Content, 0o644)
		}
		// ValidateCmd with the staging dir, less the runuser prefix.
		cmd := strings.Fields(strings.ReplaceAll(ValidateCmd, "{dir}", dir))
		if len(cmd) < 6 || cmd[0] != "runuser" || cmd[4] != PromtoolBin {
			t.Fatalf("ValidateCmd %q", ValidateCmd)
		}
		out, err := exec.Command(tool, cmd[5:]...).CombinedOutput()
		switch {
		case tc.ok && err != nil:
			t.Errorf("promtool refuses %s: %v\n%s", tc.file, err, out)
		case !tc.ok && err == nil:
			t.Errorf("promtool accepted %s:\n%s", tc.file, out)
		case !tc.ok && !strings.Contains(string(out), "user-"+tc.file):
			t.Errorf("promtool's refusal does not name the file:\n%s", out)
		}
	}
}

// The unit's version command prints something the engine finds the
// inventory's version in, with the real binary (the lab's build of the
// release the inventory names).
func TestVersionCmdNamesTheVersion(t *testing.T) {
	bin := testbin.Find(t, "PROMETHEUS_BIN", "prometheus")
	inv := labInventory(t, nil)
	h, _ := inv.MonitoringHost()
	d, err := Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	u := d.Units[0]
	cmd := strings.Replace(u.VersionCmd, BinaryPath, bin, 1)
	if u.Name != Service || cmd == u.VersionCmd {
		t.Fatalf("unit %s: version command %q does not run %s", u.Name, u.VersionCmd, BinaryPath)
	}
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if got := status.VersionIn(string(out)); got == "" || got != u.Version || u.Version != inv.Monitoring.Prometheus.Version {
		t.Errorf("%s printed %q: version %q; the unit wants %q, the inventory %q", cmd, out, got, u.Version, inv.Monitoring.Prometheus.Version)
	}
}

// [tls] changes nothing Prometheus renders: it scrapes the exporters and
// the surveyor, whose /metrics stay http (serving https would need a key
// on each NATS host for the exporter: the node's own, which is also good
// for routes), and never the nodes' monitoring ports itself. The same
// bytes as without TLS, so prometheus-all.yml is what promtool checks.
func TestTLSLeavesScrapesPlain(t *testing.T) {
	plain := labInventory(t, func(inv *inventory.Inventory) {
		inv.Monitoring.Exporter.Enabled, inv.Monitoring.Surveyor.Enabled = on(), on()
	})
	tls := labInventory(t, func(inv *inventory.Inventory) {
		inv.Monitoring.Exporter.Enabled, inv.Monitoring.Surveyor.Enabled = on(), on()
		inv.TLS = &inventory.TLS{Clients: true, Routes: true, Monitoring: true, Dir: t.TempDir()}
	})
	h, _ := tls.MonitoringHost()
	want, err := Render(plain, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Render(tls, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Config, want.Config) || !bytes.Equal(got.Unit, want.Unit) {
		t.Errorf("TLS changed what Prometheus renders:\n%s", got.Config)
	}
	if bytes.Contains(got.Config, []byte("scheme: https")) {
		t.Error("a scrape job uses https, but no target serves it")
	}
}
