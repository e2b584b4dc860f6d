// Package verify checks a live NATS cluster against its inventory: nodes,
// routes, JetStream meta group and replication, every user's permissions,
// account isolation, JetStream quotas and the system account. Everything it
// expects is derived from the inventory, so it checks what was asked for
// rather than a fixed list. It leaves nothing behind: its stream is
// deleted and every connection closed before Run returns.
//
// Every subject and name it creates carries a random run id ("nv<id>-...",
// NATSDEPLOY_VERIFY_<ID>), so concurrent runs and the checks of one run
// never see each other's messages, and its traffic is recognisable in
// server logs (each refused probe is logged there as a permissions
// violation).
//
// Permissions are proven per user on every node, because a hand edit on
// one node is exactly what the check must catch. A passing user is one row;
// each failure is its own row naming the node ("... refused on nats-2").
// Users with allow_responses also answer a request of their own: the reply
// goes to an _INBOX subject they may not publish on, so it only arrives if
// allow_responses took effect.
package verify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/verifycache"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Passwords gives the plaintext password of a user; *secrets.Store
// satisfies it. An empty string means the password is unknown.
type Passwords interface {
	Password(account, user string) string
}

// Options configure Run. Inventory and Passwords are required.
type Options struct {
	Inventory *inventory.Inventory
	Passwords Passwords
	// Probe reaches each node's monitoring endpoint and service manager.
	// Default: HTTPProbe on the inventory's http_port (no service check).
	Probe NodeProbe
	// ExpectedDigest returns the digest of the config on disk of a host
	// ("sha256:..." as `nats-server -t` prints it), which the running node
	// must report. An error fails that host's digest check with the
	// reason; nil skips every digest check.
	ExpectedDigest func(ctx context.Context, host inventory.Host) (string, error)
	// NATSURL is the client URL of one host. Default nats://address:client_port.
	NATSURL func(host inventory.Host) string
	// TLS is how clients trust the nodes when the inventory requires TLS
	// on the client port; its ServerName is left empty so each connection
	// checks the name it dials.
	TLS *tls.Config
	// Parallel bounds how many checks run at once. Default 8.
	Parallel int
	// Logins bounds how many logins are in progress at once: each costs
	// every server a bcrypt comparison. Default 4.
	Logins int
	// CheckTimeout bounds each check. Default 15s.
	CheckTimeout time.Duration
	// ConnectTimeout bounds each NATS connection attempt. Default 5s.
	ConnectTimeout time.Duration
	// ConnectBackoff is the pause after a first failed connection attempt;
	// it doubles after each one. Default 500ms.
	ConnectBackoff time.Duration
	// Proofs, when given, keeps the outcomes of the checks that depend only
	// on the config every node has loaded (see provenChecks), and answers
	// them from earlier runs when it reuses proofs and every node runs a
	// config it has proofs for.
	Proofs *verifycache.Store
	// Now is the clock proofs are dated by. Default time.Now.
	Now func() time.Time
	// QuietWindow is how long the isolation check waits for a message that
	// must not arrive, after the same message has reached a subscriber that
	// must get it. Default 300ms.
	QuietWindow time.Duration
}

// Result and Report are the engine's report types; the aliases keep this
// package's code and tests short.
type (
	Result = report.Result
	Report = report.Report
)

// job is one unit of the parallel run; it returns at least one result.
type job struct {
	check, target string
	run           func(ctx context.Context) []Result
}

// Run verifies the cluster described by opts.Inventory. It never returns
// an error: anything that goes wrong is a failed result, so the report is
// always complete.
func Run(ctx context.Context, opts Options) Report {
	start := time.Now()
	if opts.Inventory == nil {
		return Report{Results: []Result{{Check: "inventory", Target: "-", Expected: "an inventory", Seen: "none given"}}}
	}
	v := newVerifier(opts)
	defer v.closeShared()

	// Node checks go first: they find the nodes that are down, which the
	// other checks then leave out (saying so) instead of reporting the same
	// dead node once per user and account.
	var rep Report
	rep.Results = append(rep.Results, v.runJobs(ctx, v.nodeJobs())...)
	base := v.proofBase()
	jobs := v.jobs()
	for i := range jobs {
		jobs[i] = v.proven(base, jobs[i])
	}
	rep.Results = append(rep.Results, v.runJobs(ctx, jobs)...)
	rep.Elapsed = time.Since(start)
	return rep
}

// runJobs runs jobs at most Parallel at a time and returns their results
// in job order.
func (v *verifier) runJobs(ctx context.Context, jobs []job) []Result {
	results := make([][]Result, len(jobs))
	sem := make(chan struct{}, v.opts.Parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = []Result{{Check: j.check, Target: j.target, Expected: "check to run", Seen: "not started: " + ctx.Err().Error()}}
				return
			}
			defer func() { <-sem }()
			results[i] = runJob(ctx, j, v.opts.CheckTimeout)
		}()
	}
	wg.Wait()
	var out []Result
	for _, rs := range results {
		out = append(out, rs...)
	}
	return out
}

// runJob runs one job under its own timeout and turns a panic or an empty
// answer into a failed result, so one broken check cannot hide the others.
func runJob(ctx context.Context, j job, timeout time.Duration) (out []Result) {
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			out = []Result{{Check: j.check, Target: j.target, Expected: "check to complete",
				Seen: fmt.Sprintf("internal error: %v\n%s", p, debug.Stack())}}
		}
		if len(out) == 0 {
			out = []Result{{Check: j.check, Target: j.target, Expected: "a result", Seen: "check produced none"}}
		}
		for i := range out {
			if out[i].Duration == 0 {
				out[i].Duration = time.Since(start)
			}
		}
	}()
	return j.run(jctx)
}

type verifier struct {
	opts  Options
	inv   *inventory.Inventory
	hosts []inventory.Host
	run   string // random id of this run, in every subject and name it creates

	mu     sync.Mutex
	shared map[string]*sharedConn
	logins chan struct{}     // a slot per login in progress
	down   map[string]string // host name -> why it is unreachable
	loaded map[string]string // host name -> digest and version it runs, both as deployed
}

type sharedConn struct {
	once sync.Once
	nc   *nats.Conn
	err  error
}

func newVerifier(opts Options) *verifier {
	if opts.Logins <= 0 {
		opts.Logins = 4
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 15 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.ConnectBackoff <= 0 {
		opts.ConnectBackoff = 500 * time.Millisecond
	}
	if opts.QuietWindow <= 0 {
		opts.QuietWindow = 300 * time.Millisecond
	}
	if opts.Probe == nil {
		opts.Probe = &HTTPProbe{Port: opts.Inventory.NATS.HTTPPort}
	}
	if opts.NATSURL == nil {
		port := opts.Inventory.NATS.ClientPort
		opts.NATSURL = func(h inventory.Host) string { return fmt.Sprintf("nats://%s:%d", h.Address, port) }
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return &verifier{opts: opts, inv: opts.Inventory, hosts: opts.Inventory.NATSHosts(),
		run: hex.EncodeToString(b), shared: map[string]*sharedConn{}, logins: make(chan struct{}, opts.Logins), down: map[string]string{}, loaded: map[string]string{}}
}

func (v *verifier) nodeJobs() []job {
	var jobs []job
	for _, h := range v.hosts {
		jobs = append(jobs, job{"node", h.Name, func(ctx context.Context) []Result { return v.checkNode(ctx, h) }})
	}
	return jobs
}

func (v *verifier) jobs() []job {
	var jobs []job
	jobs = append(jobs,
		job{"cluster/meta", "cluster", v.checkMeta},
		job{"cluster/stream", "cluster", v.checkStream},
	)
	for i := range v.inv.Accounts {
		a := &v.inv.Accounts[i]
		jobs = append(jobs, job{"jetstream", a.Name, func(ctx context.Context) []Result { return v.checkJetStream(ctx, a) }})
	}
	jobs = append(jobs, job{"system/ping", "system account", v.checkSystem})
	n := 0
	for i := range v.inv.Accounts {
		a := &v.inv.Accounts[i]
		for k := range a.Users {
			u := &a.Users[k]
			idx := n
			n++
			jobs = append(jobs, job{"permissions", label(a, u), func(ctx context.Context) []Result { return v.checkUser(ctx, a, u, idx) }})
		}
	}
	for i := range v.inv.Accounts {
		a := &v.inv.Accounts[i]
		idx := i
		jobs = append(jobs, job{"isolation", a.Name, func(ctx context.Context) []Result { return v.checkIsolation(ctx, a, idx) }})
	}
	return jobs
}

// markDown records that a host answers neither on its monitoring port nor
// on its client port.
func (v *verifier) markDown(h inventory.Host, why string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.down[h.Name] = why
}

// upHosts are the hosts not found down, in inventory order, and a note
// naming the others for passing rows ("" when all are up).
func (v *verifier) upHosts() ([]inventory.Host, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var up []inventory.Host
	var down []string
	for _, h := range v.hosts {
		if _, ok := v.down[h.Name]; ok {
			down = append(down, h.Name)
		} else {
			up = append(up, h)
		}
	}
	note := ""
	if len(down) > 0 {
		note = fmt.Sprintf(" (left out: %s down, see node/health)", list(down))
	}
	return up, note
}

func label(a *inventory.Account, u *inventory.User) string { return a.Name + "/" + u.Name }

// tokens returns the token generator for one group of samples; the run id
// and tag keep subjects of different checks and runs apart.
func (v *verifier) tokens(tag string) TokenFunc {
	return func(i int) string { return fmt.Sprintf("nv%s-%s-%d", v.run, tag, i) }
}

func (v *verifier) password(a *inventory.Account, u *inventory.User) (string, error) {
	if v.opts.Passwords == nil {
		return "", errors.New("no password store given")
	}
	pw := v.opts.Passwords.Password(a.Name, u.Name)
	if pw == "" {
		return "", fmt.Errorf("no password known for %s", label(a, u))
	}
	return pw, nil
}

// connectTries bounds how often a login that fails for a reason other
// than the server's refusal is tried. A server busy with other logins
// (each costs it a bcrypt comparison) can be slow enough to send its first
// PING before it answers CONNECT, which nats.go reports as "expected
// 'PONG', got 'PING'": that is a slow server, not a refused user. Five
// tries with the pause doubling from ConnectBackoff (7.5s of pauses by
// default) outlast a control machine or a node whose CPUs are saturated
// for a few seconds.
const connectTries = 5

// connect opens a connection to exactly one node: no reconnects, no other
// servers from the cluster's gossip, so a check through node X really goes
// through node X. A refused login is returned at once; other failures are
// tried again, a bounded number of times, and then returned as a
// *ConnectError so checks can report them as "could not check".
func (v *verifier) connect(h inventory.Host, user, password string) (*nats.Conn, error) {
	var err error
	for try := 1; try <= connectTries; try++ {
		var nc *nats.Conn
		nc, err = v.login(v.opts.NATSURL(h),
			nats.Name("natsdeploy-verify"),
			v.secure(),
			nats.UserInfo(user, password),
			nats.Timeout(v.opts.ConnectTimeout),
			nats.NoReconnect(),
			nats.DontRandomize(),
			nats.IgnoreDiscoveredServers(),
			nats.PermissionErrOnSubscribe(true),
			// Refused publishes and subscriptions are expected here; the checks
			// read them from LastError and the subscription. The handler only
			// keeps nats.go from printing them.
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
		)
		if err == nil {
			return nc, nil
		}
		if refused(err) {
			return nil, fmt.Errorf("connect to %s as %s: %w", h.Name, user, err)
		}
		if try < connectTries {
			time.Sleep(v.opts.ConnectBackoff << (try - 1))
		}
	}
	return nil, &ConnectError{Host: h.Name, User: user, Tries: connectTries, Err: err}
}

// secure makes connections TLS when the client port requires it.
func (v *verifier) secure() nats.Option {
	if v.opts.TLS == nil {
		return func(*nats.Options) error { return nil }
	}
	return nats.Secure(v.opts.TLS)
}

// login is nats.Connect within a login slot. The slot is released
// however Connect ends: a check's panic is turned into a result by
// runJob, and a slot it kept would block every later login.
func (v *verifier) login(url string, opts ...nats.Option) (*nats.Conn, error) {
	v.logins <- struct{}{}
	defer func() { <-v.logins }()
	return nats.Connect(url, opts...)
}

// refused reports whether the server itself turned the login down.
func refused(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// ConnectError is a login that failed for a reason other than the
// server's refusal, every time it was tried: a slow or unreachable node.
// It says nothing about the user's permissions.
type ConnectError struct {
	Host, User string
	Tries      int
	Err        error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("could not check: connect to %s as %s failed %d times: %v", e.Host, e.User, e.Tries, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// couldNotCheck reports whether err is a connection problem, not an
// answer from the server.
func couldNotCheck(err error) bool {
	var ce *ConnectError
	return errors.As(err, &ce)
}

func (v *verifier) connectUser(h inventory.Host, a *inventory.Account, u *inventory.User) (*nats.Conn, error) {
	pw, err := v.password(a, u)
	if err != nil {
		return nil, err
	}
	return v.connect(h, u.Name, pw)
}

// sharedConnFor returns a connection kept open for the whole run, for
// checks that only need a working client and do not read LastError. Every
// connection costs the server a bcrypt comparison, so they are reused.
func (v *verifier) sharedConnFor(h inventory.Host, a *inventory.Account, u *inventory.User) (*nats.Conn, error) {
	key := h.Name + "\x00" + label(a, u)
	v.mu.Lock()
	sc := v.shared[key]
	if sc == nil {
		sc = &sharedConn{}
		v.shared[key] = sc
	}
	v.mu.Unlock()
	sc.once.Do(func() { sc.nc, sc.err = v.connectUser(h, a, u) })
	return sc.nc, sc.err
}

func (v *verifier) closeShared() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, sc := range v.shared {
		if sc.nc != nil {
			sc.nc.Close()
		}
	}
}

// flush waits for the server to have processed everything sent so far, so
// that a refusal (-ERR) has been read before we look for it.
func flush(ctx context.Context, nc *nats.Conn) error {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

func pass(check, target, seen string) Result {
	return Result{Check: check, Target: target, OK: true, Seen: seen}
}

func fail(check, target, expected, seen string) Result {
	return Result{Check: check, Target: target, Expected: expected, Seen: seen}
}

func skip(check, target, why string) Result {
	return Result{Check: check, Target: target, Skipped: true, Seen: why}
}
