// Package desired holds the plain data a role produces: what one host should
// look like. Roles fill it in; the planner diffs it against facts gathered
// from the host; nothing here talks to a host.
package desired

import "io/fs"

// Host is the whole desired state of one host.
type Host struct {
	Name  string // inventory host name
	Users []User
	Dirs  []Dir
	Files []File
	Units []Unit
}

// User is a system account a service runs as.
type User struct {
	Name  string
	Home  string // also its primary group's name is Name
	Shell string // /usr/sbin/nologin for services
}

// Dir is a directory with an owner and mode. Directories are created and
// their owner and mode corrected, never removed or emptied.
type Dir struct {
	Path  string
	Owner string
	Group string
	Mode  fs.FileMode
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
	// HealthURL is polled on the host's loopback after a start, reload or
	// restart; 200 means the service is ready for the next step.
	HealthURL string
	// DigestCmd prints the digest of the config on disk, which
	// DigestURL's JSON "config_digest" must equal once a reload took
	// effect. Empty: a reload is confirmed by health only.
	DigestCmd string
	DigestURL string
	// MetaURL, when set on every host, is each node's JetStream /jsz:
	// after a start or restart the engine also waits until the meta leader
	// sees every node current (health.MetaSettled). It relies on the host
	// name being the node's server_name, as the nats role makes it.
	MetaURL string
	// DiagnoseCmd prints what explains a failed start (journal and log
	// tail); its output is shown with the error.
	DiagnoseCmd string
}
