package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
)

// DefaultDownloadURL is where nats-server releases are downloaded from when
// the inventory does not say: assets live at
// DefaultDownloadURL/vX.Y.Z/nats-server-vX.Y.Z-linux-amd64.tar.gz.
const DefaultDownloadURL = "https://github.com/nats-io/nats-server/releases/download"

// Defaults of the inventory, as documented on the fields in types.go.
const (
	DefaultSSHUser          = "root"
	DefaultSSHPort          = 22
	DefaultConnectTimeout   = Duration(10 * time.Second)
	DefaultKnownHosts       = "~/.ssh/known_hosts"
	DefaultSSHConfig        = "~/.ssh/config"
	DefaultClusterName      = "nats-cluster"
	DefaultClientPort       = 4222
	DefaultClusterPort      = 6222
	DefaultHTTPPort         = 8222
	DefaultRouteUser        = "route"
	DefaultMaxMemoryStore   = Size(1 << 30)
	DefaultMaxFileStore     = Size(4 << 30)
	DefaultConfigDir        = "/etc/nats"
	DefaultDataDir          = "/var/lib/nats"
	DefaultLogDir           = "/var/log/nats"
	DefaultLogMaxSize       = Size(100 << 20)
	DefaultLogMaxFiles      = 5
	DefaultLameDuckDuration = Duration(30 * time.Second)
	DefaultLameDuckGrace    = Duration(10 * time.Second)
)

// Defaults of [monitoring]. Versions are the newest upstream releases when
// this was written; the Prometheus one is also what the lab builds from the
// Go module proxy (module v0.316.0 is release 3.16.0).
const (
	DefaultPrometheusVersion = "3.16.0"
	DefaultGrafanaVersion    = "12.4.2"
	DefaultExporterVersion   = "0.20.1"
	DefaultSurveyorVersion   = "0.9.9"
	DefaultPrometheusPort    = 9090
	DefaultGrafanaPort       = 3000
	// The exporter and the surveyor both listen on 7777 upstream; the seed
	// moves the exporter to 7778 so the two can share a host.
	DefaultExporterPort   = 7778
	DefaultSurveyorPort   = 7777
	DefaultRetention      = "15d"
	DefaultScrapeInterval = Duration(15 * time.Second)
)

// LoadOptions change how Load checks the inventory.
type LoadOptions struct {
	// SkipFileChecks skips the checks that look at local files named by the
	// inventory (SSH identity files, known_hosts, Prometheus rule files), for tests and for
	// commands that never connect, on a machine where those files are not.
	// Everything else is still checked.
	SkipFileChecks bool
}

// Load reads, completes and checks the inventory at path. On any problem it
// returns a *Problems error listing all of them with file:line, and no
// inventory, so nothing can act on a half-valid one.
//
// After Load every default is filled in: paths are absolute (~ expanded,
// relative ones resolved against the inventory's folder), DownloadURL is
// non-nil, LogTime and every Host's NATS are non-nil, and every Host's SSHUser
// and SSHPort hold the effective values (the host's own, or [ssh]'s). With a
// [monitoring] section, its ArtifactDir is absolute and every Enabled is
// non-nil.
func Load(path string) (*Inventory, error) {
	return LoadWithOptions(path, LoadOptions{})
}

// MaxInventorySize is the largest inventory Load reads: hundreds of times
// any real one, and small enough that a wrong path (a log, /dev/zero)
// cannot exhaust memory.
const MaxInventorySize = 4 << 20

// LoadWithOptions is Load with options.
func LoadWithOptions(path string, opts LoadOptions) (*Inventory, error) {
	data, err := readInventory(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, opts)
}

// readInventory reads a regular file of at most MaxInventorySize bytes.
// Anything else is refused before a byte is read: opening a FIFO would
// block until a writer comes (no signal gets the process out of that
// open), and a device such as /dev/zero never ends.
func readInventory(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, unwrapPathError(err))
	}
	if msg := notInventoryFile(fi); msg != "" {
		return nil, fmt.Errorf("inventory %s %s; name the inventory's TOML file", path, msg)
	}
	// O_NONBLOCK: should the file be swapped for a FIFO after the Stat,
	// the open returns at once rather than hang; the fd's own Stat below
	// then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, unwrapPathError(err))
	}
	if msg := notInventoryFile(fi); msg != "" {
		return nil, fmt.Errorf("inventory %s %s; name the inventory's TOML file", path, msg)
	}
	// The size is read again through the limit: the file may grow.
	data, err := io.ReadAll(io.LimitReader(f, MaxInventorySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, unwrapPathError(err))
	}
	if len(data) > MaxInventorySize {
		return nil, fmt.Errorf("inventory %s is larger than %d MiB, far more than an inventory needs; check that the path names the inventory", path, MaxInventorySize>>20)
	}
	return data, nil
}

// notInventoryFile says why fi cannot be an inventory, or "".
func notInventoryFile(fi os.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		if fi.Size() > MaxInventorySize {
			return fmt.Sprintf("is %d bytes, more than the %d MiB an inventory may have; check that the path names the inventory", fi.Size(), MaxInventorySize>>20)
		}
		return ""
	case m.IsDir():
		return "is a directory, not a file"
	case m&os.ModeNamedPipe != 0:
		return "is a named pipe (FIFO), not a file"
	case m&os.ModeSocket != 0:
		return "is a socket, not a file"
	case m&os.ModeDevice != 0:
		return "is a device, not a file"
	}
	return "is not a regular file"
}

// Parse is Load for an inventory already in memory; path names it in
// messages and anchors its relative paths.
func Parse(path string, data []byte, opts LoadOptions) (*Inventory, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := oneLine(pe.Message) + "; fix the TOML syntax"
			if holdsSecret(data, pe.Position.Line) {
				msg = "not valid TOML (the parser's words are not shown: they may quote a password on this line); fix the TOML syntax"
			}
			return nil, &Problems{List: []Problem{{
				File: path,
				Line: pe.Position.Line,
				Msg:  msg,
			}}}
		}
		// Not a syntax error: no line to blame, and the decoder's words
		// are not trusted to leave values out.
		return nil, fmt.Errorf("reading inventory %s: not valid TOML; fix the syntax", path)
	}

	inv := &Inventory{Path: path, Dir: filepath.Dir(abs), lines: locateKeys(string(data))}
	d := &decoder{defined: map[string]bool{}, bad: map[string]bool{}}
	d.table("", tree, reflect.ValueOf(inv).Elem())

	inv.defined = d.defined
	v := &validator{inv: inv, defined: d.defined, bad: d.bad, opts: opts, explicitEmpty: map[string]bool{}}
	n := &inv.NATS
	for key, val := range map[string]string{
		"ssh.user": inv.SSH.User, "ssh.known_hosts": inv.SSH.KnownHosts, "secrets_file": inv.SecretsFile,
		"nats.cluster_name": n.ClusterName, "nats.route_user": n.RouteUser, "nats.artifact_dir": n.ArtifactDir,
		"nats.config_dir": n.ConfigDir, "nats.data_dir": n.DataDir, "nats.log_dir": n.LogDir,
	} {
		if d.defined[key] && val == "" {
			v.explicitEmpty[key] = true
		}
	}
	for i, h := range inv.Hosts {
		if k := keyPath("hosts", i, "ssh_user"); d.defined[k] && h.SSHUser == "" {
			v.explicitEmpty[k] = true
		}
	}
	v.defaults()
	v.validate()

	probs := &Problems{List: append(d.problems, v.problems...)}
	if len(probs.List) == 0 {
		return inv, nil
	}
	for i := range probs.List {
		probs.List[i].Msg = oneLine(probs.List[i].Msg)
		probs.List[i].File = path
		probs.List[i].Line = inv.Line(probs.List[i].Key)
	}
	probs.sort()
	return nil, probs
}

// Written reports whether a key path, such as "ssh.user" or
// "hosts.2.ssh_port", was written in the file rather than defaulted.
func (inv *Inventory) Written(key string) bool {
	return inv != nil && inv.defined[key]
}

// SystemAccount returns the account marked system = true (exactly one after
// Load), or nil.
func (inv *Inventory) SystemAccount() *Account {
	for i := range inv.Accounts {
		if inv.Accounts[i].System {
			return &inv.Accounts[i]
		}
	}
	return nil
}

// defaults fills in everything the inventory left out.
func (v *validator) defaults() {

	inv := v.inv
	if inv.SecretsFile == "" {
		base := strings.TrimSuffix(filepath.Base(inv.Path), ".toml")
		inv.SecretsFile = filepath.Join(inv.Dir, base+".secrets.toml")
	} else {
		inv.SecretsFile = v.localPath("secrets_file", inv.SecretsFile)
	}

	sec := &inv.Secrets
	if sec.Identity != "" {
		sec.Identity = v.localPath("secrets.identity", sec.Identity)
	}
	for i, r := range sec.Recipients {
		if !IsKeyLine(r) {
			sec.Recipients[i] = v.localPath(keyPath("secrets.recipients", i), r)
		}
	}

	s := &inv.SSH
	if s.User == "" {
		s.User = DefaultSSHUser
	}
	if !v.defined["ssh.port"] {
		s.Port = DefaultSSHPort
	}
	if !v.defined["ssh.connect_timeout"] {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.KnownHosts == "" {
		s.KnownHosts = DefaultKnownHosts
	}
	s.KnownHosts = v.localPath("ssh.known_hosts", s.KnownHosts)
	for i, f := range s.IdentityFiles {
		s.IdentityFiles[i] = v.localPath(keyPath("ssh.identity_files", i), f)
	}
	if s.UseSSHConfig == nil {
		t := true
		s.UseSSHConfig = &t
	}
	if !v.defined["ssh.config_file"] {
		s.ConfigFile = DefaultSSHConfig
	}
	if s.ConfigFile != "" {
		s.ConfigFile = v.localPath("ssh.config_file", s.ConfigFile)
	}

	n := &inv.NATS
	if n.ArtifactDir == "" {
		if cache, err := CacheDir(); err == nil {
			n.ArtifactDir = filepath.Join(cache, "artifacts")
		} else {
			n.ArtifactDir = "~/.cache/natsdeploy/artifacts"
		}
	}
	n.ArtifactDir = v.localPath("nats.artifact_dir", n.ArtifactDir)
	if n.DownloadURL == nil {
		u := DefaultDownloadURL
		n.DownloadURL = &u
	} else {
		u := strings.TrimRight(strings.TrimSpace(*n.DownloadURL), "/")
		n.DownloadURL = &u
	}
	if n.ClusterName == "" {
		n.ClusterName = DefaultClusterName
	}
	defInt(&n.ClientPort, v.defined["nats.client_port"], DefaultClientPort)
	defInt(&n.ClusterPort, v.defined["nats.cluster_port"], DefaultClusterPort)
	defInt(&n.HTTPPort, v.defined["nats.http_port"], DefaultHTTPPort)
	if n.RouteUser == "" {
		n.RouteUser = DefaultRouteUser
	}
	if !v.defined["nats.max_memory_store"] {
		n.MaxMemoryStore = DefaultMaxMemoryStore
	}
	if !v.defined["nats.max_file_store"] {
		n.MaxFileStore = DefaultMaxFileStore
	}
	if n.ConfigDir == "" {
		n.ConfigDir = DefaultConfigDir
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	if n.LogDir == "" {
		n.LogDir = DefaultLogDir
	}
	if !v.defined["nats.log_max_size"] {
		n.LogMaxSize = DefaultLogMaxSize
	}
	defInt(&n.LogMaxFiles, v.defined["nats.log_max_files"], DefaultLogMaxFiles)
	if n.LogTime == nil {
		t := true
		n.LogTime = &t
	}
	if !v.defined["nats.lame_duck_duration"] {
		n.LameDuckDuration = DefaultLameDuckDuration
	}
	if !v.defined["nats.lame_duck_grace_period"] {
		n.LameDuckGracePeriod = DefaultLameDuckGrace
	}

	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		if h.SSHUser == "" {
			h.SSHUser = s.User
		}
		defInt(&h.SSHPort, v.defined[keyPath("hosts", i, "ssh_port")], s.Port)
		if h.NATS == nil {
			t := true
			h.NATS = &t
		}
	}
	v.monitoringDefaults()
	v.tlsDefaults()
}

// monitoringDefaults runs after the [nats] defaults, which it inherits from.
func (v *validator) monitoringDefaults() {
	m := v.inv.Monitoring
	if m == nil {
		return
	}
	n := &v.inv.NATS
	if m.ArtifactDir == "" {
		m.ArtifactDir = n.ArtifactDir
	} else {
		m.ArtifactDir = v.localPath("monitoring.artifact_dir", m.ArtifactDir)
	}
	switch {
	case m.DownloadURL != nil:
		u := strings.TrimRight(strings.TrimSpace(*m.DownloadURL), "/")
		m.DownloadURL = &u
	case *n.DownloadURL == "":
		// Whoever made the NATS deployment offline means the whole of it.
		u := ""
		m.DownloadURL = &u
	}

	defBool := func(p **bool) {
		if *p == nil {
			t := true
			*p = &t
		}
	}
	defStr := func(p *string, key, def string) {
		// An explicit "" stays, for the validator to refuse.
		if !v.defined[key] {
			*p = def
		}
	}
	pr, gr, ex, su := &m.Prometheus, &m.Grafana, &m.Exporter, &m.Surveyor
	defBool(&pr.Enabled)
	defBool(&gr.Enabled)
	defBool(&ex.Enabled)
	defBool(&su.Enabled)
	defStr(&pr.Version, "monitoring.prometheus.version", DefaultPrometheusVersion)
	defStr(&gr.Version, "monitoring.grafana.version", DefaultGrafanaVersion)
	defStr(&ex.Version, "monitoring.exporter.version", DefaultExporterVersion)
	defStr(&su.Version, "monitoring.surveyor.version", DefaultSurveyorVersion)
	defInt(&pr.Port, v.defined["monitoring.prometheus.port"], DefaultPrometheusPort)
	defInt(&gr.Port, v.defined["monitoring.grafana.port"], DefaultGrafanaPort)
	defInt(&ex.Port, v.defined["monitoring.exporter.port"], DefaultExporterPort)
	defInt(&su.Port, v.defined["monitoring.surveyor.port"], DefaultSurveyorPort)
	defStr(&pr.Retention, "monitoring.prometheus.retention", DefaultRetention)
	if !v.defined["monitoring.prometheus.scrape_interval"] {
		pr.ScrapeInterval = DefaultScrapeInterval
	}
	for i, f := range pr.RuleFiles {
		pr.RuleFiles[i] = v.localPath(keyPath("monitoring.prometheus.rule_files", i), f)
	}
}

func defInt(p *int, defined bool, def int) {
	if !defined {
		*p = def
	}
}

// localPath makes a path on the control machine absolute: "~" and "~/..."
// are the user's home, relative paths are relative to the inventory's
// folder (not the working directory, so the inventory works from anywhere).
func (v *validator) localPath(key, p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			v.add(key, "%q starts with ~ but the home directory is unknown (%v); write an absolute path", p, err)
			return p
		}
		return filepath.Join(home, p[1:])
	}
	if strings.HasPrefix(p, "~") {
		v.add(key, "%q: only ~ and ~/ are expanded, not ~user; write the full path", p)
		return p
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(v.inv.Dir, p)
	}
	return filepath.Clean(p)
}

// holdsSecret reports whether line (1-based) of the inventory, or the line
// before it (a multi-line string's error may land on the next line),
// mentions a password key. Only the key names matter: a value is never
// looked at, since any could be a password.
func holdsSecret(data []byte, line int) bool {
	lines := strings.Split(string(data), "\n")
	for n := line - 1; n <= line; n++ {
		if n >= 1 && n <= len(lines) && strings.Contains(strings.ToLower(lines[n-1]), "password") {
			return true
		}
	}
	return false
}

// oneLine escapes control characters (newlines above all) in a message,
// which may quote the file's text: each problem stays one line that starts
// with file:line, however the file is written.
func oneLine(msg string) string {
	if !strings.ContainsFunc(msg, unicode.IsControl) {
		return msg
	}
	var b strings.Builder
	for _, r := range msg {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CacheDir is natsdeploy's directory for what it keeps on this machine and
// can make again (release files, verify's proofs). os.UserCacheDir honours
// $XDG_CACHE_HOME and is ~/.cache otherwise.
func CacheDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "natsdeploy"), nil
}
