// Command natsdeploy turns bare Linux hosts into a NATS JetStream cluster
// over SSH, from one TOML inventory. This file is wiring only; the work is
// in internal/deploy and the roles it is given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/internal/verifycache"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "natsdeploy:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode: 2 for a bad inventory or usage (cli.Exit says so), 1 for
// anything that went wrong on the hosts.
func exitCode(err error) int {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func newApp(out io.Writer) *cli.App {
	return &cli.App{
		Name:      "natsdeploy",
		Usage:     "deploy a NATS JetStream cluster to bare Linux hosts over SSH",
		Version:   version,
		Writer:    out,
		ErrWriter: os.Stderr,
		// main prints the error and picks the exit status; cli's default
		// handler would exit before it could.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:      "apply",
				Usage:     "make the hosts match the inventory, then verify",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.BoolFlag{Name: "no-verify", Usage: "skip the post-deploy verifier"},
					&cli.BoolFlag{Name: "full-verify", Usage: "check every user's permissions and every account's isolation again even when apply changed nothing and an earlier run proved them on the config every node runs"},
					&cli.BoolFlag{Name: "allow-remove", Usage: "take cluster members the inventory no longer names out of the cluster (their data moved to the members left)"},
				},
				Action: applyCmd,
			},
			{
				Name:      "plan",
				Usage:     "show what apply would change on each host, changing nothing",
				ArgsUsage: "INVENTORY.toml",
				Flags:     []cli.Flag{jsonFlag},
				Action:    planCmd,
			},
			{
				Name:      "verify",
				Usage:     "check the live cluster and every account permission against the inventory",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
				},
				Action: verifyCmd,
			},
			{
				Name:      "status",
				Usage:     "show every service on every host now: state, uptime, version, config in sync, and each role's view (peers, leader, use); changes nothing",
				ArgsUsage: "INVENTORY.toml",
				Description: "One row per service of every role on every host, and one for a host that cannot be reached.\n" +
					"Takes no lock and writes nothing, on the hosts or here: the secrets file is read, never written, and\n" +
					"a host key not yet in known_hosts is not recorded (that host shows as unreachable until apply).\n\n" +
					"Exit status: 0 when every host is reached and every service is up and in sync with the inventory,\n" +
					"1 otherwise (the problems are listed), 2 for a bad inventory or usage.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
				},
				Action: statusCmd,
			},
			{
				Name:      "unlock",
				Usage:     "show who holds the run lock on each host and remove it",
				ArgsUsage: "INVENTORY.toml",
				Description: "For a run that is gone but whose lock has not expired yet (a lock left by a process of this\n" +
					"machine that no longer runs is taken over by the next apply anyway). A lock whose holder still\n" +
					"runs on this machine, most likely an apply in progress (it keeps its lock fresh), is left unless\n" +
					"--force. A lock held from another machine cannot be checked from here: its holder is shown, then\n" +
					"it is removed.\n\n" +
					"Exit status: 0 when no host is locked any more, 1 otherwise (a host not reached included).",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Usage: "also remove a lock whose holder still runs on this machine"},
				},
				Action: unlockCmd,
			},
			{
				Name:      "contexts",
				Usage:     "write a natscli context for every user of the inventory",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "where to write them (default: natscli's context dir)"},
				},
				Action: contextsCmd,
			},
			{
				Name:      "restart",
				Usage:     "restart services one host at a time with apply's health gates, changing no file (after OS patching, say)",
				ArgsUsage: "INVENTORY.toml",
				Description: "Restarts the clustered services (nats-server) on every host, one host at a time, the JetStream meta leader last,\n" +
					"each healthy again before the next goes. Refuses before touching anything while any node is not healthy.",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.StringSliceFlag{Name: "host", Usage: "restart only on this host (repeat for more; default: every host)"},
					&cli.StringSliceFlag{Name: "role", Usage: "restart every unit of this role instead (repeat for more; default: the clustered services)"},
				},
				Action: restartCmd,
			},
			secretsCommand,
			tlsCommand,
			destroyCommand,
			dashboardsCommand,
			labCommand,
		},
	}
}

// load reads and validates the inventory, its own keys and what the roles
// claim on each host; problems exit with status 2 before any network
// traffic.
func load(c *cli.Context) (*inventory.Inventory, error) {
	if c.NArg() != 1 {
		for _, a := range c.Args().Tail() {
			if strings.HasPrefix(a, "-") {
				// cli stops reading flags at the first argument.
				return nil, cli.Exit(fmt.Sprintf("usage: natsdeploy %s [flags] INVENTORY.toml: %s comes after the inventory; put flags before it", c.Command.Name, a), 2)
			}
		}
		return nil, cli.Exit(fmt.Sprintf("usage: natsdeploy %s INVENTORY.toml", c.Command.Name), 2)
	}
	return loadPath(c.Args().First())
}

// loadPath is load for an inventory path the caller took from its
// arguments.
func loadPath(path string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(path)
	if err == nil {
		err = roles.Check(inv, roles.All)
	}
	if err == nil {
		// A secrets file others can read is the user's to fix, like the
		// inventory: said before any connection, with the chmod to run.
		err = secrets.CheckFile(inv.SecretsFile)
	}
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%v\nnothing was changed", err), 2)
	}
	return inv, nil
}

// session says how far open goes before handing the session over.
type session struct {
	lock   bool // take the run lock on every host
	gather bool // read facts and compute the plans
	// look: the command changes nothing, here either, so the secrets file
	// is not written (see deploy.ConnectToLook).
	look bool
	// sec, when set, is the secrets store already opened (and changed) by
	// the command; it is saved before any connection.
	sec *secrets.Store
}

// connect connects to every host of a loaded inventory and goes as far as
// s asks, reporting to events.
func connect(c *cli.Context, inv *inventory.Inventory, s session, events progress.Sink) (*deploy.Session, error) {
	dial := deploy.Connect
	switch {
	case s.sec != nil:
		dial = func(ctx context.Context, inv *inventory.Inventory, rs []role.Role, events progress.Sink) (*deploy.Session, error) {
			return deploy.ConnectWith(ctx, inv, rs, s.sec, events)
		}
	case s.look:
		dial = deploy.ConnectToLook
	}
	r, err := dial(c.Context, inv, roles.All, events)
	if err != nil {
		return nil, secretsProblem(err)
	}
	gather := r.Gather
	switch {
	case s.lock && s.gather:
		gather = r.GatherToChange
	case s.lock:
		if err := r.Lock(c.Context); err != nil {
			r.Close()
			return nil, err
		}
	}
	if s.gather {
		if err := gather(c.Context); err != nil {
			r.Close()
			// Facts, artifacts and rendering come before any change. An
			// artifact this machine cannot get or trust is its own files'
			// problem, like a bad inventory: exit 2.
			var ae *deploy.ArtifactError
			if errors.As(err, &ae) {
				return nil, cli.Exit(nothingChanged(err).Error(), 2)
			}
			return nil, nothingChanged(err)
		}
	}
	return r, nil
}

// nothingChanged adds that nothing was changed on any host to err, unless
// err says so already (a refused lock does).
func nothingChanged(err error) error {
	const said = "nothing was changed on any host"
	if strings.HasSuffix(err.Error(), said) {
		return err
	}
	return fmt.Errorf("%w\n%s", err, said)
}

// secretsProblem makes a problem with the secrets file or its key (a wrong
// passphrase, a damaged file) the usage error it is: exit 2, and nothing
// was changed, since the secrets are read before any host is contacted.
func secretsProblem(err error) error {
	var ue *secrets.UserError
	var te *pki.Error
	if errors.As(err, &ue) || errors.As(err, &te) {
		return cli.Exit(fmt.Sprintf("%v\nnothing was changed", err), 2)
	}
	return err
}

func applyCmd(c *cli.Context) (err error) {
	inv, err := load(c)
	if err != nil {
		return err
	}
	v := newView(c, "apply", inv)
	defer func() { err = v.finish(err) }()
	r, err := connect(c, inv, session{lock: true, gather: true}, v.Sink)
	if err != nil {
		return err
	}
	defer r.Close()
	v.session(r)
	return applyOpen(c, r, v, c.Bool("allow-remove"), c.Bool("no-verify"))
}

// applyOpen is apply from a session locked and gathered: departures, the
// change, the verifier. secrets rotate rolls its new password out through
// it, exactly as apply would.
func applyOpen(c *cli.Context, r *deploy.Session, v *view, allowRemove, noVerify bool) error {
	gone, err := r.Departures(c.Context)
	if err != nil {
		return err
	}
	if len(gone) > 0 && !allowRemove {
		return cli.Exit(fmt.Sprintf("the cluster has members the inventory no longer names:\n%sto remove them, run apply --allow-remove; to keep them, put them back in the inventory\nnothing was changed",
			deploy.DescribeDepartures(gone)), 2)
	}
	if len(gone) > 0 {
		if err := r.LockAndGather(c.Context); err != nil {
			return err
		}
		v.say("removing cluster members the inventory no longer names:\n%s", deploy.DescribeDepartures(gone))
		if err := r.RemoveDeparted(c.Context, gone); err != nil {
			return err
		}
	}
	changed, err := r.Apply(c.Context, deploy.DefaultTimeouts)
	if err != nil {
		return err
	}
	changed = changed || len(gone) > 0
	if changed {
		v.say("applied in %s", time.Since(v.start).Round(10*time.Millisecond))
	} else {
		v.say("nothing to do: %d host(s) already as the inventory says; nothing uploaded, nothing restarted (%s)",
			len(r.Targets), time.Since(v.start).Round(10*time.Millisecond))
	}
	r.Unlock(c.Context)
	if noVerify {
		return nil
	}
	// After a change, everything is checked again; with nothing changed,
	// what an earlier run proved on the config every node still runs
	// stands (the verifier itself sees that the configs are the same).
	r.Proofs = proofStore(r.Inv, !changed && !c.Bool("full-verify"))
	v.pause(true)
	return runVerify(c, r, v)
}

// proofStore is the verifier's cache of proofs for inv (see package
// verifycache); reuse says whether this run may answer checks from it.
// Without a cache directory there is no store, and every check runs.
func proofStore(inv *inventory.Inventory, reuse bool) *verifycache.Store {
	dir, err := inventory.CacheDir()
	if err != nil {
		return nil
	}
	s, err := verifycache.For(dir, inv.Path, reuse)
	if err != nil {
		return nil
	}
	return s
}

func planCmd(c *cli.Context) (err error) {
	inv, err := load(c)
	if err != nil {
		return err
	}
	v := newView(c, "plan", inv)
	asJSON := v.mode == progress.JSONMode
	var r *deploy.Session
	defer func() {
		if !asJSON {
			// A person reads the plan itself; the summary is for machines.
			v.pause(false)
			return
		}
		s := progress.RunSummary{Command: "plan", OK: err == nil, Elapsed: time.Since(v.start), Planned: true}
		if r != nil {
			s = planSummary(r, time.Since(v.start))
		} else {
			s = v.tally.Summary("plan", v.hosts, s.Elapsed, err)
			s.Planned = true
		}
		err = v.finishWith(s, err)
	}()
	r, err = connect(c, inv, session{gather: true, look: true}, v.Sink)
	if err != nil {
		return err
	}
	defer r.Close()
	v.session(r)
	v.pause(false)
	if asJSON {
		// The plan's lines as events; the diffs stay out: they are for
		// reading, and stderr has no one to read them in a pipeline.
		for _, t := range r.Targets {
			for _, line := range t.Plan.Lines() {
				v.Sink.Event(progress.Event{Host: t.Name, Phase: progress.Plan, Kind: progress.Info, Detail: line})
			}
		}
	} else {
		r.PrintPlan(c.Context, v.human)
	}
	gone, err := r.Departures(c.Context)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		fmt.Fprintf(v.human, "cluster members the inventory no longer names (apply refuses without --allow-remove):\n%s", deploy.DescribeDepartures(gone))
	}
	return nil
}

// planSummary is what apply would do on each host.
func planSummary(r *deploy.Session, elapsed time.Duration) progress.RunSummary {
	s := progress.RunSummary{Command: "plan", OK: true, Elapsed: elapsed, Planned: true}
	for _, t := range r.Targets {
		h := progress.HostSummary{Host: t.Name, Files: len(t.Plan.Files), Started: t.Plan.Start}
		for _, u := range t.Plan.Units {
			switch t.Plan.Handlers[u.Name] {
			case desired.Reload:
				h.Reloaded = append(h.Reloaded, u.Name)
			case desired.Restart:
				h.Restarted = append(h.Restarted, u.Name)
			}
		}
		s.Hosts = append(s.Hosts, h)
	}
	return s
}

func verifyCmd(c *cli.Context) error {
	inv, err := load(c)
	if err != nil {
		return err
	}
	// verify only looks: a password or certificate it would make is not
	// saved (apply does that), and what it says while connecting goes to
	// stderr, so --json leaves stdout to the report alone.
	r, err := connect(c, inv, session{look: true}, progress.NewPlain(c.App.ErrWriter))
	if err != nil {
		return err
	}
	defer r.Close()
	// verify checks everything itself, and leaves its proofs for apply.
	r.Proofs = proofStore(inv, false)
	return runVerify(c, r, nil)
}

func statusCmd(c *cli.Context) error {
	inv, err := load(c)
	if err != nil {
		return err
	}
	r, err := deploy.Reach(c.Context, inv, roles.All, progress.NewPlain(c.App.Writer))
	if err != nil {
		return secretsProblem(err)
	}
	defer r.Close()
	rep := r.Status(c.Context)
	if c.Bool("json") {
		err = rep.WriteJSON(c.App.Writer)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return cli.Exit(fmt.Sprintf("status: %d problem(s)", rep.Problems()), 1)
	}
	return nil
}

func unlockCmd(c *cli.Context) error {
	inv, err := load(c)
	if err != nil {
		return err
	}
	r, err := deploy.Reach(c.Context, inv, roles.All, progress.NewPlain(c.App.Writer))
	if err != nil {
		return secretsProblem(err)
	}
	defer r.Close()
	left := 0
	for _, res := range r.ClearLocks(c.Context, c.Bool("force")) {
		fmt.Fprintln(c.App.Writer, res)
		if !res.Done() {
			left++
		}
	}
	if left > 0 {
		return cli.Exit(fmt.Sprintf("unlock: %d host(s) may still be locked", left), 1)
	}
	return nil
}

// runVerify checks the live hosts and prints the report; any failure is a
// non-zero exit. v is apply's view, nil for verify itself.
func runVerify(c *cli.Context, r *deploy.Session, v *view) error {
	asJSON := v == nil && c.Bool("json")
	out := c.App.Writer
	if v != nil {
		out = v.human
		v.say("verifying the cluster against the inventory...")
	} else if !asJSON {
		fmt.Fprintln(out, "verifying the cluster against the inventory...")
	}
	rep := r.Verify(c.Context)
	var err error
	switch {
	case v != nil && v.mode == progress.JSONMode:
		err = verifyEvent(v, rep)
	case asJSON:
		err = rep.WriteJSON(out)
	default:
		err = rep.WriteText(out)
	}
	if err != nil {
		return err
	}
	if n := rep.Failed(); n > 0 {
		return cli.Exit(fmt.Sprintf("verify: %d check(s) failed", n), 1)
	}
	return nil
}

// verifyEvent reports verify's outcome as one event carrying the report
// that verify --json prints.
func verifyEvent(v *view, rep report.Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	ok, failed, skipped := rep.Count()
	e := progress.Event{Phase: progress.Verify, Kind: progress.Done, Report: b,
		Detail: fmt.Sprintf("verify passed: %d ok, %d failed, %d skipped", ok, failed, skipped)}
	if failed > 0 {
		e.Kind = progress.Fail
		e.Detail = "verify FAILED" + strings.TrimPrefix(e.Detail, "verify passed")
	}
	v.Sink.Event(e)
	return nil
}

// restartCmd resolves what to restart before connecting (a wrong --host or
// --role is a usage error), then rolls it with the run lock held.
func restartCmd(c *cli.Context) (err error) {
	inv, err := load(c)
	if err != nil {
		return err
	}
	choice, err := deploy.ChooseRestart(inv, roles.All, c.StringSlice("role"), c.StringSlice("host"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("%v\nnothing was restarted", err), 2)
	}
	v := newView(c, "restart", inv)
	defer func() { err = v.finish(err) }()
	r, err := connect(c, inv, session{lock: true}, v.Sink)
	if err != nil {
		return err
	}
	defer r.Close()
	v.session(r)
	done, err := r.Restart(c.Context, choice, deploy.DefaultTimeouts)
	if (len(done) > 0 || err == nil) && v.mode != progress.JSONMode {
		v.pause(err == nil)
		fmt.Fprintf(v.human, "restart summary (%s):\n", time.Since(v.start).Round(10*time.Millisecond))
		for _, line := range deploy.RestartSummary(choice, done) {
			fmt.Fprintf(v.human, "  %s\n", line)
		}
	}
	return err
}
