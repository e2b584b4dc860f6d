// Package inventory reads the TOML inventory, fills in defaults and checks it
// before any host is contacted. Everything downstream works from the
// Inventory value this package returns and never re-reads the file.
package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Inventory is one deployment: the hosts, how to reach them, the NATS
// cluster to build on them and the tenants it serves.
type Inventory struct {
	// Path is the file the inventory was read from, as given to Load (so
	// messages show the path the user typed); Dir is its folder, absolute.
	// Relative paths inside the file are resolved against Dir.
	Path string `toml:"-"`
	Dir  string `toml:"-"`

	// SecretsFile holds generated passwords and the bcrypt hashes of all
	// passwords (mode 0600; see internal/secrets). Default:
	// "<inventory name without .toml>.secrets.toml" beside the inventory.
	SecretsFile string `toml:"secrets_file"`
	// Secrets says how the secrets file is kept at rest: in plain text
	// (the default) or encrypted with age.
	Secrets SecretsSpec `toml:"secrets"`

	SSH      SSH       `toml:"ssh"`
	NATS     NATS      `toml:"nats"`
	Hosts    []Host    `toml:"hosts"`
	Accounts []Account `toml:"accounts"`
	// Monitoring is the Prometheus/Grafana/exporter/surveyor stack; nil when
	// the file has no [monitoring] section, and then none of it is deployed.
	Monitoring *Monitoring `toml:"monitoring"`
	// TLS turns on TLS for clients, routes and the monitoring port; nil
	// when the file has no [tls] section: all three are plaintext.
	TLS *TLS `toml:"tls"`

	// defined holds the key paths written in the file, so that what the
	// inventory says can win over the ssh config while defaults do not.
	defined map[string]bool

	// lines maps a key path such as "accounts.2.users.0.allow" to the line
	// it was written on, for error messages after loading.
	lines map[string]int
}

// Ways to encrypt the secrets file ([secrets] encrypt).
const (
	EncryptPassphrase = "passphrase"
	EncryptSSHKey     = "ssh-key"
)

// SecretsSpec is the [secrets] table. With Encrypt set, the secrets file is
// an age file (armored): it is decrypted in memory on every run and
// written back encrypted, never in plain text.
type SecretsSpec struct {
	// Encrypt is "" (plain text), EncryptPassphrase or EncryptSSHKey.
	Encrypt string `toml:"encrypt"`
	// PassphraseEnv names the environment variable holding the passphrase
	// (encrypt = "passphrase"); unset, it is asked on the terminal. There
	// is no inline passphrase: it would sit beside the file it protects.
	PassphraseEnv string `toml:"passphrase_env"`
	// Recipients are the SSH public keys (ssh-ed25519 or ssh-rsa) the file
	// is encrypted to (encrypt = "ssh-key"): each an authorized_keys line,
	// or a local file of them (absolute after Load). Default: Identity's
	// own public key.
	Recipients []string `toml:"recipients"`
	// Identity is the SSH private key that decrypts the file (encrypt =
	// "ssh-key"), absolute after Load. A key protected by a passphrase has
	// it asked on the terminal.
	Identity string `toml:"identity"`
}

// IsKeyLine tells a recipients entry written as a public key from one
// naming a file: the base64 of every SSH public key starts with "AAAA"
// (the length of its type name), which no sensible path has after a space.
func IsKeyLine(entry string) bool { return strings.Contains(entry, " AAAA") }

// RecipientLines returns the authorized_keys lines of every recipients
// entry, reading the files it names; "#" comments and blank lines are
// skipped.
func (s SecretsSpec) RecipientLines() ([]string, error) {
	var out []string
	for _, e := range s.Recipients {
		if IsKeyLine(e) {
			out = append(out, strings.TrimSpace(e))
			continue
		}
		lines, err := readKeyFile(e)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// maxKeyFile bounds a recipients file: a few keys, not a log file named
// by mistake.
const maxKeyFile = 1 << 20

func readKeyFile(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file %s: %w", path, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("recipients file %s is not a regular file", path)
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("recipients file %s is %d bytes, far more than a file of public keys", path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file %s: %w", path, unwrapPathError(err))
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("recipients file %s holds no public key", path)
	}
	return out, nil
}

// SSH says how the control machine reaches every host.
type SSH struct {
	User string `toml:"user"` // default "root"
	Port int    `toml:"port"` // default 22
	// IdentityFiles are private keys to offer, after any keys of the
	// ssh-agent at $SSH_AUTH_SOCK.
	IdentityFiles []string `toml:"identity_files"`
	// KnownHosts is the known_hosts file host keys are checked against.
	// Default ~/.ssh/known_hosts.
	KnownHosts string `toml:"known_hosts"`
	// AcceptNewHostKeys trusts and records the key of a host that is not in
	// KnownHosts yet (OpenSSH's accept-new). A changed key is always refused.
	AcceptNewHostKeys bool     `toml:"accept_new_host_keys"`
	ConnectTimeout    Duration `toml:"connect_timeout"` // default 10s
	// Jump is the jump host (or several, comma-separated, first dialled
	// first) every host is reached through, as OpenSSH's ProxyJump writes
	// it: [user@]host[:port]. "none" reaches every host directly, even if
	// the ssh config says otherwise.
	Jump string `toml:"jump"`
	// ConfigFile is the OpenSSH client config read for what the inventory
	// leaves out (HostName, User, Port, IdentityFile, ProxyJump). Default
	// ~/.ssh/config; that one may be missing, a file named here may not.
	ConfigFile string `toml:"config_file"`
	// SudoPasswordEnv names the environment variable holding the sudo
	// password of a non-root user whose sudo asks for one. Unset, the
	// password is asked once on the terminal when a host needs it.
	SudoPasswordEnv string `toml:"sudo_password_env"`
	// UseSSHConfig false reads no ssh config at all. Default true;
	// non-nil after Load.
	UseSSHConfig *bool `toml:"use_ssh_config"`
}

// NATS is the cluster every host joins.
type NATS struct {
	Version string `toml:"version"` // e.g. "2.14.9", required
	// ArtifactDir is the local cache or offline mirror that holds release
	// assets in the upstream layout (tarball + SHA256SUMS). Default
	// ~/.cache/natsdeploy/artifacts ($XDG_CACHE_HOME/natsdeploy/artifacts
	// when that is set).
	ArtifactDir string `toml:"artifact_dir"`
	// DownloadURL is the release base URL; "" disables downloads, so only
	// ArtifactDir is used. Default: the official GitHub release URL.
	DownloadURL *string `toml:"download_url"`

	ClusterName string `toml:"cluster_name"` // default "nats-cluster"
	ClientPort  int    `toml:"client_port"`  // default 4222
	ClusterPort int    `toml:"cluster_port"` // default 6222
	HTTPPort    int    `toml:"http_port"`    // default 8222

	// RouteUser authenticates routes between nodes; its password comes from
	// RoutePasswordEnv or the secrets file.
	RouteUser        string `toml:"route_user"` // default "route"
	RoutePasswordEnv string `toml:"route_password_env"`

	MaxMemoryStore Size `toml:"max_memory_store"` // default 1GB
	MaxFileStore   Size `toml:"max_file_store"`   // default 4GB

	ConfigDir string `toml:"config_dir"` // default /etc/nats
	DataDir   string `toml:"data_dir"`   // default /var/lib/nats
	LogDir    string `toml:"log_dir"`    // default /var/log/nats

	LogMaxSize  Size  `toml:"log_max_size"`  // default 100MB
	LogMaxFiles int   `toml:"log_max_files"` // rotated files kept, default 5
	LogTime     *bool `toml:"logtime"`       // default true
	Debug       bool  `toml:"debug"`
	Trace       bool  `toml:"trace"`

	LameDuckDuration    Duration `toml:"lame_duck_duration"`     // default 30s
	LameDuckGracePeriod Duration `toml:"lame_duck_grace_period"` // default 10s
}

// Host is one machine natsdeploy manages: a NATS node unless NATS is false.
type Host struct {
	Name    string `toml:"name"`    // server_name of its NATS node, unique
	Address string `toml:"address"` // IP or DNS name, unique
	// Optional per-host overrides of [ssh]. After Load they hold the
	// effective values: the host's own, or else [ssh]'s.
	SSHUser string `toml:"ssh_user"`
	SSHPort int    `toml:"ssh_port"`
	// Jump overrides [ssh] jump for this host; "none" reaches it directly.
	Jump string `toml:"jump"`
	// TLSCert and TLSKey are the host's own certificate and key (PEM,
	// on the control machine) instead of one natsdeploy issues; they must
	// chain to [tls] ca_cert. Absolute after Load.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// NATS false means the host runs no NATS node (e.g. a dedicated
	// monitoring host). Default true; non-nil after Load. Use RunsNATS.
	NATS *bool `toml:"nats"`
}

// RunsNATS reports whether the host runs a NATS node. A nil NATS (a Host
// built without Load) means it does, as the default says.
func (h Host) RunsNATS() bool {
	return h.NATS == nil || *h.NATS
}

// NATSHosts returns the hosts that run a NATS node, in inventory order: the
// cluster's members, whose routes, server names and count matter to NATS.
func (inv *Inventory) NATSHosts() []Host {
	var hs []Host
	for _, h := range inv.Hosts {
		if h.RunsNATS() {
			hs = append(hs, h)
		}
	}
	return hs
}

// Account is a NATS account (tenant).
type Account struct {
	Name string `toml:"name"`
	// System marks the system account; exactly one account may set it.
	System bool `toml:"system"`
	// JetStream enables JetStream for the account with these limits; nil
	// means JetStream is off for it.
	JetStream *AccountJetStream `toml:"jetstream"`
	Users     []User            `toml:"users"`
}

// AccountJetStream are an account's JetStream quotas.
type AccountJetStream struct {
	MaxMem       Size `toml:"max_mem"`
	MaxFile      Size `toml:"max_file"`
	MaxStreams   int  `toml:"max_streams"`
	MaxConsumers int  `toml:"max_consumers"`
}

// User is a NATS user and its subject permissions.
//
// Allow and Deny apply to both publish and subscribe; Publish, Subscribe,
// DenyPublish and DenySubscribe add rules for one direction only. A user
// with no allow rule at all is an error: write allow = [">"] for full access.
//
// JetStream adds what a JetStream client needs: publish on $JS.API.>,
// $JS.ACK.> and $JS.FC.>, subscribe on _INBOX.>. RequestReply adds
// subscribe on _INBOX.> (to get replies) and allow_responses (to answer
// requests on subjects it may subscribe to).
type User struct {
	Name        string `toml:"name"`
	Password    string `toml:"password"`     // discouraged: prefer PasswordEnv or generation
	PasswordEnv string `toml:"password_env"` // environment variable with the password

	Allow         []string `toml:"allow"`
	Deny          []string `toml:"deny"`
	Publish       []string `toml:"publish"`
	Subscribe     []string `toml:"subscribe"`
	DenyPublish   []string `toml:"deny_publish"`
	DenySubscribe []string `toml:"deny_subscribe"`

	JetStream    bool `toml:"jetstream"`
	RequestReply bool `toml:"request_reply"`
}

// Monitoring is the monitoring stack. Prometheus, Grafana and the surveyor
// run on Host; the exporter runs on every NATS host.
type Monitoring struct {
	// Host names a [[hosts]] entry: a NATS host, or one with nats = false.
	Host string `toml:"host"`
	// ArtifactDir holds the release files in their release URL's layout,
	// <project>/v<version>/<file> plus the project's checksum file. Default:
	// nats.artifact_dir, so one cache or offline mirror serves every role.
	ArtifactDir string `toml:"artifact_dir"`
	// DownloadURL is the base of a mirror in the same layout as ArtifactDir;
	// "" disables downloads. Nil after Load means each project's official
	// release URL, unless nats.download_url is "": an offline deployment
	// stays offline, so then it is "" too.
	DownloadURL *string `toml:"download_url"`

	Prometheus PrometheusSpec `toml:"prometheus"`
	Grafana    GrafanaSpec    `toml:"grafana"`
	Exporter   ExporterSpec   `toml:"exporter"`
	Surveyor   SurveyorSpec   `toml:"surveyor"`
}

// PrometheusSpec is Prometheus on the monitoring host.
type PrometheusSpec struct {
	Enabled *bool  `toml:"enabled"` // default true; non-nil after Load. Use On.
	Version string `toml:"version"` // default DefaultPrometheusVersion
	Port    int    `toml:"port"`    // default 9090
	// Retention is how long samples are kept, in Prometheus's own duration
	// syntax ("15d", "1w", "30d12h"), passed to
	// --storage.tsdb.retention.time as written. Default "15d".
	Retention string `toml:"retention"`
	// ScrapeInterval is the global scrape_interval. Default 15s, at least
	// 1s; render it with Duration.Prometheus.
	ScrapeInterval Duration `toml:"scrape_interval"`
	// RuleFiles are the operator's own alert and recording rule files, on
	// the control machine (absolute after Load, relative paths anchored at
	// the inventory's folder). Each is deployed beside natsdeploy's rules
	// under "user-" + its base name, which must therefore be unique, and
	// checked by promtool on the host with the config before any of them
	// replaces the running ones. natsdeploy never parses them.
	RuleFiles []string `toml:"rule_files"`
}

// UserRulePrefix starts the name every rule_files entry is deployed under,
// so no operator's file can replace natsdeploy's own rules.
const UserRulePrefix = "user-"

// UserRuleName is the file name a rule_files entry gets on the monitoring
// host, beside natsdeploy's rules: UserRulePrefix and its base name.
func UserRuleName(localPath string) string { return UserRulePrefix + filepath.Base(localPath) }

// GrafanaSpec is Grafana on the monitoring host.
type GrafanaSpec struct {
	Enabled *bool  `toml:"enabled"` // default true; non-nil after Load. Use On.
	Version string `toml:"version"` // default DefaultGrafanaVersion
	Port    int    `toml:"port"`    // default 3000
	// PasswordEnv names the environment variable with the admin password;
	// "" means one is generated and kept in the secrets file. There is no
	// inline password key, so the password never sits in the inventory.
	PasswordEnv string `toml:"password_env"`
	// File is the release file's name (or its https URL) when it cannot be
	// derived from Version: 12.x+ names carry a build id that only
	// grafana.com's download page tells. Default "": derived.
	File string `toml:"file"`
	// SHA256 is File's checksum (hex, lower case after Load), for when no
	// official checksum file sits beside it.
	SHA256 string `toml:"sha256"`
}

// ExporterSpec is prometheus-nats-exporter, on every NATS host.
type ExporterSpec struct {
	Enabled *bool  `toml:"enabled"` // default true; non-nil after Load. Use On.
	Version string `toml:"version"` // default DefaultExporterVersion
	Port    int    `toml:"port"`    // default 7778 (upstream's 7777 is the surveyor's)
}

// SurveyorSpec is nats-surveyor on the monitoring host.
type SurveyorSpec struct {
	Enabled *bool  `toml:"enabled"` // default true; non-nil after Load. Use On.
	Version string `toml:"version"` // default DefaultSurveyorVersion
	Port    int    `toml:"port"`    // default 7777
}

// On reports whether Prometheus is deployed; a nil Enabled (a spec built
// without Load) means it is, as the default says.
func (s PrometheusSpec) On() bool { return s.Enabled == nil || *s.Enabled }

// On reports whether Grafana is deployed (nil Enabled: yes).
func (s GrafanaSpec) On() bool { return s.Enabled == nil || *s.Enabled }

// On reports whether the exporter is deployed (nil Enabled: yes).
func (s ExporterSpec) On() bool { return s.Enabled == nil || *s.Enabled }

// On reports whether the surveyor is deployed (nil Enabled: yes).
func (s SurveyorSpec) On() bool { return s.Enabled == nil || *s.Enabled }

// SurveyorUser is the NATS user natsdeploy adds to the system account for
// nats-surveyor when the surveyor is deployed. NATS needs user names unique
// across all accounts, so the inventory cannot use it then.
const SurveyorUser = "surveyor"

// OperatorUser is the NATS user natsdeploy adds to the system account for
// its own cluster operations (removing a departed member from the
// JetStream meta group, which only the system account may ask for). It may
// do that and nothing else, and the inventory cannot use the name.
const OperatorUser = "natsdeploy"

// RunsSurveyor reports whether the inventory deploys nats-surveyor, and so
// whether the system account gets SurveyorUser.
func (inv *Inventory) RunsSurveyor() bool {
	return inv.Monitoring != nil && inv.Monitoring.Surveyor.On()
}

// MonitoringHost returns the host named by monitoring.host. False when the
// inventory has no [monitoring] section (after Load the host always exists
// when it has one).
func (inv *Inventory) MonitoringHost() (Host, bool) {
	if inv.Monitoring == nil {
		return Host{}, false
	}
	for _, h := range inv.Hosts {
		if h.Name == inv.Monitoring.Host {
			return h, true
		}
	}
	return Host{}, false
}
