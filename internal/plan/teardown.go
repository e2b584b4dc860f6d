package plan

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
)

// Teardown is what destroy removes from one host: only what the roles
// render for it and the host's facts show is there, role by role.
type Teardown struct {
	Name string
	// Roles go in this order: the reverse of the order they start in,
	// so what depends on a service goes before the service.
	Roles []RoleTeardown
	// Kept is what stays, each with why: data unless purging, and the
	// users that own it.
	Kept []string
	// State: natsdeploy's own bookkeeping (facts.StateDir) is there.
	State bool
}

// RoleTeardown is one role's part of a host's teardown, in the order it
// is carried out.
type RoleTeardown struct {
	Role string
	// Stop: units that are loaded, last started first. Disable: those
	// enabled. ResetFailed: those systemd remembers as failed, which
	// it would go on listing after their files are gone.
	Stop, Disable, ResetFailed []string
	// Files that exist, in the order the role renders them.
	Files []desired.File
	// DaemonReload: a unit file goes, so systemd must forget it.
	DaemonReload bool
	// Dirs that exist and go, deepest first. A Rendered one goes only
	// if nothing but what natsdeploy rendered was in it.
	Dirs []desired.Dir
	// Users to remove, with their groups (only when purging data).
	Users []string
}

// Empty reports whether the role has nothing left on the host.
func (r RoleTeardown) Empty() bool {
	return len(r.Stop) == 0 && len(r.Disable) == 0 && len(r.ResetFailed) == 0 && len(r.Files) == 0 &&
		!r.DaemonReload && len(r.Dirs) == 0 && len(r.Users) == 0
}

// Empty reports whether nothing of any role is left on the host; what is
// kept, and natsdeploy's own state, do not count.
func (t Teardown) Empty() bool {
	for _, r := range t.Roles {
		if !r.Empty() {
			return false
		}
	}
	return true
}

// systemDirs are never removed, whatever a role renders: a role's mistake
// (or an inventory's) must never cost a host one of these. Inventory
// validation refuses most of them as directories already; this is the
// engine's own last line.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/etc/systemd": true,
	"/etc/systemd/system": true, "/home": true, "/lib": true, "/lib32": true, "/lib64": true,
	"/lib/systemd": true, "/media": true, "/mnt": true, "/opt": true, "/proc": true, "/root": true,
	"/run": true, "/sbin": true, "/srv": true, "/sys": true, "/tmp": true, "/usr": true,
	"/usr/bin": true, "/usr/lib": true, "/usr/lib/systemd": true, "/usr/local": true,
	"/usr/local/bin": true, "/usr/local/lib": true, "/usr/local/sbin": true, "/usr/sbin": true,
	"/usr/share": true, "/var": true, "/var/cache": true, "/var/lib": true, "/var/log": true,
	"/var/opt": true, "/var/run": true, "/var/spool": true, "/var/tmp": true,
	facts.StateDir: true,
}

// systemUsers are never removed, whatever a role renders.
var systemUsers = map[string]bool{"root": true, "daemon": true, "bin": true, "sys": true, "nobody": true, "sshd": true}

// ComputeTeardown works out what destroy removes from one host. parts are
// the roles' desired states of the host in the order the roles start; f
// are its facts (with facts.StateDir among the directories asked about).
// Without purge, data directories and every user stay; with it they go
// too. A user or directory several roles share goes with the last of
// them to go. It refuses, changing nothing anywhere, when a path to
// remove is not absolute and clean, is a system directory, or would take
// a kept directory with it.
func ComputeTeardown(name string, parts []desired.Part, f facts.Host, purge bool) (Teardown, error) {
	t := Teardown{Name: name}
	_, t.State = f.Dirs[facts.StateDir]
	// The first role in start order to claim a shared user or directory
	// is the last to go: it takes it.
	dirOwner, userOwner := map[string]int{}, map[string]int{}
	for i, p := range parts {
		for _, d := range p.Host.Dirs {
			if _, ok := dirOwner[d.Path]; !ok {
				dirOwner[d.Path] = i
			}
		}
		for _, u := range p.Host.Users {
			if _, ok := userOwner[u.Name]; !ok {
				userOwner[u.Name] = i
			}
		}
	}
	var kept []string           // directories that stay
	owners := map[string]bool{} // users and groups owning what stays
	for _, p := range parts {
		for _, d := range p.Host.Dirs {
			if _, ok := f.Dirs[d.Path]; ok && d.Holds == desired.Data && !purge {
				owners[d.Owner], owners[d.Group] = true, true
			}
		}
	}
	var problems []string
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		r := RoleTeardown{Role: p.Role}
		unitFiles := map[string]bool{}
		for j := len(p.Host.Units) - 1; j >= 0; j-- {
			u := p.Host.Units[j]
			uf := f.Units[u.Name]
			_, hasFile := f.Files[u.UnitFile]
			if hasFile || uf.Active || uf.State == "activating" || uf.State == "deactivating" {
				r.Stop = append(r.Stop, u.Name)
			}
			if uf.Enabled {
				r.Disable = append(r.Disable, u.Name)
			}
			if uf.State == "failed" {
				r.ResetFailed = append(r.ResetFailed, u.Name)
			}
			unitFiles[u.UnitFile] = true
		}
		for _, file := range p.Host.Files {
			if _, ok := f.Files[file.Path]; !ok {
				continue
			}
			if err := removable(file.Path); err != nil {
				problems = append(problems, fmt.Sprintf("role %s: file %s: %v", p.Role, file.Path, err))
				continue
			}
			r.Files = append(r.Files, file)
			r.DaemonReload = r.DaemonReload || unitFiles[file.Path]
		}
		for _, d := range p.Host.Dirs {
			if _, ok := f.Dirs[d.Path]; !ok || dirOwner[d.Path] != i {
				continue
			}
			if d.Holds == desired.Data && !purge {
				t.Kept = append(t.Kept, fmt.Sprintf("%s (%s's data, owned by %s; --purge-data removes it)", d.Path, p.Role, d.Owner))
				kept = append(kept, d.Path)
				continue
			}
			if err := removable(d.Path); err != nil {
				problems = append(problems, fmt.Sprintf("role %s: directory %s: %v", p.Role, d.Path, err))
				continue
			}
			r.Dirs = append(r.Dirs, d)
		}
		sort.SliceStable(r.Dirs, func(a, b int) bool { return deeper(r.Dirs[a].Path, r.Dirs[b].Path) })
		for _, u := range p.Host.Users {
			if !f.Users[u.Name] || userOwner[u.Name] != i {
				continue
			}
			switch {
			case !purge && owners[u.Name]:
				t.Kept = append(t.Kept, fmt.Sprintf("system user %s (owns the kept data; --purge-data removes it)", u.Name))
			case !purge:
				t.Kept = append(t.Kept, fmt.Sprintf("system user %s (users go only with --purge-data)", u.Name))
			case systemUsers[u.Name] || strings.HasPrefix(u.Name, "systemd-"):
				problems = append(problems, fmt.Sprintf("role %s: user %s is a system account; natsdeploy never removes it", p.Role, u.Name))
			default:
				r.Users = append(r.Users, u.Name)
			}
		}
		t.Roles = append(t.Roles, r)
	}
	// A directory removed with everything in it must not hold one that
	// stays.
	for _, r := range t.Roles {
		for _, d := range r.Dirs {
			if d.Holds == desired.Rendered {
				continue
			}
			for _, k := range kept {
				if within(k, d.Path) {
					problems = append(problems, fmt.Sprintf("role %s: directory %s holds %s, which is kept", r.Role, d.Path, k))
				}
			}
		}
	}
	if len(problems) > 0 {
		return Teardown{}, fmt.Errorf("host %s: refusing to destroy:\n  %s", name, strings.Join(problems, "\n  "))
	}
	return t, nil
}

// removable refuses what destroy must never remove, whatever a role says.
func removable(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p:
		return fmt.Errorf("not an absolute, clean path")
	case systemDirs[p]:
		return fmt.Errorf("a system directory; natsdeploy never removes it")
	}
	return nil
}

// deeper orders paths so that a directory comes before its parent.
func deeper(a, b string) bool {
	da, db := strings.Count(a, "/"), strings.Count(b, "/")
	if da != db {
		return da > db
	}
	return a < b
}

func within(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

// Lines describes the teardown for a person, in the order destroy goes:
// each role's actions under its name, then what is kept.
func (t Teardown) Lines() []string {
	var out []string
	for _, r := range t.Roles {
		if r.Empty() {
			continue
		}
		out = append(out, "role "+r.Role+":")
		for _, u := range r.Stop {
			out = append(out, "  stop "+u)
		}
		for _, u := range r.Disable {
			out = append(out, "  disable "+u)
		}
		for _, f := range r.Files {
			out = append(out, "  remove "+f.Path)
		}
		if r.DaemonReload {
			out = append(out, "  systemctl daemon-reload")
		}
		for _, u := range r.ResetFailed {
			out = append(out, "  forget failed "+u+" (systemctl reset-failed)")
		}
		for _, d := range r.Dirs {
			switch d.Holds {
			case desired.Data:
				out = append(out, "  remove "+d.Path+" and everything in it (data: --purge-data)")
			case desired.Runtime:
				out = append(out, "  remove "+d.Path+" and everything in it")
			default:
				out = append(out, "  remove dir "+d.Path+" (kept if anything natsdeploy did not render is in it)")
			}
		}
		for _, u := range r.Users {
			out = append(out, "  remove system user "+u+" and its group")
		}
	}
	if t.State {
		out = append(out, "remove natsdeploy's state "+facts.StateDir+" (owed handlers, file sums; the lock once released)")
	}
	for _, k := range t.Kept {
		out = append(out, "keep "+k)
	}
	return out
}

// TeardownSummary is a one-line count over every host.
func TeardownSummary(ts []Teardown) string {
	units, files, dirs, users, kept := 0, 0, 0, 0, 0
	var hosts []string
	for _, t := range ts {
		if !t.Empty() {
			hosts = append(hosts, t.Name)
		}
		kept += len(t.Kept)
		for _, r := range t.Roles {
			units += len(r.Stop)
			files += len(r.Files)
			dirs += len(r.Dirs)
			users += len(r.Users)
		}
	}
	if len(hosts) == 0 {
		return fmt.Sprintf("nothing to remove: no host has anything natsdeploy installs (%d kept)", kept)
	}
	return fmt.Sprintf("%d host(s) to clear (%s): %d unit(s) to stop, %d file(s), %d dir(s) and %d user(s) to remove, %d kept",
		len(hosts), strings.Join(hosts, ", "), units, files, dirs, users, kept)
}
