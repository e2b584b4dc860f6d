// Package desired holds the plain data a role produces: what one host should
// look like. Roles fill it in; the planner diffs it against facts gathered
// from the host; nothing here talks to a host.
package desired

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
)

// Host is the whole desired state of one host.
type Host struct {
	Name  string // inventory host name
	Users []User
	Dirs  []Dir
	Files []File
	Units []Unit
	// Ports the host's services listen on; never acted on, only checked
	// for clashes between roles.
	Ports []Port
}

// Port is a TCP port a service listens on. Key is the inventory key that
// sets it, so a clash can be reported where the user can fix it.
type Port struct {
	Number int
	Key    string
}

// User is a system account a service runs as.
type User struct {
	Name  string
	Home  string // also its primary group's name is Name
	Shell string // /usr/sbin/nologin for services
}

// Dir is a directory with an owner and mode. Apply creates directories
// and corrects their owner and mode, never removes or empties them; only
// destroy removes them, as Holds allows.
type Dir struct {
	Path  string
	Owner string
	Group string
	Mode  fs.FileMode
	Holds Contents
}

// Contents is what a directory holds besides the files a role renders into
// it. Destroy decides by it alone what it may remove: a role that leaves
// it unset gets the careful default.
type Contents int

const (
	// Rendered: the role's rendered files, and whatever a person put
	// there. Destroy removes the rendered files, then the directory only
	// if nothing else is left in it.
	Rendered Contents = iota
	// Runtime: what the service or its unit makes for itself and needs
	// no more once it is gone (an unpacked release, a working
	// directory). Destroy removes it with everything in it.
	Runtime
	// Data: what the service keeps and its operator wants back after a
	// reinstall (a message store, a database, its logs). Destroy keeps
	// it, with its owner, unless asked to purge data.
	Data
)

func (c Contents) String() string {
	switch c {
	case Runtime:
		return "runtime"
	case Data:
		return "data"
	}
	return "rendered"
}

// Handler says what must happen to a service after a file changes.
type Handler int

const (
	None Handler = iota
	// Reload sends SIGHUP (systemctl reload); the change is confirmed by the
	// service's health check after.
	Reload
	// Restart restarts the service, one host at a time, gated on health.
	Restart
)

func (h Handler) String() string {
	switch h {
	case Reload:
		return "reload"
	case Restart:
		return "restart"
	}
	return "none"
}

// File is a managed file. Exactly one of Content and Source is set.
type File struct {
	Path    string
	Content []byte // rendered content
	Source  string // local file to upload (artifacts), hashed by SHA256
	SHA256  string // hex sha256 of the content, always set
	Mode    fs.FileMode
	Owner   string
	Group   string

	// Group of files validated together before any is swapped in: every
	// file with the same ValidateGroup (all in one directory) is staged,
	// then ValidateCmd runs with {dir} replaced by the staging directory,
	// and with the path of any other managed file that changes (a new
	// binary) replaced by its staged copy; only on success are they
	// renamed into place.
	ValidateGroup string
	ValidateCmd   string

	// Sensitive files (password hashes) are never shown in a diff.
	Sensitive bool

	// Service is the unit this file belongs to; OnChange is what it needs
	// when the file changes.
	Service  string
	OnChange Handler
}

// Unit is a systemd unit that must be enabled and running.
type Unit struct {
	Name string // e.g. "nats-server.service"
	// UnitFile is the path of the file defining it, among Files, so a
	// change to it triggers daemon-reload.
	UnitFile string
	// Role is the role that wants it, set by Merge. Apply takes a role's
	// units across every host as one step (see apply.Waves).
	Role string
	// After names units of earlier roles, on any host, that must be up
	// before this one is started, reloaded or restarted, because its
	// ready gate needs them (the surveyor's needs NATS). Apply runs the
	// handlers of a role with no such need without waiting for the roles
	// before it.
	After []string
	// StartsBefore names the unit listed right after this one, of the same
	// role, that this unit's own file orders it before (Before=): where
	// both are to start on a host, one `systemctl start` starts both and
	// systemd keeps that order, a round trip less than two starts. Such a
	// unit has no Ready gate of its own.
	StartsBefore string
	// Ready is polled after a start, reload or restart until it passes;
	// a rolling restart also requires it of every other host before it
	// takes one down. Nil: an active unit is ready.
	Ready *Gate
	// Reload confirms that a reload took effect (a service may only log a
	// reload it refused). Nil: a reload is confirmed by Ready alone.
	Reload *ReloadGate
	// Settled is polled across every host that runs the unit after a
	// start, a reload or a restart, before the next host is touched (and
	// before apply reports success): what a cluster needs beyond each
	// member being ready. Nil: nothing to wait for.
	Settled *ClusterGate
	// Order names the host a rolling restart takes last (a cluster's
	// leader: restarted last, its role moves once instead of at every
	// step). Asked again before each restart, since the answer can
	// change during a roll. Nil: inventory order.
	Order *OrderGate
	// DiagnoseCmd prints what explains a failed start (journal and log
	// tail); its output is shown with the error. Default: the unit's
	// journal.
	DiagnoseCmd string
	// Version is the version of the unit's program the inventory asks
	// for, and VersionCmd prints the installed program's version (the
	// first x.y.z in its first line is taken); status compares the two.
	// Empty: the unit's version is not shown nor checked.
	Version    string
	VersionCmd string
}

// Remote is what a gate may use of a host: commands as root, and an HTTP
// client that reaches the host's loopback through the SSH connection.
type Remote interface {
	Exec(ctx context.Context, cmd string) (string, error)
	HTTPClient() *http.Client
}

// Node is one host as a gate sees it.
type Node struct {
	Name   string
	Remote Remote
}

// Gate is a readiness check of one host. Desc names it for a person
// ("/healthz"); Check returns nil once the service is ready, or what it
// saw instead.
type Gate struct {
	Desc  string
	Check func(ctx context.Context, n Node) error
}

// ReloadGate proves a reload took effect. Want is asked before the reload
// (what the service must report once it runs the config on disk); Check
// returns nil once it does. Desc names the proof for plan text.
type ReloadGate struct {
	Desc  string
	Want  func(ctx context.Context, n Node) (string, error)
	Check func(ctx context.Context, n Node, want string) error
}

// ClusterGate is a check across all hosts that run a unit, in inventory
// order. When Check can tell which members keep the cluster from settling
// it returns a *Lagging, so the engine can repair those and no other.
type ClusterGate struct {
	Desc  string
	Check func(ctx context.Context, nodes []Node) error
}

// Lagging is a ClusterGate's error that names the members at fault, the
// one to repair first first.
type Lagging struct {
	Nodes []string
	Err   error
}

func (l *Lagging) Error() string { return l.Err.Error() }
func (l *Lagging) Unwrap() error { return l.Err }

// OrderGate picks, of all hosts that run a unit (in inventory order), the
// one to restart last. Desc names it for a person ("the meta leader");
// Last returns its host name, or "" when no host needs to go last.
type OrderGate struct {
	Desc string
	Last func(ctx context.Context, nodes []Node) (string, error)
}

// Clash is one conflict found by Merge. Key is the inventory key to fix
// when one is known (a port); Role is the role that came second.
type Clash struct {
	Host, Role, Key, Msg string
}

func (c *Clash) Error() string { return "host " + c.Host + ": " + c.Msg }

// Part is one role's desired state of a host, for Merge.
type Part struct {
	Role string
	Host Host
}

// Merge joins the desired states several roles have for one host, in the
// order given. A user or directory two roles want identically is kept once;
// two roles wanting the same path, user, unit or port differently is an
// error naming both, since whichever ran last would silently win.
func Merge(name string, parts ...Part) (Host, error) {
	out := Host{Name: name}
	var errs []error
	clash := func(what, a, b string) {
		errs = append(errs, &Clash{Host: name, Role: b, Msg: fmt.Sprintf("%s is claimed by role %s and by role %s", what, a, b)})
	}
	users := map[string]int{}
	paths := map[string]string{} // path -> role, over dirs and files
	dirs := map[string]int{}
	units := map[string]string{}
	ports := map[int]string{}
	portKeys := map[int]string{}
	var userRole []string
	for _, p := range parts {
		for _, u := range p.Host.Users {
			if i, ok := users[u.Name]; ok {
				if out.Users[i] != u {
					clash(fmt.Sprintf("system user %s (with different settings)", u.Name), userRole[i], p.Role)
				}
				continue
			}
			users[u.Name] = len(out.Users)
			out.Users = append(out.Users, u)
			userRole = append(userRole, p.Role)
		}
		for _, d := range p.Host.Dirs {
			if i, ok := dirs[d.Path]; ok {
				if out.Dirs[i] != d {
					clash(fmt.Sprintf("directory %s (with different owner or mode)", d.Path), paths[d.Path], p.Role)
				}
				continue
			}
			if r, ok := paths[d.Path]; ok {
				clash("path "+d.Path, r, p.Role)
				continue
			}
			paths[d.Path] = p.Role
			dirs[d.Path] = len(out.Dirs)
			out.Dirs = append(out.Dirs, d)
		}
		for _, f := range p.Host.Files {
			if r, ok := paths[f.Path]; ok {
				clash("path "+f.Path, r, p.Role)
				continue
			}
			paths[f.Path] = p.Role
			out.Files = append(out.Files, f)
		}
		for _, u := range p.Host.Units {
			if r, ok := units[u.Name]; ok {
				clash("unit "+u.Name, r, p.Role)
				continue
			}
			units[u.Name] = p.Role
			u.Role = p.Role
			out.Units = append(out.Units, u)
		}
		for _, pt := range p.Host.Ports {
			if r, ok := ports[pt.Number]; ok {
				errs = append(errs, &Clash{Host: name, Role: p.Role, Key: pt.Key, Msg: fmt.Sprintf("port %d is also %s (role %s); give one of them another port",
					pt.Number, portKeys[pt.Number], r)})
				continue
			}
			ports[pt.Number] = p.Role
			portKeys[pt.Number] = pt.Key
			out.Ports = append(out.Ports, pt)
		}
	}
	return out, errors.Join(errs...)
}

// Only returns the part of h that concerns the named units: their files
// and the units themselves. setup adds the users, directories, ports and
// files that belong to no unit.
func (h Host) Only(units map[string]bool, setup bool) Host {
	out := Host{Name: h.Name}
	if setup {
		out.Users, out.Dirs, out.Ports = h.Users, h.Dirs, h.Ports
	}
	for _, f := range h.Files {
		if units[f.Service] || (setup && f.Service == "") {
			out.Files = append(out.Files, f)
		}
	}
	for _, u := range h.Units {
		if units[u.Name] {
			out.Units = append(out.Units, u)
		}
	}
	return out
}
