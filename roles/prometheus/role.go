package prometheus

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"

	"github.com/natsdeploy/natsdeploy/files"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Fixed names and paths on the monitoring host.
const (
	User        = "prometheus"
	Service     = "prometheus.service"
	BinaryPath  = "/usr/local/bin/prometheus"
	PromtoolBin = "/usr/local/bin/promtool"
	UnitPath    = "/etc/systemd/system/" + Service
	ConfigDir   = "/etc/prometheus"
	ConfigFile  = "prometheus.yml"
	DataDir     = "/var/lib/prometheus"

	// ValidateGroup ties prometheus.yml and the rules together: they are
	// staged side by side and checked as one before either replaces the
	// running config. promtool follows rule_files, relative to the
	// config's own directory, so the staged rules are what it reads.
	ValidateGroup = "prometheus-config"
	ValidateCmd   = "runuser -u " + User + " -- " + PromtoolBin + " check config {dir}/" + ConfigFile

	// ReleaseURL is where Prometheus releases are published.
	ReleaseURL = "https://github.com/prometheus/prometheus/releases/download"
)

// Role is Prometheus on the monitoring host: it scrapes itself, every
// exporter and the surveyor, and evaluates natsdeploy's alert rules.
type Role struct{}

var _ role.Role = Role{}

func (Role) Name() string { return "prometheus" }

func spec(inv *inventory.Inventory) (inventory.PrometheusSpec, bool) {
	if inv.Monitoring == nil || !inv.Monitoring.Prometheus.On() {
		return inventory.PrometheusSpec{}, false
	}
	return inv.Monitoring.Prometheus, true
}

func (Role) Hosts(inv *inventory.Inventory) []inventory.Host {
	_, on := spec(inv)
	return inv.OnMonitoringHost(on)
}

func (Role) Secrets(*inventory.Inventory) []secrets.Slot { return nil }

// Artifacts: one release archive, two executables. Layout under
// artifact_dir, the same as below the release URL:
//
//	prometheus/vX.Y.Z/prometheus-X.Y.Z.linux-ARCH.tar.gz
//	prometheus/vX.Y.Z/sha256sums.txt
func (Role) Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error) {
	p, ok := spec(inv)
	if !ok {
		return nil, nil
	}
	a, err := artifact.GoArch(arch)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", p.Version, err)
	}
	base := fmt.Sprintf("prometheus-%s.linux-%s", p.Version, a)
	rel := artifact.Release{
		Dir:     inv.Monitoring.ArtifactDir,
		BaseURL: inv.Monitoring.ReleaseBase("prometheus", ReleaseURL),
		Name:    "prometheus",
		Tag:     "v" + p.Version,
		Version: p.Version,
		Asset:   base + ".tar.gz",
		Sums:    "sha256sums.txt",
		Target:  "linux-" + a,
		Hint:    "https://github.com/prometheus/prometheus/releases/tag/v" + p.Version,
		Setting: "monitoring.download_url",
	}
	prom, tool := rel, rel
	prom.Key, prom.Member = "prometheus", base+"/prometheus"
	tool.Key, tool.Member = "promtool", base+"/promtool"
	return []artifact.Release{prom, tool}, nil
}

// Target is one scrape target.
type Target struct{ Address, Instance string }

// Job is one scrape job.
type Job struct {
	Name    string
	Targets []Target
}

// Jobs are the scrape jobs for the inventory: Prometheus itself, the
// exporter on every NATS host and the surveyor, each only when enabled.
func Jobs(inv *inventory.Inventory, self inventory.Host) []Job {
	m := inv.Monitoring
	jobs := []Job{{Name: JobPrometheus, Targets: []Target{{Address: "127.0.0.1:" + strconv.Itoa(m.Prometheus.Port), Instance: self.Name}}}}
	if m.Exporter.On() {
		j := Job{Name: JobExporter}
		for _, h := range inv.NATSHosts() {
			j.Targets = append(j.Targets, Target{Address: net.JoinHostPort(h.Address, strconv.Itoa(m.Exporter.Port)), Instance: h.Name})
		}
		jobs = append(jobs, j)
	}
	if m.Surveyor.On() {
		jobs = append(jobs, Job{Name: JobSurveyor, Targets: []Target{{Address: "127.0.0.1:" + strconv.Itoa(m.Surveyor.Port), Instance: self.Name}}})
	}
	return jobs
}

// Rendered are the files Prometheus's host gets from templates, and the
// operator's rule files as read from the control machine.
type Rendered struct {
	Config, Rules, Unit []byte
	UserRules           []UserRules
}

// UserRules is one file of [monitoring.prometheus] rule_files: its name in
// ConfigDir (inventory.UserRuleName, which cannot be RulesFile) and its
// bytes as read. natsdeploy does not parse them: promtool on the host
// judges them with the config they belong to.
type UserRules struct {
	Name    string
	Content []byte
}

// Render renders the config, the rules and the unit, and reads the
// operator's rule files. Output depends only on the inventory and those
// files, so unchanged inputs give unchanged bytes.
func Render(inv *inventory.Inventory, self inventory.Host) (Rendered, error) {
	var r Rendered
	p := inv.Monitoring.Prometheus
	var err error
	var names []string
	for _, f := range p.RuleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return r, fmt.Errorf("rule file: %w", err)
		}
		r.UserRules = append(r.UserRules, UserRules{Name: inventory.UserRuleName(f), Content: b})
		names = append(names, inventory.UserRuleName(f))
	}
	r.Config, err = render("prometheus/prometheus.yml.tmpl", struct {
		ScrapeInterval, RulesFile string
		UserRules                 []string
		Jobs                      []Job
	}{p.ScrapeInterval.Prometheus(), RulesFile, names, Jobs(inv, self)})
	if err != nil {
		return r, err
	}
	if r.Rules, err = Rules(); err != nil {
		return r, fmt.Errorf("rules: %w", err)
	}
	r.Unit, err = render("prometheus/prometheus.service.tmpl", struct {
		Binary, Config, DataDir, Retention, User string
		Port                                     int
	}{BinaryPath, path.Join(ConfigDir, ConfigFile), DataDir, p.Retention, User, p.Port})
	return r, err
}

func (Role) Desired(in role.Input) (desired.Host, error) {
	p := in.Inv.Monitoring.Prometheus
	r, err := Render(in.Inv, in.Host)
	if err != nil {
		return desired.Host{}, fmt.Errorf("prometheus on %s: %w", in.Host.Name, err)
	}
	prom := in.Binary("prometheus", p.Version)
	tool := in.Binary("promtool", p.Version)
	h := desired.Host{
		Name:  in.Host.Name,
		Users: []desired.User{{Name: User, Home: DataDir, Shell: "/usr/sbin/nologin"}},
		Dirs: []desired.Dir{
			{Path: ConfigDir, Owner: "root", Group: User, Mode: fs.ModeDir | 0o750},
			// The time series database.
			{Path: DataDir, Owner: User, Group: User, Mode: fs.ModeDir | 0o750, Holds: desired.Data},
		},
		Files: []desired.File{
			{Path: BinaryPath, Source: prom.Path, SHA256: prom.SHA256, Mode: 0o755, Owner: "root", Group: "root",
				Service: Service, OnChange: desired.Restart},
			// promtool only checks configs; a new one needs no restart
			// (no OnChange), but it checks the staged config before it is
			// swapped in. It names the service so that it travels with
			// Prometheus' other files (apply.Waves).
			{Path: PromtoolBin, Source: tool.Path, SHA256: tool.SHA256, Mode: 0o755, Owner: "root", Group: "root",
				Service: Service},
		},
	}
	// The operator's rule files join the same group: promtool reads them
	// through the staged config's rule_files, so one it refuses keeps the
	// config and every rules file from being swapped in.
	group := []UserRules{{ConfigFile, r.Config}, {RulesFile, r.Rules}}
	for _, f := range append(group, r.UserRules...) {
		h.Files = append(h.Files, desired.File{
			Path: path.Join(ConfigDir, f.Name), Content: f.Content, SHA256: sum(f.Content),
			Mode: 0o640, Owner: "root", Group: User,
			ValidateGroup: ValidateGroup, ValidateCmd: ValidateCmd,
			// A scrape or rule change is a reload, never a restart: a
			// restart replays the write-ahead log and leaves gaps.
			Service: Service, OnChange: desired.Reload,
		})
	}
	h.Files = append(h.Files, desired.File{
		Path: UnitPath, Content: r.Unit, SHA256: sum(r.Unit), Mode: 0o644, Owner: "root", Group: "root",
		Service: Service, OnChange: desired.Restart,
	})
	h.Units = []desired.Unit{{
		Name:        Service,
		UnitFile:    UnitPath,
		Ready:       readyGate(p.Port),
		Reload:      reloadGate(p.Port),
		DiagnoseCmd: "journalctl --no-pager -n 30 -u " + Service,
		// Prints "prometheus, version 3.16.0 (branch: ...)" first.
		Version:    p.Version,
		VersionCmd: BinaryPath + " --version",
	}}
	h.Ports = []desired.Port{{Number: p.Port, Key: "monitoring.prometheus.port"}}
	return h, nil
}

// Verify: every target up, the rules loaded and evaluating without error,
// no alert firing or pending, and every dashboard query answering.
func (Role) Verify(ctx context.Context, env role.Env) []report.Result {
	hosts := Role{}.Hosts(env.Inv)
	var out []report.Result
	for _, h := range hosts {
		out = append(out, verifyHost(ctx, env, h)...)
	}
	return out
}

func render(name string, data any) ([]byte, error) { return files.Render(name, data, nil) }

func sum(b []byte) string { return files.SHA256(b) }
