package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/promtest"
)

// The unit tests sit beside the rules in the source tree, but are not
// embedded; the embedded bytes are what promtool checks.
const rulesTests = "../../files/prometheus/rules/nats.rules.test.yml"

// The catalogue of upstream metric names the dashboards use too.
const catalogue = "../grafana/dashboards/testdata/metrics.txt"

// rulesDir writes the embedded rules and their unit tests into a temporary
// folder, the layout promtool test rules expects (rule_files are relative).
func rulesDir(t *testing.T) string {
	t.Helper()
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTests)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{RulesFile: rules, "nats.rules.test.yml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin := promtest.Promtool(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesCheck(t *testing.T) {
	dir := rulesDir(t)
	out := promtool(t, dir, "check", "rules", RulesFile)
	t.Logf("promtool check rules:\n%s", out)
}

// Every alert fires on its condition and stays silent on a healthy cluster:
// the cases are in nats.rules.test.yml; here promtool runs them.
func TestRulesUnitTests(t *testing.T) {
	dir := rulesDir(t)
	out := promtool(t, dir, "test", "rules", "nats.rules.test.yml")
	t.Logf("promtool test rules:\n%s", out)
}

var (
	alertRe  = regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`)
	silentRe = regexp.MustCompile(`alertname: (\S+)\n\s*exp_alerts: \[\]`)
	firesRe  = regexp.MustCompile(`(?s)alertname: (\S+)\n\s*exp_alerts:\n\s*- exp_labels:`)
	jobRe    = regexp.MustCompile(`job\s*=~?\s*"([^"]*)"`)
)

// A rule nobody tests would pass promtool test rules unnoticed: every alert
// must have a case where it fires and one where it stays silent.
func TestEveryAlertHasFiringAndSilentCases(t *testing.T) {
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTests)
	if err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, m := range firesRe.FindAllStringSubmatch(string(tests), -1) {
		fires[m[1]] = true
	}
	silent := map[string]bool{}
	for _, m := range silentRe.FindAllStringSubmatch(string(tests), -1) {
		silent[m[1]] = true
	}
	alerts := alertRe.FindAllStringSubmatch(string(rules), -1)
	if len(alerts) == 0 {
		t.Fatal("no alerts found in the rules")
	}
	for _, m := range alerts {
		name := m[1]
		if !fires[name] {
			t.Errorf("%s: no test case where it fires", name)
		}
		if !silent[name] {
			t.Errorf("%s: no test case where it stays silent", name)
		}
	}
}

func TestRulesSelectKnownJobs(t *testing.T) {
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	known := []string{JobExporter, JobSurveyor, JobPrometheus}
	for _, m := range jobRe.FindAllStringSubmatch(string(rules), -1) {
		if !slices.Contains(known, m[1]) {
			t.Errorf("rules select job %q; the scrape jobs are %v", m[1], known)
		}
	}
}

var exprRe = regexp.MustCompile(`(?m)^\s*expr: (.+)$`)

// Every metric and label the rules read is one upstream really exports, as
// listed (with its source file) in the dashboards' catalogue; the
// expressions are parsed by the real Prometheus.
func TestRulesUseUpstreamNames(t *testing.T) {
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := promtest.LoadCatalog(catalogue)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.Start(t)
	for _, expr := range ruleExprs(string(rules)) {
		u, err := srv.Parse(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		for _, p := range cat.Check(u) {
			t.Errorf("%s: %s", expr, p)
		}
	}
}

// ruleExprs takes each expr: value, single-line or a | block.
func ruleExprs(rules string) []string {
	var out []string
	lines := strings.Split(rules, "\n")
	for i := 0; i < len(lines); i++ {
		m := exprRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if strings.TrimSpace(m[1]) != "|" {
			out = append(out, m[1])
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
			i++
		}
		out = append(out, strings.Join(block, " "))
	}
	return out
}
