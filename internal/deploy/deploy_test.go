package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// The engine is tested here with a role it has never heard of: one
// service, a restart-class and a reload-class config file, and gates that
// always pass. Nothing NATS is involved.

const (
	svcUnit   = "svc.service"
	mainConf  = "/etc/svc/main.conf"
	extraConf = "/etc/svc/reload.conf"
	secretCfg = "/etc/svc/secret.conf"
)

type svcRole struct {
	version string // rendered into the files: change it to change them
	secret  string // the content of the sensitive file
	verify  []report.Result
	want    string // the unit's program version, for status; "" not checked
	// reloaded, when set, is the reload gate's check.
	reloaded func() error
	// clustered gives the unit a cluster gate, as NATS has.
	clustered bool
	// ready, when set, is the ready gate's check.
	ready func() error
}

func (svcRole) Name() string                                    { return "svc" }
func (svcRole) Hosts(inv *inventory.Inventory) []inventory.Host { return inv.Hosts }
func (svcRole) Secrets(*inventory.Inventory) []secrets.Slot     { return nil }
func (svcRole) Artifacts(*inventory.Inventory, string) ([]artifact.Release, error) {
	return nil, nil
}

func (r svcRole) Desired(in role.Input) (desired.Host, error) {
	file := func(path, content string, h desired.Handler, sensitive bool) desired.File {
		return desired.File{Path: path, Content: []byte(content), SHA256: sum(content), Mode: 0o640, Owner: "root", Group: "svc",
			Service: svcUnit, OnChange: h, Sensitive: sensitive}
	}
	return desired.Host{
		Name:  in.Host.Name,
		Users: []desired.User{{Name: "svc", Home: "/var/lib/svc"}},
		Dirs:  []desired.Dir{{Path: "/etc/svc", Owner: "root", Group: "svc", Mode: fs.ModeDir | 0o750}},
		Files: []desired.File{
			file(mainConf, "port = 1\nversion = "+r.version+"\n", desired.Restart, false),
			file(extraConf, "level = "+r.version+"\n", desired.Reload, false),
			file(secretCfg, "token = "+r.secret+"\n", desired.Reload, true),
		},
		Units: []desired.Unit{{
			Name: svcUnit,
			Ready: &desired.Gate{Desc: "ready", Check: func(context.Context, desired.Node) error {
				if r.ready != nil {
					return r.ready()
				}
				return nil
			}},
			Reload: &desired.ReloadGate{Desc: "generation", Want: func(context.Context, desired.Node) (string, error) { return "g2", nil }, Check: func(context.Context, desired.Node, string) error {
				if r.reloaded != nil {
					return r.reloaded()
				}
				return nil
			}},
			Version: r.want, VersionCmd: versionCmd(r.want),
			Settled: r.settled(),
		}},
		Ports: []desired.Port{{Number: 1, Key: "svc.port"}},
	}, nil
}

func (r svcRole) Verify(context.Context, role.Env) []report.Result { return r.verify }

func (r svcRole) settled() *desired.ClusterGate {
	if !r.clustered {
		return nil
	}
	return &desired.ClusterGate{Desc: "settled", Check: func(context.Context, []desired.Node) error { return nil }}
}

func versionCmd(want string) string {
	if want == "" {
		return ""
	}
	return "/usr/bin/svc --version"
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// host is a fake connection: every command goes into one ordered log
// shared by all hosts; the facts command is answered from a queue, one
// answer per gather.
type host struct {
	name    string
	log     *[]string
	mu      *sync.Mutex
	facts   []string
	files   map[string]string // what `cat` prints
	scripts []string          // every facts command, as sent
	execs   int               // commands run
	locked  int               // facts read in the lock's own command
	fail    string            // a command containing it fails
	isNew   bool              // no state dir yet: lock.IfNewThen takes the lock
}

func isFacts(cmd string) bool { return strings.HasPrefix(cmd, "set -u\nLC_ALL=C") }

func (h *host) Exec(_ context.Context, cmd string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.execs++
	// The facts command that takes the lock on a new host.
	if take, then, ok := strings.Cut(cmd, "then echo LOCKED; fi\n"); ok && strings.HasPrefix(take, "if mkdir -m 0700 ") {
		if !h.isNew {
			return h.readFacts(then)
		}
		h.isNew = false
		*h.log = append(*h.log, h.name+": "+take)
		h.locked++
		out, err := h.readFacts(then)
		return "LOCKED\n" + out, err
	}
	// The lock's command, with the facts to read under it, if any.
	if take, then, ok := strings.Cut(cmd, "\necho LOCKED\n"); ok {
		*h.log = append(*h.log, h.name+": "+take)
		if then == "" {
			return "LOCKED\n", nil
		}
		h.locked++
		out, err := h.readFacts(then)
		return "LOCKED\n" + out, err
	}
	if isFacts(cmd) {
		return h.readFacts(cmd)
	}
	*h.log = append(*h.log, h.name+": "+cmd)
	if h.fail != "" && strings.Contains(cmd, h.fail) {
		return "bad config line 1", errors.New("exit status 1")
	}
	if path, ok := strings.CutPrefix(cmd, "cat "); ok {
		return h.files[strings.Trim(path, "'")], nil
	}
	if strings.Contains(cmd, "echo refreshed") {
		return "refreshed\n", nil // the lock is still this run's
	}
	return "", nil
}

// readFacts answers a facts command from the queue.
func (h *host) readFacts(cmd string) (string, error) {
	if !isFacts(cmd) {
		return "", fmt.Errorf("not a facts command: %.40q", cmd)
	}
	*h.log = append(*h.log, h.name+": facts")
	h.scripts = append(h.scripts, cmd)
	if len(h.facts) == 0 {
		return "", errors.New("no facts left")
	}
	out := h.facts[0]
	if len(h.facts) > 1 {
		h.facts = h.facts[1:]
	}
	if out == factsFail {
		return "os debian 12\n", errors.New("exit status 1")
	}
	return out, nil
}

// factsFail in a host's facts queue makes that read fail.
const factsFail = "FAIL"

func (h *host) Upload(_ context.Context, r io.Reader, dst string, _ fs.FileMode, _, _ string) error {
	io.Copy(io.Discard, r)
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.log = append(*h.log, h.name+": upload "+dst)
	return nil
}

func (h *host) HTTPClient() *http.Client { return nil }

// batchingHost is a host whose uploads go as batches: each send is logged
// when it ends, and one containing slow takes a while.
type batchingHost struct {
	*host
	slow string
}

type hostBatch struct{ h batchingHost }

func (h batchingHost) NewBatch() apply.Batch { return hostBatch{h} }

func (b hostBatch) Send(_ context.Context, r io.Reader, dst string, _ fs.FileMode, _, _ string) error {
	io.Copy(io.Discard, r)
	if b.h.slow != "" && strings.Contains(dst, b.h.slow) {
		time.Sleep(300 * time.Millisecond)
	}
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	*b.h.log = append(*b.h.log, b.h.name+": sent "+dst)
	return nil
}

func (b hostBatch) Install(context.Context) error { return nil }
func (b hostBatch) Discard(context.Context)       {}

// factsFor prints what a host looks like when it is as r renders it,
// except for the files in stale, whose content differs.
func factsFor(r svcRole, name string, stale ...string) string {
	d, _ := r.Desired(role.Input{Host: inventory.Host{Name: name}})
	var b strings.Builder
	b.WriteString("os debian 12\narch x86_64\nsystemd 252\nuser svc\ndir 750 root svc /etc/svc\n")
	for _, f := range d.Files {
		sha := f.SHA256
		for _, s := range stale {
			if s == f.Path {
				sha = sum("old")
			}
		}
		fmt.Fprintf(&b, "file 640 root svc %s %s\n", sha, f.Path)
	}
	b.WriteString("unit enabled active 42 " + svcUnit + "\n")
	return b.String()
}

func newSession(t *testing.T, r svcRole, facts map[string][]string) (*Session, *[]string) {
	t.Helper()
	inv := &inventory.Inventory{Path: "test.toml", Hosts: []inventory.Host{{Name: "h1", Address: "192.0.2.1"}, {Name: "h2", Address: "192.0.2.2"}}}
	var log []string
	var mu sync.Mutex
	conns := map[string]apply.Conn{}
	for _, h := range inv.Hosts {
		conns[h.Name] = &host{name: h.Name, log: &log, mu: &mu, facts: facts[h.Name], files: map[string]string{secretCfg: "token = planted-old-secret\n"}}
	}
	return New(inv, []role.Role{r}, nil, conns, io.Discard), &log
}

func indexOf(log []string, sub string) int {
	for i, l := range log {
		if strings.Contains(l, sub) {
			return i
		}
	}
	return -1
}

func lastIndexOf(log []string, sub string) int {
	for i := len(log) - 1; i >= 0; i-- {
		if strings.Contains(log[i], sub) {
			return i
		}
	}
	return -1
}

var fast = apply.Timeouts{Start: time.Second, Health: time.Second, Reload: time.Second}

// When a host owes a restart and also has a reload-class change, the
// reload-class files go to every host and are reloaded there first; the
// facts are then read again and the restarts roll one host at a time.
func TestApplyReloadRoundThenRegatherThenRoll(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	facts := map[string][]string{}
	for _, h := range []string{"h1", "h2"} {
		facts[h] = []string{
			factsFor(r, h, mainConf, extraConf), // before: both files old
			factsFor(r, h, mainConf),            // after the reload round
		}
	}
	s, log := newSession(t, r, facts)
	ctx := context.Background()
	if err := s.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Apply(ctx, fast)
	if err != nil || !changed {
		t.Fatalf("Apply = %v, %v", changed, err)
	}
	l := *log
	t.Logf("commands:\n%s", strings.Join(l, "\n"))
	for _, h := range []string{"h1", "h2"} {
		if n := strings.Count(strings.Join(l, "\n"), h+": facts"); n != 2 {
			t.Errorf("%s: facts read %d times, want 2 (gather, then again after the reload round)", h, n)
		}
		reload := indexOf(l, h+": systemctl reload svc.service")
		regather := lastIndexOf(l, h+": facts")
		firstRestart := indexOf(l, ": systemctl restart svc.service")
		if reload < 0 || firstRestart < 0 || !(reload < regather && regather < firstRestart) {
			t.Errorf("%s: want reload (%d) < second facts (%d) < first restart (%d)", h, reload, regather, firstRestart)
		}
		// The reload round carries only the reload-class file.
		if up := indexOf(l, h+": upload /etc/svc/.main.conf"); up >= 0 && up < reload {
			t.Errorf("%s: the restart-class file went out in the reload round", h)
		}
	}
	if a, b := indexOf(l, "h1: systemctl restart"), indexOf(l, "h2: systemctl restart"); a < 0 || b < a {
		t.Errorf("restarts out of inventory order: h1 at %d, h2 at %d", a, b)
	}
	if n := strings.Count(strings.Join(l, "\n"), "systemctl reload"); n != 2 {
		t.Errorf("%d reloads, want one per host", n)
	}
}

// Without a restart owed there is no split: one round, one gather.
func TestApplyReloadOnlyNoSplit(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	s, log := newSession(t, r, map[string][]string{"h1": {factsFor(r, "h1", extraConf)}, "h2": {factsFor(r, "h2")}})
	ctx := context.Background()
	if err := s.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, fast); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(*log, "\n")
	if strings.Count(all, ": facts") != 2 || strings.Contains(all, "restart") || !strings.Contains(all, "h1: systemctl reload svc.service") || strings.Contains(all, "h2: systemctl") {
		t.Errorf("commands:\n%s", all)
	}
}

// A converged cluster: Apply reports no change and sends nothing but the
// facts command.
func TestApplyConvergedSendsNothing(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	s, log := newSession(t, r, map[string][]string{"h1": {factsFor(r, "h1")}, "h2": {factsFor(r, "h2")}})
	ctx := context.Background()
	if err := s.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Apply(ctx, fast)
	if err != nil || changed {
		t.Fatalf("Apply = %v, %v", changed, err)
	}
	if len(*log) != 2 {
		t.Errorf("commands on a converged cluster: %v", *log)
	}
	// verify compares with the facts apply just read: nothing is sent.
	rep := s.Verify(ctx)
	if len(*log) != 2 {
		t.Errorf("verify after a no-op apply read the hosts again: %v", *log)
	}
	for _, res := range rep.Results {
		if strings.HasPrefix(res.Check, "node/") && (!res.OK || !strings.HasSuffix(res.Seen, " (as this apply read them)")) {
			t.Errorf("%s %s: %s %s", res.Check, res.Target, res.Status(), res.Detail())
		}
	}
}

// lateRole is a second role, after svc: one config file, validated by a
// command, and its own unit, which needs the units in after.
type lateRole struct {
	svcRole
	after []string
}

func (lateRole) Name() string { return "late" }

func (l lateRole) Desired(in role.Input) (desired.Host, error) {
	return desired.Host{
		Name: in.Host.Name,
		Files: []desired.File{{Path: "/etc/svc/late.conf", Content: []byte("late"), SHA256: sum("late"), Mode: 0o640, Owner: "root", Group: "svc",
			ValidateGroup: "late-config", ValidateCmd: "check-late {dir}", Service: "late.service", OnChange: desired.Restart}},
		Units: []desired.Unit{{Name: "late.service", After: l.after,
			Ready: &desired.Gate{Desc: "ready", Check: func(context.Context, desired.Node) error { return nil }}}},
	}, nil
}

// Roles go one after the other: late's files are staged and committed
// while svc's reload is still being confirmed. late.service starts at once
// when it needs nothing of svc, only after svc's reload when it names svc
// in After, and not at all when that reload fails. When late's files are
// rejected the error says what is in place, and nothing of late's stays
// staged.
func TestApplyRolesInWaves(t *testing.T) {
	// run applies svc's reload-class change and late's new file on two
	// hosts. A command containing fail fails; seenTwice, when set, holds
	// svc's reload gate until it is in the log of both hosts.
	run := func(t *testing.T, r svcRole, late lateRole, fail, seenTwice string) (*[]string, bool, error) {
		t.Helper()
		var s *Session
		var log *[]string
		if seenTwice != "" {
			r.reloaded = func() error {
				if n := strings.Count(strings.Join(snapshot(s, log), "\n"), seenTwice); n < 2 {
					return fmt.Errorf("%q seen on %d hosts", seenTwice, n)
				}
				return nil
			}
		}
		s, log = newSession(t, r, map[string][]string{"h1": {factsFor(r, "h1", extraConf)}, "h2": {factsFor(r, "h2", extraConf)}})
		s.Roles = append(s.Roles, late)
		for _, c := range s.Conns {
			c.(*host).fail = fail
		}
		ctx := context.Background()
		if err := s.Gather(ctx); err != nil {
			t.Fatal(err)
		}
		changed, err := s.Apply(ctx, fast)
		return log, changed, err
	}
	svc := svcRole{version: "2", secret: "s"}
	needsSvc := lateRole{after: []string{svcUnit}}
	t.Run("late's files rejected", func(t *testing.T) {
		log, changed, err := run(t, svc, lateRole{}, "check-late", "")
		if err == nil || !changed {
			t.Fatalf("Apply = %v, %v; want a change and late's rejection", changed, err)
		}
		for _, want := range []string{"the new late-config was rejected", "bad config line 1",
			"svc.service applied and running; no file of late.service or what follows it was swapped in on any host"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		for _, h := range []string{"h1", "h2"} {
			committed := indexOf(*log, h+": set -e")
			reloaded := indexOf(*log, h+": systemctl reload")
			validated := indexOf(*log, h+": check-late")
			if committed < 0 || reloaded < 0 || validated < committed {
				t.Errorf("%s: commit at %d, reload at %d, late's validation at %d; want the validation after the commit and the reload done:\n%s",
					h, committed, reloaded, validated, strings.Join(*log, "\n"))
			}
			if i := lastIndexOf(*log, h+": rm -rf"); i < validated || !strings.Contains((*log)[i], "/etc/svc/.natsdeploy-stage") {
				t.Errorf("%s: late's staging not removed after the rejection:\n%s", h, strings.Join(*log, "\n"))
			}
		}
		if i := indexOf(*log, "late.conf /etc/svc/late.conf"); i >= 0 {
			t.Errorf("late.conf was swapped in: %s", (*log)[i])
		}
	})
	t.Run("svc's reload fails and late's files are rejected", func(t *testing.T) {
		failing := svc
		failing.reloaded = func() error { return errors.New("generation g1") }
		_, _, err := run(t, failing, lateRole{}, "check-late", "")
		for _, want := range []string{"reload of svc.service not confirmed", "the new late-config was rejected",
			"\nno file of late.service or what follows it was swapped in on any host"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if err != nil && strings.Contains(err.Error(), "applied and running") {
			t.Errorf("error says svc is applied and running, though its reload failed:\n%v", err)
		}
	})
	t.Run("late needs nothing of svc: started during svc's reload", func(t *testing.T) {
		// If late waited for svc's reload, the gate would time out.
		if _, changed, err := run(t, svc, lateRole{}, "", "systemctl start late.service"); err != nil || !changed {
			t.Fatalf("Apply = %v, %v", changed, err)
		}
	})
	t.Run("late needs svc, whose reload fails: late not started", func(t *testing.T) {
		failing := svc
		failing.reloaded = func() error { return errors.New("generation g1") }
		log, _, err := run(t, failing, needsSvc, "", "")
		want := "late.service not started, reloaded or restarted: it waits for svc.service, which failed; run apply again once that is fixed"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "reload of svc.service not confirmed") {
			t.Errorf("err = %v, want svc's failure and %q", err, want)
		}
		if i := indexOf(*log, "systemctl start late.service"); i >= 0 {
			t.Errorf("late started though svc failed: %s", (*log)[i])
		}
		if indexOf(*log, "late.conf /etc/svc/late.conf") < 0 {
			t.Errorf("late's files were not committed:\n%s", strings.Join(*log, "\n"))
		}
	})
	t.Run("late needs svc: committed during svc's reload, started after it", func(t *testing.T) {
		// If late's commit waited for svc's reload, the gate would time out.
		log, changed, err := run(t, svc, needsSvc, "", "late.conf /etc/svc/late.conf")
		if err != nil || !changed {
			t.Fatalf("Apply = %v, %v", changed, err)
		}
		for _, h := range []string{"h1", "h2"} {
			reloaded := indexOf(*log, h+": systemctl reload")
			started := indexOf(*log, h+": systemctl start late.service")
			if reloaded < 0 || started < reloaded {
				t.Errorf("%s: svc reloaded at %d, late started at %d:\n%s", h, reloaded, started, strings.Join(*log, "\n"))
			}
		}
	})
}

// A cold start of a clustered unit waits until every role's files have
// arrived and are committed on every host. A later role's unit that needs
// nothing of it starts beside it; one that names it in After starts once
// it is up.
func TestColdClusterStartWaitsForSends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after []string
	}{
		{"late needs nothing of svc", nil},
		{"late is after svc", []string{svcUnit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *Session
			var log *[]string
			var h1 *host
			lateStarted := func() error {
				h1.mu.Lock()
				defer h1.mu.Unlock()
				if !strings.Contains(strings.Join(*log, "\n"), "systemctl start late.service") {
					return errors.New("late.service not started yet")
				}
				return nil
			}
			r := svcRole{version: "2", secret: "s", clustered: true}
			if tc.after == nil {
				// svc is ready only once late.service has started: an
				// apply that held late back until svc was up would time
				// out.
				r.ready = lateStarted
			}
			cold := map[string][]string{}
			for _, h := range []string{"h1", "h2"} {
				cold[h] = []string{strings.Replace(factsFor(r, h), "unit enabled active 42 ", "unit enabled inactive 0 ", 1)}
			}
			s, log = newSession(t, r, cold)
			h1 = s.Conns["h1"].(*host)
			s.Roles = append(s.Roles, lateRole{after: tc.after})
			for name, c := range s.Conns {
				s.Conns[name] = batchingHost{host: c.(*host), slow: "late.conf"}
			}
			ctx := context.Background()
			if err := s.Gather(ctx); err != nil {
				t.Fatal(err)
			}
			if changed, err := s.Apply(ctx, fast); err != nil || !changed {
				t.Fatalf("Apply = %v, %v\n%s", changed, err, strings.Join(*log, "\n"))
			}
			for _, h := range []string{"h1", "h2"} {
				started := indexOf(*log, h+": systemctl start "+svcUnit)
				for _, other := range []string{"h1", "h2"} {
					if sent := indexOf(*log, other+": sent /etc/svc/.natsdeploy-stage/late.conf"); sent < 0 || started < sent {
						t.Errorf("%s started %s at %d, before %s's late.conf arrived (%d):\n%s", h, svcUnit, started, other, sent, strings.Join(*log, "\n"))
					}
				}
				if committed := lastIndexOf(*log, "late.conf /etc/svc/late.conf"); committed < 0 || started < committed {
					t.Errorf("%s started %s at %d, before late's files were committed everywhere (%d)", h, svcUnit, started, committed)
				}
				if tc.after != nil {
					svcDone := lastIndexOf(*log, "pending-"+svcUnit)
					if late := indexOf(*log, h+": systemctl start late.service"); late < svcDone {
						t.Errorf("%s started late.service at %d, during svc's cold start (over at %d):\n%s", h, late, svcDone, strings.Join(*log, "\n"))
					}
				}
			}
		})
	}
}

// After an apply that changed something, verify reads each host again.
func TestVerifyAfterChangeReadsAgain(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	facts := map[string][]string{}
	for _, h := range []string{"h1", "h2"} {
		facts[h] = []string{factsFor(r, h, mainConf), factsFor(r, h)}
	}
	s, log := newSession(t, r, facts)
	ctx := context.Background()
	if err := s.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Apply(ctx, fast); err != nil || !changed {
		t.Fatalf("Apply = %v, %v", changed, err)
	}
	before := strings.Count(strings.Join(*log, "\n"), ": facts")
	rep := s.Verify(ctx)
	if got := strings.Count(strings.Join(*log, "\n"), ": facts") - before; got != 2 {
		t.Errorf("verify read facts %d times after a change, want once per host", got)
	}
	for _, res := range rep.Results {
		if strings.Contains(res.Seen, "as this apply read them") {
			t.Errorf("%s %s used apply's facts after a change: %s", res.Check, res.Target, res.Seen)
		}
	}
}

// plan never prints a sensitive file's content, old or new: it says the
// file changes and gives its new sha256.
func TestPrintPlanMasksSensitiveFiles(t *testing.T) {
	r := svcRole{version: "2", secret: "planted-new-secret"}
	s, log := newSession(t, r, map[string][]string{"h1": {factsFor(r, "h1", secretCfg, extraConf)}, "h2": {factsFor(r, "h2")}})
	ctx := context.Background()
	if err := s.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s.PrintPlan(ctx, &b)
	out := b.String()
	t.Logf("plan:\n%s", out)
	for _, secret := range []string{"planted-new-secret", "planted-old-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("plan shows %q", secret)
		}
	}
	want := "--- " + secretCfg + ": changes; it holds secrets, so neither its content nor its hash is shown"
	if !strings.Contains(out, want) {
		t.Errorf("plan does not say the sensitive file changes; want %q", want)
	}
	// Nor any prefix of its hash: a hash of a template around a password
	// lets anyone test guesses against a log.
	if strings.Contains(out, sum("token = planted-new-secret\n")[:12]) {
		t.Errorf("plan shows the sensitive file's hash")
	}
	if strings.Contains(strings.Join(*log, "\n"), "cat '"+secretCfg+"'") || strings.Contains(strings.Join(*log, "\n"), "cat "+secretCfg) {
		t.Errorf("plan read the sensitive file from the host")
	}
	if !strings.Contains(out, "+ level = 2") {
		t.Errorf("a non-sensitive file's diff is missing:\n%s", out)
	}
}

// verify's host checks: files as rendered (content, owner, mode) and units
// enabled and active; then the role's own rows.
func TestVerifyHostChecks(t *testing.T) {
	r := svcRole{version: "2", secret: "s", verify: []report.Result{{Check: "svc/own", Target: "cluster", OK: true}}}
	broken := strings.Replace(factsFor(r, "h2", mainConf), "file 640 root svc "+sum("level = 2\n"), "file 644 root root "+sum("level = 2\n"), 1)
	broken = strings.Replace(broken, "unit enabled active 42", "unit enabled failed 0", 1)
	s, _ := newSession(t, r, map[string][]string{"h1": {factsFor(r, "h1")}, "h2": {broken}})
	rep := s.Verify(context.Background())
	got := map[string]report.Result{}
	for _, res := range rep.Results {
		got[res.Check+" "+res.Target] = res
	}
	if len(rep.Results) != 5 {
		t.Errorf("%d results, want node/config and node/units per host and the role's row: %+v", len(rep.Results), rep.Results)
	}
	if res := got["node/config h1"]; !res.OK || res.Seen != "3 files as rendered" {
		t.Errorf("h1 config: %+v", res)
	}
	if res := got["node/units h1"]; !res.OK {
		t.Errorf("h1 units: %+v", res)
	}
	if res := got["node/config h2"]; res.OK || !strings.Contains(res.Seen, mainConf+" changed") || !strings.Contains(res.Seen, extraConf+" is root:root 0644") {
		t.Errorf("h2 config: %+v", res)
	}
	if res := got["node/units h2"]; res.OK || !strings.Contains(res.Seen, "svc.service failed") {
		t.Errorf("h2 units: %+v", res)
	}
	if res, ok := got["svc/own cluster"]; !ok || !res.OK {
		t.Errorf("the role's own check is missing: %+v", rep.Results)
	}
	if rep.Failed() != 2 {
		t.Errorf("Failed() = %d, want 2", rep.Failed())
	}
	// verify reads only the rendered files: a sums cache it rewrote would
	// lose the binaries' sums, and the next apply would hash them again.
	for name, c := range s.Conns {
		for _, script := range c.(*host).scripts {
			if strings.Contains(script, "mktemp") {
				t.Errorf("%s: verify's facts command writes the sums cache:\n%s", name, script)
			}
		}
	}
}

// While a session holds its locks it refreshes them on every host, and
// stops before it releases them: a long apply is never taken over, and no
// refresh can bring back a lock just released.
func TestLockIsKeptFreshUntilUnlock(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	s, log := newSession(t, r, nil)
	var out bytes.Buffer
	s.Events = progress.NewPlain(&out)
	s.keepEvery = time.Millisecond
	ctx := context.Background()
	if err := s.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	refreshes := func(host string) int {
		n := 0
		for _, l := range snapshot(s, log) {
			if strings.HasPrefix(l, host+": ") && strings.Contains(l, "echo refreshed") && strings.Contains(l, "expires=") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for refreshes("h1") < 2 || refreshes("h2") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("locks not refreshed twice on every host within 10s: %q", snapshot(s, log))
		}
		time.Sleep(time.Millisecond)
	}
	s.Unlock(ctx)
	l := snapshot(s, log)
	firstRelease, lastRefresh := -1, -1
	for i, c := range l {
		if strings.Contains(c, "rm -f") && firstRelease < 0 {
			firstRelease = i
		}
		if strings.Contains(c, "echo refreshed") {
			lastRefresh = i
		}
	}
	if firstRelease < 0 || lastRefresh > firstRelease {
		t.Errorf("release at %d, last refresh at %d: want every refresh before the release\n%s", firstRelease, lastRefresh, strings.Join(l, "\n"))
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("warnings while the lock was ours:\n%s", out.String())
	}
}

// snapshot copies the command log under the fake hosts' lock.
func snapshot(s *Session, log *[]string) []string {
	h := s.Conns["h1"].(*host)
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *log...)
}

// A port a service is to listen on, taken by anything but one of the
// host's own units, refuses the host, naming the port, its key, the
// process and what to do; the host's own running service is no clash.
func TestPortsFree(t *testing.T) {
	h := inventory.Host{Name: "nats-2", Address: "172.31.253.12"}
	d := desired.Host{
		Users: []desired.User{{Name: "nats"}},
		Units: []desired.Unit{{Name: "nats-server.service"}},
		Ports: []desired.Port{{Number: 4222, Key: "nats.client_port"}, {Number: 8222, Key: "nats.http_port"}},
	}
	ok := facts.Host{Listening: map[int]facts.Listener{
		4222: {PID: 10, Unit: "nats-server.service", Comm: "nats-server"},
		6222: {PID: 11, Comm: "python3"}, // not a port of this host's services
		8222: {User: "nats"},             // a process of the service's user root may not look into
	}}
	if err := portsFree(h, d, ok); err != nil {
		t.Fatalf("own service or an unrelated port refused: %v", err)
	}
	bad := facts.Host{Listening: map[int]facts.Listener{
		4222: {PID: 77, Comm: "python3"},
		8222: {User: "www-data"},
	}}
	err := portsFree(h, d, bad)
	if err == nil {
		t.Fatal("ports in use not refused")
	}
	for _, want := range []string{
		"host nats-2 (172.31.253.12): port 4222 (nats.client_port) is already in use by python3 (pid 77, outside any systemd unit); stop it there, or set nats.client_port to a free port",
		"port 8222 (nats.http_port) is already in use by a process of user www-data that natsdeploy cannot see",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// GatherToChange takes the run lock only when there is something to
// change, reading the facts again under it; another live run's lock
// refuses the run before anything is written.
func TestGatherToChange(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	other := "machine=elsewhere\nuser=ops\npid=4242\nsince=1\nexpires=" + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + "\n"
	lockLines := func(content string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(strings.TrimSuffix(content, "\n"), "\n") {
			b.WriteString("lock " + strings.TrimSuffix(l, "\n") + "\n")
		}
		return b.String()
	}
	expired := "machine=elsewhere\nuser=ops\npid=4242\nsince=1\nexpires=2\n"
	for _, tc := range []struct {
		name       string
		facts      map[string][]string
		wantErr    string
		wantLocked bool
		wantFacts  int // facts commands per host
	}{
		{name: "converged: no lock written", facts: map[string][]string{"h1": {factsFor(r, "h1")}, "h2": {factsFor(r, "h2")}}, wantFacts: 1},
		{name: "converged with an expired lock: none written", facts: map[string][]string{"h1": {factsFor(r, "h1") + lockLines(expired)}, "h2": {factsFor(r, "h2")}}, wantFacts: 1},
		{name: "a change: locked, facts read again", facts: map[string][]string{"h1": {factsFor(r, "h1", extraConf)}, "h2": {factsFor(r, "h2")}}, wantLocked: true, wantFacts: 2},
		{name: "another run holds h2", facts: map[string][]string{"h1": {factsFor(r, "h1", extraConf)}, "h2": {factsFor(r, "h2") + lockLines(other)}},
			wantErr: "host h2: locked by another run: ops@elsewhere pid 4242", wantFacts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, log := newSession(t, r, tc.facts)
			err := s.GatherToChange(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(*log, "\n")
			if s.Locked() != tc.wantLocked || strings.Contains(all, "set -C") != tc.wantLocked {
				t.Errorf("locked %v, want %v; commands:\n%s", s.Locked(), tc.wantLocked, all)
			}
			for _, h := range []string{"h1", "h2"} {
				if n := strings.Count(all, h+": facts"); n != tc.wantFacts {
					t.Errorf("%s: facts read %d times, want %d", h, n, tc.wantFacts)
				}
			}
			if !tc.wantLocked && len(*log) != 2*tc.wantFacts {
				t.Errorf("commands besides the facts:\n%s", all)
			}
			s.Unlock(context.Background())
		})
	}
}

// A host natsdeploy never touched is locked by the facts command itself:
// when every host is new, the facts are read once and no other lock
// command is sent; beside hosts that are not new, those are locked and
// read again as before. A run that stops before changing anything, or
// finds nothing to change, releases the new host's lock and removes the
// state directory it created, if empty.
func TestGatherToChangeNewHosts(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	other := "lock machine=elsewhere\nlock user=ops\nlock pid=4242\nlock since=1\nlock expires=" + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + "\n"
	const rmdir = "rmdir /var/lib/natsdeploy"
	for _, tc := range []struct {
		name       string
		isNew      []bool
		facts      map[string][]string
		wantErr    string
		wantLocked bool
		wantFacts  []int // facts commands per host
	}{
		{name: "all new: facts read once, under the lock", isNew: []bool{true, true},
			facts:      map[string][]string{"h1": {factsFor(r, "h1", mainConf)}, "h2": {factsFor(r, "h2", mainConf)}},
			wantLocked: true, wantFacts: []int{1, 1}},
		{name: "one new beside one to change: that one locked and read again", isNew: []bool{true, false},
			facts:      map[string][]string{"h1": {factsFor(r, "h1", mainConf)}, "h2": {factsFor(r, "h2", extraConf)}},
			wantLocked: true, wantFacts: []int{1, 2}},
		{name: "new host beside another run's lock: released, dir removed", isNew: []bool{true, false},
			facts:   map[string][]string{"h1": {factsFor(r, "h1", mainConf)}, "h2": {factsFor(r, "h2", extraConf) + other}},
			wantErr: "host h2: locked by another run", wantFacts: []int{1, 1}},
		{name: "new host that fails its facts: released, dir removed", isNew: []bool{true, true},
			facts:   map[string][]string{"h1": {factsFor(r, "h1", mainConf)}, "h2": {factsFail}},
			wantErr: "host h2: gather facts: exit status 1", wantFacts: []int{1, 1}},
		{name: "new host with nothing to change: released, dir removed", isNew: []bool{true, false},
			facts:     map[string][]string{"h1": {factsFor(r, "h1")}, "h2": {factsFor(r, "h2")}},
			wantFacts: []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, log := newSession(t, r, tc.facts)
			for i, n := range []string{"h1", "h2"} {
				s.Conns[n].(*host).isNew = tc.isNew[i]
			}
			ctx := context.Background()
			err := s.GatherToChange(ctx)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if s.Locked() != tc.wantLocked {
				t.Errorf("locked %v, want %v:\n%s", s.Locked(), tc.wantLocked, strings.Join(*log, "\n"))
			}
			if tc.wantLocked && len(s.locked) != 2 {
				t.Errorf("locked on %v, want both hosts", s.locked)
			}
			all := strings.Join(*log, "\n")
			for i, h := range []string{"h1", "h2"} {
				if n := strings.Count(all, h+": facts"); n != tc.wantFacts[i] {
					t.Errorf("%s: facts read %d times, want %d:\n%s", h, n, tc.wantFacts[i], all)
				}
				if got := s.Conns[h].(*host).locked; tc.wantLocked && got != 1 {
					t.Errorf("%s: facts read under the lock %d times, want 1", h, got)
				}
			}
			released := func(h string) (plain, new bool) {
				for _, l := range *log {
					if strings.HasPrefix(l, h+": if grep") && strings.Contains(l, "rm -f") {
						plain, new = plain || !strings.Contains(l, rmdir), new || strings.Contains(l, rmdir)
					}
				}
				return plain, new
			}
			// Stopped, or nothing to change: a new host's lock is released
			// before returning.
			for i, h := range []string{"h1", "h2"} {
				if plain, new := released(h); tc.isNew[i] && (plain || new) == tc.wantLocked {
					t.Errorf("%s: released %v before Unlock, want %v:\n%s", h, plain || new, !tc.wantLocked, strings.Join(*log, "\n"))
				}
			}
			s.Unlock(ctx)
			all = strings.Join(*log, "\n")
			for i, h := range []string{"h1", "h2"} {
				plain, new := released(h)
				if new != tc.isNew[i] || (plain && tc.isNew[i]) {
					t.Errorf("%s (new %v): released with the state dir's removal %v, without %v:\n%s", h, tc.isNew[i], new, plain, all)
				}
			}
			if tc.wantLocked && len(tc.isNew) == 2 && tc.isNew[0] && tc.isNew[1] && strings.Contains(all, "echo LOCKED\n") {
				t.Errorf("a lock command besides the facts on new hosts:\n%s", all)
			}
		})
	}
}

// A release this machine cannot get fails once: every host that needs it
// gets the same error, and Gather's report holds it once, as an
// ArtifactError (exit 2 in the CLI).
func TestArtifactFailureReportedOnce(t *testing.T) {
	arts := &artifacts{have: map[string]artifact.Binary{}, failed: map[string]error{}}
	rel := artifact.Release{Dir: t.TempDir(), Name: "nats-server", Tag: "v2.14.9", Version: "2.14.9",
		Asset: "nats-server-v2.14.9-linux-amd64.tar.gz", Sums: "SHA256SUMS", Member: "nats-server-v2.14.9-linux-amd64/nats-server"}
	var errs []error
	for _, h := range []string{"h1", "h2", "h3"} {
		_, err := arts.get(context.Background(), rel)
		if err == nil {
			t.Fatal("a release missing offline was got")
		}
		errs = append(errs, fmt.Errorf("host %s (x86_64): %w", h, err))
	}
	errs = append(errs, errors.New("host h4: gather facts: connection lost"))
	got := artifactErrors(errs)
	var ae *ArtifactError
	if !errors.As(got, &ae) {
		t.Fatalf("artifactErrors = %v, want an *ArtifactError", got)
	}
	if msg := got.Error(); strings.Count(msg, "nats-server v2.14.9") != 1 || strings.Contains(msg, "host h") {
		t.Errorf("report %q: want the release named once and no host", msg)
	}
	if artifactErrors(errs[3:]) != nil {
		t.Error("an error that is no artifact's reported as one")
	}
}

// A run with something to change reads the facts again under the lock in
// the lock's own command: two commands per host before the plan, not
// three. The plan is made from the facts read under the lock.
func TestGatherToChangeReadsFactsInTheLocksCommand(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	s, _ := newSession(t, r, map[string][]string{
		"h1": {factsFor(r, "h1", mainConf), factsFor(r, "h1", extraConf)},
		"h2": {factsFor(r, "h2", mainConf), factsFor(r, "h2", extraConf)},
	})
	ctx := context.Background()
	if err := s.GatherToChange(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Locked() {
		t.Fatal("not locked with a change to make")
	}
	for _, tg := range s.Targets {
		h := s.Conns[tg.Name].(*host)
		if h.execs != 2 || h.locked != 1 {
			t.Errorf("%s: %d commands, %d facts read under the lock; want 2 and 1", tg.Name, h.execs, h.locked)
		}
		if len(tg.Plan.Files) != 1 || tg.Plan.Files[0].File.Path != extraConf {
			t.Errorf("%s: plan %+v, want only %s (the facts read under the lock)", tg.Name, tg.Plan.Files, extraConf)
		}
	}
	s.Unlock(ctx)
}

// Facts under the lock that fail, or make no sense: the run stops before
// any change, names the host and what is wrong, and releases the lock on
// every host.
func TestFactsFailingUnderTheLockReleaseIt(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	for _, tc := range []struct {
		name, second string
		want         []string
	}{
		{"the command fails", factsFail, []string{"host h2: gather facts: exit status 1", "nothing was changed on any host"}},
		{"they make no sense", "os debian 12\nnonsense line\n", []string{`host h2: facts line 2 "nonsense line"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, log := newSession(t, r, map[string][]string{
				"h1": {factsFor(r, "h1", mainConf)},
				"h2": {factsFor(r, "h2", mainConf), tc.second},
			})
			ctx := context.Background()
			err := s.GatherToChange(ctx)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("GatherToChange = %v, want %q", err, w)
				}
			}
			if s.Locked() {
				t.Error("still locked after failing")
			}
			for _, h := range []string{"h1", "h2"} {
				if !slices.ContainsFunc(*log, func(l string) bool { return strings.HasPrefix(l, h+": if grep -qxF") && strings.Contains(l, "rm -f") }) {
					t.Errorf("%s: the lock was not released:\n%s", h, strings.Join(*log, "\n"))
				}
			}
		})
	}
}

// A host without systemd is refused before anything is sent, named, with
// what it runs instead and what to do.
func TestHostWithoutSystemdIsRefused(t *testing.T) {
	r := svcRole{version: "2", secret: "s"}
	s, log := newSession(t, r, map[string][]string{
		"h1": {factsFor(r, "h1", mainConf)},
		"h2": {strings.Replace(factsFor(r, "h2", mainConf), "systemd 252\n", "systemd\n", 1)},
	})
	err := s.Gather(context.Background())
	if err == nil || !strings.Contains(err.Error(), "host h2 (debian 12): systemd not found") || strings.Contains(err.Error(), "host h1") {
		t.Fatalf("Gather = %v, want h2 refused for lack of systemd, and only h2", err)
	}
	for _, l := range *log {
		if !strings.HasSuffix(l, ": facts") {
			t.Errorf("a command besides the facts: %s", l)
		}
	}
}
