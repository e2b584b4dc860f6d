package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natsdeploy/natsdeploy/internal/remote"
)

// validator checks a decoded, defaulted inventory. Every check runs; each
// problem is recorded against the key path it is about.
type validator struct {
	inv     *Inventory
	defined map[string]bool
	// explicitEmpty holds the keys written as "" in the file whose empty
	// value defaults() replaces, and so would hide: "" is a mistake there,
	// never a wish for the default.
	explicitEmpty map[string]bool
	bad           map[string]bool
	opts          LoadOptions
	problems      []Problem
}

func (v *validator) add(key, format string, args ...any) {
	// A value that could not be decoded already has its message; checks
	// that see its zero value would only add noise.
	for k := key; k != ""; {
		if v.bad[k] {
			return
		}
		dot := strings.LastIndexByte(k, '.')
		if dot < 0 {
			break
		}
		k = k[:dot]
	}
	v.problems = append(v.problems, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// emptyDefaults are the keys whose explicit "" is refused by checkEmpty,
// with the default that removing the key gives. ssh.user and a host's
// ssh_user have their own messages.
var emptyDefaults = map[string]string{
	"ssh.known_hosts":   DefaultKnownHosts,
	"secrets_file":      "<inventory name>.secrets.toml beside the inventory",
	"nats.cluster_name": DefaultClusterName,
	"nats.route_user":   DefaultRouteUser,
	"nats.artifact_dir": "~/.cache/natsdeploy/artifacts",
	"nats.config_dir":   DefaultConfigDir,
	"nats.data_dir":     DefaultDataDir,
	"nats.log_dir":      DefaultLogDir,
}

func (v *validator) checkEmpty() {
	// In a fixed order, so two on one line are always reported alike.
	for _, key := range slices.Sorted(maps.Keys(emptyDefaults)) {
		if v.explicitEmpty[key] {
			v.add(key, "is empty; write a value, or remove the key to use the default (%s)", emptyDefaults[key])
		}
	}
}

func (v *validator) validate() {
	v.checkEmpty()
	v.checkSSH()
	v.checkNATS()
	v.checkHosts()
	v.checkAccounts()
	v.checkStandaloneQuotas()
	v.checkMonitoring()
	v.checkTLS()
	v.checkSecrets()
	if filepath.Clean(v.inv.SecretsFile) == filepath.Join(v.inv.Dir, filepath.Base(v.inv.Path)) {
		v.add("secrets_file", "is the inventory itself; name another file (default: %s.secrets.toml beside the inventory)",
			strings.TrimSuffix(filepath.Base(v.inv.Path), ".toml"))
	}
}

var (
	// serverNameRe: server_name ends up in /routez, /jsz, metrics labels and
	// JetStream's peer names, so keep it to characters safe everywhere.
	serverNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// accountNameRe: account names appear as tokens of system subjects
	// ($SYS.REQ.ACCOUNT.<name>.INFO), so no dots, wildcards or spaces.
	accountNameRe = regexp.MustCompile(`^[A-Za-z0-9_$-]+$`)
	// userNameRe: user names go into URLs and natscli context file names.
	userNameRe  = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)
	envNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	versionRe   = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)
	sshUserRe   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	pathCharsRe = regexp.MustCompile(`^[A-Za-z0-9_./@+-]+$`)
)

// MinLameDuckDuration is the shortest lame_duck_duration nats-server
// accepts (checked in its config parser, 2.14 and 2.15).
const MinLameDuckDuration = Duration(30 * time.Second)

// MaxLameDuckDuration bounds lame_duck_duration: it also sets the unit's
// TimeoutStopSec and how long a rolling restart waits per node, so a typo
// such as "999999h" would make every restart hang for years.
const MaxLameDuckDuration = Duration(10 * time.Minute)

// MinPasswordLength is the shortest password accepted from the inventory or
// the environment. The seed's passwords (nats123, dev123, ...) are all
// shorter, so none of them can slip through as a default.
const MinPasswordLength = 12

// MaxPasswordLength is bcrypt's limit: it ignores (x/crypto refuses) bytes
// after the 72nd, so a longer password would not mean what it says.
const MaxPasswordLength = 72

// weakPasswords are the seed's published passwords. All but one are caught by
// the length rule; the list makes the message say why.
var weakPasswords = map[string]bool{
	"sys123": true, "nats123": true, "dev123": true, "prod456": true,
	"monitor123": true, "user789": true, "order789": true, "payment789": true,
	"notify789": true, "cluster_pass_123": true, "admin123": true,
}

// commonPasswords are long enough for the length rule but are among the
// first any password guesser tries (compared in lower case).
var commonPasswords = map[string]bool{
	"password1234": true, "password12345": true, "password123456": true, "passwordpassword": true,
	"123456789012": true, "1234567890123": true, "12345678901234": true, "1234567890qwerty": true,
	"qwertyuiop12": true, "qwertyuiopasdf": true, "qwerty123456": true, "1q2w3e4r5t6y": true,
	"changeme1234": true, "letmein12345": true, "administrator": true, "iloveyou1234": true,
	"welcome12345": true, "abcdefghijkl": true, "abc123abc123": true, "natsnatsnats": true,
	"p@ssw0rd1234": true, "passw0rd1234": true, "secretsecret": true, "adminadmin123": true,
}

// MinPasswordDistinct is the fewest different characters a password may
// have: "aaaaaaaaaaaa" and "abababababab" are long but guessed at once.
const MinPasswordDistinct = 4

// PasswordProblem says what is wrong with a password supplied by the
// inventory, the environment or an edited secrets file, without showing
// it; "" when it is acceptable. Length is counted in characters, not
// bytes, so six two-byte letters are six, not twelve.
func PasswordProblem(pw string) string {
	distinct := map[rune]bool{}
	for _, r := range pw {
		distinct[r] = true
	}
	switch {
	case weakPasswords[pw]:
		return "is one of the seed's published example passwords"
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return fmt.Sprintf("is shorter than %d characters", MinPasswordLength)
	case len(pw) > MaxPasswordLength:
		return fmt.Sprintf("is longer than %d bytes, which bcrypt cannot hash", MaxPasswordLength)
	case !utf8.ValidString(pw):
		return "is not valid UTF-8 text"
	case commonPasswords[strings.ToLower(pw)]:
		return "is one of the most common passwords, which are guessed first"
	case len(distinct) < MinPasswordDistinct:
		return fmt.Sprintf("has fewer than %d different characters, which makes it easy to guess", MinPasswordDistinct)
	}
	return ""
}

func (v *validator) checkSSH() {
	s := &v.inv.SSH
	if v.explicitEmpty["ssh.user"] {
		// defaults() would otherwise make it root without a word.
		v.add("ssh.user", "is empty; write the remote login name, e.g. user = \"deploy\", or remove the key to log in as %s", DefaultSSHUser)
	} else if !sshUserRe.MatchString(s.User) {
		v.add("ssh.user", "%q is not a valid login name; write the remote user, e.g. user = \"deploy\"", s.User)
	}
	v.checkPort("ssh.port", s.Port)
	if v.defined["ssh.connect_timeout"] && s.ConnectTimeout <= 0 {
		v.add("ssh.connect_timeout", "must be more than 0; write e.g. connect_timeout = \"10s\"")
	}
	if v.defined["ssh.jump"] {
		if _, err := remote.ParseJump(s.Jump); err != nil {
			v.add("ssh.jump", "%v", err)
		}
	}
	if v.defined["ssh.sudo_password_env"] {
		switch name := s.SudoPasswordEnv; {
		case !envNameRe.MatchString(name):
			// Not shown: a password pasted here by mistake must not be
			// printed back.
			v.add("ssh.sudo_password_env", "is not an environment variable name (value not shown); write the name of the variable that holds the sudo password, e.g. sudo_password_env = \"NATSDEPLOY_SUDO_PASSWORD\"")
		case os.Getenv(name) == "":
			v.add("ssh.sudo_password_env", "environment variable %s (the sudo password) is not set; export it before running natsdeploy, or remove sudo_password_env to be asked on the terminal", name)
		}
	}
	v.checkSSHConfig()
	if v.opts.SkipFileChecks {
		return
	}
	for i, f := range s.IdentityFiles {
		v.checkPrivateKeyFile(keyPath("ssh.identity_files", i), f)
	}
	fi, err := os.Stat(s.KnownHosts)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !s.AcceptNewHostKeys {
			v.add("ssh.known_hosts", "known_hosts file %s does not exist; add the hosts' keys to it (check them, then ssh-keyscan HOST >> %s), "+
				"or set accept_new_host_keys = true to trust and record each host's key on first contact", s.KnownHosts, s.KnownHosts)
		}
	case err != nil:
		v.add("ssh.known_hosts", "known_hosts file %s cannot be read (%v)", s.KnownHosts, unwrapPathError(err))
	case fi.IsDir():
		v.add("ssh.known_hosts", "%s is a directory; name the known_hosts file", s.KnownHosts)
	case !fi.Mode().IsRegular():
		// Reading a FIFO when connecting would block until a writer comes.
		v.add("ssh.known_hosts", "%s is not a regular file; name the known_hosts file", s.KnownHosts)
	}
}

// checkPrivateKeyFile checks a private key file on this machine as OpenSSH
// would before using it; it reports whether the file can be read.
func (v *validator) checkPrivateKeyFile(key, f string) bool {
	if strings.HasSuffix(f, ".pub") {
		v.add(key, "%s is a public key; name the private key file (without .pub)", f)
		return false
	}
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(f)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.add(key, "identity file %s does not exist; fix the path or create a key with ssh-keygen -t ed25519 -f %s", f, f)
		return false
	case err != nil:
		v.add(key, "identity file %s cannot be read (%v); fix its owner or mode (chmod 600 %s)", f, unwrapPathError(err), f)
		return false
	case fi.IsDir():
		v.add(key, "identity file %s is a directory; name the private key file", f)
		return false
	case !fi.Mode().IsRegular():
		v.add(key, "identity file %s is not a regular file; name the private key file", f)
		return false
	case fi.Mode().Perm()&0o077 != 0:
		// OpenSSH refuses such a key ("UNPROTECTED PRIVATE KEY FILE"):
		// anyone on this machine may have copied it.
		v.add(key, "identity file %s has mode %04o, so other users can read the private key; run chmod 600 %s (and consider the key compromised)",
			f, fi.Mode().Perm(), f)
		return false
	}
	fh, err := os.Open(f)
	if err != nil {
		v.add(key, "identity file %s cannot be read (%v); fix its owner or mode (chmod 600 %s)", f, unwrapPathError(err), f)
		return false
	}
	fh.Close()
	return true
}

func (v *validator) checkSSHConfig() {
	s := &v.inv.SSH
	if !*s.UseSSHConfig {
		if v.defined["ssh.config_file"] {
			v.add("ssh.config_file", "is set but use_ssh_config = false says to read no ssh config; remove one of them")
		}
		return
	}
	if v.defined["ssh.config_file"] && s.ConfigFile == "" {
		v.add("ssh.config_file", "is empty; name the file, or write use_ssh_config = false to read no ssh config")
		return
	}
	if v.opts.SkipFileChecks {
		return
	}
	fi, err := os.Stat(s.ConfigFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// ~/.ssh/config is optional; a file the inventory names is not,
		// or a typo would silently drop every setting in it.
		if v.defined["ssh.config_file"] {
			v.add("ssh.config_file", "ssh config %s does not exist; fix the path, or remove config_file to use ~/.ssh/config", s.ConfigFile)
		}
		return
	case err != nil:
		v.add("ssh.config_file", "ssh config %s cannot be read (%v)", s.ConfigFile, unwrapPathError(err))
		return
	case fi.IsDir():
		v.add("ssh.config_file", "%s is a directory; name the ssh config file", s.ConfigFile)
		return
	}
	if _, err := remote.LoadSSHConfig(s.ConfigFile); err != nil {
		v.add("ssh.config_file", "%v", err)
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (v *validator) checkPort(key string, port int) bool {
	if port < 1 || port > 65535 {
		v.add(key, "port %d is out of range; use 1 to 65535", port)
		return false
	}
	return true
}

// MinServicePort is the lowest port a deployed service may listen on: the
// units run as unprivileged users without CAP_NET_BIND_SERVICE, so a
// privileged port would only fail on the hosts, after connecting.
const MinServicePort = 1024

// checkServicePort is checkPort for a port a deployed service listens on.
func (v *validator) checkServicePort(key string, port int) bool {
	if !v.checkPort(key, port) {
		return false
	}
	if port < MinServicePort {
		v.add(key, "port %d is a privileged port (below %d), which the service's unprivileged user cannot listen on; use %d or above", port, MinServicePort, MinServicePort)
		return false
	}
	return true
}

func (v *validator) checkNATS() {
	n := &v.inv.NATS
	v.checkVersion(n.Version)

	if *n.DownloadURL == "" && !v.opts.SkipFileChecks {
		// Offline, the release files can only come from artifact_dir: a
		// missing one would otherwise be found only after connecting.
		switch fi, err := os.Stat(n.ArtifactDir); {
		case errors.Is(err, fs.ErrNotExist):
			v.add("nats.artifact_dir", "%s does not exist, and download_url = \"\" leaves it the only source of release files; create it with the release files in it, fix the path, or set download_url", n.ArtifactDir)
		case err != nil:
			v.add("nats.artifact_dir", "%s cannot be read (%v)", n.ArtifactDir, unwrapPathError(err))
		case !fi.IsDir():
			v.add("nats.artifact_dir", "%s is not a directory; name the folder that holds the release files", n.ArtifactDir)
		case versionRe.MatchString(n.Version):
			// Nothing can be downloaded, so a version without files there
			// is one that cannot be deployed (a typo, or files not yet
			// mirrored), which would otherwise show only after connecting.
			rel := filepath.Join(n.ArtifactDir, "nats-server", "v"+n.Version)
			if fi, err := os.Stat(rel); err != nil || !fi.IsDir() {
				v.add("nats.version", "%s has no release files in %s, and download_url = \"\" allows no download; put the release there (tarball and SHA256SUMS), fix the version, or set download_url",
					n.Version, rel)
			}
		}
	}
	if u := *n.DownloadURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			v.add("nats.download_url", "%q is not an http(s) URL; write the release base URL (default %s), or \"\" to use artifact_dir only", u, DefaultDownloadURL)
		}
	}
	if !serverNameRe.MatchString(n.ClusterName) {
		v.add("nats.cluster_name", "%q is not a valid cluster name; use letters, digits, '-', '_' and '.' only", n.ClusterName)
	}

	ports := []struct {
		key  string
		port int
	}{{"nats.client_port", n.ClientPort}, {"nats.cluster_port", n.ClusterPort}, {"nats.http_port", n.HTTPPort}}
	for i, p := range ports {
		if !v.checkServicePort(p.key, p.port) {
			continue
		}
		for _, q := range ports[:i] {
			if q.port != p.port {
				continue
			}
			// Blame the port the file sets, not the default it ran into.
			blame, other := p.key, q.key
			if !v.defined[blame] && v.defined[other] {
				blame, other = other, blame
			}
			v.add(blame, "port %d is also %s; client, cluster and HTTP ports must differ", p.port, DisplayKey(other))
		}
	}

	if !userNameRe.MatchString(n.RouteUser) {
		v.add("nats.route_user", "%q is not a valid user name; use letters, digits and - _ . @", n.RouteUser)
	}
	if n.RoutePasswordEnv != "" {
		v.checkPasswordEnv("nats.route_password_env", n.RoutePasswordEnv, "the route user")
	}

	for _, s := range []struct {
		key  string
		size Size
	}{{"nats.max_memory_store", n.MaxMemoryStore}, {"nats.max_file_store", n.MaxFileStore}, {"nats.log_max_size", n.LogMaxSize}} {
		if s.size <= 0 {
			v.add(s.key, "must be more than 0; write a size such as \"1GB\"")
		}
	}
	if n.LogMaxFiles < 0 {
		v.add("nats.log_max_files", "%d is negative; write how many rotated log files to keep (0 keeps all)", n.LogMaxFiles)
	}

	dirs := []struct {
		key string
		p   *string
	}{{"nats.config_dir", &n.ConfigDir}, {"nats.data_dir", &n.DataDir}, {"nats.log_dir", &n.LogDir}}
	var good []int
	for i, d := range dirs {
		if v.checkRemoteDir(d.key, d.p) {
			good = append(good, i)
		}
	}
	for gi, i := range good {
		for _, j := range good[:gi] {
			a, b := dirs[i], dirs[j]
			switch {
			case *a.p == *b.p:
				v.add(a.key, "%q is also %s; use separate directories (they get different owners and modes)", *a.p, DisplayKey(b.key))
			case within(*a.p, *b.p):
				v.add(a.key, "%q is inside %s %q; use separate directories (they get different owners and modes)", *a.p, DisplayKey(b.key), *b.p)
			case within(*b.p, *a.p):
				v.add(a.key, "%q contains %s %q; use separate directories (they get different owners and modes)", *a.p, DisplayKey(b.key), *b.p)
			}
		}
	}

	if n.LameDuckDuration < MinLameDuckDuration {
		// nats-server refuses it while loading the config, so without this
		// check it would surface only on the hosts, after connecting.
		v.add("nats.lame_duck_duration", "%s is below nats-server's minimum of %s, and the server would not start; write at least \"%s\" (the default)",
			n.LameDuckDuration, MinLameDuckDuration, MinLameDuckDuration)
	} else if n.LameDuckDuration > MaxLameDuckDuration {
		v.add("nats.lame_duck_duration", "%s is more than the maximum of %s; it also bounds how long stopping a node may take, so write at most \"%s\"",
			n.LameDuckDuration, MaxLameDuckDuration, MaxLameDuckDuration)
	} else if n.LameDuckGracePeriod >= n.LameDuckDuration {
		v.add("nats.lame_duck_grace_period", "%s is not shorter than lame_duck_duration %s; nats-server needs the grace period to be shorter: lower it or raise lame_duck_duration",
			n.LameDuckGracePeriod, n.LameDuckDuration)
	}
}

func (v *validator) checkVersion(ver string) {
	if ver == "" {
		v.add("nats.version", "missing; name the nats-server release to deploy, e.g. version = \"2.14.9\"")
		return
	}
	m := v.releaseVersion("nats.version", ver, "2.14.9")
	if m == nil {
		return
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 2 || major == 2 && minor < 10 {
		v.add("nats.version", "%s is too old: natsdeploy renders settings that need nats-server 2.10 or newer (logfile_max_num, ...); use a 2.10+ release", ver)
	}
}

// releaseVersion checks that ver is MAJOR.MINOR.PATCH, as release URLs and
// file names are built from it, and returns its parts, or nil.
func (v *validator) releaseVersion(key, ver, example string) []string {
	m := versionRe.FindStringSubmatch(ver)
	if m == nil {
		hint := ""
		if strings.HasPrefix(ver, "v") && versionRe.MatchString(ver[1:]) {
			hint = fmt.Sprintf(" (write %q, without the v)", ver[1:])
		}
		v.add(key, "%q is not a release version%s; write MAJOR.MINOR.PATCH such as %q", ver, hint, example)
	}
	return m
}

// systemDirs must never be config, data or log directories themselves:
// natsdeploy sets the owner and mode of those, which would break the host.
// A directory of its own below one of them (/etc/nats, /var/lib/nats,
// /opt/nats) is what they are for.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/home": true,
	"/lib": true, "/lib64": true, "/opt": true, "/proc": true, "/root": true, "/run": true,
	"/sbin": true, "/srv": true, "/sys": true, "/tmp": true, "/usr": true, "/usr/bin": true,
	"/usr/lib": true, "/usr/local": true, "/usr/local/bin": true, "/var": true,
	"/var/lib": true, "/var/log": true, "/var/run": true, "/var/tmp": true, "/etc/systemd": true,
	"/mnt": true, "/media": true, "/var/cache": true, "/var/spool": true, "/var/mail": true,
	"/var/backups": true, "/var/opt": true, "/var/local": true, "/lost+found": true,
}

// sensitiveTrees are trees in which no directory may be taken over, not
// even a new one: they hold the system's programs, the kernel's views,
// login and boot configuration, package databases and users' homes (an
// owner change under /home/deploy locks the deploy user out of ~/.ssh).
// A directory that contains one of them is refused too, as chown -R or a
// later purge of it would reach into the tree.
var sensitiveTrees = []string{
	"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/boot", "/dev", "/proc",
	"/sys", "/run", "/var/run", "/home", "/root", "/snap", "/tmp", "/var/tmp",
	"/etc/ssh", "/etc/systemd", "/etc/sudoers.d", "/etc/pam.d", "/etc/security",
	"/etc/apt", "/etc/ssl", "/etc/default", "/etc/init.d", "/etc/cron.d", "/etc/network",
	"/var/log/journal", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/var/lib/rpm",
	"/var/cache/apt", "/var/spool/cron",
}

// systemDirProblem says why dir (clean, absolute) may not be taken over,
// or "".
func systemDirProblem(dir string) string {
	if systemDirs[dir] {
		return "is a system directory, whose owner and mode natsdeploy would change"
	}
	for _, t := range sensitiveTrees {
		switch {
		case dir == t:
			return "is a system directory, whose owner and mode natsdeploy would change"
		case within(dir, t):
			return fmt.Sprintf("is inside %s, a system tree whose owners and modes natsdeploy must not change", t)
		case within(t, dir):
			return fmt.Sprintf("contains %s, a system tree whose owners and modes natsdeploy must not change", t)
		}
	}
	return ""
}

// checkRemoteDir checks (and cleans) a directory on the hosts.
func (v *validator) checkRemoteDir(key string, p *string) bool {
	if !strings.HasPrefix(*p, "/") {
		v.add(key, "%q is not an absolute path; directories on the hosts start with /", *p)
		return false
	}
	if !pathCharsRe.MatchString(*p) {
		v.add(key, "%q has characters other than letters, digits and / . _ - @ +; it ends up in systemd units and shell commands, so rename it", *p)
		return false
	}
	// The hosts are Linux: clean with slash semantics, so "/etc/nats/../ssh"
	// is judged as the /etc/ssh it is.
	clean := path.Clean(*p)
	if msg := systemDirProblem(clean); msg != "" {
		shown := fmt.Sprintf("%q", clean)
		if clean != *p {
			shown = fmt.Sprintf("%q (%s)", *p, clean)
		}
		v.add(key, "%s %s; use a directory of its own such as %q", shown, msg, suggestDir(key))
		return false
	}
	*p = clean
	return true
}

// suggestDir is the default of the directory key names, as an example of
// a safe one.
func suggestDir(key string) string {
	switch key {
	case "nats.config_dir":
		return DefaultConfigDir
	case "nats.log_dir":
		return DefaultLogDir
	}
	return DefaultDataDir
}

// within reports whether dir is strictly below parent.
func within(dir, parent string) bool {
	return strings.HasPrefix(dir, strings.TrimSuffix(parent, "/")+"/")
}

func (v *validator) checkHosts() {
	hosts := v.inv.Hosts
	if len(hosts) == 0 {
		v.add("hosts", "no hosts; add a [[hosts]] table with name and address for each machine (1, or 3 or more)")
		return
	}
	switch len(v.inv.NATSHosts()) {
	case 0:
		v.add("hosts", "no host runs NATS (every [[hosts]] sets nats = false); remove nats = false from 1, or 3 or more of them")
	case 2:
		v.add("hosts", "a 2-node JetStream cluster cannot keep quorum when one node is down; use 1 or 3+ hosts that run NATS")
	}
	names := map[string]int{}
	addrs := map[string]int{}
	sharedPort := false
	// A loopback node next to nodes on other machines: the others' routes
	// to it would reach themselves, and it would be named by an address
	// no client elsewhere can use. Only a cluster wholly on this side of
	// one loopback (tests, a single machine) may use one.
	var loopback, elsewhere bool
	for _, h := range hosts {
		if ip := net.ParseIP(h.Address); ip != nil && ip.IsLoopback() || strings.EqualFold(h.Address, "localhost") {
			loopback = true
		} else if h.Address != "" {
			elsewhere = true
		}
	}
	for i, h := range hosts {
		base := keyPath("hosts", i)
		switch {
		case h.Name == "":
			v.add(keyPath(base, "name"), "host has no name; add name = \"nats-%d\" (it becomes the node's server_name)", i+1)
		case !serverNameRe.MatchString(h.Name):
			v.add(keyPath(base, "name"), "%q is not a valid server name; use letters, digits, '-', '_' and '.' only", h.Name)
		default:
			if j, dup := names[h.Name]; dup {
				v.add(keyPath(base, "name"), "host name %q is also used by hosts[%d]; every host needs its own name", h.Name, j)
			} else {
				names[h.Name] = i
			}
		}
		switch {
		case h.Address == "":
			v.add(keyPath(base, "address"), "host %q has no address; add address = \"IP or DNS name\"", h.Name)
		default:
			machine := machineKey(h.Address)
			if msg := addressProblem(h.Address); msg != "" {
				v.add(keyPath(base, "address"), "%q %s", h.Address, msg)
			} else if loopback && elsewhere && isLoopback(h.Address) {
				v.add(keyPath(base, "address"), "%q is a loopback address, which means a different machine to every host; write the address the other hosts reach this one at", h.Address)
			} else if j, dup := addrs[machine]; dup {
				if h.RunsNATS() && hosts[j].RunsNATS() {
					v.add(keyPath(base, "address"), "address %q is also used by hosts[%d]; each NATS node needs a machine of its own (their ports would collide)", h.Address, j)
				} else {
					v.add(keyPath(base, "address"), "address %q is also used by hosts[%d]; list each machine once", h.Address, j)
				}
			} else {
				addrs[machine] = i
			}
		}
		if jumpKey := keyPath(base, "jump"); v.defined[jumpKey] {
			if _, err := remote.ParseJump(h.Jump); err != nil {
				v.add(jumpKey, "%v", err)
			}
		}
		if v.explicitEmpty[keyPath(base, "ssh_user")] {
			v.add(keyPath(base, "ssh_user"), "is empty; write the login name for host %q, or remove the key to use [ssh] user", h.Name)
		} else if h.SSHUser != "" && !sshUserRe.MatchString(h.SSHUser) {
			v.add(keyPath(base, "ssh_user"), "%q is not a valid login name", h.SSHUser)
		}
		// A host's own ssh_port is checked here; the [ssh] port once, below.
		// Only a NATS node's sshd competes with nats-server for a port.
		if portKey := keyPath(base, "ssh_port"); v.defined[portKey] {
			if v.checkPort(portKey, h.SSHPort) && h.RunsNATS() {
				v.checkSSHPortFree(portKey, h.SSHPort, fmt.Sprintf("of host %q ", h.Name))
			}
		} else if h.RunsNATS() {
			sharedPort = true
		}
	}
	if sharedPort && v.inv.SSH.Port >= 1 && v.inv.SSH.Port <= 65535 {
		v.checkSSHPortFree("ssh.port", v.inv.SSH.Port, "")
	}
}

// checkSSHPortFree refuses an SSH port that nats-server would also listen on.
func (v *validator) checkSSHPortFree(key string, port int, of string) {
	n := &v.inv.NATS
	for _, p := range []struct {
		key  string
		port int
	}{{"nats.client_port", n.ClientPort}, {"nats.cluster_port", n.ClusterPort}, {"nats.http_port", n.HTTPPort}} {
		if p.port == port {
			v.add(key, "SSH port %d %sis also %s; sshd and nats-server cannot share a port", port, of, DisplayKey(p.key))
		}
	}
}

// addressProblem returns what is wrong with a host address, or "".
func addressProblem(a string) string {
	switch {
	case strings.ContainsAny(a, " \t\r\n"):
		return "contains whitespace; write an IP address or DNS name"
	case strings.Contains(a, "@"):
		return "contains a user; put the login name in ssh_user and only the host in address"
	case strings.Contains(a, "/"):
		return "is not a host; write an IP address or DNS name without scheme or path"
	case strings.Contains(a, ":") && net.ParseIP(a) == nil:
		return "contains a port; put the SSH port in ssh_port and only the host in address"
	}
	if ip := net.ParseIP(a); ip != nil {
		switch {
		case ip.IsUnspecified():
			return "is the unspecified address (any interface), not a machine; write the host's own address"
		case ip.IsMulticast():
			return "is a multicast address, not a machine; write the host's own address"
		case ip.Equal(net.IPv4bcast):
			return "is the broadcast address, not a machine; write the host's own address"
		}
	}
	return ""
}

func isLoopback(a string) bool {
	ip := net.ParseIP(a)
	return ip != nil && ip.IsLoopback() || strings.EqualFold(a, "localhost")
}

// machineKey is what two addresses of one machine have in common: an IP in
// its canonical form (so ::ffff:192.0.2.1 is 192.0.2.1 and 2001:DB8::1 is
// 2001:db8::1), a DNS name in lower case without a trailing dot.
func machineKey(a string) string {
	if ip := net.ParseIP(a); ip != nil {
		return ip.String()
	}
	return strings.TrimSuffix(strings.ToLower(a), ".")
}

func (v *validator) checkAccounts() {
	accts := v.inv.Accounts
	if len(accts) == 0 {
		v.add("accounts", "no accounts; add [[accounts]] tables, one of them with system = true")
		return
	}
	n := &v.inv.NATS
	names := map[string]int{}
	var systems []int
	type userRef struct{ account, index int }
	users := map[string]userRef{}
	for i, a := range accts {
		base := keyPath("accounts", i)
		switch {
		case a.Name == "":
			v.add(keyPath(base, "name"), "account has no name; add name = \"...\"")
		case a.Name == "$G":
			v.add(keyPath(base, "name"), "\"$G\" is nats-server's global account, which is not configured like this; choose another name")
		case !accountNameRe.MatchString(a.Name):
			v.add(keyPath(base, "name"), "%q is not a valid account name; use letters, digits, '-', '_' and '$' (no spaces or dots)", a.Name)
		default:
			if j, dup := names[a.Name]; dup {
				v.add(keyPath(base, "name"), "account %q is already defined at accounts[%d]; merge the two or rename one", a.Name, j)
			} else {
				names[a.Name] = i
			}
		}
		if a.System {
			systems = append(systems, i)
			if a.JetStream != nil {
				v.add(keyPath(base, "jetstream"), "the system account %q cannot have JetStream; remove its jetstream limits", a.Name)
			}
		}
		if js := a.JetStream; js != nil {
			jsKey := keyPath(base, "jetstream")
			for _, l := range []struct {
				key, example string
				val          int64
			}{
				{"max_mem", `"1GB"`, int64(js.MaxMem)},
				{"max_file", `"4GB"`, int64(js.MaxFile)},
				{"max_streams", "1000", int64(js.MaxStreams)},
				{"max_consumers", "10000", int64(js.MaxConsumers)},
			} {
				if l.val <= 0 {
					v.add(keyPath(jsKey, l.key), "JetStream limit %s of account %q must be more than 0; set it, e.g. %s = %s", l.key, a.Name, l.key, l.example)
				}
			}
			if js.MaxMem > n.MaxMemoryStore && n.MaxMemoryStore > 0 {
				v.add(keyPath(jsKey, "max_mem"), "%s is more than nats.max_memory_store (%s), which no account can exceed; lower it or raise max_memory_store", js.MaxMem, n.MaxMemoryStore)
			}
			if js.MaxFile > n.MaxFileStore && n.MaxFileStore > 0 {
				v.add(keyPath(jsKey, "max_file"), "%s is more than nats.max_file_store (%s), which no account can exceed; lower it or raise max_file_store", js.MaxFile, n.MaxFileStore)
			}
		}
		if len(a.Users) == 0 {
			v.add(base, "account %q has no users; add a [[accounts.users]] table below it, or remove the account", a.Name)
		}
		for j, u := range a.Users {
			ukey := keyPath(base, "users", j)
			switch {
			case u.Name == "":
				v.add(keyPath(ukey, "name"), "user has no name; add name = \"...\"")
			case !userNameRe.MatchString(u.Name):
				v.add(keyPath(ukey, "name"), "%q is not a valid user name; use letters, digits and - _ . @", u.Name)
			case u.Name == OperatorUser:
				v.add(keyPath(ukey, "name"), "%q is the user natsdeploy adds to the system account for its own cluster operations; NATS needs user names unique across all accounts, so rename this one", u.Name)
			case u.Name == SurveyorUser && v.inv.RunsSurveyor():
				v.add(keyPath(ukey, "name"), "%q is the user natsdeploy adds to the system account for nats-surveyor ([monitoring.surveyor]); NATS needs user names unique across all accounts, so rename this one", u.Name)
			default:
				if prev, dup := users[u.Name]; dup {
					v.add(keyPath(ukey, "name"), "user %q is already defined in account %q (accounts[%d].users[%d]); NATS needs user names unique across all accounts, so rename one",
						u.Name, accts[prev.account].Name, prev.account, prev.index)
				} else {
					users[u.Name] = userRef{i, j}
				}
			}
			v.checkUser(ukey, a, u)
		}
	}
	switch len(systems) {
	case 0:
		v.add("accounts", "no system account; mark one account system = true (the seed calls it SYS) so servers can be monitored and managed")
	case 1:
	default:
		for _, i := range systems[1:] {
			v.add(keyPath("accounts", i, "system"), "account %q is a second system account (%q is one already); mark only one account system = true",
				accts[i].Name, accts[systems[0]].Name)
		}
	}
}

func (v *validator) checkUser(key string, a Account, u User) {
	who := fmt.Sprintf("user %q", u.Name)
	if u.Password != "" && u.PasswordEnv != "" {
		v.add(keyPath(key, "password_env"), "%s sets both password and password_env; keep one (password_env keeps the secret out of the file)", who)
	}
	if u.Password != "" {
		if msg := PasswordProblem(u.Password); msg != "" {
			v.add(keyPath(key, "password"), "the password of %s %s; use at least %d characters, or remove it to have one generated and kept in the secrets file", who, msg, MinPasswordLength)
		}
	}
	if u.PasswordEnv != "" {
		v.checkPasswordEnv(keyPath(key, "password_env"), u.PasswordEnv, who)
	}

	if len(u.Allow) == 0 && len(u.Publish) == 0 && len(u.Subscribe) == 0 && !u.JetStream && !u.RequestReply {
		v.add(key, "%s has no allow rule, so it could do nothing; write allow = [\">\"] for full access, or the subjects it may use", who)
	}
	switch {
	case u.JetStream && a.System:
		v.add(keyPath(key, "jetstream"), "%s is in the system account %q, which cannot have JetStream; remove jetstream = true", who, a.Name)
	case u.JetStream && a.JetStream == nil:
		v.add(keyPath(key, "jetstream"), "%s asks for JetStream but account %q has none; give the account jetstream = { max_mem = ..., ... } or remove jetstream = true", who, a.Name)
	}
	for _, list := range []struct {
		name     string
		subjects []string
	}{
		{"allow", u.Allow}, {"deny", u.Deny}, {"publish", u.Publish},
		{"subscribe", u.Subscribe}, {"deny_publish", u.DenyPublish}, {"deny_subscribe", u.DenySubscribe},
	} {
		seen := map[string]int{}
		for k, s := range list.subjects {
			skey := keyPath(key, list.name, k)
			if err := SubjectError(s); err != nil {
				v.add(skey, "%q is not a valid subject: %v", s, err)
				continue
			}
			if prev, dup := seen[s]; dup {
				v.add(skey, "%q is listed twice (also %s[%d]); remove one", s, list.name, prev)
				continue
			}
			seen[s] = k
		}
	}
}

// badEnvNameMsg does not quote the value: what is not a variable name in a
// password_env key is most often the password itself, pasted there.
const badEnvNameMsg = "is not an environment variable name (its value is not shown: it may be a password); " +
	"write the name of a variable that holds the password, in letters, digits and _, e.g. password_env = \"NATS_APP_PASSWORD\""

// checkPasswordEnv checks now that the named variable holds a usable
// password, so a missing export fails before anything is changed.
func (v *validator) checkPasswordEnv(key, name, who string) {
	if !envNameRe.MatchString(name) {
		v.add(key, "%s", badEnvNameMsg)
		return
	}
	pw, ok := os.LookupEnv(name)
	switch {
	case !ok || pw == "":
		v.add(key, "environment variable %s (the password of %s) is not set; export it before running natsdeploy, or remove password_env to have a password generated", name, who)
	default:
		if msg := PasswordProblem(pw); msg != "" {
			v.add(key, "the password in environment variable %s (for %s) %s; use at least %d characters", name, who, msg, MinPasswordLength)
		}
	}
}

// checkStandaloneQuotas: a lone server runs JetStream standalone, and then
// refuses to start unless every account's quota fits in the server's limits
// at once; a cluster checks only when streams are created. `nats-server -t`
// does not see it either.
func (v *validator) checkStandaloneQuotas() {
	if len(v.inv.NATSHosts()) != 1 {
		return
	}
	n := &v.inv.NATS
	var mem, file Size
	for _, a := range v.inv.Accounts {
		if js := a.JetStream; js != nil {
			mem += max(js.MaxMem, 0)
			file += max(js.MaxFile, 0)
		}
	}
	for _, l := range []struct {
		name, quota string
		sum, limit  Size
	}{
		{"max_memory_store", "max_mem", mem, n.MaxMemoryStore},
		{"max_file_store", "max_file", file, n.MaxFileStore},
	} {
		if l.limit > 0 && l.sum > l.limit {
			v.add("nats."+l.name, "%s is less than the accounts' JetStream %s added up (%s); a single NATS node would not start with that: lower the quotas or raise %s",
				l.limit, l.quota, l.sum, l.name)
		}
	}
}

var (
	sha256Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	// tarballRe: the file name goes into local paths, URLs and remote
	// commands, so keep it to characters safe in all of them.
	tarballRe = regexp.MustCompile(`^[A-Za-z0-9_.+-]+\.tar\.gz$`)
)

// MinScrapeInterval is the shortest scrape_interval accepted: shorter ones
// load the NATS monitoring endpoints for no gain in what the dashboards show.
const MinScrapeInterval = Duration(time.Second)

func (v *validator) checkMonitoring() {
	m := v.inv.Monitoring
	if m == nil {
		return
	}
	v.checkMonitoringHost(m.Host)
	if m.DownloadURL != nil && *m.DownloadURL != "" {
		pu, err := url.Parse(*m.DownloadURL)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			v.add("monitoring.download_url", "%q is not an http(s) URL; write the base URL of a mirror laid out like artifact_dir (<project>/v<version>/<file>), "+
				"\"\" to use artifact_dir only, or remove it to download from each project's official release URL", *m.DownloadURL)
		}
	}

	for _, s := range []struct {
		name, version, def string
		port               int
	}{
		{"prometheus", m.Prometheus.Version, DefaultPrometheusVersion, m.Prometheus.Port},
		{"grafana", m.Grafana.Version, DefaultGrafanaVersion, m.Grafana.Port},
		{"exporter", m.Exporter.Version, DefaultExporterVersion, m.Exporter.Port},
		{"surveyor", m.Surveyor.Version, DefaultSurveyorVersion, m.Surveyor.Port},
	} {
		key := "monitoring." + s.name
		if s.version == "" {
			v.add(key+".version", "is empty; remove it to deploy %s, or name a release such as %q", s.def, s.def)
		} else {
			v.releaseVersion(key+".version", s.version, s.def)
		}
		v.checkServicePort(key+".port", s.port)
	}

	p := &m.Prometheus
	if d, err := ParsePrometheusDuration(p.Retention); err != nil {
		v.add("monitoring.prometheus.retention", "%v", err)
	} else if d <= 0 {
		v.add("monitoring.prometheus.retention", "must be more than 0; write how long to keep samples, e.g. retention = %q (the default)", DefaultRetention)
	}
	switch si := p.ScrapeInterval; {
	case si < MinScrapeInterval:
		v.add("monitoring.prometheus.scrape_interval", "%s is below the minimum of %s; write e.g. scrape_interval = %q (the default)", si, MinScrapeInterval, DefaultScrapeInterval)
	case si%Duration(time.Millisecond) != 0:
		v.add("monitoring.prometheus.scrape_interval", "%s has a fraction of a millisecond, which Prometheus cannot express; round it", si)
	}

	v.checkRuleFiles(p)
	v.checkGrafana(&m.Grafana)
	v.checkMonitoringPorts(m)
}

// MaxRuleFileSize is the largest rule file rule_files may name: far above
// any hand-written rules, far below what would slow an apply down.
const MaxRuleFileSize = 1 << 20

// ruleFileNameRe is what a rule file's base name may look like. Prometheus
// expands rule_files entries as globs, and the name goes into a YAML list
// and shell commands, so it is kept to characters that need no quoting
// anywhere.
var ruleFileNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$`)

// checkRuleFiles checks the operator's rule files: names that deploy to
// distinct, plain file names, and (with file checks) readable regular
// files of a sane size. Their content is promtool's to judge, on the host.
func (v *validator) checkRuleFiles(p *PrometheusSpec) {
	seen := map[string]int{}
	for i, f := range p.RuleFiles {
		key := keyPath("monitoring.prometheus.rule_files", i)
		base := filepath.Base(f)
		if !ruleFileNameRe.MatchString(base) {
			v.add(key, "%q: a rule file's name must end in .yml or .yaml and use only letters, digits, '.', '_' and '-' "+
				"(Prometheus reads rule_files as globs); rename the file", base)
			continue
		}
		if j, ok := seen[base]; ok {
			v.add(key, "%s has the same file name as rule_files[%d] (%s); both would be deployed as %s, so rename one",
				f, j, p.RuleFiles[j], UserRuleName(f))
			continue
		}
		seen[base] = i
		if v.opts.SkipFileChecks || !p.On() {
			continue
		}
		// Stat before opening: opening a FIFO would block.
		fi, err := os.Stat(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.add(key, "rule file %s does not exist; fix the path (relative paths are relative to the inventory's folder)", f)
			continue
		case err != nil:
			v.add(key, "rule file %s cannot be read (%v); fix its owner or mode", f, unwrapPathError(err))
			continue
		case !fi.Mode().IsRegular():
			v.add(key, "rule file %s is not a regular file; name a Prometheus rule file", f)
			continue
		case fi.Size() > MaxRuleFileSize:
			v.add(key, "rule file %s is %d bytes, more than the %d a rule file may have; split it into several", f, fi.Size(), MaxRuleFileSize)
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			v.add(key, "rule file %s cannot be read (%v); fix its owner or mode", f, unwrapPathError(err))
			continue
		}
		fh.Close()
	}
}

func (v *validator) checkMonitoringHost(name string) {
	var names []string
	for _, h := range v.inv.Hosts {
		if h.Name == name {
			return
		}
		if h.Name != "" {
			names = append(names, h.Name)
		}
	}
	example := "monitor-1"
	if len(names) > 0 {
		example = names[0]
	}
	if name == "" {
		v.add("monitoring.host", "missing; name the [[hosts]] entry that runs Prometheus, Grafana and the surveyor, e.g. host = %q", example)
		return
	}
	v.add("monitoring.host", "%q is not in [[hosts]]; add it as a [[hosts]] entry with nats = false, or name one of: %s", name, strings.Join(names, ", "))
}

func (v *validator) checkGrafana(g *GrafanaSpec) {
	if g.PasswordEnv != "" {
		if g.On() {
			v.checkPasswordEnv("monitoring.grafana.password_env", g.PasswordEnv, "the Grafana admin")
		} else if !envNameRe.MatchString(g.PasswordEnv) {
			// Disabled: the variable need not be set, but a bad name is a typo.
			v.add("monitoring.grafana.password_env", "%s", badEnvNameMsg)
		}
	}
	if g.SHA256 != "" {
		if !sha256Re.MatchString(g.SHA256) {
			v.add("monitoring.grafana.sha256", "%q is not a SHA-256 checksum; write the 64 hex digits grafana.com shows beside the download", g.SHA256)
		}
		g.SHA256 = strings.ToLower(g.SHA256)
		if g.File == "" {
			v.add("monitoring.grafana.sha256", "is set without file; name the release file it belongs to in file = \"...\", or remove sha256 to use the official checksum file")
		}
	}
	if g.File == "" {
		return
	}
	name := g.File
	if strings.Contains(g.File, "://") {
		pu, err := url.Parse(g.File)
		if err != nil || pu.Scheme != "https" || pu.Host == "" {
			v.add("monitoring.grafana.file", "%q is not an https URL; write the release file's name or its https URL", g.File)
			return
		}
		name = path.Base(pu.Path)
	} else if strings.Contains(g.File, "/") {
		v.add("monitoring.grafana.file", "%q is a path; write only the file name (it is looked up in artifact_dir under grafana/v%s/), or its https URL", g.File, g.Version)
		return
	}
	if !tarballRe.MatchString(name) {
		v.add("monitoring.grafana.file", "%q is not a .tar.gz release file name; name the linux tarball from grafana.com's download page, e.g. \"grafana_%s_<build id>_linux_amd64.tar.gz\"", name, g.Version)
		return
	}
	if g.Version != "" && !strings.Contains(name, g.Version) {
		v.add("monitoring.grafana.file", "%q does not name version %s; set version to the file's release, or name the file of %s", name, g.Version, g.Version)
	}
}

// checkMonitoringPorts refuses two services listening on one port of one
// host. Clashes among NATS's own ports and sshd are checked with [nats] and
// [[hosts]]; only those involving a monitoring service are reported here.
func (v *validator) checkMonitoringPorts(m *Monitoring) {
	n := &v.inv.NATS
	mon, monOK := v.inv.MonitoringHost()
	type use struct {
		key  string
		port int
	}
	reported := map[string]bool{}
	for i, h := range v.inv.Hosts {
		isMon := monOK && h.Name == mon.Name
		if !isMon && !h.RunsNATS() {
			continue
		}
		sshKey := keyPath("hosts", i, "ssh_port")
		if !v.defined[sshKey] {
			sshKey = "ssh.port"
		}
		uses := []use{{sshKey, h.SSHPort}}
		if h.RunsNATS() {
			uses = append(uses, use{"nats.client_port", n.ClientPort}, use{"nats.cluster_port", n.ClusterPort}, use{"nats.http_port", n.HTTPPort})
			if m.Exporter.On() {
				uses = append(uses, use{"monitoring.exporter.port", m.Exporter.Port})
			}
		}
		if isMon {
			if m.Prometheus.On() {
				uses = append(uses, use{"monitoring.prometheus.port", m.Prometheus.Port})
			}
			if m.Grafana.On() {
				uses = append(uses, use{"monitoring.grafana.port", m.Grafana.Port})
			}
			if m.Surveyor.On() {
				uses = append(uses, use{"monitoring.surveyor.port", m.Surveyor.Port})
			}
		}
		for a, ua := range uses {
			for _, ub := range uses[:a] {
				// Monitoring services come last in uses, so ua is one
				// whenever either is.
				if ua.port != ub.port || ua.port < MinServicePort || ua.port > 65535 || !strings.HasPrefix(ua.key, "monitoring.") {
					continue
				}
				// Blame the port the file sets, not the default it ran into.
				blame, other := ua.key, ub.key
				if !v.defined[blame] && v.defined[other] {
					blame, other = other, blame
				}
				if reported[blame+" "+other] {
					continue
				}
				reported[blame+" "+other] = true
				v.add(blame, "port %d is also %s on host %q; give every service on one host its own port", ua.port, DisplayKey(other), h.Name)
			}
		}
	}
}
