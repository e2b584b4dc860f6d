// Package plan diffs the desired state of a host against its facts and says
// what must change: nothing more. It is pure, so it is tested with facts in
// and actions out, and `natsdeploy plan` is exactly `apply` stopped here.
package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
)

// Host is what must change on one host.
type Host struct {
	Name  string
	Users []desired.User
	Dirs  []DirChange
	Files []FileChange
	// DaemonReload is set when a unit file changes.
	DaemonReload bool
	// Enable lists units that are not enabled yet.
	Enable []string
	// Start lists units that are not running; starting them picks up every
	// change, so they get no other handler.
	Start []string
	// Handlers is what each running service needs after the changes (or
	// still needs from an interrupted run), by unit name.
	Handlers map[string]desired.Handler
	// Units are the desired units, for describing handlers.
	Units []desired.Unit
}

// DirChange creates a directory or corrects its owner or mode.
type DirChange struct {
	Dir    desired.Dir
	Create bool
	Was    facts.File
}

// FileChange uploads a file, or only corrects its owner or mode.
type FileChange struct {
	File   desired.File
	Create bool       // the file does not exist yet
	Upload bool       // content differs (or file is new)
	Was    facts.File // zero when Create
}

// Empty reports whether the host needs nothing at all.
func (h Host) Empty() bool {
	return len(h.Users) == 0 && len(h.Dirs) == 0 && len(h.Files) == 0 &&
		!h.DaemonReload && len(h.Enable) == 0 && len(h.Start) == 0 && len(h.Handlers) == 0
}

// Compute diffs one host's desired state against its facts.
func Compute(d desired.Host, f facts.Host) Host {
	p := Host{Name: d.Name, Handlers: map[string]desired.Handler{}, Units: d.Units}
	for _, u := range d.Users {
		if !f.Users[u.Name] {
			p.Users = append(p.Users, u)
		}
	}
	for _, dir := range d.Dirs {
		was, ok := f.Dirs[dir.Path]
		switch {
		case !ok:
			p.Dirs = append(p.Dirs, DirChange{Dir: dir, Create: true})
		case was.Mode.Perm() != dir.Mode.Perm() || was.Owner != dir.Owner || was.Group != dir.Group:
			p.Dirs = append(p.Dirs, DirChange{Dir: dir, Was: was})
		}
	}
	unitFiles := map[string]bool{}
	for _, u := range d.Units {
		unitFiles[u.UnitFile] = true
	}
	for _, file := range d.Files {
		was, ok := f.Files[file.Path]
		c := FileChange{File: file, Was: was, Create: !ok, Upload: !ok || was.SHA256 != file.SHA256}
		if !c.Upload && was.Mode.Perm() == file.Mode.Perm() && was.Owner == file.Owner && was.Group == file.Group {
			continue
		}
		p.Files = append(p.Files, c)
		if c.Upload {
			if unitFiles[file.Path] {
				p.DaemonReload = true
			}
			if file.Service != "" && file.OnChange > p.Handlers[file.Service] {
				p.Handlers[file.Service] = file.OnChange
			}
		}
	}
	for svc, h := range f.Pending {
		if h > p.Handlers[svc] {
			p.Handlers[svc] = h
		}
	}
	for _, u := range d.Units {
		uf := f.Units[u.Name]
		if !uf.Enabled {
			p.Enable = append(p.Enable, u.Name)
		}
		if !uf.Active {
			p.Start = append(p.Start, u.Name)
			delete(p.Handlers, u.Name)
		}
	}
	return p
}

// Handler returns what service svc needs on this host.
func (h Host) Handler(svc string) desired.Handler { return h.Handlers[svc] }

// Lines describes the plan for a person, one action a line, in the order
// apply carries them out.
func (h Host) Lines() []string {
	var out []string
	for _, u := range h.Users {
		out = append(out, fmt.Sprintf("create system user %s", u.Name))
	}
	for _, d := range h.Dirs {
		if d.Create {
			out = append(out, fmt.Sprintf("create dir %s (%s:%s %04o)", d.Dir.Path, d.Dir.Owner, d.Dir.Group, d.Dir.Mode.Perm()))
		} else {
			out = append(out, fmt.Sprintf("fix dir %s: %s:%s %04o -> %s:%s %04o", d.Dir.Path, d.Was.Owner, d.Was.Group, d.Was.Mode.Perm(), d.Dir.Owner, d.Dir.Group, d.Dir.Mode.Perm()))
		}
	}
	for _, f := range h.Files {
		switch {
		case f.Create && f.File.Sensitive:
			out = append(out, fmt.Sprintf("create %s (%s:%s %04o, holds secrets: hash not shown)", f.File.Path, f.File.Owner, f.File.Group, f.File.Mode.Perm()))
		case f.Create:
			out = append(out, fmt.Sprintf("create %s (%s:%s %04o, sha256 %s)", f.File.Path, f.File.Owner, f.File.Group, f.File.Mode.Perm(), short(f.File.SHA256)))
		case f.Upload && f.File.Sensitive:
			// The hash of a small template around a password is a fast
			// hash of the password: a log of it would let anyone test
			// guesses offline.
			out = append(out, fmt.Sprintf("update %s (holds secrets: hash not shown)", f.File.Path))
		case f.Upload:
			out = append(out, fmt.Sprintf("update %s (sha256 %s -> %s)", f.File.Path, short(f.Was.SHA256), short(f.File.SHA256)))
		default:
			out = append(out, fmt.Sprintf("fix %s: %s:%s %04o -> %s:%s %04o", f.File.Path, f.Was.Owner, f.Was.Group, f.Was.Mode.Perm(), f.File.Owner, f.File.Group, f.File.Mode.Perm()))
		}
	}
	if h.DaemonReload {
		out = append(out, "systemctl daemon-reload")
	}
	for _, u := range h.Enable {
		out = append(out, "enable "+u)
	}
	for _, u := range h.Start {
		out = append(out, "start "+u)
	}
	svcs := make([]string, 0, len(h.Handlers))
	for s := range h.Handlers {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	for _, s := range svcs {
		u := h.unit(s)
		switch h.Handlers[s] {
		case desired.Restart:
			if u.Ready != nil {
				out = append(out, "restart "+s+" (rolling, one node at a time, gated on "+u.Ready.Desc+")")
			} else {
				out = append(out, "restart "+s+" (rolling, one node at a time)")
			}
		case desired.Reload:
			switch {
			case u.Reload != nil:
				out = append(out, "reload "+s+" (SIGHUP, confirmed by "+u.Reload.Desc+")")
			case u.Ready != nil:
				out = append(out, "reload "+s+" (SIGHUP, confirmed by "+u.Ready.Desc+")")
			default:
				out = append(out, "reload "+s+" (SIGHUP)")
			}
		}
	}
	return out
}

func (h Host) unit(name string) desired.Unit {
	for _, u := range h.Units {
		if u.Name == name {
			return u
		}
	}
	return desired.Unit{Name: name}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Summary is a one-line count for a person.
func Summary(hosts []Host) string {
	changed, files := 0, 0
	var restarts, reloads []string
	for _, h := range hosts {
		if h.Empty() {
			continue
		}
		changed++
		for _, f := range h.Files {
			if f.Upload {
				files++
			}
		}
		for _, hd := range h.Handlers {
			switch hd {
			case desired.Restart:
				restarts = append(restarts, h.Name)
			case desired.Reload:
				reloads = append(reloads, h.Name)
			}
		}
	}
	if changed == 0 {
		return "nothing to do: every host is as the inventory says"
	}
	s := fmt.Sprintf("%d host(s) to change, %d file(s) to upload", changed, files)
	if len(restarts) > 0 {
		s += ", restart on " + strings.Join(restarts, ", ")
	}
	if len(reloads) > 0 {
		s += ", reload on " + strings.Join(reloads, ", ")
	}
	return s
}

// ReloadPart returns the part of h a reload can carry: users, directories
// and the changed files whose service reloads them, with a Reload handler.
// ok is false unless h also owes a restart, the only case where splitting
// helps: settings a reload can change (route credentials among them) then
// reach every node at once, before the restarts roll. Rolled out by
// restart instead, a new route password would leave restarted and waiting
// nodes unable to authenticate each other's routes.
func (h Host) ReloadPart() (Host, bool) {
	part := Host{Name: h.Name, Users: h.Users, Dirs: h.Dirs, Handlers: map[string]desired.Handler{}, Units: h.Units}
	for _, f := range h.Files {
		if f.Upload && f.File.OnChange == desired.Reload && h.Handlers[f.File.Service] == desired.Restart {
			part.Files = append(part.Files, f)
			part.Handlers[f.File.Service] = desired.Reload
		}
	}
	return part, len(part.Files) > 0
}

// Only returns the part of h that concerns the named units: their files,
// enables, starts and handlers, and the daemon-reload their unit files
// need. setup adds the users, directories and files that belong to no
// unit. Units stays whole, for describing handlers.
func (h Host) Only(units map[string]bool, setup bool) Host {
	part := Host{Name: h.Name, Handlers: map[string]desired.Handler{}, Units: h.Units}
	if setup {
		part.Users, part.Dirs = h.Users, h.Dirs
	}
	unitFiles := map[string]bool{}
	for _, u := range h.Units {
		if units[u.Name] {
			unitFiles[u.UnitFile] = true
		}
	}
	for _, f := range h.Files {
		if units[f.File.Service] || (setup && f.File.Service == "") {
			part.Files = append(part.Files, f)
			part.DaemonReload = part.DaemonReload || (f.Upload && unitFiles[f.File.Path])
		}
	}
	for _, u := range h.Enable {
		if units[u] {
			part.Enable = append(part.Enable, u)
		}
	}
	for _, u := range h.Start {
		if units[u] {
			part.Start = append(part.Start, u)
		}
	}
	for u, hd := range h.Handlers {
		if units[u] {
			part.Handlers[u] = hd
		}
	}
	return part
}
