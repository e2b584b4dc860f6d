package plan

import (
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
)

// Two roles on one host: "svc" starts first, "watch" watches it and shares
// its user and config directory.
func teardownParts() []desired.Part {
	svcHost := desired.Host{
		Users: []desired.User{{Name: "svc", Home: "/var/lib/svc"}},
		Dirs: []desired.Dir{
			{Path: "/etc/svc", Owner: "root", Group: "svc", Mode: 0o750},
			{Path: "/var/lib/svc", Owner: "svc", Group: "svc", Mode: 0o750, Holds: desired.Data},
			{Path: "/var/log/svc", Owner: "svc", Group: "svc", Mode: 0o750, Holds: desired.Data},
		},
		Files: []desired.File{
			{Path: "/usr/local/bin/svc"},
			{Path: "/etc/svc/svc.conf", ValidateGroup: "svc-config"},
			{Path: "/etc/systemd/system/svc-log.service"},
			{Path: "/etc/systemd/system/svc.service"},
		},
		Units: []desired.Unit{
			{Name: "svc-log.service", UnitFile: "/etc/systemd/system/svc-log.service"},
			{Name: "svc.service", UnitFile: "/etc/systemd/system/svc.service"},
		},
	}
	watchHost := desired.Host{
		Users: []desired.User{{Name: "svc", Home: "/var/lib/svc"}, {Name: "watch", Home: "/nonexistent"}},
		Dirs: []desired.Dir{
			{Path: "/etc/svc", Owner: "root", Group: "svc", Mode: 0o750},
			{Path: "/opt/watch", Owner: "root", Group: "root", Mode: 0o755, Holds: desired.Runtime},
			{Path: "/etc/svc/watch.d", Owner: "root", Group: "svc", Mode: 0o750},
		},
		Files: []desired.File{
			{Path: "/etc/svc/watch.d/watch.yml"},
			{Path: "/etc/systemd/system/watch.service"},
		},
		Units: []desired.Unit{{Name: "watch.service", UnitFile: "/etc/systemd/system/watch.service"}},
	}
	return []desired.Part{{Role: "svc", Host: svcHost}, {Role: "watch", Host: watchHost}}
}

// installed is a host with every path of the parts, every unit enabled
// and running, and natsdeploy's state directory.
func installed(parts []desired.Part) facts.Host {
	f := facts.Host{Users: map[string]bool{}, Dirs: map[string]facts.File{facts.StateDir: {}}, Files: map[string]facts.File{}, Units: map[string]facts.Unit{}}
	for _, p := range parts {
		for _, u := range p.Host.Users {
			f.Users[u.Name] = true
		}
		for _, d := range p.Host.Dirs {
			f.Dirs[d.Path] = facts.File{}
		}
		for _, file := range p.Host.Files {
			f.Files[file.Path] = facts.File{}
		}
		for _, u := range p.Host.Units {
			f.Units[u.Name] = facts.Unit{Enabled: true, Active: true, State: "active"}
		}
	}
	return f
}

func TestComputeTeardown(t *testing.T) {
	tests := []struct {
		name  string
		purge bool
		edit  func(f *facts.Host)
		want  []string
	}{
		{"keep data: the watcher first, shared user and dir with the service", false, nil, []string{
			"role watch:",
			"  stop watch.service",
			"  disable watch.service",
			"  remove /etc/svc/watch.d/watch.yml",
			"  remove /etc/systemd/system/watch.service",
			"  systemctl daemon-reload",
			"  remove dir /etc/svc/watch.d (kept if anything natsdeploy did not render is in it)",
			"  remove /opt/watch and everything in it",
			"role svc:",
			"  stop svc.service",
			"  stop svc-log.service",
			"  disable svc.service",
			"  disable svc-log.service",
			"  remove /usr/local/bin/svc",
			"  remove /etc/svc/svc.conf",
			"  remove /etc/systemd/system/svc-log.service",
			"  remove /etc/systemd/system/svc.service",
			"  systemctl daemon-reload",
			"  remove dir /etc/svc (kept if anything natsdeploy did not render is in it)",
			"remove natsdeploy's state /var/lib/natsdeploy (owed handlers, file sums; the lock once released)",
			"keep system user watch (users go only with --purge-data)",
			"keep /var/lib/svc (svc's data, owned by svc; --purge-data removes it)",
			"keep /var/log/svc (svc's data, owned by svc; --purge-data removes it)",
			"keep system user svc (owns the kept data; --purge-data removes it)",
		}},
		// Only data directories make their owner a keeper: with the
		// config directories (group svc) already gone, svc is still kept
		// for its data.
		{"keep data, config dirs already gone", false, func(f *facts.Host) {
			delete(f.Dirs, "/etc/svc")
			delete(f.Dirs, "/etc/svc/watch.d")
		}, []string{
			"role watch:",
			"  stop watch.service",
			"  disable watch.service",
			"  remove /etc/svc/watch.d/watch.yml",
			"  remove /etc/systemd/system/watch.service",
			"  systemctl daemon-reload",
			"  remove /opt/watch and everything in it",
			"role svc:",
			"  stop svc.service",
			"  stop svc-log.service",
			"  disable svc.service",
			"  disable svc-log.service",
			"  remove /usr/local/bin/svc",
			"  remove /etc/svc/svc.conf",
			"  remove /etc/systemd/system/svc-log.service",
			"  remove /etc/systemd/system/svc.service",
			"  systemctl daemon-reload",
			"remove natsdeploy's state /var/lib/natsdeploy (owed handlers, file sums; the lock once released)",
			"keep system user watch (users go only with --purge-data)",
			"keep /var/lib/svc (svc's data, owned by svc; --purge-data removes it)",
			"keep /var/log/svc (svc's data, owned by svc; --purge-data removes it)",
			"keep system user svc (owns the kept data; --purge-data removes it)",
		}},
		{"purge: data and users too, deepest first", true, nil, []string{
			"role watch:",
			"  stop watch.service",
			"  disable watch.service",
			"  remove /etc/svc/watch.d/watch.yml",
			"  remove /etc/systemd/system/watch.service",
			"  systemctl daemon-reload",
			"  remove dir /etc/svc/watch.d (kept if anything natsdeploy did not render is in it)",
			"  remove /opt/watch and everything in it",
			"  remove system user watch and its group",
			"role svc:",
			"  stop svc.service",
			"  stop svc-log.service",
			"  disable svc.service",
			"  disable svc-log.service",
			"  remove /usr/local/bin/svc",
			"  remove /etc/svc/svc.conf",
			"  remove /etc/systemd/system/svc-log.service",
			"  remove /etc/systemd/system/svc.service",
			"  systemctl daemon-reload",
			"  remove /var/lib/svc and everything in it (data: --purge-data)",
			"  remove /var/log/svc and everything in it (data: --purge-data)",
			"  remove dir /etc/svc (kept if anything natsdeploy did not render is in it)",
			"  remove system user svc and its group",
			"remove natsdeploy's state /var/lib/natsdeploy (owed handlers, file sums; the lock once released)",
		}},
		// Half gone (an interrupted destroy): only what is left, and a
		// failed unit is forgotten, not stopped.
		{"half gone", true, func(f *facts.Host) {
			for p := range f.Files {
				if strings.Contains(p, "watch") || p == "/etc/systemd/system/svc.service" {
					delete(f.Files, p)
				}
			}
			delete(f.Dirs, "/opt/watch")
			delete(f.Dirs, "/etc/svc/watch.d")
			delete(f.Users, "watch")
			f.Units["watch.service"] = facts.Unit{State: "inactive"}
			f.Units["svc.service"] = facts.Unit{State: "failed"}
			f.Units["svc-log.service"] = facts.Unit{Enabled: true, State: "inactive"}
		}, []string{
			"role svc:",
			"  stop svc-log.service",
			"  disable svc-log.service",
			"  remove /usr/local/bin/svc",
			"  remove /etc/svc/svc.conf",
			"  remove /etc/systemd/system/svc-log.service",
			"  systemctl daemon-reload",
			"  forget failed svc.service (systemctl reset-failed)",
			"  remove /var/lib/svc and everything in it (data: --purge-data)",
			"  remove /var/log/svc and everything in it (data: --purge-data)",
			"  remove dir /etc/svc (kept if anything natsdeploy did not render is in it)",
			"  remove system user svc and its group",
			"remove natsdeploy's state /var/lib/natsdeploy (owed handlers, file sums; the lock once released)",
		}},
		{"already gone", false, func(f *facts.Host) {
			*f = facts.Host{Units: map[string]facts.Unit{"svc.service": {State: "inactive"}}}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts := teardownParts()
			f := installed(parts)
			if tc.edit != nil {
				tc.edit(&f)
			}
			td, err := ComputeTeardown("h1", parts, f, tc.purge)
			if err != nil {
				t.Fatal(err)
			}
			if got := td.Lines(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if td.Empty() != (tc.want == nil) {
				t.Errorf("Empty() = %v with lines %v", td.Empty(), tc.want)
			}
		})
	}
}

// Whatever a role renders, destroy never removes a system directory or
// account, nor a directory holding kept data, and refuses the whole host
// when asked to, naming every problem.
func TestComputeTeardownRefuses(t *testing.T) {
	tests := []struct {
		name  string
		purge bool
		part  desired.Host
		want  []string
	}{
		{"data dir that is a system dir", true, desired.Host{Dirs: []desired.Dir{{Path: "/var/lib", Holds: desired.Data}}},
			[]string{"role bad: directory /var/lib: a system directory; natsdeploy never removes it"}},
		{"runtime dir that is a system dir", false, desired.Host{Dirs: []desired.Dir{{Path: "/opt", Holds: desired.Runtime}}},
			[]string{"role bad: directory /opt: a system directory"}},
		{"rendered dir that is a system dir", false, desired.Host{Dirs: []desired.Dir{{Path: "/etc"}}},
			[]string{"role bad: directory /etc: a system directory"}},
		{"natsdeploy's own state", false, desired.Host{Dirs: []desired.Dir{{Path: "/var/lib/natsdeploy", Holds: desired.Runtime}}},
			[]string{"directory /var/lib/natsdeploy: a system directory"}},
		{"relative path", false, desired.Host{Files: []desired.File{{Path: "etc/bad.conf"}}},
			[]string{"role bad: file etc/bad.conf: not an absolute, clean path"}},
		{"unclean path", false, desired.Host{Dirs: []desired.Dir{{Path: "/srv/x/../..", Holds: desired.Runtime}}},
			[]string{"not an absolute, clean path"}},
		{"runtime dir holding kept data", false, desired.Host{Dirs: []desired.Dir{{Path: "/srv/bad", Holds: desired.Runtime}, {Path: "/srv/bad/store", Holds: desired.Data}}},
			[]string{"role bad: directory /srv/bad holds /srv/bad/store, which is kept"}},
		{"a system account", true, desired.Host{Users: []desired.User{{Name: "root"}, {Name: "systemd-network"}}},
			[]string{"role bad: user root is a system account", "role bad: user systemd-network is a system account"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts := []desired.Part{{Role: "bad", Host: tc.part}}
			_, err := ComputeTeardown("h1", parts, installed(parts), tc.purge)
			if err == nil {
				t.Fatal("teardown accepted")
			}
			for _, w := range append(tc.want, "host h1: refusing to destroy") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// Kept data inside a runtime dir is fine once purging: nothing is kept.
	parts := []desired.Part{{Role: "ok", Host: desired.Host{Dirs: []desired.Dir{{Path: "/srv/ok", Holds: desired.Runtime}, {Path: "/srv/ok/store", Holds: desired.Data}}}}}
	if _, err := ComputeTeardown("h1", parts, installed(parts), true); err != nil {
		t.Errorf("purge refused: %v", err)
	}
}

func TestTeardownSummary(t *testing.T) {
	parts := teardownParts()
	a, _ := ComputeTeardown("h1", parts, installed(parts), false)
	b, _ := ComputeTeardown("h2", parts, facts.Host{}, false)
	if got := TeardownSummary([]Teardown{a, b}); got != "1 host(s) to clear (h1): 3 unit(s) to stop, 6 file(s), 3 dir(s) and 0 user(s) to remove, 4 kept" {
		t.Errorf("summary %q", got)
	}
	if got := TeardownSummary([]Teardown{b}); got != "nothing to remove: no host has anything natsdeploy installs (0 kept)" {
		t.Errorf("empty summary %q", got)
	}
}
