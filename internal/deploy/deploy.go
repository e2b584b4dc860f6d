// Package deploy runs the pipeline end to end for the CLI:
//
//	inventory -> connect (all hosts, or nothing) -> lock -> facts -> desired
//	state of every role, merged per host -> plan -> stage -> commit ->
//	handlers -> verify
//
// `plan` is the same pipeline stopped after the plan. The roles are given
// by the caller (roles.All); nothing here knows any of them by name.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/lock"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/remote"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/internal/verifycache"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// DefaultTimeouts are the handlers' timeouts for a VM fleet.
var DefaultTimeouts = apply.DefaultTimeouts

// Session is one invocation against one inventory: its roles, secrets and
// connections and, after Gather, the plan of every host.
type Session struct {
	Inv     *inventory.Inventory
	Roles   []role.Role
	Secrets *secrets.Store
	// TLS is the deployment's CA and certificates; nil without TLS.
	TLS     *pki.Material
	Conns   map[string]apply.Conn // by host name
	Targets []apply.Target        // in inventory order, after Gather
	// Teardowns are destroy's plans, in inventory order, after PlanDestroy.
	Teardowns []plan.Teardown
	// Events receives every step of the run (see package progress).
	Events progress.Sink
	// Unreachable holds, by host name, why a host could not be connected
	// to; only Reach leaves hosts out.
	Unreachable map[string]error
	// Proofs keeps verify's proofs between runs (see package verifycache);
	// nil keeps none. Verify saves it.
	Proofs *verifycache.Store

	// sudo gives the sudo password, asked at most once per run, also to
	// hosts dialled after Connect (departing members).
	sudo *sudoPassword

	me     lock.Holder
	locked []string
	// created are the hosts whose state directory this run created when
	// it took their lock; releasing it removes the directory if empty.
	created []string
	// keepEvery is how often the locks are refreshed while held, well
	// within lock.TTL so a long apply is never taken over.
	keepEvery time.Duration
	stopKeep  func()
	close     func()
}

// Connect opens the secrets file and one SSH connection per host. If any
// host cannot be reached or authenticated, it closes the others and returns
// an error naming every failed host: nothing has been changed anywhere.
func Connect(ctx context.Context, inv *inventory.Inventory, rs []role.Role, events progress.Sink) (*Session, error) {
	return connect(ctx, inv, rs, events, true)
}

// ConnectToLook is Connect for a command that changes nothing (plan): the
// secrets are resolved as Connect does, so what it renders is what apply
// would, but the secrets file is neither written nor created, nor its
// folder. Passwords generated for it live in memory only, which is safe as
// no hash of theirs reaches a host; apply generates its own and keeps them.
// Likewise TLS certificates it would issue.
func ConnectToLook(ctx context.Context, inv *inventory.Inventory, rs []role.Role, events progress.Sink) (*Session, error) {
	return connect(ctx, inv, rs, events, false)
}

func connect(ctx context.Context, inv *inventory.Inventory, rs []role.Role, events progress.Sink, save bool) (*Session, error) {
	sec, err := OpenSecrets(inv, rs)
	if err != nil {
		return nil, err
	}
	if !save {
		return dial(ctx, inv, rs, sec, events, false)
	}
	return ConnectWith(ctx, inv, rs, sec, events)
}

// ConnectWith is Connect with the secrets already open (and perhaps
// changed, as by a rotation): one decryption, one passphrase asked, per
// run. It saves them before it connects.
func ConnectWith(ctx context.Context, inv *inventory.Inventory, rs []role.Role, sec *secrets.Store, events progress.Sink) (*Session, error) {
	// Saved before any host is touched: a password whose hash reaches a
	// host must never exist only in memory.
	if err := sec.Save(); err != nil {
		return nil, err
	}
	return dial(ctx, inv, rs, sec, events, true)
}

func dial(ctx context.Context, inv *inventory.Inventory, rs []role.Role, sec *secrets.Store, events progress.Sink, save bool) (*Session, error) {
	tlsm, err := pki.Open(inv, time.Now())
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	if save {
		// Like the secrets: a key that reaches a host is on disk here
		// first, so the next run renders the same bytes.
		if err := tlsm.Save(); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
	}
	// Whatever a step reports, no password or hash of this store leaves
	// the engine in an event.
	events = progress.Redact(events, sec.Values())
	sudo := newSudoPassword(inv.SSH.SudoPasswordEnv)
	cfgs, err := sshConfigs(inv, sudo)
	if err != nil {
		return nil, err
	}
	watchDials(cfgs, events)
	clients, err := remote.DialAll(ctx, cfgs)
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was changed on any host", err)
	}
	conns := make(map[string]apply.Conn, len(clients))
	for name, c := range clients {
		conns[name] = Conn{c}
	}
	s := New(inv, rs, sec, conns, nil)
	s.Events = events
	s.TLS = tlsm
	if tlsm != nil {
		for _, line := range tlsm.Issued {
			verb := "issued"
			if !save {
				verb = "would issue"
			}
			s.Logf("", "TLS: %s %s", verb, line)
		}
	}
	s.sudo = sudo
	s.close = func() { remote.CloseAll(clients) }
	return s, nil
}

// Reach connects to every host it can, for the commands that only look or
// only clear a lock (status, unlock). Unlike Connect it does not open the
// secrets file, records no new host key (a host never seen before has
// nothing of ours to show), and keeps going without the hosts it cannot
// reach: they are in Session.Unreachable, for the caller to report.
func Reach(ctx context.Context, inv *inventory.Inventory, rs []role.Role, events progress.Sink) (*Session, error) {
	// Only to trust the nodes' monitoring ports: nothing is issued or
	// saved by a command that looks.
	tlsm, err := pki.Open(inv, time.Now())
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	sudo := newSudoPassword(inv.SSH.SudoPasswordEnv)
	cfgs, err := sshConfigs(inv, sudo)
	if err != nil {
		return nil, err
	}
	for i := range cfgs {
		cfgs[i].AcceptNew = false
	}
	watchDials(cfgs, events)
	clients, failed, err := remote.DialSome(ctx, cfgs)
	if err != nil {
		return nil, err
	}
	conns := make(map[string]apply.Conn, len(clients))
	for name, c := range clients {
		conns[name] = Conn{c}
	}
	s := New(inv, rs, nil, conns, nil)
	s.Events = events
	s.TLS = tlsm
	s.sudo = sudo
	s.Unreachable = failed
	s.close = func() { remote.CloseAll(clients) }
	return s, nil
}

// watchDials reports each host's connection as it starts and ends.
func watchDials(cfgs []remote.Config, events progress.Sink) {
	for i := range cfgs {
		host := cfgs[i].Host
		events.Event(progress.Event{Host: host, Phase: progress.Connect, Kind: progress.Start, Quiet: true})
		cfgs[i].Dialled = func(err error) {
			e := progress.Event{Host: host, Phase: progress.Connect, Kind: progress.Done, Quiet: true}
			if err != nil {
				e.Kind, e.Detail = progress.Fail, err.Error()
			}
			events.Event(e)
		}
	}
}

// sshConfigs says how to reach each host of the inventory, in its order.
func sshConfigs(inv *inventory.Inventory, sudo *sudoPassword) ([]remote.Config, error) {
	sc, err := loadSSHConfig(inv)
	if err != nil {
		return nil, err
	}
	cfgs := make([]remote.Config, 0, len(inv.Hosts))
	var errs []error
	for i, h := range inv.Hosts {
		cfg, err := sshConfig(inv, sc, h, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.SudoPassword = sudo.get
		cfgs = append(cfgs, cfg)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w\nnothing was changed on any host", errors.Join(errs...))
	}
	return cfgs, nil
}

// loadSSHConfig reads the ssh config the inventory names, or none.
func loadSSHConfig(inv *inventory.Inventory) (*remote.SSHConfig, error) {
	s := inv.SSH
	// nil: an Inventory built without Load, which names no file either.
	if (s.UseSSHConfig != nil && !*s.UseSSHConfig) || s.ConfigFile == "" {
		return nil, nil
	}
	return remote.LoadSSHConfig(s.ConfigFile)
}

// sshConfig is how natsdeploy reaches h, the i-th host of the inventory
// (-1: a host no longer in it): the host's own settings, else [ssh]'s,
// else the ssh config's, else the defaults.
func sshConfig(inv *inventory.Inventory, sc *remote.SSHConfig, h inventory.Host, i int) (remote.Config, error) {
	user, port := inv.SSH.User, inv.SSH.Port
	if h.SSHUser != "" {
		user = h.SSHUser
	}
	if h.SSHPort != 0 {
		port = h.SSHPort
	}
	hostKey := func(k string) string { return fmt.Sprintf("hosts.%d.%s", i, k) }
	written := func(k string) bool { return inv.Written("ssh."+k) || (i >= 0 && inv.Written(hostKey(k))) }
	jump := inv.SSH.Jump
	if i >= 0 && inv.Written(hostKey("jump")) {
		jump = h.Jump
	}
	given := remote.Given{
		User:          inv.Written("ssh.user") || (i >= 0 && inv.Written(hostKey("ssh_user"))),
		Port:          inv.Written("ssh.port") || (i >= 0 && inv.Written(hostKey("ssh_port"))),
		IdentityFiles: inv.Written("ssh.identity_files"),
		Jump:          written("jump"),
	}
	cfg := remote.Config{
		Host:          h.Name,
		Address:       h.Address,
		Port:          port,
		User:          user,
		IdentityFiles: inv.SSH.IdentityFiles,
		UseAgent:      true,
		KnownHosts:    inv.SSH.KnownHosts,
		AcceptNew:     inv.SSH.AcceptNewHostKeys,
		Timeout:       inv.SSH.ConnectTimeout.D(),
	}
	if given.Jump {
		hops, err := remote.ParseJump(jump)
		if err != nil {
			// Load refuses this already; an Inventory built otherwise may not.
			return cfg, fmt.Errorf("host %s: jump: %w", h.Name, err)
		}
		cfg.Jump = hops
	}
	return sc.Apply(cfg, given)
}

// OpenSecrets opens the inventory's secrets file with every slot the roles
// that run somewhere ask for.
func OpenSecrets(inv *inventory.Inventory, rs []role.Role) (*secrets.Store, error) {
	var slots []secrets.Slot
	for _, r := range rs {
		if len(r.Hosts(inv)) > 0 {
			slots = append(slots, r.Secrets(inv)...)
		}
	}
	return secrets.Open(inv, slots...)
}

// New makes a session over connections the caller opened; its progress
// goes to out as plain lines (nil: nowhere) until Events is set.
func New(inv *inventory.Inventory, rs []role.Role, sec *secrets.Store, conns map[string]apply.Conn, out io.Writer) *Session {
	events := progress.Discard
	if out != nil {
		events = progress.NewPlain(out)
	}
	return &Session{Inv: inv, Roles: rs, Secrets: sec, Conns: conns, Events: events, me: lock.Me(time.Now()), keepEvery: lock.TTL / 3}
}

// Close releases locks this session holds and closes every connection.
func (s *Session) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Unlock(ctx)
	if s.close != nil {
		s.close()
	}
}

// Conn adapts a remote client to what apply, lock and the roles' gates
// need.
type Conn struct{ C *remote.Client }

// Exec runs cmd as root and returns its stdout.
func (a Conn) Exec(ctx context.Context, cmd string) (string, error) {
	res, err := a.C.Run(ctx, cmd, nil)
	return string(res.Stdout), err
}

// Upload writes a file atomically.
func (a Conn) Upload(ctx context.Context, rd io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	return a.C.Upload(ctx, rd, dst, mode, owner, group)
}

// NewBatch lets apply send every file of a host ahead and install them
// with one command.
func (a Conn) NewBatch() apply.Batch { return a.C.NewBatch() }

// HTTPClient reaches the host's loopback through the SSH connection.
func (a Conn) HTTPClient() *http.Client { return a.C.HTTPClient() }

// Logf reports one line of the run's log, about a host when host is set.
func (s *Session) Logf(host, format string, args ...any) {
	e := progress.Event{Host: host, Kind: progress.Info, Detail: fmt.Sprintf(format, args...)}
	if strings.HasPrefix(e.Detail, "warning: ") {
		e.Kind = progress.Warn
	}
	s.Events.Event(e)
}

// Lock takes the run lock on every host, or on none, and keeps it fresh
// until Unlock: a run longer than lock.TTL must not be taken over. The
// hosts are asked at once; if any refuses, the locks taken are released.
func (s *Session) Lock(ctx context.Context) error {
	_, err := s.lock(ctx, nil)
	return err
}

// lock is Lock that, on each host where then names a command, runs it in
// the lock's own command once the lock is taken, and returns its output
// by host. Hosts this session holds already are left as they are.
func (s *Session) lock(ctx context.Context, then map[string]string) (map[string]string, error) {
	outs := make([]string, len(s.Inv.Hosts))
	took := make([]bool, len(s.Inv.Hosts))
	errs := s.eachHost(func(i int, h string) error {
		if slices.Contains(s.locked, h) {
			return nil
		}
		s.Events.Event(progress.Event{Host: h, Phase: progress.Lock, Kind: progress.Start, Quiet: true})
		out, ok, err := lock.AcquireThen(ctx, h, s.Conns[h], s.me, then[h])
		outs[i], took[i] = out, ok
		if !ok {
			s.Events.Event(progress.Event{Host: h, Phase: progress.Lock, Kind: progress.Fail, Detail: err.Error(), Quiet: true})
			return err
		}
		s.Events.Event(progress.Event{Host: h, Phase: progress.Lock, Kind: progress.Done, Quiet: true})
		if err != nil {
			err = gatherError(h, err)
			s.Events.Event(phaseEnd(h, progress.Facts, err))
			return err
		}
		return nil
	})
	var failed []error
	byHost := map[string]string{}
	for i, h := range s.Inv.Hosts {
		if took[i] {
			s.locked = append(s.locked, h.Name)
			byHost[h.Name] = outs[i]
		}
		if errs[i] != nil {
			failed = append(failed, errs[i])
		}
	}
	if len(failed) > 0 {
		s.Unlock(ctx)
		return nil, fmt.Errorf("%w\nnothing was changed on any host", errors.Join(failed...))
	}
	s.keep()
	return byHost, nil
}

// keep (re)starts refreshing every lock this session holds.
func (s *Session) keep() {
	if s.stopKeep != nil {
		s.stopKeep()
	}
	held := make([]lock.Held, len(s.locked))
	for i, h := range s.locked {
		held[i] = lock.Held{Host: h, Conn: s.Conns[h]}
	}
	ticker := time.NewTicker(s.keepEvery)
	stop := lock.Keep(held, s.me, ticker.C, time.Now, func(host string, err error) { s.Logf(host, "warning: %v", err) })
	s.stopKeep = func() { stop(); ticker.Stop() }
}

// GatherToChange gathers for a run that may change the hosts, taking the
// run lock only if there is something to change. The facts come first,
// without the lock, and carry each host's lock file: another live run
// holding any is refused as Lock would refuse it; a run that then finds
// every host as the inventory says changes nothing and is done without
// writing or removing a lock (two round trips fewer on every host, most
// of a no-op apply). Otherwise the lock is taken and the facts read again
// under it, since another run may have changed the hosts in between.
// A host natsdeploy has never touched (no state directory) is locked by
// the facts command itself (lock.IfNewThen): it has something to change
// for certain, and a fresh apply so reads every host's facts once.
func (s *Session) GatherToChange(ctx context.Context) error {
	isNew := make([]bool, len(s.Inv.Hosts))
	err := s.gather(ctx, func(ctx context.Context, i int, h inventory.Host, arts *artifacts) (apply.Target, error) {
		return s.gatherHost(ctx, h, arts, func(script string) (string, error) {
			out, err := s.Conns[h.Name].Exec(ctx, lock.IfNewThen(s.me, script))
			if out, isNew[i] = lock.TookNew(out); isNew[i] {
				s.Events.Event(progress.Event{Host: h.Name, Phase: progress.Lock, Kind: progress.Done, Detail: "new host", Quiet: true})
			}
			return out, err
		})
	})
	for i, h := range s.Inv.Hosts {
		if isNew[i] {
			s.locked = append(s.locked, h.Name)
			s.created = append(s.created, h.Name)
		}
	}
	if err != nil {
		s.Unlock(ctx)
		return err
	}
	var held []error
	for i, t := range s.Targets {
		if isNew[i] {
			continue // the lock in its facts is this run's own
		}
		if err := lock.Check(t.Name, t.Facts.Lock, s.me); err != nil {
			held = append(held, err)
		}
	}
	if len(held) > 0 {
		s.Unlock(ctx)
		return errors.Join(held...)
	}
	if s.nothingToDo() {
		s.Unlock(ctx)
		return nil
	}
	if len(s.locked) == len(s.Inv.Hosts) {
		s.keep()
		return nil
	}
	return s.LockAndGather(ctx)
}

// LockAndGather takes the run lock on every host this session does not
// hold yet and reads those hosts' facts again under it, in the lock's own
// command.
func (s *Session) LockAndGather(ctx context.Context) error {
	if len(s.locked) == len(s.Inv.Hosts) {
		return nil
	}
	probes := make([]desired.Host, len(s.Inv.Hosts))
	scripts := map[string]string{}
	for i, h := range s.Inv.Hosts {
		if slices.Contains(s.locked, h.Name) {
			continue
		}
		var err error
		if probes[i], scripts[h.Name], err = s.factsScript(h); err != nil {
			return err
		}
	}
	outs, err := s.lock(ctx, scripts)
	if err != nil {
		return err
	}
	kept := s.Targets
	err = s.gather(ctx, func(ctx context.Context, i int, h inventory.Host, arts *artifacts) (apply.Target, error) {
		out, ok := outs[h.Name]
		if !ok {
			return kept[i], nil // locked before, its facts read under the lock
		}
		return s.target(ctx, h, probes[i], out, arts)
	})
	if err != nil {
		// Nothing was changed: no run needs to wait for this one.
		s.Unlock(ctx)
	}
	return err
}

// Locked reports whether this session holds the run lock.
func (s *Session) Locked() bool { return len(s.locked) > 0 }

func (s *Session) nothingToDo() bool {
	for _, t := range s.Targets {
		if !t.Plan.Empty() {
			return false
		}
	}
	return true
}

// eachHost runs fn for every inventory host (its index and name) at once
// and returns each host's error, in the inventory's order.
func (s *Session) eachHost(fn func(i int, host string) error) []error {
	errs := make([]error, len(s.Inv.Hosts))
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, h.Name)
		}()
	}
	wg.Wait()
	return errs
}

// Unlock stops refreshing the locks this session took and releases them,
// on every host at once.
func (s *Session) Unlock(ctx context.Context) {
	if s.stopKeep != nil {
		s.stopKeep()
		s.stopKeep = nil
	}
	var wg sync.WaitGroup
	for _, h := range s.locked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release := lock.Release
			if slices.Contains(s.created, h) {
				release = lock.ReleaseNew
			}
			if err := release(ctx, h, s.Conns[h], s.me); err != nil {
				s.Logf(h, "warning: %v", err)
			}
		}()
	}
	wg.Wait()
	s.locked, s.created = nil, nil
}

// render merges the desired state of every role on h. With arts nil the
// artifacts are placeholders: paths, rendered files and units are all
// there, only the binaries' hashes are not. Facts probing, config checks
// and verify need no more, so they work without an artifact cache.
func (s *Session) render(h inventory.Host, arts map[string]artifact.Binary) (desired.Host, error) {
	parts, err := s.renderParts(h, arts)
	if err != nil {
		return desired.Host{}, err
	}
	return desired.Merge(h.Name, parts...)
}

// renderParts is each role's desired state of h, in the roles' order.
func (s *Session) renderParts(h inventory.Host, arts map[string]artifact.Binary) ([]desired.Part, error) {
	var parts []desired.Part
	for _, r := range role.On(s.Roles, s.Inv, h.Name) {
		d, err := r.Desired(role.Input{Inv: s.Inv, Host: h, Secrets: s.Secrets, TLS: s.TLS, Artifacts: arts})
		if err != nil {
			return nil, fmt.Errorf("role %s on host %s: %w", r.Name(), h.Name, err)
		}
		parts = append(parts, desired.Part{Role: r.Name(), Host: d})
	}
	return parts, nil
}

// artifacts fetches and verifies release archives once per run, whatever
// the number of hosts that need them.
type artifacts struct {
	mu     sync.Mutex
	have   map[string]artifact.Binary
	failed map[string]error
}

func (a *artifacts) get(ctx context.Context, rel artifact.Release) (artifact.Binary, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := rel.Name + "\x00" + rel.Tag + "\x00" + rel.Target + "\x00" + rel.Member
	if b, ok := a.have[key]; ok {
		return b, nil
	}
	// A failure is kept too: every host needing the release gets the same
	// error, which Gather reports once.
	if err, ok := a.failed[key]; ok {
		return artifact.Binary{}, err
	}
	b, err := artifact.Get(ctx, rel)
	if err != nil {
		err = &ArtifactError{err: err}
		a.failed[key] = err
		return b, err
	}
	a.have[key] = b
	return b, nil
}

// ArtifactError is a release natsdeploy cannot get or trust on this
// machine (a wrong checksum, a truncated archive, a download refused): a
// problem of the control machine's files, found before any host is
// changed, reported once whatever the number of hosts that need it.
type ArtifactError struct{ err error }

func (e *ArtifactError) Error() string { return e.err.Error() }
func (e *ArtifactError) Unwrap() error { return e.err }

// artifactErrors returns the distinct artifact errors among errs, or nil
// when there is none.
func artifactErrors(errs []error) error {
	var out []error
	seen := map[error]bool{}
	for _, err := range errs {
		var ae *ArtifactError
		if errors.As(err, &ae) && !seen[ae] {
			seen[ae] = true
			out = append(out, ae)
		}
	}
	if out == nil {
		return nil
	}
	if len(out) == 1 {
		return out[0]
	}
	return &ArtifactError{err: errors.Join(out...)}
}

// Gather reads every host's facts (one command each, in parallel),
// fetches the artifacts each host's architecture needs, renders the
// desired state and computes the plans.
func (s *Session) Gather(ctx context.Context) error {
	return s.gather(ctx, func(ctx context.Context, _ int, h inventory.Host, arts *artifacts) (apply.Target, error) {
		return s.gatherHost(ctx, h, arts, func(script string) (string, error) { return s.Conns[h.Name].Exec(ctx, script) })
	})
}

// gather makes every host's target with one, all at once.
func (s *Session) gather(ctx context.Context, one func(ctx context.Context, i int, h inventory.Host, arts *artifacts) (apply.Target, error)) error {
	n := len(s.Inv.Hosts)
	results := make([]apply.Target, n)
	errs := make([]error, n)
	arts := &artifacts{have: map[string]artifact.Binary{}, failed: map[string]error{}}
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Events.Event(progress.Event{Host: h.Name, Phase: progress.Facts, Kind: progress.Start, Quiet: true})
			results[i], errs[i] = one(ctx, i, h, arts)
			s.Events.Event(phaseEnd(h.Name, progress.Facts, errs[i]))
		}()
	}
	wg.Wait()
	if err := artifactErrors(errs); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.Targets = results
	return nil
}

// gatherError says that reading a host's facts failed. The first command
// on a connection is where a login that cannot become root is found out
// (remote.PrivilegeError): that says so itself, host included.
func gatherError(host string, err error) error {
	if pe := (*remote.PrivilegeError)(nil); errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("host %s: gather facts: %w", host, err)
}

// gatherHost reads h's facts with run (the facts script, as it is sent)
// and makes h's target from them.
func (s *Session) gatherHost(ctx context.Context, h inventory.Host, arts *artifacts, run func(script string) (string, error)) (apply.Target, error) {
	probe, script, err := s.factsScript(h)
	if err != nil {
		return apply.Target{}, err
	}
	out, err := run(script)
	if err != nil {
		return apply.Target{}, gatherError(h.Name, err)
	}
	return s.target(ctx, h, probe, out, arts)
}

// factsScript is the command that reads h's facts, and the render without
// artifacts it looks for: the managed paths do not depend on the
// artifacts, which are chosen by the architecture the facts report.
func (s *Session) factsScript(h inventory.Host) (desired.Host, string, error) {
	probe, err := s.render(h, nil)
	if err != nil {
		return desired.Host{}, "", err // names the host already
	}
	paths := facts.PathsOf(probe)
	for _, pt := range probe.Ports {
		paths.Ports = append(paths.Ports, pt.Number)
	}
	return probe, facts.Script(paths), nil
}

// target is h's target from what its facts script printed (out).
func (s *Session) target(ctx context.Context, h inventory.Host, probe desired.Host, out string, arts *artifacts) (apply.Target, error) {
	conn := s.Conns[h.Name]
	f, err := facts.Parse([]byte(out))
	if err != nil {
		return apply.Target{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	if f.Systemd == "" && len(probe.Units) > 0 {
		return apply.Target{}, fmt.Errorf("host %s (%s): systemd not found; natsdeploy runs every service as a systemd unit: use a host booted with systemd", h.Name, f.OS)
	}
	if err := portsFree(h, probe, f); err != nil {
		return apply.Target{}, err
	}
	bins := map[string]artifact.Binary{}
	for _, r := range role.On(s.Roles, s.Inv, h.Name) {
		rels, err := r.Artifacts(s.Inv, f.Arch)
		if err != nil {
			return apply.Target{}, fmt.Errorf("host %s (%s): %w", h.Name, f.Arch, err)
		}
		for _, rel := range rels {
			b, err := arts.get(ctx, rel)
			if err != nil {
				return apply.Target{}, fmt.Errorf("host %s (%s): %w", h.Name, f.Arch, err)
			}
			bins[rel.ID()] = b
		}
	}
	d, err := s.render(h, bins)
	if err != nil {
		return apply.Target{}, err
	}
	return apply.Target{Name: h.Name, Conn: conn, Desired: d, Facts: f, Plan: plan.Compute(d, f), Events: s.Events}, nil
}

// portsFree refuses a host where a port one of its services is to listen
// on is taken by something natsdeploy does not manage there: the service
// could not start, and finding that out at its start would be after files
// were swapped in and other hosts restarted. A listener inside one of the
// host's own units is its service, already running.
func portsFree(h inventory.Host, d desired.Host, f facts.Host) error {
	ours, users := map[string]bool{}, map[string]bool{}
	for _, u := range d.Units {
		ours[u.Name] = true
	}
	for _, u := range d.Users {
		users[u.Name] = true
	}
	var errs []error
	for _, pt := range d.Ports {
		l, ok := f.Listening[pt.Number]
		if !ok || (l.Unit != "" && ours[l.Unit]) {
			continue
		}
		// Root that may not look into other users' processes (a
		// container without CAP_SYS_PTRACE) still sees the socket's
		// owner: one of the system users natsdeploy runs its services
		// as is one of them.
		if l.PID == 0 && users[l.User] {
			continue
		}
		errs = append(errs, fmt.Errorf("host %s (%s): port %d (%s) is already in use by %s; stop it there, or set %s to a free port",
			h.Name, h.Address, pt.Number, pt.Key, l.Describe(), pt.Key))
	}
	return errors.Join(errs...)
}

// Plans returns the plan of every host in inventory order.
func (s *Session) Plans() []plan.Host {
	out := make([]plan.Host, len(s.Targets))
	for i, t := range s.Targets {
		out[i] = t.Plan
	}
	return out
}

// Apply carries out the plans: stage everywhere, commit everywhere, then
// run handlers. When a host owes a restart and also has changes a reload
// can carry, those go out first on every host (a reload round), then the
// plans are computed again and the restarts roll. It reports whether
// anything changed.
func (s *Session) Apply(ctx context.Context, to apply.Timeouts) (bool, error) {
	if first := reloadRound(s.Targets); first != nil {
		s.Logf("", "reloadable changes go first, to every node at once; then the restarts roll")
		if _, err := s.applyTargets(ctx, first, to); err != nil {
			return true, err
		}
		if err := s.Gather(ctx); err != nil {
			return true, err
		}
		_, err := s.applyTargets(ctx, s.Targets, to)
		return true, err
	}
	return s.applyTargets(ctx, s.Targets, to)
}

// factsCurrent says the targets' facts are still what the hosts hold:
// every plan is empty, so apply changed nothing since it read them.
// Verify then compares with them instead of reading every host again.
func (s *Session) factsCurrent() bool {
	if len(s.Targets) == 0 {
		return false
	}
	for _, t := range s.Targets {
		if !t.Plan.Empty() {
			return false
		}
	}
	return true
}

// reloadRound returns the targets with only their reload parts, or nil
// when no host needs the split (see plan.Host.ReloadPart).
func reloadRound(targets []apply.Target) []apply.Target {
	out := make([]apply.Target, len(targets))
	split := false
	for i, t := range targets {
		part, ok := t.Plan.ReloadPart()
		if !ok {
			part = plan.Host{Name: t.Name, Handlers: map[string]desired.Handler{}}
		}
		split = split || ok
		t.Plan = part
		out[i] = t
	}
	if !split {
		return nil
	}
	return out
}

// applyTargets applies the targets' plans one role after the other (see
// apply.Waves), every host's files for every role sent ahead from the
// start. A role's files are staged and committed while the roles before
// it still reload or restart their services. Its own handlers wait only
// for the roles its units name in After (the surveyor needs NATS), and a
// cold cluster start waits until every role's files are in place (see
// handlers).
func (s *Session) applyTargets(ctx context.Context, targets []apply.Target, to apply.Timeouts) (bool, error) {
	changing := nonEmpty(targets)
	if len(changing) == 0 {
		return false, nil
	}
	for _, t := range changing {
		for _, line := range t.Plan.Lines() {
			s.Events.Event(progress.Event{Host: t.Name, Phase: progress.Plan, Kind: progress.Info, Detail: line})
		}
	}
	roles := make([]string, len(s.Roles))
	for i, r := range s.Roles {
		roles[i] = r.Name()
	}
	waves := apply.Waves(targets, roles)
	p := apply.SendAhead(ctx, waves)
	defer p.Close(ctx)
	var runs []*handlerRun
	// A cold cluster start waits until every role is staged and committed
	// (or one has failed): quiet is closed then.
	quiet := make(chan struct{})
	beQuiet := sync.OnceFunc(func() { close(quiet) })
	finish := func() error {
		beQuiet()
		return waitAll(runs)
	}
	// Whatever way out, no handler is left running.
	defer finish()
	for i, wave := range waves {
		changing := nonEmpty(wave)
		if len(changing) == 0 {
			continue
		}
		if err := apply.Each(changing, s.failing(progress.Upload, func(t apply.Target) error { return p.Stage(ctx, t, i) })); err != nil {
			for _, later := range waves[i:] {
				for _, t := range nonEmpty(later) {
					apply.Abort(ctx, t)
				}
			}
			herr := finish()
			if len(runs) == 0 {
				return false, fmt.Errorf("%w\nno file was swapped in on any host", err)
			}
			what := "no file of " + strings.Join(apply.UnitNames(wave), ", ") + " or what follows it was swapped in on any host"
			if ok := applied(runs); len(ok) > 0 {
				what = strings.Join(ok, ", ") + " applied and running; " + what
			}
			return true, errors.Join(herr, fmt.Errorf("%w\n%s", err, what))
		}
		if err := apply.Each(changing, s.failing(progress.Commit, func(t apply.Target) error { return apply.Commit(ctx, t) })); err != nil {
			return true, errors.Join(finish(), fmt.Errorf("%w\nrun apply again to finish: the handlers owed are recorded on each host", err))
		}
		r := &handlerRun{units: apply.UnitNames(wave), after: dependencies(wave, runs), cold: apply.ColdClusterStart(wave), done: make(chan struct{})}
		runs = append(runs, r)
		go func() {
			defer close(r.done)
			r.err = s.handlers(ctx, r, wave, quiet, to)
		}()
	}
	return true, finish()
}

// handlerRun is one wave's handlers, running.
type handlerRun struct {
	units []string
	after []*handlerRun // the runs it waits for
	cold  bool          // a cold cluster start: it waits for quiet
	done  chan struct{} // closed when it has ended; err is set then
	err   error
}

// handlers runs a wave's handlers once the runs it depends on have
// succeeded. A cold cluster start waits until every role is staged and
// committed (quiet): NATS' first leader election needs the routes up and
// the members answering within a second or so, else the next one comes
// 4 to 9 s later, and a host still receiving files, or installing and
// flushing them, makes that less likely (on the lab, 3 hosts, fresh
// applies with the election slow: 14 of 24 with every file in place
// first, 12 of 16 when NATS started while Prometheus' binaries arrived,
// 8 of 8 while they were installed). Services that do not name the
// cluster's unit in After start beside it: that made no difference to
// the election (14 of 24 as well) and saves their start.
func (s *Session) handlers(ctx context.Context, r *handlerRun, wave []apply.Target, quiet <-chan struct{}, to apply.Timeouts) error {
	for _, d := range r.after {
		<-d.done
		if d.err != nil {
			return fmt.Errorf("%s not started, reloaded or restarted: it waits for %s, which failed; run apply again once that is fixed",
				strings.Join(apply.UnitNames(wave), ", "), strings.Join(d.units, ", "))
		}
	}
	if r.cold {
		if err := apply.Until(ctx, quiet); err != nil {
			return err
		}
	}
	// Handlers look at the whole cluster: a rolling restart must see the
	// health of the hosts that did not change too.
	return apply.Handlers(ctx, wave, to, s.Logf)
}

// dependencies returns the runs holding a unit that a unit of wave names
// in After.
func dependencies(wave []apply.Target, runs []*handlerRun) []*handlerRun {
	var out []*handlerRun
	for _, r := range runs {
		for _, t := range wave {
			for _, u := range t.Desired.Units {
				for _, a := range u.After {
					if slices.Contains(r.units, a) && !slices.Contains(out, r) {
						out = append(out, r)
					}
				}
			}
		}
	}
	return out
}

// waitAll waits for every run and joins their errors.
func waitAll(runs []*handlerRun) error {
	var errs []error
	for _, r := range runs {
		<-r.done
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}

// applied names the units of the runs that succeeded; call after waitAll.
func applied(runs []*handlerRun) []string {
	var out []string
	for _, r := range runs {
		if r.err == nil {
			out = append(out, r.units...)
		}
	}
	return out
}

// nonEmpty returns the targets whose plans change something.
func nonEmpty(targets []apply.Target) []apply.Target {
	var out []apply.Target
	for _, t := range targets {
		if !t.Plan.Empty() {
			out = append(out, t)
		}
	}
	return out
}

// phaseEnd is the event that ends a host's phase: done, or failed with
// why.
func phaseEnd(host string, ph progress.Phase, err error) progress.Event {
	e := progress.Event{Host: host, Phase: ph, Kind: progress.Done, Quiet: true}
	if err != nil {
		e.Kind, e.Detail = progress.Fail, err.Error()
	}
	return e
}

// failing reports a host's failure in step ph as an event, for the live
// view to mark that host; the error itself is returned as ever.
func (s *Session) failing(ph progress.Phase, fn func(apply.Target) error) func(apply.Target) error {
	return func(t apply.Target) error {
		err := fn(t)
		if err != nil {
			s.Events.Event(phaseEnd(t.Name, ph, err))
		}
		return err
	}
}
