package apply

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// TeardownTarget is one host with its connection and teardown.
type TeardownTarget struct {
	Name string
	Conn Conn
	Plan plan.Teardown
	// Events: see Target.Events.
	Events progress.Sink
}

// keptMark starts a line a teardown command prints for a directory it
// left because something natsdeploy did not render is in it.
const keptMark = "natsdeploy-kept "

// Teardown carries out destroy's plans role by role, in the order given
// (the reverse of the start order): one role goes from every host, in
// parallel, before the next role is touched, so a failure leaves the
// services a failed role's services depend on running. On each host a
// role is one command: stop, disable, remove its files (and anything an
// interrupted apply staged beside them), daemon-reload, remove its
// directories, then its users. Last, natsdeploy's own state files go
// (not the lock: the caller releases it, then calls RemoveStateDir).
// What a host keeps that the plan meant to remove (a directory with
// something else in it) is reported through logf.
func Teardown(ctx context.Context, order []string, targets []TeardownTarget, logf Logf) error {
	for _, role := range order {
		var hosts []TeardownTarget
		for _, t := range targets {
			if r, ok := roleTeardown(t.Plan, role); ok && !r.Empty() {
				hosts = append(hosts, t)
			}
		}
		err := Each(asTargets(hosts), func(tg Target) error {
			r, _ := roleTeardown(hostPlan(hosts, tg.Name), role)
			say(tg, logf, progress.Event{Phase: progress.Remove, Kind: progress.Start, Role: role}, "removing role %s", role)
			out, err := tg.Conn.Exec(ctx, TeardownScript(r))
			for _, line := range strings.Split(out, "\n") {
				if kept, ok := strings.CutPrefix(line, keptMark); ok {
					say(tg, logf, progress.Event{Phase: progress.Remove, Kind: progress.Info, Role: role}, "kept %s", kept)
				}
			}
			if err != nil {
				err = fmt.Errorf("host %s: remove role %s: %w", tg.Name, role, err)
				tg.quiet(progress.Event{Phase: progress.Remove, Kind: progress.Fail, Role: role, Detail: err.Error()})
				return err
			}
			say(tg, logf, progress.Event{Phase: progress.Remove, Kind: progress.Done, Role: role}, "role %s removed", role)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w\nthe roles before %s are removed; run destroy again to finish", err, role)
		}
	}
	return Each(asTargets(targets), func(tg Target) error {
		if !hostPlan(targets, tg.Name).State {
			return nil
		}
		q := shell.Quote(facts.StateDir)
		cmd := fmt.Sprintf("rm -f %s/sums %s/.sums.* %s/pending-*", q, q, q)
		if _, err := tg.Conn.Exec(ctx, cmd); err != nil {
			return fmt.Errorf("host %s: remove natsdeploy's state: %w", tg.Name, err)
		}
		return nil
	})
}

// RemoveStateDir removes natsdeploy's state directory from a host once its
// lock is released. Another run that took the lock in between keeps it:
// rmdir leaves a directory that is not empty, and that is reported.
func RemoveStateDir(ctx context.Context, name string, c Conn) (kept string, err error) {
	q := shell.Quote(facts.StateDir)
	out, err := c.Exec(ctx, fmt.Sprintf("if [ -d %s ] && ! rmdir %s 2>/dev/null; then ls -A %s; fi", q, q, q))
	if err != nil {
		return "", fmt.Errorf("host %s: remove %s: %w", name, facts.StateDir, err)
	}
	if left := strings.Fields(out); len(left) > 0 {
		return fmt.Sprintf("%s: not empty (%s)", facts.StateDir, strings.Join(left, " ")), nil
	}
	return "", nil
}

func roleTeardown(t plan.Teardown, role string) (plan.RoleTeardown, bool) {
	for _, r := range t.Roles {
		if r.Role == role {
			return r, true
		}
	}
	return plan.RoleTeardown{}, false
}

func hostPlan(targets []TeardownTarget, name string) plan.Teardown {
	for _, t := range targets {
		if t.Name == name {
			return t.Plan
		}
	}
	return plan.Teardown{}
}

func asTargets(ts []TeardownTarget) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		out[i] = Target{Name: t.Name, Conn: t.Conn, Events: t.Events}
	}
	return out
}

// TeardownScript is the one command that removes a role from a host, as
// r says. Every path in it comes from r, which comes from the role's
// desired state and the host's facts; the only other paths are what
// Stage writes beside those files.
func TeardownScript(r plan.RoleTeardown) string {
	lines := []string{"set -e"}
	for _, u := range r.Stop {
		lines = append(lines, "systemctl stop "+shell.Quote(u))
	}
	for _, u := range r.Disable {
		lines = append(lines, "systemctl disable --quiet "+shell.Quote(u))
	}
	var files, staged, stageDirs []string
	for _, f := range r.Files {
		files = append(files, f.Path)
		if f.ValidateGroup != "" {
			if d := path.Dir(stagedPath(f)); !slices.Contains(stageDirs, d) {
				stageDirs = append(stageDirs, d)
			}
			continue
		}
		staged = append(staged, stagedPath(f))
	}
	if len(files) > 0 {
		lines = append(lines, "rm -f -- "+shell.Join(append(files, staged...)...))
	}
	if len(stageDirs) > 0 {
		lines = append(lines, "rm -rf -- "+shell.Join(stageDirs...))
	}
	if r.DaemonReload {
		lines = append(lines, "systemctl daemon-reload")
	}
	for _, u := range r.ResetFailed {
		// Gone from disk, a unit can no longer be failed: nothing to
		// reset is not an error.
		lines = append(lines, "systemctl reset-failed "+shell.Quote(u)+" 2>/dev/null || true")
	}
	for _, d := range r.Dirs {
		q := shell.Quote(d.Path)
		if d.Holds == desired.Rendered {
			// Only if empty: what natsdeploy did not render is never
			// removed; say what kept it.
			lines = append(lines, fmt.Sprintf("if [ -d %s ] && ! rmdir %s 2>/dev/null; then echo %s\"$(ls -A %s | head -n 5 | tr '\\n' ' ')\"; fi",
				q, q, shell.Quote(keptMark+d.Path+": not empty: "), q))
			continue
		}
		lines = append(lines, "rm -rf -- "+q)
	}
	for _, u := range r.Users {
		q := shell.Quote(u)
		// useradd --user-group made the group for this user alone;
		// userdel removes it unless USERGROUPS_ENAB is off or someone
		// else was added to it, whose membership stays untouched.
		lines = append(lines, "userdel "+q,
			fmt.Sprintf("if getent group %s >/dev/null; then if [ -z \"$(getent group %s | cut -d: -f4)\" ]; then groupdel %s; else echo %s\"$(getent group %s | cut -d: -f4)\"; fi; fi",
				q, q, q, shell.Quote(keptMark+"group "+u+": other users are in it: "), q))
	}
	return strings.Join(lines, "\n")
}
