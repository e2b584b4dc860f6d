// Package nats is the role that makes a host a node of the NATS JetStream
// cluster: the nats user, its directories, the nats-server binary, the
// config and the systemd units.
//
// The config is split by what nats-server can apply without a restart, so
// that a change reloads where it can and restarts only where it must:
//
//	nats-server.conf  server name, ports, JetStream store and limits,
//	                  cluster and routes, lame duck, system account, log
//	                  rotation                                      restart
//	accounts.conf     accounts, users, permissions, account quotas  reload
//	logging.conf      log file, logtime, debug, trace               reload
//
// nats-server refuses a SIGHUP that changes logfile_size_limit or
// logfile_max_num (checked with v2.14.9), which is why those two are not in
// logging.conf.
//
// nats-server logs to its file or to stderr, not both; it writes the file
// (size limit and rotation are its own) and nats-server-log.service copies
// the file into the journal.
package nats

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/natsdeploy/natsdeploy/files"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	secretstore "github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Fixed names and paths on the host.
const (
	User        = "nats"
	Service     = "nats-server.service"
	LogService  = "nats-server-log.service"
	BinaryPath  = "/usr/local/bin/nats-server"
	UnitPath    = "/etc/systemd/system/" + Service
	LogUnitPath = "/etc/systemd/system/" + LogService

	ConfigFile   = "nats-server.conf"
	RoutesFile   = "routes.conf"
	AccountsFile = "accounts.conf"
	LoggingFile  = "logging.conf"
	TLSFile      = "tls.conf"
	// The TLS material, beside the config: the CA bundle and the node's
	// own certificate and key.
	CAFile   = "ca.pem"
	CertFile = "server-cert.pem"
	KeyFile  = "server-key.pem"
	// tlsTimeout (seconds) is the TLS handshake's limit: nats-server's
	// default of 2s is short for a node whose CPUs are saturated.
	tlsTimeout = 5
	LogFile    = "nats-server.log"

	// ValidateGroup ties the three config files together: they are staged
	// side by side and checked as one config before any is swapped in.
	ValidateGroup = "nats-config"
	// ValidateCmd parses the staged config as the service user, so a file
	// the service could not read fails here and not at the next restart.
	// It runs in the staging folder because the certificate paths are
	// relative to the service's working directory, the config folder.
	ValidateCmd = "cd {dir} && runuser -u " + User + " -- " + BinaryPath + " -t -c " + ConfigFile

	// stopBuffer is added to lame_duck_duration for TimeoutStopSec: after
	// lame duck the server still shuts down, and JetStream writes its
	// state out; upstream's unit allows 30s for that too.
	stopBuffer = 30 * time.Second
)

// Secrets gives the role password hashes, never plaintext, except the
// route password that route URLs must carry. SecretBcrypt is a named
// slot's hash (SurveyorSlot's, for the surveyor's user).
type Secrets interface {
	BcryptHash(account, user string) (string, error)
	RouteBcryptHash() (string, error)
	RoutePassword() string
	SecretBcrypt(name string) (string, error)
}

// SurveyorSlot is the surveyor's password: the nats role renders its hash
// into the system account, the surveyor role hands the password to
// nats-surveyor. Both roles ask for it, so it is resolved whichever of them
// runs, and the secrets store accepts the identical request twice.
var SurveyorSlot = secretstore.Slot{Name: inventory.SurveyorUser, Bcrypt: true}

// SurveyorPermissions are what nats-surveyor (v0.9.x, surveyor/
// collector_statz.go) sends with --jsz and --accounts: the server ping for
// STATSZ (older releases spell it PING.STATSZ, the same answer), the JSZ
// ping and the account STATZ ping, each answered on an inbox it subscribes
// to. Nothing else: not $SYS.> (which would let it reload or kick clients
// through $SYS.REQ.SERVER.<id>.*), no publishing outside these requests,
// and no allow_responses since it answers nothing. --gatewayz, --raftz and
// advisory listening are not used and so not allowed.
func SurveyorPermissions() inventory.Permissions {
	return inventory.Permissions{
		PublishAllow: []string{
			"$SYS.REQ.SERVER.PING",
			"$SYS.REQ.SERVER.PING.STATSZ",
			"$SYS.REQ.SERVER.PING.JSZ",
			"$SYS.REQ.ACCOUNT.PING.STATZ",
		},
		SubscribeAllow: []string{"_INBOX.>"},
	}
}

// OperatorSlot is the password of natsdeploy's own user in the system
// account (inventory.OperatorUser).
var OperatorSlot = secretstore.Slot{Name: inventory.OperatorUser, Bcrypt: true}

// OperatorPermissions: the meta group's peer removal, answered on an
// inbox. Not $SYS.> and not the rest of $JS.API.>: a leaked password could
// take a member out, which apply's own verify would report, and nothing
// more.
func OperatorPermissions() inventory.Permissions {
	return inventory.Permissions{
		PublishAllow:   []string{"$JS.API.SERVER.REMOVE"},
		SubscribeAllow: []string{"_INBOX.>"},
	}
}

// Artifact is the verified nats-server binary on the control machine.
// internal/artifact.Binary converts to it directly.
type Artifact struct {
	Path    string
	SHA256  string
	Version string
}

// Desired returns what host must look like to be a node of the cluster.
// inv must come from inventory.Load: the invariants `nats-server -t` does not
// check (DESIGN.md section 6) are inventory validation's, with file:line.
func Desired(inv *inventory.Inventory, host inventory.Host, sec Secrets, bin Artifact) (desired.Host, error) {
	return DesiredTLS(inv, host, sec, bin, nil)
}

// DesiredTLS is Desired with the deployment's TLS material; with TLS on
// and tlsm nil (a render that only looks at claims) the certificate files
// are placeholders.
func DesiredTLS(inv *inventory.Inventory, host inventory.Host, sec Secrets, bin Artifact, tlsm *pki.Material) (desired.Host, error) {
	if bin.Path == "" || bin.SHA256 == "" {
		return desired.Host{}, fmt.Errorf("nats on %s: no verified nats-server binary", host.Name)
	}
	n := inv.NATS
	cfg, err := Render(inv, host, sec)
	if err != nil {
		return desired.Host{}, fmt.Errorf("nats on %s: %w", host.Name, err)
	}

	h := desired.Host{
		Name:  host.Name,
		Users: []desired.User{{Name: User, Home: n.DataDir, Shell: "/usr/sbin/nologin"}},
		Dirs: []desired.Dir{
			// The service reads its config but must not change it.
			{Path: n.ConfigDir, Owner: "root", Group: User, Mode: fs.ModeDir | 0o750},
			// The JetStream store, and the log that explains its history:
			// destroy keeps both unless told to purge data.
			{Path: n.DataDir, Owner: User, Group: User, Mode: fs.ModeDir | 0o750, Holds: desired.Data},
			{Path: n.LogDir, Owner: User, Group: User, Mode: fs.ModeDir | 0o750, Holds: desired.Data},
		},
	}

	h.Files = append(h.Files, desired.File{
		Path: BinaryPath, Source: bin.Path, SHA256: bin.SHA256,
		Mode: 0o755, Owner: "root", Group: "root",
		Service: Service, OnChange: desired.Restart,
	})
	for _, f := range []struct {
		name     string
		content  []byte
		onChange desired.Handler
		// routes.conf holds the route password in clear (route URLs
		// must carry it), so plan never shows it. accounts.conf holds
		// only bcrypt hashes, which plan's diff masks; its permission
		// changes are what an operator most wants to review.
		sensitive bool
	}{
		{ConfigFile, cfg.Server, desired.Restart, false},
		{RoutesFile, cfg.Routes, desired.Reload, true},
		{AccountsFile, cfg.Accounts, desired.Reload, false},
		{LoggingFile, cfg.Logging, desired.Reload, false},
		{TLSFile, cfg.TLS, desired.Reload, false},
	} {
		if f.content == nil {
			continue // a single node has no routes
		}
		h.Files = append(h.Files, desired.File{
			Path: path.Join(n.ConfigDir, f.name), Content: f.content, SHA256: sum(f.content),
			// Group-readable only: the service reads it, nobody else may.
			Mode: 0o640, Owner: "root", Group: User,
			ValidateGroup: ValidateGroup, ValidateCmd: ValidateCmd,
			Sensitive: f.sensitive,
			Service:   Service, OnChange: f.onChange,
		})
	}
	certs := nodeCerts(inv, host, tlsm)
	for _, f := range certs {
		f.ValidateGroup, f.ValidateCmd = ValidateGroup, ValidateCmd
		f.Service, f.OnChange = Service, desired.Reload
		f.SHA256 = sum(f.Content)
		h.Files = append(h.Files, f)
	}
	for _, u := range []struct {
		path, service string
		content       []byte
	}{
		{UnitPath, Service, cfg.Unit},
		{LogUnitPath, LogService, cfg.LogUnit},
	} {
		h.Files = append(h.Files, desired.File{
			Path: u.path, Content: u.content, SHA256: sum(u.content),
			Mode: 0o644, Owner: "root", Group: "root",
			Service: u.service, OnChange: desired.Restart,
		})
	}

	mon := Monitor(inv, tlsm)
	h.Units = []desired.Unit{
		// The log copier first: it must be running before the server
		// writes its first line. Its unit file says so (Before=), so
		// both start in one command.
		{Name: LogService, UnitFile: LogUnitPath, StartsBefore: Service},
		{
			Name:     Service,
			UnitFile: UnitPath,
			Ready:    readyGate(mon),
			Reload:   reloadGate(mon, path.Join(n.ConfigDir, ConfigFile), servedWant(certs)),
			Settled:  metaGate(mon),
			Order:    leaderGate(mon),
			// systemd's messages and errors from before the log file
			// opens are in the journal; the rest is in the log file, read
			// directly in case the copier is not running.
			DiagnoseCmd: "journalctl --no-pager -n 30 -u " + Service +
				"; tail -n 30 " + path.Join(n.LogDir, LogFile),
			// Prints "nats-server: v2.14.9".
			Version:    strings.TrimPrefix(n.Version, "v"),
			VersionCmd: BinaryPath + " --version",
		},
	}
	h.Ports = []desired.Port{
		{Number: n.ClientPort, Key: "nats.client_port"},
		{Number: n.ClusterPort, Key: "nats.cluster_port"},
		{Number: n.HTTPPort, Key: "nats.http_port"},
	}
	return h, nil
}

// Rendered are the rendered files of one host.
type Rendered struct {
	Server, Accounts, Logging, TLS []byte // files in ConfigDir
	Routes                         []byte // in ConfigDir; nil for a single node
	Unit, LogUnit                  []byte // systemd units
}

// Render renders the config files and units of host. Output depends only on
// the arguments: no clock, no map iteration, accounts and users in
// inventory order, so an unchanged inventory gives unchanged bytes.
func Render(inv *inventory.Inventory, host inventory.Host, sec Secrets) (Rendered, error) {
	var r Rendered
	n := inv.NATS

	routeHash, err := sec.RouteBcryptHash()
	if err != nil {
		return r, fmt.Errorf("route password hash: %w", err)
	}
	if !isBcrypt(routeHash) {
		return r, fmt.Errorf("route password hash is not a bcrypt hash; refusing to write a password in clear")
	}
	routePass := sec.RoutePassword()
	if routePass == "" {
		return r, errors.New("no route password")
	}
	var routes []string
	for _, other := range inv.NATSHosts() {
		if other.Name == host.Name {
			continue
		}
		u := url.URL{
			Scheme: "nats-route",
			User:   url.UserPassword(n.RouteUser, routePass),
			Host:   net.JoinHostPort(other.Address, strconv.Itoa(n.ClusterPort)),
		}
		routes = append(routes, u.String())
	}
	sys := inv.SystemAccount()
	if sys == nil {
		return r, errors.New("no system account")
	}

	server := serverData{
		ServerName:          host.Name,
		Listen:              net.JoinHostPort("0.0.0.0", strconv.Itoa(n.ClientPort)),
		ClientAdvertise:     net.JoinHostPort(host.Address, strconv.Itoa(n.ClientPort)),
		HTTP:                net.JoinHostPort("0.0.0.0", strconv.Itoa(n.HTTPPort)),
		LameDuckDuration:    n.LameDuckDuration.String(),
		LameDuckGracePeriod: n.LameDuckGracePeriod.String(),
		StoreDir:            n.DataDir,
		MaxMemoryStore:      n.MaxMemoryStore.Bytes(),
		MaxFileStore:        n.MaxFileStore.Bytes(),
		ClusterName:         n.ClusterName,
		ClusterListen:       net.JoinHostPort("0.0.0.0", strconv.Itoa(n.ClusterPort)),
		ClusterAdvertise:    net.JoinHostPort(host.Address, strconv.Itoa(n.ClusterPort)),
		RouteUser:           n.RouteUser,
		RoutePasswordHash:   routeHash,
		Routes:              routes,
		LogSizeLimit:        n.LogMaxSize.Bytes(),
		LogMaxFiles:         n.LogMaxFiles,
		SystemAccount:       sys.Name,
		HTTPS:               inv.TLS.MonitoringOn(),
		AllowNonTLS:         inv.TLS.MonitoringOn() && !inv.TLS.ClientsOn(),
		tlsData:             tlsData{RouteTLS: inv.TLS.RoutesOn(), ServerTLS: inv.TLS.ClientsOn() || inv.TLS.MonitoringOn(), CAFile: CAFile, CertFile: CertFile, KeyFile: KeyFile, TLSTimeout: tlsTimeout},
	}

	var accounts accountsData
	for _, a := range inv.Accounts {
		ad := accountData{Name: a.Name, JetStream: a.JetStream}
		for _, u := range a.Users {
			hash, err := sec.BcryptHash(a.Name, u.Name)
			if err != nil {
				return r, fmt.Errorf("password hash of %s/%s: %w", a.Name, u.Name, err)
			}
			if !isBcrypt(hash) {
				return r, fmt.Errorf("password of %s/%s is not a bcrypt hash; refusing to write a password in clear", a.Name, u.Name)
			}
			p := u.Permissions()
			ad.Users = append(ad.Users, userData{Name: u.Name, PasswordHash: hash, Permissions: &p})
		}
		if a.System {
			hash, err := sec.SecretBcrypt(OperatorSlot.Name)
			if err != nil {
				return r, fmt.Errorf("password hash of natsdeploy's own user: %w", err)
			}
			if !isBcrypt(hash) {
				return r, errors.New("the password hash of natsdeploy's own user is not a bcrypt hash; refusing to write a password in clear")
			}
			p := OperatorPermissions()
			ad.Users = append(ad.Users, userData{Name: inventory.OperatorUser, PasswordHash: hash, Permissions: &p})
		}
		if a.System && inv.RunsSurveyor() {
			hash, err := sec.SecretBcrypt(SurveyorSlot.Name)
			if err != nil {
				return r, fmt.Errorf("password hash of the surveyor's user: %w", err)
			}
			if !isBcrypt(hash) {
				return r, errors.New("the surveyor's password hash is not a bcrypt hash; refusing to write a password in clear")
			}
			p := SurveyorPermissions()
			ad.Users = append(ad.Users, userData{Name: inventory.SurveyorUser, PasswordHash: hash, Permissions: &p})
		}
		accounts.Accounts = append(accounts.Accounts, ad)
	}

	logTime := true
	if n.LogTime != nil {
		logTime = *n.LogTime
	}
	logging := loggingData{
		LogFile: path.Join(n.LogDir, LogFile),
		LogTime: logTime,
		Debug:   n.Debug,
		Trace:   n.Trace,
	}

	timeout := n.LameDuckDuration.D() + stopBuffer
	unit := unitData{
		Binary:           BinaryPath,
		Config:           path.Join(n.ConfigDir, ConfigFile),
		ConfigDir:        n.ConfigDir,
		User:             User,
		Group:            User,
		DataDir:          n.DataDir,
		LogDir:           n.LogDir,
		LogFile:          logging.LogFile,
		LameDuckDuration: n.LameDuckDuration.String(),
		StopBuffer:       inventory.Duration(stopBuffer).String(),
		TimeoutStopSec:   strconv.Itoa(int((timeout + time.Second - 1) / time.Second)),
		Unit:             Service,
		LogUnit:          LogService,
		Self:             LogService,
	}

	for _, t := range []struct {
		name string
		data any
		out  *[]byte
	}{
		{"nats/nats-server.conf.tmpl", server, &r.Server},
		{"nats/routes.conf.tmpl", server, &r.Routes},
		{"nats/accounts.conf.tmpl", accounts, &r.Accounts},
		{"nats/logging.conf.tmpl", logging, &r.Logging},
		{"nats/tls.conf.tmpl", server.tlsData, &r.TLS},
		{"nats/nats-server.service.tmpl", unit, &r.Unit},
		{"nats/nats-server-log.service.tmpl", unit, &r.LogUnit},
	} {
		if t.out == &r.Routes && len(routes) == 0 {
			continue
		}
		b, err := render(t.name, t.data)
		if err != nil {
			return r, err
		}
		*t.out = b
	}
	return r, nil
}

type serverData struct {
	ServerName, Listen, HTTP              string
	ClientAdvertise                       string
	LameDuckDuration, LameDuckGracePeriod string
	StoreDir                              string
	MaxMemoryStore, MaxFileStore          int64
	ClusterName, ClusterListen            string
	ClusterAdvertise                      string
	RouteUser, RoutePasswordHash          string
	Routes                                []string
	LogSizeLimit                          int64
	LogMaxFiles                           int
	SystemAccount                         string
	HTTPS, AllowNonTLS                    bool
	tlsData
}

type tlsData struct {
	ServerTLS, RouteTLS       bool
	CAFile, CertFile, KeyFile string
	TLSTimeout                int
}

type accountsData struct{ Accounts []accountData }

type accountData struct {
	Name      string
	JetStream *inventory.AccountJetStream
	Users     []userData
}

type userData struct {
	Name, PasswordHash string
	Permissions        *inventory.Permissions
}

type loggingData struct {
	LogFile               string
	LogTime, Debug, Trace bool
}

type unitData struct {
	Binary, Config, User, Group  string
	ConfigDir                    string
	DataDir, LogDir, LogFile     string
	LameDuckDuration, StopBuffer string
	TimeoutStopSec               string
	Unit, LogUnit, Self          string
}

var funcs = template.FuncMap{
	"q":    quote,
	"list": list,
}

// quote writes s as a double-quoted nats-server config string. Quoting
// every value matters: unquoted, "$SYS.>" or a "$2a$..." hash would be read
// as a variable reference. Inside double quotes nats-server expands no
// variables and knows only the escapes used here.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func isBcrypt(s string) bool {
	// What nats-server itself checks before comparing with bcrypt; anything
	// else it compares as plaintext.
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

func render(name string, data any) ([]byte, error) { return files.Render(name, data, funcs) }

func sum(b []byte) string { return files.SHA256(b) }
