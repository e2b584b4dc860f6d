package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/plan"
)

// overlapConn records commands and counts the uploads in flight; each
// upload waits a little for company, so overlapping uploads show.
type overlapConn struct {
	mu       sync.Mutex
	cmds     []string
	inFlight int
	most     int
	failOn   string // an upload to this path fails as a remote.Client's does
	started  []string
}

func (c *overlapConn) Exec(_ context.Context, cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, cmd)
	return "", nil
}

func (c *overlapConn) Upload(ctx context.Context, r io.Reader, dst string, _ fs.FileMode, _, _ string) error {
	io.Copy(io.Discard, r)
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.started = append(c.started, dst)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	if c.failOn != "" && strings.Contains(dst, c.failOn) {
		return fmt.Errorf("host h1: upload %s: write: no space left on device", dst)
	}
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (c *overlapConn) HTTPClient() *http.Client { return nil }

func stagingTarget(conn Conn, files int) Target {
	tg := Target{Name: "h1", Conn: conn, Plan: plan.Host{Name: "h1", Handlers: map[string]desired.Handler{}}}
	tg.Plan.Users = []desired.User{{Name: "nats", Home: "/var/lib/nats"}, {Name: "prometheus", Home: "/var/lib/prometheus"}}
	tg.Plan.Dirs = []plan.DirChange{
		{Dir: desired.Dir{Path: "/etc/nats", Owner: "root", Group: "nats", Mode: 0o750}},
		{Dir: desired.Dir{Path: "/var/lib/nats", Owner: "nats", Group: "nats", Mode: 0o750}},
	}
	conf := desired.File{Path: "/etc/nats/nats-server.conf", Content: []byte("x"), Mode: 0o640, Owner: "root", Group: "nats",
		ValidateGroup: "nats-config", ValidateCmd: "true {dir}"}
	tg.Desired.Files = []desired.File{conf}
	tg.Plan.Files = []plan.FileChange{{File: conf, Upload: true}}
	for i := 1; i < files; i++ {
		f := desired.File{Path: fmt.Sprintf("/etc/nats/f%d.pem", i), Content: []byte("y"), Mode: 0o640, Owner: "root", Group: "nats"}
		tg.Desired.Files = append(tg.Desired.Files, f)
		tg.Plan.Files = append(tg.Plan.Files, plan.FileChange{File: f, Upload: true})
	}
	return tg
}

// Users, directories and staging dirs go in one command before any
// upload; the uploads overlap, never more than uploadsAtOnce at a time.
func TestStageBatchesAndOverlapsUploads(t *testing.T) {
	conn := &overlapConn{}
	if err := Stage(context.Background(), stagingTarget(conn, 10)); err != nil {
		t.Fatal(err)
	}
	if len(conn.cmds) < 1 {
		t.Fatal("no command sent")
	}
	first := conn.cmds[0]
	for _, want := range []string{"useradd --system --user-group --no-create-home --home-dir /var/lib/nats --shell /usr/sbin/nologin nats",
		"--home-dir /var/lib/prometheus", "mkdir -p /etc/nats && chown root:nats /etc/nats && chmod 0750 /etc/nats",
		"mkdir -p /var/lib/nats", "rm -rf /etc/nats/.natsdeploy-stage && mkdir -m 0750 /etc/nats/.natsdeploy-stage"} {
		if !strings.Contains(first, want) {
			t.Errorf("the first command lacks %q:\n%s", want, first)
		}
	}
	for _, c := range conn.cmds[1:] {
		if strings.Contains(c, "useradd") || strings.Contains(c, "mkdir") {
			t.Errorf("users or dirs in a command of their own: %s", c)
		}
	}
	if conn.most < 2 || conn.most > uploadsAtOnce {
		t.Errorf("at most %d uploads at once, want 2..%d", conn.most, uploadsAtOnce)
	}
}

// Files from disk (the binaries, megabytes) go after the rendered ones
// (bytes): sshd's SFTP server answers requests in order, so a small file
// started beside a binary waits for all of the binary's writes.
func TestStageUploadsBinariesLast(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nats-server")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	tg := stagingTarget(nil, 10)
	f := desired.File{Path: "/usr/local/bin/nats-server", Source: bin, Mode: 0o755, Owner: "root", Group: "root"}
	tg.Desired.Files = append([]desired.File{f}, tg.Desired.Files...)
	tg.Plan.Files = append([]plan.FileChange{{File: f, Upload: true}}, tg.Plan.Files...)
	conn := &overlapConn{}
	tg.Conn = conn
	if err := Stage(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	// It cannot start before every rendered file has been started but
	// the few still in flight beside it.
	at := slices.IndexFunc(conn.started, func(p string) bool { return strings.HasPrefix(p, "/usr/local/bin/") })
	if n := len(conn.started); at < n-uploadsAtOnce {
		t.Errorf("the binary was upload %d of %d: %q", at+1, n, conn.started)
	}
}

// A failed upload names the host once, and the file, and stops the stage.
func TestStageUploadErrorNamesHostOnce(t *testing.T) {
	conn := &overlapConn{failOn: "f3.pem"}
	err := Stage(context.Background(), stagingTarget(conn, 10))
	if err == nil {
		t.Fatal("Stage succeeded")
	}
	msg := err.Error()
	if strings.Count(msg, "host h1") != 1 || !strings.HasPrefix(msg, "host h1: upload /etc/nats/f3.pem: ") || !strings.Contains(msg, "no space left on device") {
		t.Errorf("error %q: want the host once, the file and the cause", msg)
	}
	for _, c := range conn.cmds {
		if strings.Contains(c, " -t ") || strings.HasPrefix(c, "true ") {
			t.Errorf("validated after a failed upload: %s", c)
		}
	}
}

// shConn runs commands with the local /bin/sh, with PATH's first
// directory holding fakes.
type shConn struct{ bin string }

func (c shConn) Exec(ctx context.Context, cmd string) (string, error) {
	var out, errb bytes.Buffer
	x := exec.CommandContext(ctx, "sh", "-c", cmd)
	x.Env = append(os.Environ(), "PATH="+c.bin+":"+os.Getenv("PATH"))
	x.Stdout, x.Stderr = &out, &errb
	if err := x.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (c shConn) Upload(context.Context, io.Reader, string, fs.FileMode, string, string) error {
	return errors.New("no uploads here")
}

func (c shConn) HTTPClient() *http.Client { return nil }

// The one prepare command says which of its steps failed, and stops there.
func TestPrepareSaysWhichStepFailed(t *testing.T) {
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "mkdir-ran")
	os.WriteFile(filepath.Join(bin, "useradd"), []byte("#!/bin/sh\n[ \"$#\" -gt 0 ] && [ \"${8:-}\" = prometheus ] && { echo 'useradd: group prometheus exists' >&2; exit 9; }\nexit 0\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "mkdir"), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	tg := stagingTarget(shConn{bin: bin}, 1)
	err := prepare(context.Background(), tg, groupsToValidate(tg))
	if err == nil || !strings.Contains(err.Error(), "host h1: prepare users and directories: ") ||
		!strings.Contains(err.Error(), "useradd: group prometheus exists") || !strings.Contains(err.Error(), "could not create user prometheus") {
		t.Fatalf("error %v: want the step and what it said", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the steps after the failed one ran")
	}
}

// An upload reports its progress after a read that moved bytes, at most
// once per interval: never for an empty read, and with every = 0 after
// each read that moved bytes.
func TestCountingReportsProgress(t *testing.T) {
	var got []int64
	c := &counting{r: &chunks{sizes: []int{3, 0, 4}}, every: 0, report: func(n int64) { got = append(got, n) }}
	buf := make([]byte, 8)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	if fmt.Sprint(got) != "[3 7]" {
		t.Errorf("reports %v, want [3 7]", got)
	}
	got = nil
	c = &counting{r: &chunks{sizes: []int{3, 4}}, every: time.Hour, report: func(n int64) { got = append(got, n) }}
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	if fmt.Sprint(got) != "[3]" {
		t.Errorf("with an hour between reports: %v, want only the first, [3]", got)
	}
}

// chunks is a reader that gives reads of the given sizes, then EOF.
type chunks struct{ sizes []int }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.sizes) == 0 {
		return 0, io.EOF
	}
	n := c.sizes[0]
	c.sizes = c.sizes[1:]
	return n, nil
}

// batchConn is an overlapConn that batches: Send is its Upload, and it
// records whether a send happened before prepare's command ended, and
// what was installed or discarded.
type batchConn struct {
	overlapConn
	prepareFails bool
	sentEarly    chan struct{} // closed by the first send
	once         sync.Once
	installs     [][]string
	discarded    []string
	discards     int
	batch        []string
	installFails bool
}

func newBatchConn() *batchConn { return &batchConn{sentEarly: make(chan struct{})} }

func (c *batchConn) Exec(ctx context.Context, cmd string) (string, error) {
	if strings.Contains(cmd, "useradd") {
		// prepare waits for a send: it only comes if sending does not
		// wait for prepare.
		select {
		case <-c.sentEarly:
		case <-time.After(5 * time.Second):
			return "", errors.New("no file was sent while prepare ran")
		}
		if c.prepareFails {
			return "", errors.New("useradd: cannot lock /etc/passwd")
		}
	}
	return c.overlapConn.Exec(ctx, cmd)
}

func (c *batchConn) NewBatch() Batch { return c }

func (c *batchConn) Send(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	c.once.Do(func() { close(c.sentEarly) })
	if err := c.overlapConn.Upload(ctx, r, dst, mode, owner, group); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch = append(c.batch, dst)
	return nil
}

func (c *batchConn) Install(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.installs = append(c.installs, c.batch)
	c.batch = nil
	if c.installFails {
		return errors.New("host h1: install 10 uploaded file(s): install: invalid group 'nats'")
	}
	return nil
}

func (c *batchConn) Discard(context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.discards++
	c.discarded = append(c.discarded, c.batch...)
	c.batch = nil
}

// A connection that batches gets every file sent while the users and
// directories are created, and installed by one command after both,
// before validation; a failure on either side installs nothing and
// leaves nothing staged.
func TestStageBatched(t *testing.T) {
	t.Run("sent beside prepare, installed once", func(t *testing.T) {
		conn := newBatchConn()
		if err := Stage(context.Background(), stagingTarget(conn, 10)); err != nil {
			t.Fatal(err)
		}
		if len(conn.installs) != 1 || len(conn.installs[0]) != 10 {
			t.Fatalf("installs %q, want one of 10 files", conn.installs)
		}
		if len(conn.discarded) != 0 {
			t.Errorf("discarded %q", conn.discarded)
		}
		// Validation comes after the install, so it sees the files.
		if n := len(conn.cmds); n < 2 || !strings.Contains(conn.cmds[n-1], "true ") {
			t.Errorf("commands %q: want validation last", conn.cmds)
		}
	})
	t.Run("prepare fails", func(t *testing.T) {
		conn := newBatchConn()
		conn.prepareFails = true
		err := Stage(context.Background(), stagingTarget(conn, 10))
		if err == nil || !strings.Contains(err.Error(), "host h1: prepare users and directories") || !strings.Contains(err.Error(), "cannot lock") {
			t.Fatalf("err = %v", err)
		}
		// The sends in flight were stopped, not finished.
		if len(conn.installs) != 0 || conn.discards != 1 || len(conn.batch) != 0 || len(conn.discarded) == 10 {
			t.Errorf("installed %q, discarded %d times (%d files), left %q", conn.installs, conn.discards, len(conn.discarded), conn.batch)
		}
	})
	t.Run("a send fails", func(t *testing.T) {
		conn := newBatchConn()
		conn.failOn = "f3.pem"
		err := Stage(context.Background(), stagingTarget(conn, 10))
		if err == nil || !strings.HasPrefix(err.Error(), "host h1: upload /etc/nats/f3.pem: ") || strings.Count(err.Error(), "host h1") != 1 {
			t.Fatalf("err = %v", err)
		}
		if len(conn.installs) != 0 || conn.discards != 1 || len(conn.batch) != 0 {
			t.Errorf("installed %q, discarded %d times, left %q", conn.installs, conn.discards, conn.batch)
		}
	})
	t.Run("the install fails", func(t *testing.T) {
		conn := newBatchConn()
		conn.installFails = true
		err := Stage(context.Background(), stagingTarget(conn, 10))
		if err == nil || err.Error() != "host h1: stage files: install 10 uploaded file(s): install: invalid group 'nats'" {
			t.Fatalf("err = %v", err)
		}
		for _, c := range conn.cmds {
			if strings.HasPrefix(c, "true ") {
				t.Errorf("validated after a failed install: %s", c)
			}
		}
	})
}
