// Package apply carries out plans on hosts in three steps, so that a bad
// config or an interrupted run never leaves a host half changed:
//
//  1. Stage (all hosts in parallel): create users and directories, upload
//     every changed file next to its final path, and validate each config
//     group as a whole with the new binary, as the service user.
//  2. Commit (all hosts in parallel, only if every host staged cleanly):
//     write down the handlers each host owes, then rename the staged files
//     into place, daemon-reload, enable units.
//  3. Handlers (see handlers.go): start stopped services together, reload
//     where a file's role says a reload is enough, and restart one host
//     at a time.
//
// The handlers owed are written to the host before any file is swapped, so
// a run killed between commit and handlers is finished by the next run.
//
// A run with several roles takes these steps once per role, in order (see
// Waves), with every role's files sent ahead from the start (Pipeline).
package apply

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Conn is what apply needs of a host connection; commands run as root.
type Conn interface {
	// Exec runs cmd and returns its stdout; a non-zero exit is an error
	// that carries stderr.
	Exec(ctx context.Context, cmd string) (string, error)
	Upload(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error
	// HTTPClient reaches the host's loopback (monitoring endpoints).
	HTTPClient() *http.Client
}

// Batch sends files ahead and installs them together with one command
// (see remote.Batch).
type Batch interface {
	Send(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error
	Install(ctx context.Context) error
	Discard(ctx context.Context)
}

// Batcher is a Conn that can batch uploads. Stage then sends every file
// while the users and directories are being created, and installs them
// all with one command instead of one per file.
type Batcher interface {
	NewBatch() Batch
}

// send is how one file reaches the host: Conn.Upload or Batch.Send.
type send func(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error

// Target is one host with its connection, plan and desired state.
type Target struct {
	Name    string
	Conn    Conn
	Plan    plan.Host
	Desired desired.Host
	Facts   facts.Host
	// Events receives each step on this host; nil: the steps' lines go
	// through the Logf given, as before events existed.
	Events progress.Sink
}

// emit reports an event of t's, if the run watches events.
func (t Target) emit(e progress.Event) {
	if t.Events != nil {
		e.Host = t.Name
		t.Events.Event(e)
	}
}

// quiet reports a step that has no line of its own in the plain log.
func (t Target) quiet(e progress.Event) {
	e.Quiet = true
	t.emit(e)
}

// say reports a step with its line: as an event when the run watches
// events (the plain renderer prints the line), else through logf.
func say(t Target, logf Logf, e progress.Event, format string, args ...any) {
	if t.Events != nil {
		e.Detail = fmt.Sprintf(format, args...)
		t.emit(e)
		return
	}
	logf(t.Name, format, args...)
}

// stageDirName holds a config group's staged files, inside the group's own
// directory so the final rename stays on one filesystem.
const stageDirName = ".natsdeploy-stage"

// stagedPath is where f waits between Stage and Commit.
func stagedPath(f desired.File) string {
	dir, base := path.Split(f.Path)
	if f.ValidateGroup != "" {
		return path.Join(dir, stageDirName, base)
	}
	return path.Join(dir, "."+base+".natsdeploy-new")
}

// Stage prepares one host; nothing it does changes what a running service
// sees. On a validation failure it removes what it staged. On a conn that
// can batch, the files travel while the users and directories are made
// (the staging directory needs neither), and one command installs them.
func Stage(ctx context.Context, t Target) error {
	p := SendAhead(ctx, [][]Target{{t}})
	defer p.Close(ctx)
	return p.Stage(ctx, t, 0)
}

// validateAll validates every config group t's changes touch, and removes
// what was staged when one is rejected.
func validateAll(ctx context.Context, t Target) error {
	for _, g := range groupsToValidate(t) {
		t.quiet(progress.Event{Phase: progress.Validate, Kind: progress.Start, Detail: g.name})
		if err := g.validate(ctx, t); err != nil {
			Abort(ctx, t)
			return err
		}
		t.quiet(progress.Event{Phase: progress.Validate, Kind: progress.Done, Detail: g.name})
	}
	return nil
}

// prepare creates the users and directories the plan wants and an empty
// staging dir for each config group to validate, in one command: each
// command sent costs a round trip and, for a sudo login, a sudo. Every
// staging dir starts from empty so a file left by a killed run is never
// validated or committed by mistake.
func prepare(ctx context.Context, t Target, groups []validateGroup) error {
	var steps []string
	step := func(what, cmd string) {
		steps = append(steps, fmt.Sprintf("{ %s; } || fail %s", cmd, shell.Quote(what)))
	}
	for _, u := range t.Plan.Users {
		shellPath := u.Shell
		if shellPath == "" {
			shellPath = "/usr/sbin/nologin"
		}
		step("create user "+u.Name, shell.Join("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", u.Home, "--shell", shellPath, u.Name))
	}
	for _, d := range t.Plan.Dirs {
		q := shell.Quote(d.Dir.Path)
		step("create directory "+d.Dir.Path, fmt.Sprintf("mkdir -p %s && chown %s %s && chmod %04o %s",
			q, shell.Quote(d.Dir.Owner+":"+d.Dir.Group), q, d.Dir.Mode.Perm(), q))
	}
	for _, g := range groups {
		dir := shell.Quote(path.Join(path.Dir(g.files[0].Path), stageDirName))
		owner, group := g.files[0].Owner, g.files[0].Group
		step("create staging dir "+path.Join(path.Dir(g.files[0].Path), stageDirName), fmt.Sprintf("rm -rf %s && mkdir -m 0750 %s && chown %s %s",
			dir, dir, shell.Quote(owner+":"+group), dir))
	}
	if len(steps) == 0 {
		return nil
	}
	script := "fail() { echo \"could not $1\" >&2; exit 1; }\n" + strings.Join(steps, "\n")
	if _, err := t.Conn.Exec(ctx, script); err != nil {
		return fmt.Errorf("host %s: prepare users and directories: %w", t.Name, err)
	}
	return nil
}

// uploadsAtOnce bounds the uploads in flight to one host: small files
// cost round trips more than bandwidth, so several overlap, while an SSH
// connection's sessions (sshd's MaxSessions, 10 by default) stay free
// for the commands an upload needs.
const uploadsAtOnce = 4

// uploadAll sends every file the plan uploads, several at a time; the
// first error stops the rest from starting.
func uploadAll(ctx context.Context, t Target, put send) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, uploadsAtOnce)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	// Rendered files first, files from disk (binaries) after: sshd's SFTP
	// server answers requests one after another, so a small file started
	// beside a binary waits for all of its writes, and each small file
	// is mostly round trips that can overlap the binary's transfer.
	var files []plan.FileChange
	for _, fromDisk := range []bool{false, true} {
		for _, c := range t.Plan.Files {
			if c.Upload && (c.File.Source != "") == fromDisk {
				files = append(files, c)
			}
		}
	}
	for _, c := range files {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := upload(ctx, t, c.File, stagedPath(c.File), put); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// upload sends f to dst, reporting its bytes as they go (the count, never
// the content: a file may hold secrets).
func upload(ctx context.Context, t Target, f desired.File, dst string, put send) error {
	var r io.Reader
	var total int64
	if f.Source != "" {
		fh, err := os.Open(f.Source)
		if err != nil {
			return onHost(t.Name, "upload "+f.Path, err)
		}
		defer fh.Close()
		if st, err := fh.Stat(); err == nil {
			total = st.Size()
		}
		r = fh
	} else {
		r = bytes.NewReader(f.Content)
		total = int64(len(f.Content))
	}
	ev := progress.Event{Phase: progress.Upload, Path: f.Path, Total: total}
	t.quiet(withKind(ev, progress.Start))
	if t.Events != nil {
		r = &counting{r: r, every: uploadReportEvery, report: func(n int64) {
			e := withKind(ev, progress.Progress)
			e.Bytes = n
			t.quiet(e)
		}}
	}
	if err := put(ctx, r, dst, f.Mode.Perm(), f.Owner, f.Group); err != nil {
		e := withKind(ev, progress.Fail)
		e.Detail = err.Error()
		t.quiet(e)
		return onHost(t.Name, "upload "+f.Path, err)
	}
	done := withKind(ev, progress.Done)
	done.Bytes = total
	t.quiet(done)
	return nil
}

// hostError says which host and what was being done, naming the host
// once: a connection's own errors name it already.
type hostError struct {
	host, op string
	err      error
}

func onHost(host, op string, err error) error { return &hostError{host: host, op: op, err: err} }

func (e *hostError) Error() string {
	prefix := "host " + e.host + ": "
	return prefix + e.op + ": " + strings.TrimPrefix(e.err.Error(), prefix)
}

func (e *hostError) Unwrap() error { return e.err }

func withKind(e progress.Event, k progress.Kind) progress.Event {
	e.Kind = k
	return e
}

// uploadReportEvery spaces an upload's progress events: often enough for a
// rate to move on screen, rarely enough that --json stays readable.
const uploadReportEvery = 250 * time.Millisecond

// counting reports how much has been read through it, at most once per
// every.
type counting struct {
	r      io.Reader
	n      int64
	every  time.Duration
	last   time.Time
	report func(int64)
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); n > 0 && now.Sub(c.last) >= c.every {
		c.last = now
		c.report(c.n)
	}
	return n, err
}

type validateGroup struct {
	name  string
	cmd   string
	files []desired.File
}

// groupsToValidate returns the config groups that must be validated: those
// with a changed file, or whose command runs a file that changed (a new
// binary must accept the config before it is swapped in).
func groupsToValidate(t Target) []validateGroup {
	changed := map[string]bool{}
	for _, c := range t.Plan.Files {
		if c.Upload {
			changed[c.File.Path] = true
		}
	}
	byName := map[string]*validateGroup{}
	var names []string
	for _, f := range t.Desired.Files {
		if f.ValidateGroup == "" {
			continue
		}
		g, ok := byName[f.ValidateGroup]
		if !ok {
			g = &validateGroup{name: f.ValidateGroup, cmd: f.ValidateCmd}
			byName[f.ValidateGroup] = g
			names = append(names, f.ValidateGroup)
		}
		g.files = append(g.files, f)
	}
	sort.Strings(names)
	var out []validateGroup
	for _, n := range names {
		g := byName[n]
		need := false
		for _, f := range g.files {
			need = need || changed[f.Path]
		}
		for p := range changed {
			need = need || strings.Contains(g.cmd, p)
		}
		if need {
			out = append(out, *g)
		}
	}
	return out
}

// validate completes the staging dir with copies of the unchanged files of
// the group and runs the group's command against it, with every changed
// file the command names (the binary) replaced by its staged copy.
func (g validateGroup) validate(ctx context.Context, t Target) error {
	changed := map[string]bool{}
	for _, c := range t.Plan.Files {
		if c.Upload {
			changed[c.File.Path] = true
		}
	}
	var cmds []string
	for _, f := range g.files {
		if !changed[f.Path] {
			cmds = append(cmds, shell.Join("cp", "-p", f.Path, stagedPath(f)))
		}
	}
	if len(cmds) > 0 {
		if _, err := t.Conn.Exec(ctx, strings.Join(cmds, " && ")); err != nil {
			return fmt.Errorf("host %s: stage unchanged files of %s: %w", t.Name, g.name, err)
		}
	}
	cmd := strings.ReplaceAll(g.cmd, "{dir}", shell.Quote(path.Join(path.Dir(g.files[0].Path), stageDirName)))
	for _, c := range t.Plan.Files {
		if c.Upload && c.File.ValidateGroup == "" {
			cmd = strings.ReplaceAll(cmd, c.File.Path, shell.Quote(stagedPath(c.File)))
		}
	}
	if out, err := t.Conn.Exec(ctx, cmd+" 2>&1"); err != nil {
		return fmt.Errorf("host %s: the new %s was rejected, none of its files was swapped in: %w %s", t.Name, g.name, err, strings.TrimSpace(out))
	}
	return nil
}

// Abort removes everything Stage uploaded on a host.
func Abort(ctx context.Context, t Target) {
	var paths []string
	seen := map[string]bool{}
	for _, c := range t.Plan.Files {
		p := stagedPath(c.File)
		if c.File.ValidateGroup != "" {
			p = path.Dir(p)
		}
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	if len(paths) > 0 {
		// Best effort: a leftover is overwritten by the next run anyway.
		_, _ = t.Conn.Exec(context.WithoutCancel(ctx), "rm -rf "+shell.Join(paths...))
	}
}

// Commit swaps the staged files into place on one host, after recording
// the handlers it will owe, in one remote command.
func Commit(ctx context.Context, t Target) error {
	var lines []string
	lines = append(lines, "set -e", "mkdir -p -m 0700 "+facts.StateDir)
	svcs := make([]string, 0, len(t.Plan.Handlers))
	for s := range t.Plan.Handlers {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	for _, s := range svcs {
		if h := t.Plan.Handlers[s]; h != desired.None {
			lines = append(lines, fmt.Sprintf("echo %s > %s", h, shell.Quote(PendingPath(s))))
		}
	}
	stageDirs := map[string]bool{}
	sums := map[string]string{}
	for _, c := range t.Plan.Files {
		q := shell.Quote(c.File.Path)
		if c.Upload {
			lines = append(lines, shell.Join("mv", "-f", stagedPath(c.File), c.File.Path))
			if c.File.ValidateGroup != "" {
				stageDirs[path.Dir(stagedPath(c.File))] = true
			}
			if c.File.SHA256 != "" {
				sums[c.File.Path] = c.File.SHA256
			}
			continue
		}
		lines = append(lines, fmt.Sprintf("chown %s %s && chmod %04o %s", shell.Quote(c.File.Owner+":"+c.File.Group), q, c.File.Mode.Perm(), q))
	}
	if rec := facts.RecordSums(sums); rec != "" {
		lines = append(lines, rec)
	}
	for _, f := range t.Desired.Files {
		if f.ValidateGroup != "" {
			stageDirs[path.Join(path.Dir(f.Path), stageDirName)] = true
		}
	}
	dirs := make([]string, 0, len(stageDirs))
	for d := range stageDirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if len(dirs) > 0 {
		lines = append(lines, "rm -rf "+shell.Join(dirs...))
	}
	// One enable for every unit, and one daemon-reload after it: a plain
	// enable reloads systemd itself, once per call, which on a busy host
	// is most of a commit.
	if len(t.Plan.Enable) > 0 {
		lines = append(lines, "systemctl enable --quiet --no-reload "+shell.Join(t.Plan.Enable...))
	}
	if t.Plan.DaemonReload || len(t.Plan.Enable) > 0 {
		lines = append(lines, "systemctl daemon-reload")
	}
	t.quiet(progress.Event{Phase: progress.Commit, Kind: progress.Start})
	if _, err := t.Conn.Exec(ctx, strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("host %s: commit: %w", t.Name, err)
	}
	for _, c := range t.Plan.Files {
		t.quiet(progress.Event{Phase: progress.Commit, Kind: progress.Done, Path: c.File.Path})
	}
	return nil
}

// PendingPath is where a host records a handler it still owes a service.
func PendingPath(service string) string {
	return path.Join(facts.StateDir, "pending-"+service)
}
