package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// privilege is how commands become root on a host.
type privilege struct {
	known bool
	root  bool // the login is uid 0: commands run as they are
	// sudoN: `sudo -n true` succeeds for the login (root or not).
	sudoN bool
	// sudoPass is the sudo password when sudo wants one (nil: it does
	// not). It is only ever written to sudo's stdin.
	sudoPass []byte
	// err is why commands cannot run as root on this host. Final: a
	// login's rights do not change within a run.
	err error
}

// guess is what the login's name says before the host has been asked:
// "root" is root, anyone else uses sudo -n.
func (c *Client) guess() privilege {
	root := c.cfg.User == "root"
	return privilege{root: root, sudoN: !root}
}

// known returns what is known of the login's rights, and whether
// anything is.
func (c *Client) known() (privilege, bool) {
	c.privMu.Lock()
	defer c.privMu.Unlock()
	return c.priv, c.priv.known
}

// learn records a guess that a command proved right by succeeding.
func (c *Client) learn(p privilege) {
	c.privMu.Lock()
	defer c.privMu.Unlock()
	if !c.priv.known {
		p.known = true
		c.priv = p
	}
}

// rootGuard keeps a command run on the guess that a login named root is
// uid 0 from running at all when it is not: it would run unprivileged
// and, worse, might succeed.
const rootGuard = `[ "$(id -u)" = 0 ] || exit 126` + "\n"

// speculate runs cmd as the guess says, before the host has been asked
// anything: on a host where the guess is right (nearly all), the first
// command of a run costs no extra round trip for the privilege check, and
// that first command is a no-op apply's only one. It reports ran=false
// when the guess was wrong and cmd therefore did not run at all: sudo -n
// refuses before it starts anything, and rootGuard stops a guessed root
// login that is not. Only when cmd fails is the host asked why.
func (c *Client) speculate(ctx context.Context, cmd string) (res Result, err error, ran bool) {
	g := c.guess()
	wire := cmd
	if g.root {
		wire = rootGuard + cmd
	}
	res, err = c.runAs(ctx, cmd, wire, nil, g)
	if err == nil {
		c.learn(g)
		return res, nil, true
	}
	if ctx.Err() != nil {
		return res, err, true
	}
	p, perr := c.ensurePrivilege(ctx)
	if perr != nil {
		return Result{}, perr, true
	}
	if g.root && p.root || !g.root && p.sudoN {
		return res, err, true // it ran, and failed by itself
	}
	return Result{}, nil, false
}

// ensurePrivilege returns what is known of the login's rights. If nothing
// is yet, it asks the host, once per connection, whether the login is root
// and, if not, whether sudo needs a password, and gets that password
// through Config.SudoPassword if it does.
func (c *Client) ensurePrivilege(ctx context.Context) (privilege, error) {
	if p, ok := c.known(); ok {
		return p, p.err
	}
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if p, ok := c.known(); ok {
		return p, p.err // another command asked while this one waited
	}
	// The probe is bounded like the handshake: a host that authenticates
	// but then hangs should fail, not stall the run.
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	p, err := c.checkPrivilege(pctx)
	cancel()
	if errors.Is(err, errNeedsSudoPassword) {
		p.sudoPass, err = c.useSudoPassword(ctx)
	}
	if ctx.Err() != nil && err != nil {
		return p, err // not final: the caller gave up, the host did not say no
	}
	if err != nil {
		err = &PrivilegeError{err}
	}
	p.known, p.err = true, err
	c.privMu.Lock()
	c.priv = p
	c.privMu.Unlock()
	return p, err
}

// PrivilegeError says that commands cannot run as root on a host (no
// sudo, sudo wants a password nobody gave, or refused the one given), or
// that the host would not say. Its message names the host.
type PrivilegeError struct{ err error }

func (e *PrivilegeError) Error() string { return e.err.Error() }
func (e *PrivilegeError) Unwrap() error { return e.err }

// privilegeProbe is the command checkPrivilege sends.
const privilegeProbe = "id -u; sudo -n true"

// errNeedsSudoPassword is checkPrivilege's word that sudo wants a password
// and Config.SudoPassword can give one.
var errNeedsSudoPassword = errors.New("sudo wants a password")

// checkPrivilege finds out whether the login user is root and whether it
// may run sudo without a password, in one round trip: `id -u` then
// `sudo -n true`, separated by `;`, which every login shell (sh, bash,
// zsh, fish, csh) reads the same way. The exit status is sudo's; a root
// login without sudo is fine (root may have no sudo at all).
func (c *Client) checkPrivilege(ctx context.Context) (privilege, error) {
	res, err := c.run(ctx, privilegeProbe, privilegeProbe, nil)
	uid, _, _ := strings.Cut(string(res.Stdout), "\n")
	switch uid = strings.TrimSpace(uid); {
	case uid == "0":
		return privilege{root: true, sudoN: err == nil}, nil
	case uid == "":
		if err == nil {
			err = errors.New("id -u printed nothing")
		}
		return privilege{}, &opError{host: c.cfg.Host, op: "find out whether " + c.cfg.User + " is root", err: err}
	case err == nil:
		return privilege{sudoN: true}, nil
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		return privilege{}, &opError{host: c.cfg.Host, op: "check sudo for " + c.cfg.User, err: err}
	}
	said := strings.TrimSpace(string(res.Stderr))
	if said == "" {
		said = fmt.Sprintf("exit status %d", res.ExitCode)
	}
	if res.ExitCode == 127 {
		return privilege{}, fmt.Errorf("host %s: user %s is not root and sudo is not installed (%s); log in as root or install sudo with a NOPASSWD rule for %s",
			c.cfg.Host, c.cfg.User, said, c.cfg.User)
	}
	if c.cfg.SudoPassword != nil {
		return privilege{}, errNeedsSudoPassword
	}
	return privilege{}, fmt.Errorf("host %s: user %s needs passwordless sudo: sudo said: %s", c.cfg.Host, c.cfg.User, said)
}

// useSudoPassword gets the sudo password and checks that sudo takes it.
// The password goes to sudo on stdin only (sudo -S), never on a command
// line, where the host's process list and our error messages would show it.
func (c *Client) useSudoPassword(ctx context.Context) ([]byte, error) {
	// Not under the probe's timeout: a person may be typing it.
	pw, err := c.cfg.SudoPassword(c.cfg.Host, c.cfg.User)
	if err != nil {
		return nil, fmt.Errorf("host %s: user %s needs a sudo password: %w", c.cfg.Host, c.cfg.User, err)
	}
	if len(pw) == 0 || bytes.ContainsAny(pw, "\r\n") {
		return nil, fmt.Errorf("host %s: the sudo password for %s is empty or has a line break; sudo reads one line", c.cfg.Host, c.cfg.User)
	}
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := c.run(pctx, "exec "+sudoWithPassword+"true", "sudo -S true", sudoStdin(pw, nil))
	if err == nil {
		return pw, nil
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		return nil, &opError{host: c.cfg.Host, op: "check the sudo password of " + c.cfg.User, err: err}
	}
	said := redact(strings.TrimSpace(string(res.Stderr)), pw)
	if said == "" {
		said = fmt.Sprintf("exit status %d", res.ExitCode)
	}
	return nil, fmt.Errorf("host %s: sudo refused the password given for %s: sudo said: %s; check the password (sudo_password_env in [ssh], or the one typed)",
		c.cfg.Host, c.cfg.User, said)
}

// sudoWithPassword runs a command with the password read from stdin's
// first line. -k ignores cached credentials so that sudo always reads that
// line: if it skipped it, the command would read the password as its input.
// An empty -p prompt keeps the prompt out of stderr.
const sudoWithPassword = "sudo -k -S -p '' -- "

// sudoStdin puts the sudo password line (if any) before a command's
// stdin. sudo reads its password a byte at a time, so the rest is left for
// the command.
func sudoStdin(pw []byte, stdin io.Reader) io.Reader {
	if pw == nil {
		return stdin
	}
	line := append(bytes.Clone(pw), '\n')
	if stdin == nil {
		return bytes.NewReader(line)
	}
	return io.MultiReader(bytes.NewReader(line), stdin)
}

// redact hides the password should some sudo echo it back.
func redact(s string, pw []byte) string {
	if len(pw) == 0 {
		return s
	}
	return strings.ReplaceAll(s, string(pw), "[sudo password]")
}
