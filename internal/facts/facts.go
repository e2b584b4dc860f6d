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

// sumFunc defines sum FILE: its sha256, from SumsFile while its stat is
// unchanged, else hashed; every answer goes into a new SumsFile that
// replaces the old one at the end, so entries of files no longer managed
// drop out. Nothing is kept when the state directory does not exist yet
// (a host natsdeploy has not changed).
func sumFunc(readOnly bool) string {
	dir := shell.Quote(sumsDir)
	keep := `if [ -d ` + dir + ` ]; then new=$(mktemp ` + dir + `/.sums.XXXXXX 2>/dev/null) || new=; fi
`
	if readOnly {
		keep = ""
	}
	return `sums=` + dir + `/sums; new=
` + keep + `sum() {
	st=$(stat -c '%s %.9Y %i' "$1" 2>/dev/null) || st=
	s=
	if [ -n "$st" ] && [ -r "$sums" ]; then s=$(awk -v p="$1" -v st="$st" 'BEGIN { FS = "\t" } $1 == p && $2 == st { print $3; exit }' "$sums"); fi
	if [ -z "$s" ]; then s=$(sha256sum < "$1" | cut -c1-64); fi
	if [ -n "$new" ] && [ -n "$st" ]; then printf '%s\t%s\t%s\n' "$1" "$st" "$s" >> "$new"; fi
	echo "$s"
}
`
}

// Script is the one shell command that prints the facts of a host, one
// record per line with the path last so paths with spaces survive.
func Script(p Paths) string {
	var b strings.Builder
	b.WriteString(`set -u
LC_ALL=C; export LC_ALL
os=unknown; if [ -r /etc/os-release ]; then os=$(. /etc/os-release; echo "${ID:-unknown} ${VERSION_ID:-}"); fi
echo "os $os"
echo "arch $(uname -m)"
if command -v systemctl >/dev/null 2>&1; then echo "systemd $(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"; else echo "systemd"; fi
`)
	for _, u := range p.Users {
		fmt.Fprintf(&b, "if id -u %s >/dev/null 2>&1; then echo 'user '%s; fi\n", shell.Quote(u), shell.Quote(u))
	}
	if len(p.Files) > 0 {
		b.WriteString(sumFunc(p.ReadOnly))
	}
	for _, f := range p.Files {
		q := shell.Quote(f)
		fmt.Fprintf(&b, "if [ -f %s ]; then echo \"file $(stat -c '%%a %%U %%G' %s) $(sum %s) \"%s; fi\n", q, q, q, q)
	}
	for _, d := range p.Dirs {
		q := shell.Quote(d)
		fmt.Fprintf(&b, "if [ -d %s ]; then echo \"dir $(stat -c '%%a %%U %%G' %s) \"%s; fi\n", q, q, q)
	}
	for _, u := range p.Units {
		q := shell.Quote(u)
		fmt.Fprintf(&b, "echo \"unit $(systemctl is-enabled %s 2>/dev/null || true) $(systemctl is-active %s 2>/dev/null || true) $(systemctl show -p MainPID --value %s 2>/dev/null || echo 0) \"%s\n", q, q, q, q)
		if p.Uptime {
			// Both clocks are the host's and count from boot, so no
			// local time is parsed and clock skew with the control
			// machine does not matter. /proc/uptime also counts time
			// suspended, which servers are not.
			fmt.Fprintf(&b, "m=$(systemctl show -p ActiveEnterTimestampMonotonic --value %s 2>/dev/null) || m=\n", q)
			fmt.Fprintf(&b, "case \"$m\" in ''|0|*[!0-9]*) ;; *) echo \"uptime $(awk -v m=\"$m\" '{ printf \"%%d\", $1 - m / 1000000 }' /proc/uptime) \"%s ;; esac\n", q)
		}
		if cmd, ok := p.Versions[u]; ok {
			fmt.Fprintf(&b, "v=$( (%s) </dev/null 2>&1 | head -n 1)\nprintf 'version %%s %%s\\n' %s \"$v\"\n", cmd, q)
		}
	}
	if len(p.Ports) > 0 {
		b.WriteString(listenScript(p.Ports))
	}
	fmt.Fprintf(&b, "for f in %s/pending-*; do [ -f \"$f\" ] && echo \"pending $(cat \"$f\") ${f##*/pending-}\"; done\n", StateDir)
	if len(p.Files) > 0 {
		b.WriteString("if [ -n \"$new\" ]; then mv -f \"$new\" \"$sums\"; fi\n")
	}
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

// listenScript prints "listen PORT PID USER UNIT COMM" for each of ports that a
// TCP socket listens on (IPv4 or IPv6, any address), with the process that
// holds it, the socket's owner and that process's systemd unit, from /proc alone: no ss or
// lsof needed. PID is 0 when no process holds the socket (it belongs to
// another PID namespace); UNIT and COMM are "-" when unknown.
func listenScript(ports []int) string {
	want := make([]string, len(ports))
	for i, p := range ports {
		want[i] = strconv.Itoa(p)
	}
	return `lst=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v want=' ` + strings.Join(want, " ") + ` ' '
function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return n }
$4 == "0A" { split($2, a, ":"); p = hex(a[2]); if (index(want, " " p " ") && !(p in seen)) { seen[p] = 1; print p, $10, $8 } }')
if [ -n "$lst" ]; then
ls -l /proc/[0-9]*/fd 2>/dev/null | awk -v lst="$lst" '
BEGIN { n = split(lst, x, "\n"); for (i = 1; i <= n; i++) { split(x[i], y, " "); port[y[2]] = y[1]; uid[y[2]] = y[3] } }
/^\/proc\/[0-9]+\/fd:$/ { split($0, d, "/"); pid = d[3]; next }
$NF ~ /^socket:\[[0-9]+\]$/ { ino = substr($NF, 9, length($NF) - 9); if ((ino in port) && !(ino in seen)) { seen[ino] = 1; print port[ino], uid[ino], pid } }
END { for (i in port) if (!(i in seen)) print port[i], uid[i], 0 }' | while read -r lport luid lpid; do
	luser=$(getent passwd "$luid" | cut -d: -f1)
	lunit=; lcomm=
	if [ "$lpid" != 0 ]; then
		lcomm=$(tr '\0' '\n' < /proc/"$lpid"/cmdline 2>/dev/null | head -n 1)
		lcomm=${lcomm##*/}
		[ -n "$lcomm" ] || lcomm=$(cat /proc/"$lpid"/comm 2>/dev/null)
		lcomm=$(printf '%s\n' "$lcomm" | tr -c 'A-Za-z0-9._@:+\n-' '_')
		lunit=$(awk -F: '$2 == "" || $2 == "name=systemd" { print $3; exit }' /proc/"$lpid"/cgroup 2>/dev/null)
		lunit=${lunit##*/}
		case "$lunit" in *.service|*.scope|*.socket|*.mount|*.swap|*.slice) ;; *) lunit= ;; esac
	fi
	echo "listen $lport $lpid ${luser:-$luid} ${lunit:--} ${lcomm:--}"
done
fi
`
}

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
