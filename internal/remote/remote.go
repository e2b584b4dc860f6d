// Package remote is natsdeploy's only way to touch a host: one SSH
// connection per host, shared by every command, file transfer and HTTP
// health check of a run.
//
// Why one connection: opening a connection per command (what TiUP does)
// exhausts sshd's MaxStartups and costs a handshake each time. Commands run
// as sessions multiplexed on the connection, file transfers use one SFTP
// client opened lazily on it, and HTTP requests to the host's loopback go
// through direct-tcpip channels on it.
//
// Host keys are always checked against a known_hosts file. Trusting a new
// key is an explicit choice (Config.AcceptNew, like OpenSSH's accept-new); a
// changed key is always refused.
//
// A non-root user must have passwordless sudo, or a sudo password given
// through Config.SudoPassword; every command is then run through `sudo -n`,
// or `sudo -S` with the password on stdin. The first command on a
// connection runs as the login's name suggests (root as it is, anyone else
// through sudo -n), so a run whose first command is its only one (a no-op
// apply) asks nothing else; the host is asked only when that guess cannot
// be confirmed, and a login that cannot become root fails that first
// command, before anything is changed.
//
// Every command runs under /bin/sh in a small wrapper (see Client.Run)
// so that cancelling a Run stops the command and all its children on the
// host: neither sshd nor sudo does that by itself.
//
// Uploads are atomic (temporary file, fsync, rename) and carry file
// contents over SFTP only, never on a command line.
package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Defaults used when a Config leaves a field at its zero value.
const (
	DefaultPort        = 22
	DefaultTimeout     = 10 * time.Second
	DefaultKeepAlive   = 15 * time.Second
	DefaultMaxSessions = 8
)

// Config says how to reach one host.
type Config struct {
	// Host is the inventory name of the host. Every error names it.
	Host string
	// Address is the IP address or DNS name to connect to. It is also the
	// name looked up in (and written to) the known_hosts file.
	Address string
	// Port defaults to 22.
	Port int
	// User is the login user. If it is not root (uid 0) it needs sudo:
	// passwordless, or with a password from SudoPassword.
	User string
	// IdentityFiles are unencrypted private keys to offer, after the
	// agent's keys. An encrypted key is an error unless an agent is in use
	// (the agent is then expected to hold it): natsdeploy never prompts.
	// A leading "~/" is expanded to the home directory.
	IdentityFiles []string
	// UseAgent offers the keys of the ssh-agent at $SSH_AUTH_SOCK first,
	// when that variable is set.
	UseAgent bool
	// KnownHosts is the known_hosts file host keys are checked against. A
	// missing file is treated as empty. A leading "~/" is expanded.
	KnownHosts string
	// AcceptNew records the key of a host that has no key in KnownHosts
	// yet (OpenSSH's StrictHostKeyChecking=accept-new). The file is created
	// with mode 0600 (its directory 0700) if missing. A host whose key
	// differs from the recorded one is always refused.
	AcceptNew bool
	// Timeout bounds the TCP dial and the SSH handshake. Default 10s.
	Timeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com probes; a
	// connection that does not answer within three intervals is closed, so
	// commands on a host that vanished fail instead of hanging forever.
	// Default 15s; negative disables.
	KeepAlive time.Duration
	// SudoPassword, when set, gives the sudo password of a non-root User
	// whose sudo asks for one (sudo -n true fails). It is called at most
	// once per connection, not under any timeout (it may prompt), and only
	// after the first command found passwordless sudo missing. nil:
	// passwordless sudo is required.
	SudoPassword func(host, user string) ([]byte, error)
	// Jump lists the jump hosts to go through, first dialled first
	// (OpenSSH's ProxyJump). A hop without a user logs in as User, without
	// a port on 22. Each hop's key is checked against KnownHosts and each
	// hop is offered the same keys as the host.
	Jump []Hop
	// MaxSessions caps concurrent command sessions on the connection.
	// OpenSSH refuses more than MaxSessions (default 10) per connection,
	// and the SFTP client holds one. Default 8.
	MaxSessions int
	// Dialled, when set, is told how DialAll or DialSome's attempt at this
	// host ended, as soon as it has: a person watching sees each host
	// connect, not all of them when the slowest has.
	Dialled func(err error)
}

// addr returns host:port as dialled and as looked up in known_hosts.
func (c Config) addr() string {
	return net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	c.KnownHosts = expandHome(c.KnownHosts)
	// A copy: hops are filled in here, and the caller's slice may be
	// shared by every host of an inventory.
	c.Jump = slices.Clone(c.Jump)
	for i := range c.Jump {
		if c.Jump[i].User == "" {
			c.Jump[i].User = c.User
		}
		if c.Jump[i].Port == 0 {
			c.Jump[i].Port = DefaultPort
		}
	}
	return c
}

func (c Config) validate() error {
	var missing []string
	if c.Host == "" {
		return errors.New("remote: Config.Host (the inventory name) is empty")
	}
	if c.Address == "" {
		missing = append(missing, "address")
	}
	if c.User == "" {
		missing = append(missing, "user")
	}
	if c.KnownHosts == "" {
		missing = append(missing, "known_hosts file")
	}
	if len(missing) > 0 {
		return fmt.Errorf("host %s: no %s to connect with", c.Host, strings.Join(missing, ", "))
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("host %s: ssh port %d is out of range 1-65535", c.Host, c.Port)
	}
	return nil
}

// Client is an open connection to one host. It is safe for concurrent use.
type Client struct {
	cfg Config
	ssh *ssh.Client

	probeMu sync.Mutex // one privilege check at a time
	privMu  sync.Mutex
	priv    privilege // what is known of the login's rights
	// release gives back the jump host connections this one runs over.
	release func()

	sessions chan struct{} // semaphore, see Config.MaxSessions

	sftpMu  sync.Mutex
	sftp    *sftp.Client
	staging string // non-root upload staging dir, created lazily

	httpMu sync.Mutex
	http   *http.Client

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed by Close, stops the keepalive loop

	lostMu sync.Mutex
	lost   error // why the connection died, when the keepalive found it dead
}

// Dial connects to one host, through its jump hosts if it has any, checks
// its host key and authenticates. Whether the user is root or has sudo
// (passwordless, or with the password SudoPassword gives) is found out by
// the first command (see the package comment). The returned Client must
// be closed.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	return dial(ctx, cfg, newJumpPool())
}

func dial(ctx context.Context, cfg Config, pool *jumpPool) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var via *ssh.Client
	release := func() {}
	if len(cfg.Jump) > 0 {
		var err error
		via, release, err = pool.get(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", cfg.Host, err)
		}
	}
	sc, err := connect(ctx, cfg, via)
	if err != nil {
		release()
		return nil, err
	}

	c := &Client{
		cfg:      cfg,
		ssh:      sc,
		release:  release,
		sessions: make(chan struct{}, cfg.MaxSessions),
		done:     make(chan struct{}),
	}
	if cfg.KeepAlive > 0 {
		go c.keepAlive(cfg.KeepAlive)
	}
	return c, nil
}

// connect opens an SSH connection to cfg's address, directly or, when via
// is set, through a direct-tcpip channel of that connection (one hop of a
// jump chain), and checks the host key and authenticates.
func connect(ctx context.Context, cfg Config, via *ssh.Client) (*ssh.Client, error) {
	hk, err := newHostKeyChecker(cfg)
	if err != nil {
		return nil, err
	}
	auth, err := newAuth(cfg)
	if err != nil {
		return nil, err
	}
	defer auth.close()

	addr := cfg.addr()
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	var conn net.Conn
	if via != nil {
		conn, err = via.DialContext(dctx, "tcp", addr)
	} else {
		d := net.Dialer{KeepAlive: 30 * time.Second}
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	cancel()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("host %s: connect to %s: %w", cfg.Host, addr, ctxErr)
		}
		through := ""
		if n := len(cfg.Jump); via != nil && n > 0 {
			// The jump host said no: the fix is on its side of the network.
			through = " through jump host " + cfg.Jump[n-1].String()
		}
		return nil, fmt.Errorf("host %s: cannot reach %s%s: %w", cfg.Host, addr, through, err)
	}

	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth.methods(),
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(),
		Timeout:           cfg.Timeout,
	}
	// The handshake has no timeout of its own, and a connection through a
	// jump host takes no deadline: bound it by closing the connection when
	// the time is up, and abort it when ctx ends.
	var timedOut atomic.Bool
	timer := time.AfterFunc(cfg.Timeout, func() { timedOut.Store(true); conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, sc)
	stopped := stop()
	timer.Stop()
	if err != nil {
		conn.Close()
		if hkErr := hk.err(); hkErr != nil {
			return nil, hkErr
		}
		if !stopped || ctx.Err() != nil {
			return nil, fmt.Errorf("host %s: connect to %s: %w", cfg.Host, addr, context.Cause(ctx))
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("host %s: ssh authentication as %s failed (tried: %s): %w",
				cfg.Host, cfg.User, auth.describe(), err)
		}
		if timedOut.Load() {
			return nil, fmt.Errorf("host %s: ssh handshake with %s timed out after %s: %w", cfg.Host, addr, cfg.Timeout, err)
		}
		return nil, fmt.Errorf("host %s: ssh handshake with %s: %w", cfg.Host, addr, err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// keepAlive probes the connection; when the peer stops answering (host
// stopped, network cut) it closes the connection so that every pending
// command fails at once with a clear error instead of waiting forever on a
// TCP connection that no longer leads anywhere.
func (c *Client) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			// Any reply, even "unsupported", proves the peer is alive.
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		var err error
		select {
		case <-c.done:
			return
		case err = <-reply:
		case <-time.After(3 * every):
			err = fmt.Errorf("no answer to keepalive for %s", 3*every)
		}
		if err != nil {
			c.lostMu.Lock()
			c.lost = err
			c.lostMu.Unlock()
			c.ssh.Close()
			return
		}
	}
}

// connErr adds why the connection died, if the keepalive knows, to an error
// of an operation that failed because of it.
func (c *Client) connErr(err error) error {
	c.lostMu.Lock()
	lost := c.lost
	c.lostMu.Unlock()
	if lost != nil {
		return fmt.Errorf("connection to %s lost (%v): %w", c.cfg.addr(), lost, err)
	}
	return err
}

// Host returns the inventory name of the host.
func (c *Client) Host() string { return c.cfg.Host }

// IsRoot says whether the login user is root; if not, commands run through
// sudo. It asks the host if no command has told yet.
func (c *Client) IsRoot(ctx context.Context) (bool, error) {
	p, err := c.ensurePrivilege(ctx)
	return p.root, err
}

// Close closes the SFTP client, idle HTTP connections and the SSH
// connection. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.httpMu.Lock()
		if c.http != nil {
			c.http.CloseIdleConnections()
		}
		c.httpMu.Unlock()
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		err := c.ssh.Close()
		c.release()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("host %s: close connection: %w", c.cfg.Host, err)
		}
	})
	return c.closeErr
}

// DialError is returned by DialAll when one or more hosts could not be
// connected to. Errors are in the order of the configs given.
type DialError struct {
	Total int
	Errs  []error
}

func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot connect to %d of %d hosts:", len(e.Errs), e.Total)
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(err.Error(), "\n", "\n    "))
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every host's error.
func (e *DialError) Unwrap() []error { return e.Errs }

// maxParallelDials bounds concurrent handshakes of DialAll so that a big
// inventory does not start hundreds of key exchanges at once.
const maxParallelDials = 32

// DialAll connects to every host in parallel. Either every connection
// succeeds, and the map (keyed by Config.Host) holds them all, or none is
// kept: the ones that succeeded are closed and a *DialError lists every host
// that failed and why. This is what lets a run stop before changing
// anything when any host is unreachable.
func DialAll(ctx context.Context, cfgs []Config) (map[string]*Client, error) {
	clients, failed, err := DialSome(ctx, cfgs)
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		CloseAll(clients)
		errs := make([]error, 0, len(failed))
		for _, cfg := range cfgs {
			if e, ok := failed[cfg.Host]; ok {
				errs = append(errs, e)
			}
		}
		return nil, &DialError{Total: len(cfgs), Errs: errs}
	}
	return clients, nil
}

// DialSome connects to every host in parallel and keeps what it reached:
// clients holds the hosts that answered, failed the others with why (both
// keyed by Config.Host). For commands that only look (status): one host
// down is something to report, not a reason to show nothing. err is only
// for a list that cannot be dialled at all (a host listed twice).
func DialSome(ctx context.Context, cfgs []Config) (clients map[string]*Client, failed map[string]error, err error) {
	seen := make(map[string]bool, len(cfgs))
	for _, cfg := range cfgs {
		if seen[cfg.Host] {
			return nil, nil, fmt.Errorf("host %s: listed twice", cfg.Host)
		}
		seen[cfg.Host] = true
	}

	got := make([]*Client, len(cfgs))
	errs := make([]error, len(cfgs))
	pool := newJumpPool()
	sem := make(chan struct{}, maxParallelDials)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Dialled != nil {
				defer func() { cfg.Dialled(errs[i]) }()
			}
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = fmt.Errorf("host %s: connect: %w", cfg.Host, ctx.Err())
				return
			}
			got[i], errs[i] = dial(ctx, cfg, pool)
		}()
	}
	wg.Wait()

	clients = make(map[string]*Client, len(cfgs))
	failed = map[string]error{}
	for i, cfg := range cfgs {
		if errs[i] != nil {
			failed[cfg.Host] = errs[i]
			continue
		}
		clients[cfg.Host] = got[i]
	}
	return clients, failed, nil
}

// CloseAll closes every client of a DialAll result, returning the errors
// joined, sorted by host for a stable message.
func CloseAll(clients map[string]*Client) error {
	hosts := make([]string, 0, len(clients))
	for h := range clients {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var errs []error
	for _, h := range hosts {
		if err := clients[h].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// expandHome turns a leading "~/" into the home directory, as inventories
// written by people say "~/.ssh/known_hosts".
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}
