package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Result is what a finished command left.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// ExitError is returned by Run when the command ran and exited non-zero.
// Its message holds the command's stderr (or, if that is empty, the end of
// its stdout), which is usually what a person needs to see.
type ExitError struct {
	Host    string
	Command string // as given to Run, before any sudo wrapping
	Result
}

func (e *ExitError) Error() string {
	out := strings.TrimSpace(string(e.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(e.Stdout))
	}
	msg := fmt.Sprintf("host %s: %s: exit status %d", e.Host, shorten(e.Command, 120), e.ExitCode)
	if out != "" {
		msg += ": " + tail(out, 2000)
	}
	return msg
}

// shorten keeps an error line readable when a command is a long script.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// tail keeps the last n bytes of s; the end of a command's output is where
// the error usually is.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Run runs cmd on the host as root: directly when the login user is root,
// otherwise through sudo. cmd is a POSIX sh command line, run by /bin/sh
// whatever the login shell; use Quote for every argument that is not a
// constant. stdin may be nil. Never put a secret in cmd (it is visible in
// the host's process list and in error messages): send it through stdin or
// Upload.
//
// A command that exits non-zero returns the Result and an *ExitError. When
// ctx ends first, the command and everything it started are sent SIGTERM
// and its session is closed; Run then returns ctx's error.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	if _, ok := c.known(); !ok && stdin == nil {
		if res, err, ran := c.speculate(ctx, cmd); ran {
			return res, err
		}
	}
	p, err := c.ensurePrivilege(ctx)
	if err != nil {
		return Result{}, err
	}
	return c.runAs(ctx, cmd, cmd, stdin, p)
}

// runAs runs wire (cmd, or cmd with something before it) as p says and
// reports errors about cmd.
func (c *Client) runAs(ctx context.Context, cmd, wire string, stdin io.Reader, p privilege) (Result, error) {
	tag := runTag()
	res, err := c.run(ctx, wrap(wire, tag, p), cmd, sudoStdin(p.sudoPass, stdin))
	var ce *cancelledError
	if errors.As(err, &ce) {
		c.killTagged(tag, p)
	}
	return res, err
}

// runTag returns a word that marks the processes of one Run on the host.
func runTag() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return tagPrefix + hex.EncodeToString(b)
}

const tagPrefix = "natsdeploy-run:"

// wrap returns the command line sent for cmd.
//
// For a non-root login it adds sudo: `sh -c` makes the whole command line
// (pipes, redirections, &&) run as root, not just its first word; -n makes
// sudo fail instead of waiting for a password nobody will type.
//
// Either way cmd runs under /bin/sh inside groupWrapper, so that it is
// parsed the same way whatever the login shell, and so that cancelling a
// Run can stop all of it. tag is the wrapper's $0: it names the run in the
// process list, for killTagged. `exec` makes the process sshd started, the
// one a signal request reaches, be sudo or the wrapper itself.
func wrap(cmd, tag string, p privilege) string {
	w := "sh -c " + shell.Quote(groupWrapper) + " " + shell.Quote(tag) + " " + shell.Quote(cmd)
	if p.root {
		return "exec " + w
	}
	if p.sudoPass != nil {
		return "exec " + sudoWithPassword + w
	}
	return "exec sudo -n -- " + w
}

// groupWrapper runs its argument $1 with sh so that SIGTERM stops the whole
// command. sshd delivers a "signal" request to the process it started
// (and, as seen on the lab's OpenSSH 9.2, not at all for a root login), and
// sudo relays it to the one process it started: a shell, which dies and
// leaves its children (a `sleep`, a `systemctl`) running as orphans. So the
// command runs in the background and the wrapper waits for it with `wait`,
// which (unlike waiting for a foreground command) a trapped signal
// interrupts at once; the trap sends SIGTERM to the whole process group:
// the command, its children, and sudo. stdin is passed on through fd 3,
// because a background command's stdin would otherwise be /dev/null. The
// exit status is the command's.
const groupWrapper = `trap 'trap - TERM; kill -TERM 0' TERM; exec 3<&0; sh -c "$1" <&3 3<&- & wait $!`

// killTimeout bounds the clean-up command of a cancelled Run.
const killTimeout = 5 * time.Second

// killTagged sends SIGTERM to the processes of a cancelled Run, found by
// their tag among the arguments in /proc, so that the wrapper's trap stops
// the whole command. It is needed because OpenSSH refuses signal requests
// for root logins, and it also covers a sudo that did not pass the signal
// on. The tag is put together at run time so that this command's own
// process, whose arguments hold this script, does not match. grep -z reads
// /proc/PID/cmdline's NUL-separated arguments as lines (GNU grep; procps
// need not be installed). Best effort: the connection may be gone.
func (c *Client) killTagged(tag string, p privilege) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	id := strings.TrimPrefix(tag, tagPrefix)
	script := `t=` + strings.TrimSuffix(tagPrefix, ":") + `; t="$t:` + id + `"; ` +
		`for d in /proc/[0-9]*; do grep -qzxF -e "$t" "$d/cmdline" 2>/dev/null && kill -TERM "${d#/proc/}" 2>/dev/null; done; exit 0`
	_, _ = c.run(ctx, wrap(script, runTag(), p), "stop cancelled command", sudoStdin(p.sudoPass, nil))
}

// AsUser returns a command line that runs cmd as another user (say the
// service user, for `nats-server -t`), for use with Run, which runs as
// root. runuser (util-linux) needs no PAM session or password, unlike su.
func AsUser(user, cmd string) string {
	return "runuser -u " + shell.Quote(user) + " -- sh -c " + shell.Quote(cmd)
}

// ReadFile returns the content of a file on the host, read as root (so
// root-only files can be read by a sudo login too). A missing file gives an
// error for which errors.Is(err, fs.ErrNotExist) holds. The content comes
// back on the session's stdout, never on a command line. Meant for config
// files (plan diffs), not for large binaries.
func (c *Client) ReadFile(ctx context.Context, name string) ([]byte, error) {
	if !path.IsAbs(name) {
		return nil, fmt.Errorf("host %s: read %s: not an absolute path", c.cfg.Host, name)
	}
	q := shell.Quote(name)
	res, err := c.Run(ctx, "[ -e "+q+" ] || exit "+strconv.Itoa(exitNotExist)+"; exec cat -- "+q, nil)
	var ee *ExitError
	if errors.As(err, &ee) && ee.ExitCode == exitNotExist {
		return nil, fmt.Errorf("host %s: read %s: %w", c.cfg.Host, name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, &opError{host: c.cfg.Host, op: "read " + name, err: err}
	}
	return res.Stdout, nil
}

// exitNotExist is ReadFile's exit status for a missing file (EX_NOINPUT).
const exitNotExist = 66

// cancelGrace is how long Run waits, after ctx ended, for the session to
// wind down so that partial output can be returned.
const cancelGrace = 2 * time.Second

// run sends wire (the command line as sent) and reports errors about shown
// (the command as the caller wrote it).
func (c *Client) run(ctx context.Context, wire, shown string, stdin io.Reader) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("host %s: %s: %w", c.cfg.Host, shorten(shown, 120), err)
	}
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("host %s: %s: waiting for a free session: %w", c.cfg.Host, shorten(shown, 120), ctx.Err())
	}

	sess, err := c.newSession(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("host %s: %s: open session: %w", c.cfg.Host, shorten(shown, 120), c.connErr(err))
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout = &stdout
	sess.Stderr = &stderr
	sess.Stdin = stdin
	if err := sess.Start(wire); err != nil {
		return Result{}, fmt.Errorf("host %s: %s: start: %w", c.cfg.Host, shorten(shown, 120), c.connErr(err))
	}

	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Ask the command to stop, then drop the session; closing it
		// alone stops nothing on the host. Run follows up with
		// killTagged where sshd ignores the signal.
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
		res := Result{ExitCode: -1}
		select {
		case <-done:
			res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
		case <-time.After(cancelGrace):
			// The buffers may still be written to: return nothing.
		}
		return res, &cancelledError{fmt.Errorf("host %s: %s: %w", c.cfg.Host, shorten(shown, 120), ctx.Err())}
	}

	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitStatus()
		return res, &ExitError{Host: c.cfg.Host, Command: shown, Result: res}
	case errors.As(err, &missing):
		res.ExitCode = -1
		return res, fmt.Errorf("host %s: %s: the connection closed before the command reported its exit status: %w",
			c.cfg.Host, shorten(shown, 120), c.connErr(err))
	default:
		res.ExitCode = -1
		return res, fmt.Errorf("host %s: %s: %w", c.cfg.Host, shorten(shown, 120), c.connErr(err))
	}
}

// newSession opens a session, retrying for a while when sshd refuses it.
// sshd refuses sessions beyond its MaxSessions ("open failed"), and it
// frees a session slot only some time after our close reaches it, so a
// burst of short commands can be refused now and then even though
// Config.MaxSessions keeps us under the limit. Seen on the lab with 30
// concurrent Runs.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	delay := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		sess, err := c.ssh.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || attempt == 7 {
			return sess, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// cancelledError marks a command that was started and then cancelled, so
// Run knows to clean up after it on the host.
type cancelledError struct{ error }

func (e *cancelledError) Unwrap() error { return e.error }
