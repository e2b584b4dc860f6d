// Package deploy runs the pipeline end to end for the CLI:
//
//	inventory -> connect (all hosts, or nothing) -> lock -> facts -> desired
//	state -> plan -> stage -> commit -> handlers -> verify
//
// `plan` is the same pipeline stopped after the plan.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/diff"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/lock"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/remote"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/internal/shell"
	"github.com/natsdeploy/natsdeploy/internal/verify"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// Run is one invocation against one inventory: its connections, secrets
// and, after Gather, the plan of every host.
type Run struct {
	Inv     *inventory.Inventory
	Secrets *secrets.Store
	Conns   map[string]*remote.Client
	Targets []apply.Target // in inventory order, after Gather
	Out     io.Writer

	me     lock.Holder
	locked []string
	mu     sync.Mutex // serialises Out
}

// Connect opens the secrets file and one SSH connection per host. If any
// host cannot be reached or authenticated, it closes the others and returns
// an error naming every failed host: nothing has been changed anywhere.
func Connect(ctx context.Context, inv *inventory.Inventory, out io.Writer) (*Run, error) {
	sec, err := secrets.Open(inv)
	if err != nil {
		return nil, err
	}
	// Saved before any host is touched: a password whose hash reaches a
	// host must never exist only in memory.
	if err := sec.Save(); err != nil {
		return nil, err
	}
	cfgs := make([]remote.Config, 0, len(inv.Hosts))
	for _, h := range inv.Hosts {
		user, port := inv.SSH.User, inv.SSH.Port
		if h.SSHUser != "" {
			user = h.SSHUser
		}
		if h.SSHPort != 0 {
			port = h.SSHPort
		}
		cfgs = append(cfgs, remote.Config{
			Host:          h.Name,
			Address:       h.Address,
			Port:          port,
			User:          user,
			IdentityFiles: inv.SSH.IdentityFiles,
			UseAgent:      true,
			KnownHosts:    inv.SSH.KnownHosts,
			AcceptNew:     inv.SSH.AcceptNewHostKeys,
			Timeout:       inv.SSH.ConnectTimeout.D(),
		})
	}
	conns, err := remote.DialAll(ctx, cfgs)
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was changed on any host", err)
	}
	return &Run{Inv: inv, Secrets: sec, Conns: conns, Out: out, me: lock.Me(time.Now())}, nil
}

// Close releases locks this run holds and closes every connection.
func (r *Run) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Unlock(ctx)
	remote.CloseAll(r.Conns)
}

// Conn adapts a remote client to what apply and lock need.
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

// HTTPClient reaches the host's loopback through the SSH connection.
func (a Conn) HTTPClient() *http.Client { return a.C.HTTPClient() }

// Logf prints one progress line, prefixed with the host when there is one.
func (r *Run) Logf(host, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != "" {
		fmt.Fprintf(r.Out, "[%s] ", host)
	}
	fmt.Fprintf(r.Out, format+"\n", args...)
}

// Lock takes the run lock on every host, or on none.
func (r *Run) Lock(ctx context.Context) error {
	for _, h := range r.Inv.Hosts {
		if err := lock.Acquire(ctx, h.Name, Conn{r.Conns[h.Name]}, r.me); err != nil {
			r.Unlock(ctx)
			return fmt.Errorf("%w\nnothing was changed on any host", err)
		}
		r.locked = append(r.locked, h.Name)
	}
	return nil
}

// Unlock releases the locks this run took.
func (r *Run) Unlock(ctx context.Context) {
	for _, h := range r.locked {
		if err := lock.Release(ctx, h, Conn{r.Conns[h]}, r.me); err != nil {
			r.Logf(h, "warning: %v", err)
		}
	}
	r.locked = nil
}

// Gather reads every host's facts (one command each, in parallel), resolves
// the nats-server artifact for each architecture, renders the desired state
// and computes the plans.
func (r *Run) Gather(ctx context.Context) error {
	n := len(r.Inv.Hosts)
	results := make([]apply.Target, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var artMu sync.Mutex
	arts := map[string]artifact.Binary{}
	for i, h := range r.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.gatherHost(ctx, h, func(arch string) (artifact.Binary, error) {
				artMu.Lock()
				defer artMu.Unlock()
				if b, ok := arts[arch]; ok {
					return b, nil
				}
				b, err := artifact.NATSServer(ctx, r.Inv.NATS.ArtifactDir, downloadURL(r.Inv), r.Inv.NATS.Version, arch)
				if err == nil {
					arts[arch] = b
				}
				return b, err
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.Targets = results
	return nil
}

func downloadURL(inv *inventory.Inventory) string {
	if inv.NATS.DownloadURL == nil {
		return artifact.NATSServerURL
	}
	return *inv.NATS.DownloadURL
}

func (r *Run) gatherHost(ctx context.Context, h inventory.Host, binary func(arch string) (artifact.Binary, error)) (apply.Target, error) {
	conn := Conn{r.Conns[h.Name]}
	// The managed paths do not depend on the artifact, so a first render
	// without it tells the facts script where to look; the artifact is
	// chosen by the architecture the facts report.
	probe, err := r.desiredPaths(h)
	if err != nil {
		return apply.Target{}, err // names the host already
	}
	out, err := conn.Exec(ctx, facts.Script(facts.PathsOf(probe)))
	if err != nil {
		return apply.Target{}, fmt.Errorf("host %s: gather facts: %w", h.Name, err)
	}
	f, err := facts.Parse([]byte(out))
	if err != nil {
		return apply.Target{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	if f.Systemd == "" {
		return apply.Target{}, fmt.Errorf("host %s (%s): systemd not found; natsdeploy runs nats-server as a systemd service", h.Name, f.OS)
	}
	bin, err := binary(f.Arch)
	if err != nil {
		return apply.Target{}, fmt.Errorf("host %s (%s): %w", h.Name, f.Arch, err)
	}
	d, err := nats.Desired(r.Inv, h, r.Secrets, nats.Artifact{Path: bin.Path, SHA256: bin.SHA256, Version: bin.Version})
	if err != nil {
		return apply.Target{}, err
	}
	return apply.Target{Name: h.Name, Conn: conn, Desired: d, Facts: f, Plan: plan.Compute(d, f)}, nil
}

// desiredPaths renders h's desired state without the artifact: paths,
// rendered files and unit data are all there, only the binary's hash is
// not. Facts probing, config checks and digests need no more, so plan's
// first step and verify work without an artifact cache.
func (r *Run) desiredPaths(h inventory.Host) (desired.Host, error) {
	return nats.Desired(r.Inv, h, r.Secrets, nats.Artifact{Path: "-", SHA256: "-", Version: r.Inv.NATS.Version})
}

// Plans returns the plan of every host in inventory order.
func (r *Run) Plans() []plan.Host {
	out := make([]plan.Host, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = t.Plan
	}
	return out
}

// PrintPlan writes every host's actions and, for changed text files, a
// short diff with secrets masked.
func (r *Run) PrintPlan(ctx context.Context, w io.Writer) {
	for _, t := range r.Targets {
		if t.Plan.Empty() {
			fmt.Fprintf(w, "%s: no changes\n", t.Name)
			continue
		}
		fmt.Fprintf(w, "%s:\n", t.Name)
		for _, line := range t.Plan.Lines() {
			fmt.Fprintf(w, "  %s\n", line)
		}
		for _, c := range t.Plan.Files {
			if !c.Upload || c.Create || c.File.Content == nil {
				continue
			}
			old, err := t.Conn.Exec(ctx, "cat "+shell.Quote(c.File.Path))
			if err != nil {
				fmt.Fprintf(w, "  (cannot read current %s: %v)\n", c.File.Path, err)
				continue
			}
			d := diff.Unified(old, string(c.File.Content), 2)
			fmt.Fprintf(w, "  --- %s\n", c.File.Path)
			for _, line := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if reloadRound(r.Targets) != nil {
		fmt.Fprintln(w, "reloadable changes go first, to every node at once; then the restarts roll")
	}
	fmt.Fprintln(w, plan.Summary(r.Plans()))
}

// Apply carries out the plans: stage everywhere, commit everywhere, then
// run handlers. When a host owes a restart and also has changes a reload
// can carry, those go out first on every node (a reload round), then the
// plans are computed again and the restarts roll. It reports whether
// anything changed.
func (r *Run) Apply(ctx context.Context, to apply.Timeouts) (bool, error) {
	if first := reloadRound(r.Targets); first != nil {
		r.Logf("", "reloadable changes go first, to every node at once; then the restarts roll")
		if _, err := r.applyTargets(ctx, first, to); err != nil {
			return true, err
		}
		if err := r.Gather(ctx); err != nil {
			return true, err
		}
		_, err := r.applyTargets(ctx, r.Targets, to)
		return true, err
	}
	return r.applyTargets(ctx, r.Targets, to)
}

// reloadRound returns the targets with only their reload parts, or nil
// when no host needs the split (see plan.Host.ReloadPart).
func reloadRound(targets []apply.Target) []apply.Target {
	out := make([]apply.Target, len(targets))
	split := false
	for i, t := range targets {
		part, ok := t.Plan.ReloadPart()
		if !ok {
			part = plan.Host{Host: t.Name, Handlers: map[string]desired.Handler{}}
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

func (r *Run) applyTargets(ctx context.Context, targets []apply.Target, to apply.Timeouts) (bool, error) {
	var changing []apply.Target
	for _, t := range targets {
		if !t.Plan.Empty() {
			changing = append(changing, t)
		}
	}
	if len(changing) == 0 {
		return false, nil
	}
	for _, t := range changing {
		for _, line := range t.Plan.Lines() {
			r.Logf(t.Name, "%s", line)
		}
	}
	if err := apply.Each(changing, func(t apply.Target) error { return apply.Stage(ctx, t) }); err != nil {
		for _, t := range changing {
			apply.Abort(ctx, t)
		}
		return false, fmt.Errorf("%w\nno file was swapped in on any host", err)
	}
	if err := apply.Each(changing, func(t apply.Target) error { return apply.Commit(ctx, t) }); err != nil {
		return true, fmt.Errorf("%w\nrun apply again to finish: the handlers owed are recorded on each host", err)
	}
	// Handlers look at the whole cluster: a rolling restart must see the
	// health of the hosts that did not change too.
	if err := apply.Handlers(ctx, targets, to, r.Logf); err != nil {
		return true, err
	}
	return true, nil
}

// ConfigChecks compares every rendered file (configs and units, not the
// binary, whose hash needs the artifact) with the host's copy. Together
// with the verifier's digest check (running config == config on disk) it
// proves each node runs what the inventory asks for, and catches a file
// edited by hand even after its reload.
func (r *Run) ConfigChecks(ctx context.Context) []verify.Result {
	results := make([]verify.Result, len(r.Inv.Hosts))
	var wg sync.WaitGroup
	for i, h := range r.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			res := verify.Result{Check: "node/config", Target: h.Name, Expected: "config and unit files as rendered from the inventory"}
			defer func() { res.Duration = time.Since(start); results[i] = res }()
			d, err := r.desiredPaths(h)
			if err != nil {
				res.Seen = err.Error()
				return
			}
			var files []desired.File
			var paths []string
			for _, f := range d.Files {
				if f.Content != nil {
					files = append(files, f)
					paths = append(paths, f.Path)
				}
			}
			out, err := Conn{r.Conns[h.Name]}.Exec(ctx, facts.Script(facts.Paths{Files: paths}))
			if err != nil {
				res.Seen = err.Error()
				return
			}
			fh, err := facts.Parse([]byte(out))
			if err != nil {
				res.Seen = err.Error()
				return
			}
			var differ []string
			for _, f := range files {
				got, ok := fh.Files[f.Path]
				switch {
				case !ok:
					differ = append(differ, f.Path+" missing")
				case got.SHA256 != f.SHA256:
					differ = append(differ, f.Path+" changed")
				case got.Mode.Perm() != f.Mode.Perm() || got.Owner != f.Owner || got.Group != f.Group:
					differ = append(differ, fmt.Sprintf("%s is %s:%s %04o", f.Path, got.Owner, got.Group, got.Mode.Perm()))
				}
			}
			if len(differ) > 0 {
				res.Seen = strings.Join(differ, ", ") + " (run apply to restore)"
				return
			}
			res.OK = true
			res.Seen = fmt.Sprintf("%d files as rendered", len(files))
		}()
	}
	wg.Wait()
	return results
}

// ExpectedDigests asks each host's nats-server what digest its config on
// disk has; the verifier compares it with the running server's. It needs
// only the connections, not Gather: verify must work from a machine that
// has no artifact cache.
func (r *Run) ExpectedDigests(ctx context.Context) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range r.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := r.desiredPaths(h)
			if err != nil {
				return
			}
			for _, u := range d.Units {
				if u.DigestCmd == "" {
					continue
				}
				res, err := Conn{r.Conns[h.Name]}.Exec(ctx, u.DigestCmd+" 2>&1")
				if err != nil {
					continue
				}
				if dg := apply.ParseDigest(res); dg != "" {
					mu.Lock()
					out[h.Name] = dg
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return out
}
