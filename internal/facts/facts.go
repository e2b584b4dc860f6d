// Package facts learns the current state of a host with one remote command:
// OS, architecture, systemd, and the owner, mode and sha256 of every path a
// role manages. The planner diffs these facts against the desired state, so
// a run that has nothing to do never uploads or restarts anything.
package facts

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// StateDir holds natsdeploy's own bookkeeping on a host: the run lock and
// the handlers still owed by an interrupted run.
const StateDir = "/var/lib/natsdeploy"

// LockFile is the run lock (see package lock). The facts carry its
// content so that a run can find out whether it needs the lock at all.
const LockFile = StateDir + "/lock"

// Host is what one host looks like now.
type Host struct {
	OS      string // "debian 12"
	Arch    string // uname -m
	Systemd string // systemd version, "" when there is none

	Users map[string]bool
	Files map[string]File // by path; absent paths are missing
	Dirs  map[string]File // by path; absent paths are missing
	Units map[string]Unit // by unit name

	// Pending are handlers a previous run wrote down before it changed
	// files and did not get to run (it was interrupted), by service.
	Pending map[string]desired.Handler

	// Listening are the TCP ports of Paths.Ports something listens on
	// now, by port number, with who.
	Listening map[int]Listener

	// Lock is the content of LockFile, "" when there is none.
	Lock string
}

// Listener is the process listening on a TCP port.
type Listener struct {
	PID  int    // 0: no process found (another PID namespace, or no right to look: a container without CAP_SYS_PTRACE)
	User string // the socket's owner (name, or uid without one)
	Unit string // the systemd unit of its cgroup ("nats-server.service"); "" outside any (a container's own cgroup, say)
	Comm string // its program's name (argv[0] without its directory), "" when unknown
}

// Describe says who listens, for a person.
func (l Listener) Describe() string {
	who := l.Comm
	if who == "" {
		who = "a process"
	}
	switch {
	case l.PID == 0:
		return fmt.Sprintf("a process of user %s that natsdeploy cannot see", l.User)
	case l.Unit == "":
		return fmt.Sprintf("%s (pid %d, outside any systemd unit)", who, l.PID)
	default:
		return fmt.Sprintf("%s (pid %d, %s)", who, l.PID, l.Unit)
	}
}

// File is the observed state of a file or directory.
type File struct {
	Mode   fs.FileMode
	Owner  string
	Group  string
	SHA256 string // files only
}

// Unit is the observed state of a systemd unit.
type Unit struct {
	Enabled bool
	Active  bool
	State   string // is-active output: active, inactive, failed, activating...
	MainPID int
	// Uptime is how long ago the unit last became active, when
	// Paths.Uptime asked for it and systemd knew (UptimeKnown).
	Uptime      time.Duration
	UptimeKnown bool
	// Version is the first line its Paths.Versions command printed.
	Version string
}

// Paths is what the facts script must look at.
type Paths struct {
	Users []string
	Files []string
	Dirs  []string
	Units []string
	// Ports are TCP ports whose listener, if any, to report.
	Ports []int

	// ReadOnly keeps the script from writing anything on the host: the
	// sums cache is read but not rewritten. For the commands that promise
	// to change nothing (status), which may run beside an apply.
	ReadOnly bool
	// Uptime also asks how long each unit has been active.
	Uptime bool
	// Versions maps a unit to a command that prints its program's
	// version; the first line of what it prints (stdout and stderr) is
	// reported as Unit.Version.
	Versions map[string]string
}

// usersScript prints "user NAME" for each of users that exists. Local
// accounts (natsdeploy's own service users are) are read from /etc/passwd
// by the shell itself; only a name not found there costs a getent, which
// also asks the other NSS sources (LDAP, sssd).
func usersScript(users []string) string {
	q := make([]string, len(users))
	for i, u := range users {
		q[i] = shell.Quote(u)
	}
	return "want=" + shell.Quote(" "+strings.Join(users, " ")+" ") + "; found=' '\n" +
		"while IFS=: read -r u _; do case \"$want\" in *\" $u \"*) case \"$found\" in *\" $u \"*) ;; *) found=\"$found$u \"; echo \"user $u\" ;; esac ;; esac; done 2>/dev/null </etc/passwd\n" +
		"for u in " + strings.Join(q, " ") + "; do case \"$found\" in *\" $u \"*) ;; *) getent passwd \"$u\" >/dev/null 2>&1 && echo \"user $u\" ;; esac; done\n"
}

// PathsOf lists what desired state d manages.
func PathsOf(d desired.Host) Paths {
	var p Paths
	for _, u := range d.Users {
		p.Users = append(p.Users, u.Name)
	}
	for _, f := range d.Files {
		p.Files = append(p.Files, f.Path)
	}
	for _, dir := range d.Dirs {
		p.Dirs = append(p.Dirs, dir.Path)
	}
	for _, u := range d.Units {
		p.Units = append(p.Units, u.Name)
	}
	return p
}

// SumsFile keeps, on each host, the sha256 of every managed file with the
// file's size, mtime and inode, so the next facts command hashes only what
// changed: binaries are tens to hundreds of MB, and hashing them on every
// run would make a no-op apply cost seconds. Every write natsdeploy makes
// is a rename (a new inode), and an edit by hand changes the mtime.
const SumsFile = StateDir + "/sums"

// sumsDir is where the script keeps SumsFile; tests point it elsewhere.
var sumsDir = StateDir

// lockFile is LockFile; tests point it elsewhere.
var lockFile = LockFile

// The script starts a handful of programs whatever the number of managed
// paths: a no-op apply is mostly this script, and on a small VM each
// program started costs milliseconds, so one stat, one awk and one
// systemctl serve every path and unit instead of several per path.

// pathsScript prints a "file" record for each of files that is a regular
// file and a "dir" record for each of dirs that is a directory, following
// symlinks as the shell's -f and -d tests do. A file's sha256 comes from
// SumsFile while its size, mtime and inode are unchanged, else it is
// hashed; unless readOnly, a changed cache is written to a new SumsFile
// that replaces the old one, so entries of files no longer managed drop
// out. Nothing is kept when the state directory does not exist yet (a
// host natsdeploy has not changed).
func pathsScript(files, dirs []string, readOnly bool) string {
	var b strings.Builder
	b.WriteString("{ ")
	if len(files) > 0 {
		b.WriteString(`stat -L --printf 'f\t%F\t%a\t%U\t%G\t%s %.9Y %i\t%n\n' --`)
		for _, f := range files {
			b.WriteString(" " + shell.Quote(f))
		}
		b.WriteString("; ")
	}
	if len(dirs) > 0 {
		b.WriteString(`stat -L --printf 'd\t%F\t%a\t%U\t%G\t-\t%n\n' --`)
		for _, d := range dirs {
			b.WriteString(" " + shell.Quote(d))
		}
		b.WriteString("; ")
	}
	prog := pathsAwk
	if !readOnly {
		prog += sumsWriteAwk
	}
	fmt.Fprintf(&b, "} 2>/dev/null | SUMS_DIR=%s awk -F '\t' %s\n", shell.Quote(sumsDir), shell.Quote(prog))
	return b.String()
}

// pathsAwk reads pathsScript's stat lines: KIND TYPE MODE OWNER GROUP STAT
// PATH, tab-separated. Paths come through the environment, where awk
// interprets no backslashes, and are quoted for the shell by q.
const pathsAwk = `function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
BEGIN {
	dir = ENVIRON["SUMS_DIR"]; sums = dir "/sums"
	while ((getline l < sums) > 0) { if (split(l, x, "\t") == 3) { cache[x[1] "\t" x[2]] = x[3]; old++ } }
	close(sums)
}
$1 == "d" && $2 == "directory" { print "dir", $3, $4, $5, $7; next }
$1 == "f" && ($2 == "regular file" || $2 == "regular empty file") {
	k = $7 "\t" $6
	if (k in cache) { s = cache[k]; hit++ } else {
		s = ""; cmd = "sha256sum < " q($7)
		if ((cmd | getline l) > 0) s = substr(l, 1, 64)
		close(cmd); changed = 1
	}
	if (s != "") keep[++n] = k "\t" s
	print "file", $3, $4, $5, s, $7
}
`

// sumsWriteAwk ends pathsAwk by writing a changed cache.
const sumsWriteAwk = `
END {
	if (!changed && hit == old) exit
	cmd = "[ -d " q(dir) " ] && mktemp " q(dir "/.sums.XXXXXX")
	tmp = ""; cmd | getline tmp; close(cmd)
	if (tmp == "") exit
	for (i = 1; i <= n; i++) print keep[i] > tmp
	close(tmp)
	system("mv -f " q(tmp) " " q(sums))
}`

// RecordSums returns a command that adds the sha256 of files just renamed
// into place (path to sha256) to SumsFile, keyed as the facts script keys
// them, so that the next run does not hash them again: a fresh install's
// binaries are hundreds of megabytes, and hashing them made the first
// no-op apply after it seconds slower than the next. Only for files whose
// content is known: natsdeploy's own uploads, which SSH carried intact
// and which were renamed, not copied, into place. Paths come to awk
// through the environment, where it interprets no backslashes.
func RecordSums(sums map[string]string) string {
	if len(sums) == 0 {
		return ""
	}
	paths := make([]string, 0, len(sums))
	for p := range sums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var known strings.Builder
	for _, p := range paths {
		known.WriteString(p + "\t" + sums[p] + "\n")
	}
	return fmt.Sprintf(`(umask 077; stat -L --printf '%%n\t%%s %%.9Y %%i\n' -- %s | KNOWN=%s awk -F '\t' %s >> %s)`,
		shell.Join(paths...), shell.Quote(known.String()), shell.Quote(recordAwk), shell.Quote(sumsDir+"/sums"))
}

const recordAwk = `BEGIN { n = split(ENVIRON["KNOWN"], l, "\n"); for (i = 1; i <= n; i++) if (split(l[i], x, "\t") == 2) sum[x[1]] = x[2] }
NF == 2 && ($1 in sum) { print $1 "\t" $2 "\t" sum[$1] }`

// unitsScript prints, for each of units, "unit ENABLED ACTIVE MAINPID
// NAME" and, with uptime, "uptime SECONDS NAME" for an active one, from
// one systemctl call: its blocks come in the order of its arguments,
// separated by empty lines. Both clocks are the host's and count from
// boot, so no local time is parsed and clock skew with the control
// machine does not matter.
func unitsScript(units []string, uptime bool) string {
	var b strings.Builder
	b.WriteString("systemctl show -p UnitFileState,ActiveState,MainPID,ActiveEnterTimestampMonotonic --")
	for _, u := range units {
		b.WriteString(" " + shell.Quote(u))
	}
	up := ""
	if uptime {
		up = "1"
	}
	fmt.Fprintf(&b, " 2>/dev/null | UNITS=%s UPTIME=%s awk %s\n", shell.Quote(strings.Join(units, "\n")), up, shell.Quote(unitsAwk))
	return b.String()
}

const unitsAwk = `BEGIN { i = 1 }
/^$/ { if (seen) { i++; seen = 0 }; next }
{ seen = 1; e = index($0, "="); if (e) v[i, substr($0, 1, e - 1)] = substr($0, e + 1) }
END {
	n = split(ENVIRON["UNITS"], name, "\n")
	if (ENVIRON["UPTIME"] != "" && (getline up < "/proc/uptime") > 0) { split(up, u, " "); now = u[1] } else now = ""
	for (j = 1; j <= n; j++) {
		pid = v[j, "MainPID"]; if (pid !~ /^[0-9]+$/) pid = 0
		print "unit", v[j, "UnitFileState"], v[j, "ActiveState"], pid, name[j]
		m = v[j, "ActiveEnterTimestampMonotonic"]
		if (now != "" && m ~ /^[0-9]+$/ && m != "0") printf "uptime %d %s\n", now - m / 1000000, name[j]
	}
}`

// systemdScript prints "systemd VERSION", or "systemd" without one. The
// version is read from the name of systemd's shared library (every
// systemd since 231 ships libsystemd-shared-VERSION.so), a shell glob,
// and only without it by running systemctl --version: starting systemctl
// costs a no-op apply more than the rest of the facts of a line.
const systemdScript = `v=
for f in /usr/lib/systemd/libsystemd-shared-*.so /usr/lib/*/systemd/libsystemd-shared-*.so /usr/lib64/systemd/libsystemd-shared-*.so /lib/systemd/libsystemd-shared-*.so; do
	[ -e "$f" ] || continue; v=${f##*/libsystemd-shared-}; v=${v%%[!0-9]*}; [ -z "$v" ] || break
done
if ! command -v systemctl >/dev/null 2>&1; then echo "systemd"
else [ -n "$v" ] || { v=$(systemctl --version); v=${v#systemd }; v=${v%%[!0-9]*}; }; echo "systemd ${v:-0}"; fi
`

// Script is the one shell command that prints the facts of a host, one
// record per line with the path last so paths with spaces survive.
func Script(p Paths) string {
	var b strings.Builder
	b.WriteString(`set -u
LC_ALL=C; export LC_ALL
umask 077
os=unknown; if [ -r /etc/os-release ]; then os=$(. /etc/os-release; echo "${ID:-unknown} ${VERSION_ID:-}"); fi
echo "os $os"
a=; [ -r /proc/sys/kernel/arch ] && read -r a < /proc/sys/kernel/arch
echo "arch ${a:-$(uname -m)}"
`)
	b.WriteString(systemdScript)
	if len(p.Users) > 0 {
		b.WriteString(usersScript(p.Users))
	}
	if len(p.Files) > 0 || len(p.Dirs) > 0 {
		b.WriteString(pathsScript(p.Files, p.Dirs, p.ReadOnly))
	}
	units := `""`
	switch {
	case len(p.Units) > 0 && len(p.Ports) > 0:
		// The listeners need the units' main PIDs (listenScript).
		units = `"$units"`
		fmt.Fprintf(&b, "units=$(%s)\n[ -z \"$units\" ] || printf '%%s\\n' \"$units\"\n", strings.TrimSuffix(unitsScript(p.Units, p.Uptime), "\n"))
	case len(p.Units) > 0:
		b.WriteString(unitsScript(p.Units, p.Uptime))
	}
	for _, u := range p.Units {
		if cmd, ok := p.Versions[u]; ok {
			fmt.Fprintf(&b, "v=$( (%s) </dev/null 2>&1 | head -n 1)\nprintf 'version %%s %%s\\n' %s \"$v\"\n", cmd, shell.Quote(u))
		}
	}
	if len(p.Ports) > 0 {
		b.WriteString(listenScript(p.Ports, units))
	}
	fmt.Fprintf(&b, "for f in %s/pending-*; do [ -f \"$f\" ] || continue; h=; read -r h 2>/dev/null < \"$f\"; echo \"pending $h ${f##*/pending-}\"; done\n", StateDir)
	fmt.Fprintf(&b, "if [ -f %[1]s ]; then while IFS= read -r l || [ -n \"$l\" ]; do echo \"lock $l\"; done 2>/dev/null < %[1]s; fi\n", shell.Quote(lockFile))
	b.WriteString("true\n")
	return b.String()
}

// Parse reads what Script printed.
func Parse(out []byte) (Host, error) {
	h := Host{
		Users:   map[string]bool{},
		Files:   map[string]File{},
		Dirs:    map[string]File{},
		Units:   map[string]Unit{},
		Pending: map[string]desired.Handler{},

		Listening: map[int]Listener{},
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		kind, rest, _ := strings.Cut(line, " ")
		var err error
		switch kind {
		case "os":
			h.OS = rest
		case "arch":
			h.Arch = rest
		case "systemd":
			h.Systemd = rest
		case "user":
			h.Users[rest] = true
		case "file":
			var f File
			var path string
			f, path, err = parseStat(rest, 5)
			h.Files[path] = f
		case "dir":
			var f File
			var path string
			f, path, err = parseStat(rest, 4)
			h.Dirs[path] = f
		case "unit":
			parts := strings.SplitN(rest, " ", 4)
			if len(parts) != 4 || parts[3] == "" {
				err = fmt.Errorf("want 4 fields")
				break
			}
			pid, _ := strconv.Atoi(parts[2])
			// Merged into what the uptime and version records said.
			u := h.Units[parts[3]]
			u.Enabled = parts[0] == "enabled"
			u.Active = parts[1] == "active" || parts[1] == "reloading"
			u.State = parts[1]
			u.MainPID = pid
			h.Units[parts[3]] = u
		case "uptime":
			secs, name, ok := strings.Cut(rest, " ")
			n, perr := strconv.Atoi(secs)
			if !ok || perr != nil || n < 0 {
				err = fmt.Errorf("want SECONDS UNIT")
				break
			}
			u := h.Units[name]
			u.Uptime, u.UptimeKnown = time.Duration(n)*time.Second, true
			h.Units[name] = u
		case "version":
			name, text, _ := strings.Cut(rest, " ")
			u := h.Units[name]
			u.Version = strings.TrimSpace(text)
			h.Units[name] = u
		case "pending":
			handler, svc, ok := strings.Cut(rest, " ")
			if !ok {
				err = fmt.Errorf("want 2 fields")
				break
			}
			switch handler {
			case "restart":
				h.Pending[svc] = desired.Restart
			case "reload":
				h.Pending[svc] = desired.Reload
			}
		case "listen":
			// PORT PID USER UNIT COMM, "-" for an unknown UNIT or COMM.
			parts := strings.SplitN(rest, " ", 5)
			if len(parts) != 5 {
				err = fmt.Errorf("want 5 fields")
				break
			}
			port, perr := strconv.Atoi(parts[0])
			pid, pidErr := strconv.Atoi(parts[1])
			if perr != nil || pidErr != nil || port <= 0 || pid < 0 {
				err = fmt.Errorf("want PORT PID USER UNIT COMM")
				break
			}
			l := Listener{PID: pid, User: parts[2], Unit: parts[3], Comm: parts[4]}
			if l.Unit == "-" {
				l.Unit = ""
			}
			if l.Comm == "-" {
				l.Comm = ""
			}
			h.Listening[port] = l
		case "lock":
			h.Lock += rest + "\n"
		case "":
		default:
			err = fmt.Errorf("unknown record %q", kind)
		}
		if err != nil {
			return Host{}, fmt.Errorf("facts line %d %q: %w", n, line, err)
		}
	}
	return h, sc.Err()
}

// listenScript prints "listen PORT PID USER UNIT COMM" for each of ports
// that a TCP socket listens on (IPv4 or IPv6, any address), with the
// process that holds it, the socket's owner and that process's systemd
// unit, from /proc alone: no ss or lsof needed. PID is 0 when no process
// holds the socket (it belongs to another PID namespace); UNIT and COMM are
// "-" when unknown. units is a shell word whose value is unitsScript's
// output ("" when there is none).
//
// It is one awk, not a pipeline of shell loops: on a converged host this
// runs on every no-op apply, and each process started on the host is time
// the apply waits for. The main processes of the managed units are looked
// at first: on a converged host they hold every port, and listing every
// process's descriptors costs more the busier the host.
func listenScript(ports []int, units string) string {
	want := make([]string, len(ports))
	for i, p := range ports {
		want[i] = strconv.Itoa(p)
	}
	// Through the environment: awk -v would read backslashes in the
	// value as escapes.
	return "UNITS=" + units + " awk -v want=' " + strings.Join(want, " ") + " ' " + shell.Quote(listenAwk) + " </dev/null\n"
}

const listenAwk = `function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return n }
# owners reads ls -l output of fd directories: pid is the process until a
# "/proc/PID/fd:" header names another (ls prints none for one directory).
function owners(cmd, pid,  l, d, n, f, ino) {
	while ((cmd | getline l) > 0) {
		if (l ~ /^\/proc\/[0-9]+\/fd:$/) { split(l, d, "/"); pid = d[3]; continue }
		n = split(l, f, " ")
		if (f[n] !~ /^socket:\[[0-9]+\]$/) continue
		ino = substr(f[n], 9, length(f[n]) - 9)
		if ((ino in port) && !(ino in owner)) { owner[ino] = pid; left-- }
	}
	close(cmd)
}
BEGIN {
	for (k = 0; k < 2; k++) {
		file = k ? "/proc/net/tcp6" : "/proc/net/tcp"
		while ((getline l < file) > 0) {
			split(l, x, " ")
			if (x[4] != "0A") continue
			split(x[2], a, ":"); p = hex(a[2])
			if (index(want, " " p " ") && !(p in seen)) { seen[p] = 1; port[x[10]] = p; uid[x[10]] = x[8]; left++ }
		}
		close(file)
	}
	if (!left) exit
	n = split(ENVIRON["UNITS"], ul, "\n"); dirs = ""; one = 0; many = 0
	for (i = 1; i <= n; i++) {
		split(ul[i], y, " ")
		if (y[1] == "unit" && y[4] ~ /^[1-9][0-9]*$/) { dirs = dirs " /proc/" y[4] "/fd"; one = y[4]; many++ }
	}
	if (many) owners("ls -l" dirs " 2>/dev/null", many == 1 ? one : 0)
	if (left) owners("ls -l /proc/[0-9]*/fd 2>/dev/null", 0)
	while ((getline l < "/etc/passwd") > 0) { split(l, pw, ":"); if (!(pw[3] in name)) name[pw[3]] = pw[1] }
	close("/etc/passwd")
	ask = ""
	for (ino in port) if (!(uid[ino] in name) && index(ask " ", " " uid[ino] " ") == 0) ask = ask " " uid[ino]
	if (ask != "") {
		cmd = "getent passwd" ask " 2>/dev/null"
		while ((cmd | getline l) > 0) { split(l, pw, ":"); name[pw[3]] = pw[1] }
		close(cmd)
	}
	for (ino in port) {
		pid = (ino in owner) ? owner[ino] : 0; unit = ""; comm = ""
		if (pid) {
			if ((getline comm < ("/proc/" pid "/comm")) <= 0) comm = ""
			close("/proc/" pid "/comm")
			# comm is cut at 15 bytes: then argv[0] names the program.
			if (length(comm) >= 15) {
				cmd = "tr \047\\0\047 \047\\n\047 < /proc/" pid "/cmdline 2>/dev/null | head -n 1"
				a0 = ""; cmd | getline a0; close(cmd)
				sub(/.*\//, "", a0)
				if (a0 != "") comm = a0
			}
			file = "/proc/" pid "/cgroup"
			while ((getline l < file) > 0) {
				c = index(l, ":"); rest = substr(l, c + 1); c = index(rest, ":")
				ctl = substr(rest, 1, c - 1); path = substr(rest, c + 1)
				if (ctl == "" || ctl == "name=systemd") { unit = path; sub(/.*\//, "", unit); break }
			}
			close(file)
			if (unit !~ /\.(service|scope|socket|mount|swap|slice)$/) unit = ""
		}
		gsub(/[^A-Za-z0-9._@:+-]/, "_", comm)
		u = (uid[ino] in name) ? name[uid[ino]] : uid[ino]
		print "listen", port[ino], pid, u, (unit == "" ? "-" : unit), (comm == "" ? "-" : comm)
	}
}`

// parseStat reads "MODE OWNER GROUP [SHA] PATH" with fields counting PATH.
func parseStat(s string, fields int) (File, string, error) {
	parts := strings.SplitN(s, " ", fields)
	if len(parts) != fields {
		return File{}, "", fmt.Errorf("want %d fields", fields)
	}
	mode, err := strconv.ParseUint(parts[0], 8, 32)
	if err != nil {
		return File{}, "", fmt.Errorf("mode %q: %w", parts[0], err)
	}
	// What stat prints for a real file; anything else is a broken or
	// hostile host's output, not a fact to plan from.
	if mode > 0o7777 {
		return File{}, "", fmt.Errorf("mode %q: more than permission bits", parts[0])
	}
	if parts[1] == "" || parts[2] == "" {
		return File{}, "", fmt.Errorf("empty owner or group")
	}
	if p := parts[fields-1]; !strings.HasPrefix(p, "/") {
		return File{}, "", fmt.Errorf("path %q is not absolute", p)
	}
	f := File{Mode: fs.FileMode(mode), Owner: parts[1], Group: parts[2]}
	if fields == 5 {
		f.SHA256 = parts[3]
	}
	return f, parts[fields-1], nil
}

// PendingServices lists services with a pending handler, sorted.
func (h Host) PendingServices() []string {
	var out []string
	for s := range h.Pending {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
