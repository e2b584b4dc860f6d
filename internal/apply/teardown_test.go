package apply

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/plan"
)

// localHost runs commands with this machine's sh, with systemctl, userdel,
// groupdel and getent replaced by stubs that log their arguments: the
// teardown script's file work is real, below a temporary root.
type localHost struct {
	path string // PATH with the stubs first
	log  string // the stubs' log
}

func newLocalHost(t *testing.T) *localHost {
	t.Helper()
	bin := t.TempDir()
	h := &localHost{path: bin + ":" + os.Getenv("PATH"), log: filepath.Join(bin, "calls.log")}
	for _, name := range []string{"systemctl", "userdel", "groupdel"} {
		stub := fmt.Sprintf("#!/bin/sh\necho %s \"$@\" >> %s\n", name, h.log)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Group "shared" has another member; every other group is alone.
	getent := fmt.Sprintf("#!/bin/sh\necho getent \"$@\" >> %s\ncase $2 in shared) echo shared:x:998:alice ;; *) echo $2:x:999: ;; esac\n", h.log)
	if err := os.WriteFile(filepath.Join(bin, "getent"), []byte(getent), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *localHost) Exec(ctx context.Context, cmd string) (string, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = append(os.Environ(), "PATH="+h.path)
	out, err := c.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return string(out), err
}

func (h *localHost) Upload(context.Context, io.Reader, string, fs.FileMode, string, string) error {
	return fmt.Errorf("no uploads in a teardown")
}

func (h *localHost) HTTPClient() *http.Client { return nil }

func (h *localHost) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func write(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// The script a role's teardown runs, run for real below a temporary root:
// what it must remove is gone, what it must keep is there, and what kept a
// directory is said.
func TestTeardownScriptRuns(t *testing.T) {
	root := t.TempDir()
	p := func(s string) string { return filepath.Join(root, s) }
	conf := desired.File{Path: p("etc/svc/svc.conf"), ValidateGroup: "svc-config"}
	bin := desired.File{Path: p("bin/svc")}
	unitFile := desired.File{Path: p("systemd/svc.service")}
	for _, f := range []string{conf.Path, bin.Path, unitFile.Path,
		p("etc/svc/.natsdeploy-stage/svc.conf"), p("bin/.svc.natsdeploy-new"), // left by a killed apply
		p("etc/empty/.gone"), p("opt/svc/1.0/bin/svc"), p("var/lib/svc/store/1.blk"),
		p("etc/kept/operator-notes.txt"), p("bin/other-tool"),
	} {
		write(t, f)
	}
	os.Remove(p("etc/empty/.gone"))
	r := plan.RoleTeardown{
		Role: "svc", Stop: []string{"svc.service", "svc-log.service"}, Disable: []string{"svc.service"},
		ResetFailed: []string{"svc-log.service"}, Files: []desired.File{bin, conf, unitFile}, DaemonReload: true,
		Dirs: []desired.Dir{
			{Path: p("etc/svc")}, {Path: p("etc/empty")}, {Path: p("etc/kept")},
			{Path: p("opt/svc"), Holds: desired.Runtime}, {Path: p("var/lib/svc"), Holds: desired.Data},
			{Path: p("etc/absent")},
		},
		Users: []string{"svc", "shared"},
	}
	h := newLocalHost(t)
	out, err := h.Exec(context.Background(), TeardownScript(r))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, gone := range []string{"etc/svc", "bin/svc", "bin/.svc.natsdeploy-new", "systemd/svc.service", "etc/empty", "opt/svc", "var/lib/svc"} {
		if exists(p(gone)) {
			t.Errorf("%s is still there", gone)
		}
	}
	for _, kept := range []string{"etc/kept/operator-notes.txt", "bin/other-tool"} {
		if !exists(p(kept)) {
			t.Errorf("%s, which no role rendered, was removed", kept)
		}
	}
	if want := "natsdeploy-kept " + p("etc/kept") + ": not empty: operator-notes.txt"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if want := "natsdeploy-kept group shared: other users are in it: alice"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	want := []string{
		"systemctl stop svc.service",
		"systemctl stop svc-log.service",
		"systemctl disable --quiet svc.service",
		"systemctl daemon-reload",
		"systemctl reset-failed svc-log.service",
		"userdel svc",
		"getent group svc",
		"getent group svc",
		"groupdel svc",
		"userdel shared",
		"getent group shared",
		"getent group shared",
		"getent group shared",
	}
	if got := h.calls(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// recorder logs every command of every host in one ordered log; a command
// containing fail fails, and rmdir of a directory in busy answers that it
// was kept.
type recorder struct {
	name string
	mu   *sync.Mutex
	log  *[]string
	fail string
	busy string
}

func (r *recorder) Exec(_ context.Context, cmd string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, r.name+": "+strings.ReplaceAll(cmd, "\n", "; "))
	if r.fail != "" && strings.Contains(cmd, r.fail) {
		return "", fmt.Errorf("exit status 1")
	}
	if r.busy != "" && strings.Contains(cmd, "rmdir "+r.busy+" ") {
		return keptMark + r.busy + ": not empty: extra.conf\n", nil
	}
	if r.busy != "" && strings.Contains(cmd, "rmdir /var/lib/natsdeploy") {
		return "lock\n", nil
	}
	return "", nil
}

func (r *recorder) Upload(context.Context, io.Reader, string, fs.FileMode, string, string) error {
	return nil
}

func (r *recorder) HTTPClient() *http.Client { return nil }

func teardownTargets(log *[]string) ([]TeardownTarget, []*recorder) {
	var mu sync.Mutex
	watch := plan.RoleTeardown{Role: "watch", Stop: []string{"watch.service"}, Files: []desired.File{{Path: "/etc/watch.yml"}}}
	svc := plan.RoleTeardown{Role: "svc", Stop: []string{"svc.service"}, Dirs: []desired.Dir{{Path: "/etc/svc"}}}
	h1 := &recorder{name: "h1", mu: &mu, log: log}
	h2 := &recorder{name: "h2", mu: &mu, log: log}
	return []TeardownTarget{
		{Name: "h1", Conn: h1, Plan: plan.Teardown{Name: "h1", Roles: []plan.RoleTeardown{watch, svc}, State: true}},
		{Name: "h2", Conn: h2, Plan: plan.Teardown{Name: "h2", Roles: []plan.RoleTeardown{{Role: "watch"}, svc}}},
	}, []*recorder{h1, h2}
}

// A role goes from every host before the next is touched; a host that
// has nothing of a role gets no command for it; natsdeploy's state goes
// last, where there is some.
func TestTeardownRoleByRole(t *testing.T) {
	var log []string
	targets, recs := teardownTargets(&log)
	recs[0].busy = "/etc/svc"
	var l logs
	if err := Teardown(context.Background(), []string{"watch", "svc"}, targets, l.f); err != nil {
		t.Fatal(err)
	}
	lastWatch, firstSvc := -1, len(log)
	for i, c := range log {
		if strings.Contains(c, "watch") {
			lastWatch = i
		}
		if strings.Contains(c, "svc.service") && i < firstSvc {
			firstSvc = i
		}
	}
	if lastWatch < 0 || lastWatch > firstSvc {
		t.Errorf("svc touched before watch was gone everywhere:\n%s", strings.Join(log, "\n"))
	}
	if n := len(filter(log, "h2: ")); n != 1 {
		t.Errorf("h2 got %d commands, want its svc step only:\n%s", n, strings.Join(log, "\n"))
	}
	if got := filter(log, "/var/lib/natsdeploy"); len(got) != 1 || !strings.HasPrefix(got[0], "h1: rm -f /var/lib/natsdeploy/sums") {
		t.Errorf("state removal %v, want h1's only", got)
	}
	if !strings.Contains(l.text(), "[h1] kept /etc/svc: not empty: extra.conf") {
		t.Errorf("a kept directory was not reported:\n%s", l.text())
	}
	kept, err := RemoveStateDir(context.Background(), "h1", recs[0])
	if err != nil || kept != "/var/lib/natsdeploy: not empty (lock)" {
		t.Errorf("RemoveStateDir = %q, %v", kept, err)
	}
}

// A role that fails on one host stops the teardown there: the roles it
// depends on stay on every host, and the error says how to finish.
func TestTeardownStopsAtAFailedRole(t *testing.T) {
	var log []string
	targets, recs := teardownTargets(&log)
	recs[0].fail = "watch.service"
	err := Teardown(context.Background(), []string{"watch", "svc"}, targets, nolog)
	if err == nil || !strings.Contains(err.Error(), "host h1: remove role watch") || !strings.Contains(err.Error(), "run destroy again to finish") {
		t.Fatalf("error = %v", err)
	}
	if got := filter(log, "svc.service"); len(got) != 0 {
		t.Errorf("svc touched after watch failed: %v", got)
	}
	if got := filter(log, "/var/lib/natsdeploy"); len(got) != 0 {
		t.Errorf("state removed after a failure: %v", got)
	}
}
