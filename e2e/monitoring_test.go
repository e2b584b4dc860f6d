//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/roles/exporter"
	"github.com/natsdeploy/natsdeploy/roles/grafana"
	"github.com/natsdeploy/natsdeploy/roles/surveyor"
)

// promGet calls Prometheus's API on the monitoring host (nats-1) directly:
// it listens on the lab address like any scrape target would reach it.
func promGet(t *testing.T, h lab.Host, path string, data any) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + h.Address + ":9090" + path)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Status != "success" {
		t.Fatalf("prometheus %s: %v %s", path, err, env.Status)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
}

func promMetric(t *testing.T, h lab.Host, name string) float64 {
	t.Helper()
	out := hostExec(t, h, "curl -sf http://127.0.0.1:9090/metrics | grep '^"+name+" '")
	f := strings.Fields(out)
	v, err := strconv.ParseFloat(f[len(f)-1], 64)
	if err != nil {
		t.Fatalf("%s: %q", name, out)
	}
	return v
}

func promPID(t *testing.T, h lab.Host) string {
	t.Helper()
	pid := hostExec(t, h, "systemctl show -p MainPID --value prometheus.service")
	if pid == "0" || pid == "" {
		t.Fatalf("prometheus not running on %s", h.Name)
	}
	return pid
}

// TestPrometheus: the lab's monitoring host runs the real Prometheus,
// scraping every target the lab inventory enables; its config passes
// promtool on the host; a re-apply touches nothing; a scrape interval or
// rule change is a reload confirmed by Prometheus's reload metrics, never
// a restart.
func TestPrometheus(t *testing.T) {
	hosts := lab.Hosts()
	mon := hosts[0] // inventory/lab.toml: [monitoring] host = "nats-1"
	base := writeInventory(t, "prom")
	out := mustNatsdeploy(t, "apply", base) // ends with verify, which checks targets, rules, alerts, queries
	if !strings.Contains(out, "verify passed") {
		t.Fatalf("apply did not end with a passing verify:\n%s", out)
	}
	for _, want := range []string{"prometheus/targets", "prometheus/rules", "prometheus/alerts", "dashboard/queries"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify report has no %s row", want)
		}
	}

	t.Run("installed, hardened and checked on the host", func(t *testing.T) {
		if got := hostExec(t, mon, "systemctl is-active prometheus.service; systemctl is-enabled prometheus.service"); got != "active\nenabled" {
			t.Errorf("prometheus.service: %q", got)
		}
		if got := hostExec(t, mon, "ps -o user= -p $(systemctl show -p MainPID --value prometheus.service)"); got != "prometheus" {
			t.Errorf("prometheus runs as %q", got)
		}
		hostExec(t, mon, "runuser -u prometheus -- /usr/local/bin/promtool check config /etc/prometheus/prometheus.yml")
		if got := hostExec(t, mon, "stat -c '%U:%G %a' /etc/prometheus/prometheus.yml /etc/prometheus/nats.rules.yml /var/lib/prometheus"); got != "root:prometheus 640\nroot:prometheus 640\nprometheus:prometheus 750" {
			t.Errorf("modes:\n%s", got)
		}
		for _, h := range hosts {
			if h.Name != mon.Name && hostExec(t, h, "test -e /etc/prometheus && echo yes || echo no") != "no" {
				t.Errorf("%s is not the monitoring host but has /etc/prometheus", h.Name)
			}
		}
		// The rendered units pass systemd's own checker on a lab host.
		hostExec(t, mon, "systemd-analyze verify /etc/systemd/system/prometheus.service /etc/systemd/system/nats-server.service /etc/systemd/system/nats-server-log.service")
	})

	t.Run("scrapes every enabled target, named by inventory host", func(t *testing.T) {
		var data struct {
			Active []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		}
		eventually(t, time.Minute, "every target up", func() error {
			promGet(t, mon, "/api/v1/targets?state=active", &data)
			var seen []string
			for _, a := range data.Active {
				if a.Health != "up" {
					return fmt.Errorf("%v is %s", a.Labels, a.Health)
				}
				seen = append(seen, a.Labels["job"]+"/"+a.Labels["instance"])
			}
			// The lab enables Prometheus only (see lab.toml): itself.
			if !slices.Equal(seen, []string{"prometheus/nats-1"}) {
				return fmt.Errorf("targets %v", seen)
			}
			return nil
		})
	})

	t.Run("re-apply changes nothing", func(t *testing.T) {
		pid := promPID(t, mon)
		out := mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "nothing to do") {
			t.Errorf("re-apply changed something:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted on a no-op apply")
		}
	})

	t.Run("scrape interval and rules change: reload, no restart", func(t *testing.T) {
		pid := promPID(t, mon)
		before := promMetric(t, mon, "prometheus_config_last_reload_success_timestamp_seconds")
		time.Sleep(1100 * time.Millisecond) // the metric has second resolution
		changed := writeInventory(t, "prom-interval", replace(`scrape_interval = "5s"`, `scrape_interval = "6s"`))
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		if !strings.Contains(out, "[nats-1] reload prometheus.service") || !strings.Contains(out, "[nats-1] reload confirmed: reload metrics") ||
			strings.Contains(out, "restart prometheus.service") {
			t.Errorf("a scrape interval change should be a confirmed reload:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted for a scrape interval change")
		}
		if after := promMetric(t, mon, "prometheus_config_last_reload_success_timestamp_seconds"); after <= before {
			t.Errorf("reload timestamp %v, not after %v", after, before)
		}
		if got := hostExec(t, mon, "grep -c 'scrape_interval: 6s' /etc/prometheus/prometheus.yml"); got != "1" {
			t.Errorf("new interval not on the host")
		}
		var cfg struct {
			YAML string `json:"yaml"`
		}
		promGet(t, mon, "/api/v1/status/config", &cfg)
		if !strings.Contains(cfg.YAML, "scrape_interval: 6s") {
			t.Errorf("the running config has not the new interval")
		}
		// A rule file edited by hand is found and put back by a reload.
		hostExec(t, mon, "sed -i 's/for: 1m/for: 2m/' /etc/prometheus/nats.rules.yml")
		out = mustNatsdeploy(t, "apply", "--no-verify", changed)
		if !strings.Contains(out, "update /etc/prometheus/nats.rules.yml") || !strings.Contains(out, "reload confirmed: reload metrics") {
			t.Errorf("a changed rules file should be restored by a reload:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted for a rules change")
		}
		mustNatsdeploy(t, "apply", "--no-verify", base)
	})

	// Roles apply one after the other, but a role's services wait only for
	// the units they name in After: Prometheus names none, so its reload
	// comes while NATS still rolls, not after the roll.
	t.Run("a NATS roll and a Prometheus reload in one apply: the reload does not wait for the roll", func(t *testing.T) {
		pid := promPID(t, mon)
		changed := writeInventory(t, "prom-and-roll",
			replace(`scrape_interval = "5s"`, `scrape_interval = "7s"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "60MB"`))
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		confirmed := strings.Index(out, "[nats-1] reload confirmed: reload metrics")
		order := rollOrder(out)
		if confirmed < 0 || len(order) != len(hosts) {
			t.Fatalf("want a confirmed Prometheus reload and a roll of %d nodes:\n%s", len(hosts), out)
		}
		rolled := strings.Index(out, "["+order[len(order)-1]+"] nats-server.service restarted and healthy")
		if rolled < 0 || confirmed > rolled {
			t.Errorf("Prometheus' reload waited for the NATS roll to end:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted")
		}
		mustNatsdeploy(t, "apply", "--no-verify", base)
	})

	t.Run("user rule files: reloaded when valid, refused with nothing swapped in when promtool rejects them", func(t *testing.T) {
		// rule_files takes paths on the control machine; writeInventory
		// only makes ../.lab/ paths absolute, so this one is absolute.
		local := filepath.Join(workDir, "e2e.rules.yml")
		const good = "groups:\n  - name: e2e-user\n    rules:\n      - alert: E2EUserRuleNeverFires\n        expr: up{job=\"prometheus\"} < 0\n        for: 1m\n"
		const bad = "groups:\n  - name: e2e-user\n    rules:\n      - alert: E2EUserRuleNeverFires\n        expr: rate(up[5m]\n        for: 1m\n"
		writeRules := func(content string) {
			t.Helper()
			if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		const onHost = "/etc/prometheus/user-e2e.rules.yml"
		inv := writeInventory(t, "prom-userrules", replace(`scrape_interval = "5s"`, fmt.Sprintf("scrape_interval = \"5s\"\nrule_files = [%q]", local)))
		// ruleGroups lists the rule groups Prometheus has loaded, as
		// "group/rule health".
		ruleGroups := func() []string {
			var data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			}
			promGet(t, mon, "/api/v1/rules", &data)
			var out []string
			for _, g := range data.Groups {
				for _, r := range g.Rules {
					out = append(out, g.Name+"/"+r.Name+" "+r.Health)
				}
			}
			return out
		}
		hasUserRule := func() bool {
			return slices.ContainsFunc(ruleGroups(), func(s string) bool { return strings.HasPrefix(s, "e2e-user/E2EUserRuleNeverFires ") })
		}
		// hostState is everything in /etc/prometheus (leftovers included)
		// with its sha256, owner, mode and mtime.
		hostState := func() string {
			return hostExec(t, mon, "cd /etc/prometheus && ls -A && sha256sum prometheus.yml *.rules.y*ml && stat -c '%n %U:%G %a %Y' prometheus.yml *.rules.y*ml")
		}
		reloadTime := func() float64 {
			return promMetric(t, mon, "prometheus_config_last_reload_success_timestamp_seconds")
		}

		// (1) A valid rule file: created beside natsdeploy's rules,
		// listed in rule_files, loaded by a confirmed reload.
		writeRules(good)
		pid, before := promPID(t, mon), reloadTime()
		time.Sleep(1100 * time.Millisecond) // the metric has second resolution
		out := mustNatsdeploy(t, "apply", "--no-verify", inv)
		if !strings.Contains(out, "create "+onHost) || !strings.Contains(out, "update /etc/prometheus/prometheus.yml") ||
			!strings.Contains(out, "[nats-1] reload prometheus.service") || !strings.Contains(out, "[nats-1] reload confirmed: reload metrics") ||
			strings.Contains(out, "restart prometheus.service") {
			t.Errorf("a new user rule file should be created and loaded by a confirmed reload:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted for a user rule file")
		}
		if after := reloadTime(); after <= before {
			t.Errorf("reload timestamp %v, not after %v", after, before)
		}
		if got, want := hostExec(t, mon, "stat -c '%U:%G %a' "+onHost+"; sha256sum <"+onHost), fmt.Sprintf("root:prometheus 640\n%x  -", sha256.Sum256([]byte(good))); got != want {
			t.Errorf("user rule file on the host: %q", got)
		}
		if got := hostExec(t, mon, "grep -cx '  - user-e2e.rules.yml' /etc/prometheus/prometheus.yml"); got != "1" {
			t.Errorf("prometheus.yml lists the user rule file %s times", got)
		}
		eventually(t, 30*time.Second, "the user rule loaded", func() error {
			if !hasUserRule() {
				return fmt.Errorf("rules %v", ruleGroups())
			}
			return nil
		})

		// (2) The same file, now with an expression Prometheus cannot
		// parse: promtool on the host refuses the staged config, nothing
		// is swapped in, Prometheus is neither reloaded nor restarted.
		writeRules(bad)
		state, pid, before := hostState(), promPID(t, mon), reloadTime()
		time.Sleep(1100 * time.Millisecond) // a reload would now show a newer timestamp
		out, code := natsdeploy(t, "apply", "--no-verify", inv)
		if code == 0 {
			t.Fatalf("apply accepted a rule file promtool rejects:\n%s", out)
		}
		for _, want := range []string{"rejected, none of its files was swapped in", "user-e2e.rules.yml", "could not parse expression"} {
			if !strings.Contains(out, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, out)
			}
		}
		// The plan line "reload prometheus.service (SIGHUP, ...)" is shown
		// before staging; what must be missing is its execution.
		if strings.Contains(out, "reload confirmed") || strings.Contains(out, "restart prometheus.service") {
			t.Errorf("a refused rule file touched the service:\n%s", out)
		}
		if got := hostState(); got != state {
			t.Errorf("/etc/prometheus changed although the rule file was refused:\nbefore:\n%s\nafter:\n%s", state, got)
		}
		if got := hostExec(t, mon, "test -e /etc/prometheus/.natsdeploy-stage && echo left || echo gone"); got != "gone" {
			t.Error("the staging dir was left behind")
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted after a refused rule file")
		}
		if after := reloadTime(); after != before {
			t.Errorf("prometheus reloaded after a refused rule file: %v -> %v", before, after)
		}
		if promMetric(t, mon, "prometheus_config_last_reload_successful") != 1 || !hasUserRule() {
			t.Errorf("prometheus no longer runs the last good config: rules %v", ruleGroups())
		}

		// (2b) The rejected rule file beside a NATS change: NATS' role
		// comes first, so its change is swapped in and reloaded on every
		// node; Prometheus' files are still refused, and the error says
		// what is in place. The NATS change is then taken back the same
		// way.
		for _, streams := range []string{"999", "1000"} {
			natsToo := inv
			if streams != "1000" {
				natsToo = writeInventory(t, "prom-userrules-nats",
					replace(`scrape_interval = "5s"`, fmt.Sprintf("scrape_interval = \"5s\"\nrule_files = [%q]", local)),
					replace(`max_streams = 1000`, "max_streams = "+streams))
			}
			out, code := natsdeploy(t, "apply", "--no-verify", natsToo)
			if code == 0 {
				t.Fatalf("apply accepted a rule file promtool rejects:\n%s", out)
			}
			for _, want := range []string{"nats-server.service applied and running; no file of prometheus.service or what follows it was swapped in on any host", "reload confirmed: config_digest"} {
				if !strings.Contains(out, want) {
					t.Errorf("a NATS change beside a rejected rule file: the output does not say %q:\n%s", want, out)
				}
			}
			for _, h := range hosts {
				if got := hostExec(t, h, "grep -c 'max_streams: "+streams+"$' /etc/nats/accounts.conf || true"); got == "0" {
					t.Errorf("%s: max_streams %s is not in accounts.conf", h.Name, streams)
				}
			}
			if got := hostState(); got != state {
				t.Errorf("/etc/prometheus changed although the rule file was refused:\nbefore:\n%s\nafter:\n%s", state, got)
			}
			if promPID(t, mon) != pid || reloadTime() != before {
				t.Error("prometheus was restarted or reloaded after a refused rule file")
			}
		}

		// (3) The valid file again: the host already has it, so nothing
		// to do. Then the base inventory: rule_files no longer lists it and
		// Prometheus drops its rules by a reload; natsdeploy never removes
		// a file it stops managing, so the file stays on disk, unloaded.
		writeRules(good)
		if out := mustNatsdeploy(t, "apply", "--no-verify", inv); !strings.Contains(out, "nothing to do") {
			t.Errorf("the valid file again should change nothing:\n%s", out)
		}
		pid = promPID(t, mon)
		out = mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "update /etc/prometheus/prometheus.yml") || !strings.Contains(out, "[nats-1] reload confirmed: reload metrics") ||
			strings.Contains(out, "restart prometheus.service") {
			t.Errorf("dropping rule_files should be a confirmed reload:\n%s", out)
		}
		if promPID(t, mon) != pid {
			t.Error("prometheus restarted when rule_files was dropped")
		}
		if got := hostExec(t, mon, "grep -c user- /etc/prometheus/prometheus.yml || true"); got != "0" {
			t.Errorf("prometheus.yml still names a user rule file (%s lines)", got)
		}
		if got := hostExec(t, mon, "test -f "+onHost+" && echo kept || echo removed"); got != "kept" {
			t.Errorf("the README says a user rule file that is no longer listed stays on the host; it was %s", got)
		}
		eventually(t, 30*time.Second, "the user rule unloaded", func() error {
			if hasUserRule() {
				return fmt.Errorf("rules %v", ruleGroups())
			}
			return nil
		})
		if out := mustNatsdeploy(t, "apply", "--no-verify", base); !strings.Contains(out, "nothing to do") {
			t.Errorf("re-applying the base inventory should change nothing, the leftover file included:\n%s", out)
		}
	})
}

// The units of the roles the lab cannot run (their programs cannot be had
// here) still go through systemd's own checker on a lab host: rendered from
// an inventory that enables them, copied to a scratch folder, verified.
// The only complaint allowed is the one about the program itself being
// absent; any other (a bad directive, a typo in a section) fails.
func TestUnobtainableUnitsPassSystemdAnalyze(t *testing.T) {
	mon := lab.Hosts()[0]
	inv, _ := loadInventory(t, writeInventory(t, "units",
		replace("[monitoring.exporter]\nenabled = false", "[monitoring.exporter]\nenabled = true"),
		replace("[monitoring.surveyor]\nenabled = false", "[monitoring.surveyor]\nenabled = true"),
		replace("[monitoring.grafana]\nenabled = false", "[monitoring.grafana]\nenabled = true")))
	exp, err := exporter.RenderUnit(inv)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := surveyor.Render(inv, "e2e-not-a-real-password")
	if err != nil {
		t.Fatal(err)
	}
	gf, err := grafana.Render(inv, "e2e-not-a-real-password", "e2e-not-a-real-key")
	if err != nil {
		t.Fatal(err)
	}
	units := map[string][]byte{
		exporter.Service: exp,
		surveyor.Service: sv.Unit,
		grafana.Service:  gf.Unit,
	}
	dir := "/tmp/natsdeploy-e2e-units"
	hostExec(t, mon, "rm -rf "+dir+" && mkdir -p "+dir)
	var names []string
	for name, content := range units {
		cmd := exec.Command("docker", "exec", "-i", mon.Container, "sh", "-c", "cat > "+dir+"/"+name)
		cmd.Stdin = strings.NewReader(string(content))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v %s", name, err, out)
		}
		names = append(names, dir+"/"+name)
	}
	out, _ := lab.Exec(context.Background(), mon.Container, "sh", "-c", "systemd-analyze verify "+strings.Join(names, " ")+" 2>&1; true")
	t.Logf("systemd-analyze verify:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.Contains(line, "is not executable") || strings.Contains(line, "No such file or directory") {
			continue // the program itself, which this machine cannot have
		}
		t.Errorf("systemd-analyze: %s", line)
	}
	hostExec(t, mon, "rm -rf "+dir)
}
