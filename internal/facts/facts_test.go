package facts

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// runScript runs Script(p) with the real /bin/sh on this machine and
// parses what it printed, so the quoting, the programs' formats and the
// parser are tested together.
func runScript(t *testing.T, p Paths) Host {
	t.Helper()
	out, err := exec.Command("sh", "-c", Script(p)).CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	h, err := Parse(out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	return h
}

// The script is run by the real /bin/sh on this machine against a temp dir,
// so the quoting, stat format and parsing are tested together.
func TestScriptOnLocalShell(t *testing.T) {
	dir := t.TempDir()
	withSpace := filepath.Join(dir, "a file.conf")
	if err := os.WriteFile(withSpace, []byte("hello\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "data dir")
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	h := runScript(t, Paths{
		Users: []string{"root", "no-such-user-natsdeploy"},
		Files: []string{withSpace, missing},
		Dirs:  []string{sub, missing},
	})
	if h.Arch == "" || h.OS == "" {
		t.Errorf("os/arch empty: %+v", h)
	}
	if !h.Users["root"] || h.Users["no-such-user-natsdeploy"] {
		t.Errorf("users = %v", h.Users)
	}
	f, ok := h.Files[withSpace]
	if !ok {
		t.Fatalf("file with space not found in %v", h.Files)
	}
	// sha256("hello\n")
	if f.SHA256 != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" || f.Mode != 0o640 {
		t.Errorf("file fact = %+v", f)
	}
	if _, ok := h.Files[missing]; ok {
		t.Error("missing file reported present")
	}
	if d, ok := h.Dirs[sub]; !ok || d.Mode != 0o750 {
		t.Errorf("dir fact = %+v, %v", d, ok)
	}
	if _, ok := h.Dirs[missing]; ok {
		t.Error("missing dir reported present")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, h Host)
		wantErr bool
	}{
		{"unit active", "unit enabled active 1234 nats-server.service\n", func(t *testing.T, h Host) {
			u := h.Units["nats-server.service"]
			if !u.Enabled || !u.Active || u.MainPID != 1234 {
				t.Errorf("unit = %+v", u)
			}
		}, false},
		{"unit unknown", "unit   0 nats-server.service\n", func(t *testing.T, h Host) {
			u, ok := h.Units["nats-server.service"]
			if !ok || u.Enabled || u.Active {
				t.Errorf("unit = %+v", u)
			}
		}, false},
		{"pending", "pending restart nats-server.service\npending reload other.service\n", func(t *testing.T, h Host) {
			if h.Pending["nats-server.service"] != desired.Restart || h.Pending["other.service"] != desired.Reload {
				t.Errorf("pending = %v", h.Pending)
			}
			if got := h.PendingServices(); len(got) != 2 || got[0] != "nats-server.service" {
				t.Errorf("PendingServices = %v", got)
			}
		}, false},
		{"uptime and version, before or after the unit", "uptime 90 a.service\nunit enabled active 7 a.service\nversion a.service prog: v1.2.3 (x)\nunit disabled inactive 0 b.service\nversion b.service \n", func(t *testing.T, h Host) {
			a, b := h.Units["a.service"], h.Units["b.service"]
			if !a.Active || !a.UptimeKnown || a.Uptime != 90*time.Second || a.Version != "prog: v1.2.3 (x)" || a.MainPID != 7 {
				t.Errorf("a = %+v", a)
			}
			if b.UptimeKnown || b.Version != "" || b.Active {
				t.Errorf("b = %+v", b)
			}
		}, false},
		{"bad uptime", "uptime soon a.service\n", nil, true},
		{"negative uptime", "uptime -5 a.service\n", nil, true},
		{"bad mode", "file 9z9 root root abc /x\n", nil, true},
		{"short file", "file 644 root\n", nil, true},
		{"unknown record", "surprise x\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

// The script hashes a file once and answers from its sums file while the
// file's stat is unchanged; a rewrite is hashed again, and files no longer
// asked about drop out of the sums file.
func TestScriptSumsCache(t *testing.T) {
	state := t.TempDir()
	defer func(d string) { sumsDir = d }(sumsDir)
	sumsDir = state
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b bin")
	os.WriteFile(a, []byte("hello\n"), 0o640)
	os.WriteFile(b, []byte("binary"), 0o755)
	run := func(files ...string) Host { t.Helper(); return runScript(t, Paths{Files: files}) }
	hello := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if h := run(a, b); h.Files[a].SHA256 != hello {
		t.Fatalf("first run: %+v", h.Files)
	}
	cache, err := os.ReadFile(filepath.Join(state, "sums"))
	if err != nil || strings.Count(string(cache), "\n") != 2 || !strings.Contains(string(cache), b+"\t") {
		t.Fatalf("sums file %q, %v", cache, err)
	}
	if fi, _ := os.Stat(filepath.Join(state, "sums")); fi.Mode().Perm() != 0o600 {
		t.Errorf("sums file mode %v", fi.Mode())
	}
	// Plant a wrong sum for an unchanged stat: the script must trust it,
	// which proves it did not hash again.
	planted := strings.Replace(string(cache), hello, strings.Repeat("0", 64), 1)
	os.WriteFile(filepath.Join(state, "sums"), []byte(planted), 0o600)
	before, _ := os.Stat(filepath.Join(state, "sums"))
	if h := run(a, b); h.Files[a].SHA256 != strings.Repeat("0", 64) {
		t.Errorf("an unchanged file was hashed again: %s", h.Files[a].SHA256)
	}
	// Nothing changed, so the cache is not written again.
	if after, _ := os.Stat(filepath.Join(state, "sums")); !os.SameFile(before, after) {
		t.Errorf("an unchanged sums file was rewritten")
	}
	// A rewrite (new inode, new mtime) is hashed again; b, no longer
	// asked about, leaves the sums file.
	tmp := a + ".new"
	os.WriteFile(tmp, []byte("changed\n"), 0o640)
	os.Rename(tmp, a)
	if h := run(a); h.Files[a].SHA256 == strings.Repeat("0", 64) || h.Files[a].SHA256 == hello {
		t.Errorf("a rewritten file kept its old sum: %s", h.Files[a].SHA256)
	}
	if cache, _ := os.ReadFile(filepath.Join(state, "sums")); strings.Contains(string(cache), b) {
		t.Errorf("a file no longer managed stays in the sums file")
	}
	leftovers, _ := filepath.Glob(filepath.Join(state, ".sums.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary sums files left: %v", leftovers)
	}
}

// RecordSums adds the sums of files just written to the sums file, keyed
// as the script keys them: the next facts answer from it without hashing
// (a planted sum proves it), to mode 0600 with the entries already there,
// and a file rewritten since is hashed again.
func TestRecordSums(t *testing.T) {
	state := t.TempDir()
	defer func(d string) { sumsDir = d }(sumsDir)
	sumsDir = state
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.conf"), filepath.Join(dir, "it's b"), filepath.Join(dir, "c")
	for _, f := range []string{a, b, c} {
		os.WriteFile(f, []byte(f), 0o644)
	}
	runScript(t, Paths{Files: []string{c}}) // c is in the sums file already
	planted := map[string]string{a: strings.Repeat("a", 64), b: strings.Repeat("b", 64)}
	if out, err := exec.Command("sh", "-c", "set -e; "+RecordSums(planted)).CombinedOutput(); err != nil {
		t.Fatalf("RecordSums: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(state, "sums")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sums file: %v %v", fi, err)
	}
	h := runScript(t, Paths{Files: []string{a, b, c}})
	for f, want := range planted {
		if got := h.Files[f].SHA256; got != want {
			t.Errorf("%s: sum %s, want the recorded %s (hashed again)", f, got, want)
		}
	}
	if h.Files[c].SHA256 == "" || h.Files[c].SHA256 == strings.Repeat("c", 64) {
		t.Errorf("c: sum %q", h.Files[c].SHA256)
	}
	tmp := a + ".new"
	os.WriteFile(tmp, []byte("changed\n"), 0o640)
	os.Rename(tmp, a)
	if got := runScript(t, Paths{Files: []string{a}}).Files[a].SHA256; got == planted[a] {
		t.Errorf("a rewritten file kept its recorded sum")
	}
	if RecordSums(nil) != "" {
		t.Errorf("RecordSums(nil) = %q", RecordSums(nil))
	}
}

// fakeSystemctl puts a systemctl on PATH that answers for one active unit
// which became active `ago` before now (on the boot clock /proc/uptime
// reads) and knows no other unit, as systemd does. It returns ago, or
// half the machine's uptime when that is less: a unit cannot have started
// before boot.
func fakeSystemctl(t *testing.T, unit string, ago time.Duration) time.Duration {
	t.Helper()
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Skipf("no /proc/uptime: %v", err)
	}
	var secs float64
	if _, err := fmt.Sscanf(string(up), "%f", &secs); err != nil {
		t.Fatal(err)
	}
	if ago.Seconds() >= secs {
		ago = time.Duration(secs / 2 * float64(time.Second))
	}
	mono := int64((secs - ago.Seconds()) * 1e6)
	dir := t.TempDir()
	// systemctl show prints one block per unit, in the order asked,
	// separated by empty lines, every asked property even when empty.
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = show ] || exit 1
while [ "$1" != -- ]; do shift; done; shift
sep=
for u in "$@"; do
	printf '%%s' "$sep"; sep='
'
	if [ "$u" = %[1]s ]; then
		printf 'MainPID=42\nActiveState=active\nUnitFileState=enabled\nActiveEnterTimestampMonotonic=%[2]d\n'
	else
		printf 'MainPID=0\nActiveState=inactive\nUnitFileState=\nActiveEnterTimestampMonotonic=0\n'
	fi
done
`, unit, mono)
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return ago
}

// Uptime and version records, from a fake systemctl and real commands run
// by the local shell: an active unit reports how long it has been up, a
// never-started one reports no uptime, and each version command's first
// line comes back whatever quotes it holds or however it fails.
func TestScriptUptimeAndVersions(t *testing.T) {
	ago := fakeSystemctl(t, "up.service", 90*time.Minute)
	h := runScript(t, Paths{
		Units:  []string{"down.service", "up.service"},
		Uptime: true,
		Versions: map[string]string{
			"up.service":   `printf '%s\n' "prog: v1.2.3" "second line"`,
			"down.service": "/nonexistent/prog --version",
		},
	})
	up, down := h.Units["up.service"], h.Units["down.service"]
	if !up.Active || !up.UptimeKnown || up.Uptime < ago-2*time.Second || up.Uptime > ago+2*time.Second {
		t.Errorf("up.service = %+v, want active for %s", up, ago)
	}
	if up.Version != "prog: v1.2.3" {
		t.Errorf("up.service version %q, want the first line", up.Version)
	}
	if down.Active || down.UptimeKnown {
		t.Errorf("down.service = %+v, want inactive with no uptime", down)
	}
	if !strings.Contains(down.Version, "/nonexistent/prog") {
		t.Errorf("down.service version %q, want the shell's complaint", down.Version)
	}
}

// A read-only script uses the sums cache but never writes it, nor anything
// else in the state directory.
func TestScriptReadOnlyWritesNothing(t *testing.T) {
	state := t.TempDir()
	defer func(d string) { sumsDir = d }(sumsDir)
	sumsDir = state
	dir := t.TempDir()
	a := filepath.Join(dir, "a.conf")
	os.WriteFile(a, []byte("hello\n"), 0o640)
	run := func(readOnly bool) Host {
		t.Helper()
		return runScript(t, Paths{Files: []string{a}, ReadOnly: readOnly})
	}
	hello := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if h := run(true); h.Files[a].SHA256 != hello {
		t.Fatalf("read-only run without a cache: %+v", h.Files)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("read-only run wrote %v", entries)
	}
	run(false)
	sums := filepath.Join(state, "sums")
	planted := strings.Replace(mustRead(t, sums), hello, strings.Repeat("0", 64), 1)
	os.WriteFile(sums, []byte(planted), 0o600)
	fi, _ := os.Stat(sums)
	if h := run(true); h.Files[a].SHA256 != strings.Repeat("0", 64) {
		t.Errorf("read-only run did not use the cache: %s", h.Files[a].SHA256)
	}
	if after, _ := os.Stat(sums); !os.SameFile(fi, after) || mustRead(t, sums) != planted {
		t.Errorf("read-only run rewrote the sums file")
	}
	if entries, _ := os.ReadDir(state); len(entries) != 1 {
		t.Errorf("read-only run left files: %v", entries)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A port something listens on is reported with the process holding it
// (here, this test), on IPv4 and IPv6; a free port is not reported.
func TestScriptListening(t *testing.T) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	busy4 := l4.Addr().(*net.TCPAddr).Port
	ports := []int{busy4}
	busy6 := 0
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer l6.Close()
		busy6 = l6.Addr().(*net.TCPAddr).Port
		ports = append(ports, busy6)
	}
	// A port free on both: 127.0.0.1 can hand out the number [::1] holds.
	freePort := 0
	for freePort == 0 || freePort == busy6 {
		free, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		freePort = free.Addr().(*net.TCPAddr).Port
		free.Close()
	}
	ports = append(ports, freePort)

	// The units' main PIDs are looked at first: one (ls prints no header
	// for a single directory), several, one that holds nothing (then every
	// process is), and none.
	me := strconv.Itoa(os.Getpid())
	unitLine := func(pid string) string { return "unit enabled active " + pid + " x.service\n" }
	for name, units := range map[string]string{
		"no units":            "",
		"this process only":   unitLine(me),
		"init then this":      unitLine("1") + unitLine(me),
		"this then init":      unitLine(me) + unitLine("1"),
		"a unit holding none": unitLine("1"),
		"a stopped unit":      unitLine("0"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command("sh", "-c", listenScript(ports, shell.Quote(units))).CombinedOutput()
			if err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			h, err := Parse(out)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, out)
			}
			for _, p := range []int{busy4, busy6} {
				if p == 0 {
					continue
				}
				l, ok := h.Listening[p]
				if !ok {
					t.Fatalf("port %d: not reported listening: %+v", p, h.Listening)
				}
				if l.PID != os.Getpid() || l.Comm == "" || l.User == "" {
					t.Errorf("port %d: listener %+v, want pid %d with its command name", p, l, os.Getpid())
				}
			}
			if l, ok := h.Listening[freePort]; ok {
				t.Errorf("free port %d reported listening: %+v", freePort, l)
			}
		})
	}
	// And through Script, which hands the units' output on.
	if h := runScript(t, Paths{Ports: ports, Units: []string{"natsdeploy-no-such.service"}}); h.Listening[busy4].PID != os.Getpid() {
		t.Errorf("Script: port %d: listener %+v, want pid %d", busy4, h.Listening[busy4], os.Getpid())
	}
}

// The systemd version read from the library's name is the one systemctl
// itself gives.
func TestScriptSystemdVersion(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("no systemctl on this machine") // the lab's hosts have one: e2e
	}
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))[1]
	if h := runScript(t, Paths{}); h.Systemd != want {
		t.Errorf("Systemd = %q, want %q (systemctl --version)", h.Systemd, want)
	}
}

func TestParseListening(t *testing.T) {
	h, err := Parse([]byte("listen 4222 812 nats nats-server.service nats-server\nlisten 6222 0 nats - -\nlisten 8222 90 root - python3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]Listener{
		4222: {PID: 812, User: "nats", Unit: "nats-server.service", Comm: "nats-server"},
		6222: {User: "nats"},
		8222: {PID: 90, User: "root", Comm: "python3"},
	}
	if fmt.Sprint(h.Listening) != fmt.Sprint(want) {
		t.Errorf("Listening = %+v, want %+v", h.Listening, want)
	}
	if got := want[8222].Describe(); got != "python3 (pid 90, outside any systemd unit)" {
		t.Errorf("Describe = %q", got)
	}
	if got := want[6222].Describe(); got != "a process of user nats that natsdeploy cannot see" {
		t.Errorf("Describe = %q", got)
	}
	for _, bad := range []string{"listen 4222 812 x -\n", "listen x 1 root - -\n", "listen 4222 -1 root - -\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// The lock file comes back as it is, its last line even without a
// newline; no file, no lock.
func TestScriptLock(t *testing.T) {
	defer func(p string) { lockFile = p }(lockFile)
	lockFile = filepath.Join(t.TempDir(), "the lock")
	run := func() Host { t.Helper(); return runScript(t, Paths{}) }
	if h := run(); h.Lock != "" {
		t.Errorf("no lock file, lock %q", h.Lock)
	}
	os.WriteFile(lockFile, []byte("machine=a b\npid=42"), 0o600)
	if h := run(); h.Lock != "machine=a b\npid=42\n" {
		t.Errorf("lock %q", h.Lock)
	}
}

// The architecture is the kernel's, as uname -m says it; users in
// /etc/passwd are found without starting getent, which only looks for
// the others (and finds them through NSS).
func TestArchAndUsersWithoutPrograms(t *testing.T) {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "getent-calls")
	fake := "#!/bin/sh\necho \"$*\" >> " + shell.Quote(calls) + "\n[ \"$2\" = nss-only-user ] && echo 'nss-only-user:x:4242:4242::/:/bin/false'\n"
	if err := os.WriteFile(filepath.Join(bin, "getent"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script := Script(Paths{Users: []string{"root", "nss-only-user", "no-such-user-natsdeploy", "root"}})
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	h, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.Arch != strings.TrimSpace(string(out)) {
		t.Errorf("arch %q, uname -m says %q", h.Arch, out)
	}
	if !h.Users["root"] || !h.Users["nss-only-user"] || h.Users["no-such-user-natsdeploy"] || strings.Count(string(raw), "user root\n") != 1 {
		t.Errorf("users %v from:\n%s", h.Users, raw)
	}
	got, _ := os.ReadFile(calls)
	if string(got) != "passwd nss-only-user\npasswd no-such-user-natsdeploy\n" {
		t.Errorf("getent was asked:\n%s", got)
	}
}
