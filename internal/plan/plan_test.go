package plan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
)

const svc = "nats-server.service"

func want() desired.Host {
	return desired.Host{
		Name:  "nats-1",
		Users: []desired.User{{Name: "nats", Home: "/var/lib/nats"}},
		Dirs:  []desired.Dir{{Path: "/var/lib/nats", Owner: "nats", Group: "nats", Mode: 0o750}},
		Files: []desired.File{
			{Path: "/usr/local/bin/nats-server", SHA256: "bin1", Mode: 0o755, Owner: "root", Group: "root", Service: svc, OnChange: desired.Restart},
			{Path: "/etc/nats/nats-server.conf", SHA256: "main1", Mode: 0o640, Owner: "root", Group: "nats", Service: svc, OnChange: desired.Restart},
			{Path: "/etc/nats/accounts.conf", SHA256: "acc1", Mode: 0o640, Owner: "root", Group: "nats", Service: svc, OnChange: desired.Reload},
			{Path: "/etc/systemd/system/nats-server.service", SHA256: "unit1", Mode: 0o644, Owner: "root", Group: "root", Service: svc, OnChange: desired.Restart},
		},
		Units: []desired.Unit{{Name: svc, UnitFile: "/etc/systemd/system/nats-server.service",
			Ready: &desired.Gate{Desc: "/healthz"}, Reload: &desired.ReloadGate{Desc: "config_digest"}}},
	}
}

// converged is what a host looks like after a successful apply of want().
func converged() facts.Host {
	f := facts.Host{
		Users:   map[string]bool{"nats": true},
		Dirs:    map[string]facts.File{"/var/lib/nats": {Mode: 0o750, Owner: "nats", Group: "nats"}},
		Files:   map[string]facts.File{},
		Units:   map[string]facts.Unit{svc: {Enabled: true, Active: true, MainPID: 42}},
		Pending: map[string]desired.Handler{},
	}
	for _, file := range want().Files {
		f.Files[file.Path] = facts.File{Mode: file.Mode, Owner: file.Owner, Group: file.Group, SHA256: file.SHA256}
	}
	return f
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name      string
		facts     func(f *facts.Host)
		wantLines []string
	}{
		{"converged: nothing", func(f *facts.Host) {}, nil},
		{"bare host: everything, start not restart", func(f *facts.Host) {
			*f = facts.Host{Users: map[string]bool{}, Dirs: map[string]facts.File{}, Files: map[string]facts.File{}, Units: map[string]facts.Unit{}}
		}, []string{
			"create system user nats",
			"create dir /var/lib/nats (nats:nats 0750)",
			"create /usr/local/bin/nats-server (root:root 0755, sha256 bin1)",
			"create /etc/nats/nats-server.conf (root:nats 0640, sha256 main1)",
			"create /etc/nats/accounts.conf (root:nats 0640, sha256 acc1)",
			"create /etc/systemd/system/nats-server.service (root:root 0644, sha256 unit1)",
			"systemctl daemon-reload",
			"enable nats-server.service",
			"start nats-server.service",
		}},
		{"permission change: reload only", func(f *facts.Host) {
			f.Files["/etc/nats/accounts.conf"] = facts.File{Mode: 0o640, Owner: "root", Group: "nats", SHA256: "acc0"}
		}, []string{
			"update /etc/nats/accounts.conf (sha256 acc0 -> acc1)",
			"reload nats-server.service (SIGHUP, confirmed by config_digest)",
		}},
		{"reload and restart together: restart wins", func(f *facts.Host) {
			f.Files["/etc/nats/accounts.conf"] = facts.File{Mode: 0o640, Owner: "root", Group: "nats", SHA256: "acc0"}
			f.Files["/usr/local/bin/nats-server"] = facts.File{Mode: 0o755, Owner: "root", Group: "root", SHA256: "bin0"}
		}, []string{
			"update /usr/local/bin/nats-server (sha256 bin0 -> bin1)",
			"update /etc/nats/accounts.conf (sha256 acc0 -> acc1)",
			"restart nats-server.service (rolling, one node at a time, gated on /healthz)",
		}},
		{"unit file change: daemon-reload and restart", func(f *facts.Host) {
			f.Files["/etc/systemd/system/nats-server.service"] = facts.File{Mode: 0o644, Owner: "root", Group: "root", SHA256: "unit0"}
		}, []string{
			"update /etc/systemd/system/nats-server.service (sha256 unit0 -> unit1)",
			"systemctl daemon-reload",
			"restart nats-server.service (rolling, one node at a time, gated on /healthz)",
		}},
		{"mode drift only: fix without handler", func(f *facts.Host) {
			f.Files["/etc/nats/nats-server.conf"] = facts.File{Mode: 0o644, Owner: "root", Group: "root", SHA256: "main1"}
			f.Dirs["/var/lib/nats"] = facts.File{Mode: 0o755, Owner: "root", Group: "root"}
		}, []string{
			"fix dir /var/lib/nats: root:root 0755 -> nats:nats 0750",
			"fix /etc/nats/nats-server.conf: root:root 0644 -> root:nats 0640",
		}},
		{"interrupted run left a restart owed", func(f *facts.Host) {
			f.Pending[svc] = desired.Restart
		}, []string{
			"restart nats-server.service (rolling, one node at a time, gated on /healthz)",
		}},
		{"stopped service: start, no restart", func(f *facts.Host) {
			f.Units[svc] = facts.Unit{Enabled: true, State: "failed"}
			f.Pending[svc] = desired.Restart
		}, []string{"start nats-server.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := converged()
			tt.facts(&f)
			p := Compute(want(), f)
			got := p.Lines()
			if !reflect.DeepEqual(got, tt.wantLines) {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantLines, "\n"))
			}
			if p.Empty() != (len(tt.wantLines) == 0) {
				t.Errorf("Empty() = %v with lines %v", p.Empty(), got)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	if got := Summary([]Host{Compute(want(), converged())}); !strings.HasPrefix(got, "nothing to do") {
		t.Errorf("Summary of converged = %q", got)
	}
	f := converged()
	f.Files["/etc/nats/accounts.conf"] = facts.File{SHA256: "x"}
	if got := Summary([]Host{Compute(want(), f)}); got != "1 host(s) to change, 1 file(s) to upload, reload on nats-1" {
		t.Errorf("Summary = %q", got)
	}
	// A restart alone must not name an empty list of reloads.
	f = converged()
	f.Files["/etc/nats/nats-server.conf"] = facts.File{SHA256: "x"}
	if got := Summary([]Host{Compute(want(), f)}); got != "1 host(s) to change, 1 file(s) to upload, restart on nats-1" {
		t.Errorf("Summary = %q", got)
	}
}

// A file that names its service but asks nothing of it on change, and a
// pending None left in the state, owe the service nothing: a None entry
// in Handlers would make an otherwise empty plan look non-empty.
func TestComputeNoHandler(t *testing.T) {
	quiet := want()
	quiet.Files = append(quiet.Files, desired.File{Path: "/etc/nats/motd", SHA256: "motd1", Mode: 0o644, Owner: "root", Group: "root", Service: svc, OnChange: desired.None})
	tests := []struct {
		name      string
		facts     func(f *facts.Host)
		wantLines []string
	}{
		{"changed file without handler", func(f *facts.Host) {
			f.Files["/etc/nats/motd"] = facts.File{Mode: 0o644, Owner: "root", Group: "root", SHA256: "motd0"}
		}, []string{"update /etc/nats/motd (sha256 motd0 -> motd1)"}},
		{"pending None", func(f *facts.Host) {
			f.Files["/etc/nats/motd"] = facts.File{Mode: 0o644, Owner: "root", Group: "root", SHA256: "motd1"}
			f.Pending[svc] = desired.None
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := converged()
			tt.facts(&f)
			p := Compute(quiet, f)
			if got := p.Lines(); !reflect.DeepEqual(got, tt.wantLines) {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantLines, "\n"))
			}
			if len(p.Handlers) != 0 {
				t.Errorf("Handlers = %v, want none", p.Handlers)
			}
			if p.Empty() != (len(tt.wantLines) == 0) {
				t.Errorf("Empty() = %v with lines %v", p.Empty(), tt.wantLines)
			}
		})
	}
}

func TestReloadPart(t *testing.T) {
	f := converged()
	f.Files["/etc/nats/accounts.conf"] = facts.File{Mode: 0o640, Owner: "root", Group: "nats", SHA256: "acc0"}
	if _, ok := Compute(want(), f).ReloadPart(); ok {
		t.Error("a reload-only plan was split")
	}
	f.Files["/etc/nats/nats-server.conf"] = facts.File{Mode: 0o640, Owner: "root", Group: "nats", SHA256: "main0"}
	part, ok := Compute(want(), f).ReloadPart()
	if !ok {
		t.Fatal("reload+restart plan not split")
	}
	want := []string{
		"update /etc/nats/accounts.conf (sha256 acc0 -> acc1)",
		"reload nats-server.service (SIGHUP, confirmed by config_digest)",
	}
	if got := part.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("reload part:\n%s", strings.Join(got, "\n"))
	}
}

// Only keeps what concerns the given units, with the users, directories
// and unit-less files only in the setup part, and a daemon-reload only
// where one of their unit files changed.
func TestOnly(t *testing.T) {
	const prom = "prometheus.service"
	d := want()
	d.Users = append(d.Users, desired.User{Name: "prometheus"})
	d.Files = append(d.Files,
		desired.File{Path: "/etc/prometheus/prometheus.yml", SHA256: "p1", Service: prom, OnChange: desired.Reload},
		desired.File{Path: "/etc/systemd/system/prometheus.service", SHA256: "pu1", Service: prom, OnChange: desired.Restart},
		desired.File{Path: "/etc/natsdeploy/shared", SHA256: "s1"})
	d.Units = append(d.Units, desired.Unit{Name: prom, UnitFile: "/etc/systemd/system/prometheus.service"})
	f := converged()
	f.Units[prom] = facts.Unit{Enabled: true, Active: true}
	f.Files["/etc/prometheus/prometheus.yml"] = facts.File{SHA256: "p0"}
	f.Files["/etc/systemd/system/prometheus.service"] = facts.File{SHA256: "pu1"}
	f.Files["/etc/natsdeploy/shared"] = facts.File{SHA256: "s0"}
	f.Files["/etc/systemd/system/nats-server.service"] = facts.File{SHA256: "unit0"}
	delete(f.Users, "nats")
	f.Units[svc] = facts.Unit{}
	full := Compute(d, f)

	natsPart := full.Only(map[string]bool{svc: true}, true)
	if got := strings.Join(natsPart.Lines(), "\n"); strings.Contains(got, "/etc/prometheus") || strings.Contains(got, "prometheus.service") || !strings.Contains(got, "/etc/natsdeploy/shared") ||
		!strings.Contains(got, "create system user nats") || !natsPart.DaemonReload ||
		!reflect.DeepEqual(natsPart.Start, []string{svc}) || !reflect.DeepEqual(natsPart.Enable, []string{svc}) {
		t.Errorf("nats part (daemon-reload %v, start %v, enable %v):\n%s", natsPart.DaemonReload, natsPart.Start, natsPart.Enable, got)
	}
	promPart := full.Only(map[string]bool{prom: true}, false)
	if len(promPart.Users) != 0 || len(promPart.Dirs) != 0 || promPart.DaemonReload || len(promPart.Start) != 0 ||
		len(promPart.Files) != 1 || promPart.Files[0].File.Path != "/etc/prometheus/prometheus.yml" ||
		!reflect.DeepEqual(promPart.Handlers, map[string]desired.Handler{prom: desired.Reload}) {
		t.Errorf("prometheus part %+v", promPart)
	}
	if len(promPart.Units) != 2 {
		t.Errorf("units %v: want all kept, for describing handlers", promPart.Units)
	}
	if empty := full.Only(map[string]bool{}, false); !empty.Empty() {
		t.Errorf("no units, no setup: %+v", empty)
	}
}
