package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/status"
)

// statusRole is svcRole with its own view of its service, as a role that
// implements role.Statuser gives it. It records which hosts it was given
// a connection to.
type statusRole struct {
	svcRole
	svcs    []status.Service
	mu      *sync.Mutex
	reached *[]string
}

func (r statusRole) Status(_ context.Context, env role.Env) []status.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range env.Inv.Hosts {
		if env.Remote(h.Name) != nil {
			*r.reached = append(*r.reached, h.Name)
		}
	}
	return r.svcs
}

// statusFacts is what the read-only facts command prints for a host as r
// renders it (but for the files in stale), with the unit up for an hour
// and its binary at version said.
func statusFacts(r svcRole, name, said string, stale ...string) string {
	return factsFor(r, name, stale...) + "uptime 3600 " + svcUnit + "\nversion " + svcUnit + " " + said + "\n"
}

func TestStatus(t *testing.T) {
	base := svcRole{version: "2", secret: "s", want: "2.0.0"}
	node := func(host string, problems ...string) status.Service {
		return status.Service{Host: host, Unit: svcUnit, Details: []status.Detail{{Key: "peers", Text: "1", Value: 1}}, Problems: problems}
	}
	type want struct {
		host, unit, state, version, config string
		reachable                          bool
		problems                           []string // each must be in one of the row's problems, in order
	}
	tests := []struct {
		name        string
		facts       map[string]string
		svcs        []status.Service
		unreachable bool // h2 is not reached
		rows        []want
		ok          bool
	}{
		{
			name:  "all up and in sync",
			facts: map[string]string{"h1": statusFacts(base, "h1", "svc v2.0.0"), "h2": statusFacts(base, "h2", "svc v2.0.0")},
			svcs:  []status.Service{node("h1"), node("h2")},
			rows: []want{
				{host: "h1", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
				{host: "h2", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
			},
			ok: true,
		},
		{
			name:        "a host not reached is one row saying why",
			facts:       map[string]string{"h1": statusFacts(base, "h1", "svc v2.0.0")},
			svcs:        []status.Service{node("h1")},
			unreachable: true,
			rows: []want{
				{host: "h1", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
				{host: "h2", problems: []string{"cannot connect: host h2: cannot reach 192.0.2.2:22: i/o timeout"}},
			},
		},
		{
			name: "unit down, file changed, old binary, the role's own problem",
			facts: map[string]string{
				"h1": strings.Replace(statusFacts(base, "h1", "svc v1.9.0", mainConf), "unit enabled active 42", "unit disabled failed 0", 1),
				"h2": statusFacts(base, "h2", "sh: /usr/bin/svc: not found"),
			},
			svcs: []status.Service{node("h1", "no peers"), node("h2")},
			rows: []want{
				{host: "h1", unit: svcUnit, state: "failed", version: "1.9.0", reachable: true, config: mainConf + " changed (run apply to restore)",
					problems: []string{mainConf + " changed", svcUnit + " is failed (run apply to start it)", "runs version 1.9.0, the inventory asks for 2.0.0", "no peers"}},
				{host: "h2", unit: svcUnit, state: "active", config: "3 files as rendered", reachable: true,
					problems: []string{`cannot tell its version: "sh: /usr/bin/svc: not found"`}},
			},
		},
		{
			name:  "the role's running version beats the binary's",
			facts: map[string]string{"h1": statusFacts(base, "h1", "svc v2.0.0"), "h2": statusFacts(base, "h2", "svc v2.0.0")},
			svcs:  []status.Service{{Host: "h1", Unit: svcUnit, Version: "1.9.0"}, node("h2")},
			rows: []want{
				{host: "h1", unit: svcUnit, state: "active", version: "1.9.0", config: "3 files as rendered", reachable: true,
					problems: []string{"runs version 1.9.0, the inventory asks for 2.0.0"}},
				{host: "h2", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
			},
		},
		{
			name:  "a service the engine does not know gets its own row",
			facts: map[string]string{"h1": statusFacts(base, "h1", "svc v2.0.0"), "h2": statusFacts(base, "h2", "svc v2.0.0")},
			svcs:  []status.Service{{Host: "h1", Unit: "extra", Problems: []string{"extra is unhappy"}}},
			rows: []want{
				{host: "h1", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
				{host: "h1", unit: "extra", reachable: true, problems: []string{"extra is unhappy"}},
				{host: "h2", unit: svcUnit, state: "active", version: "2.0.0", config: "3 files as rendered", reachable: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var reached []string
			r := statusRole{svcRole: base, svcs: tc.svcs, mu: &mu, reached: &reached}
			facts := map[string][]string{}
			for h, f := range tc.facts {
				facts[h] = []string{f}
			}
			s, log := newSession(t, base, facts)
			s.Roles = []role.Role{r}
			// Never created: status reads the secrets, never writes them.
			s.Inv.SecretsFile = filepath.Join(t.TempDir(), "inv.secrets.toml")
			if tc.unreachable {
				delete(s.Conns, "h2")
				s.Unreachable = map[string]error{"h2": errors.New("host h2: cannot reach 192.0.2.2:22: i/o timeout")}
			}
			rep := s.Status(context.Background())

			if len(rep.Rows) != len(tc.rows) {
				t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(tc.rows), rep.Rows)
			}
			for i, w := range tc.rows {
				got := rep.Rows[i]
				if got.Host != w.host || got.Unit != w.unit || got.State != w.state || got.Version != w.version || got.Config != w.config || got.Reachable != w.reachable {
					t.Errorf("row %d = %+v\nwant %+v", i, got, w)
				}
				if len(got.Problems) != len(w.problems) {
					t.Errorf("row %d problems %q, want %d like %q", i, got.Problems, len(w.problems), w.problems)
					continue
				}
				for j, p := range w.problems {
					if !strings.Contains(got.Problems[j], p) {
						t.Errorf("row %d problem %d = %q, want it to say %q", i, j, got.Problems[j], p)
					}
				}
				if w.reachable && w.unit == svcUnit && (!got.UptimeKnown || got.Uptime.Hours() != 1) {
					t.Errorf("row %d uptime %v known %v, want 1h", i, got.Uptime, got.UptimeKnown)
				}
			}
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.ok)
			}
			if len(tc.svcs) > 0 && len(rep.Rows[0].Details) == 0 && tc.svcs[0].Details != nil {
				t.Errorf("the role's details did not join its row: %+v", rep.Rows[0])
			}
			// Only the one facts command per reached host, read-only, and
			// the role saw exactly the hosts reached.
			wantLog := []string{"h1: facts", "h2: facts"}
			wantReached := "h1 h2"
			if tc.unreachable {
				wantLog, wantReached = []string{"h1: facts"}, "h1"
			}
			got := slices.Sorted(slices.Values(*log))
			if strings.Join(got, "|") != strings.Join(wantLog, "|") {
				t.Errorf("commands sent: %q, want %q", got, wantLog)
			}
			if strings.Join(reached, " ") != wantReached {
				t.Errorf("the role was given connections to %q, want %q", reached, wantReached)
			}
			for _, c := range s.Conns {
				for _, script := range c.(*host).scripts {
					if strings.Contains(script, "mktemp") || !strings.Contains(script, "ActiveEnterTimestampMonotonic") || !strings.Contains(script, "/usr/bin/svc --version") {
						t.Errorf("the facts command is not the read-only one with uptimes and versions:\n%s", script)
					}
				}
			}
			if _, err := os.Stat(s.Inv.SecretsFile); !os.IsNotExist(err) {
				t.Errorf("status wrote the secrets file: %v", err)
			}
		})
	}
}

// Secrets that cannot be read (here: a file others can read) leave the
// configs uncompared, which is a problem, and everything else shown.
func TestStatusWithoutSecrets(t *testing.T) {
	r := svcRole{version: "2", secret: "s", want: "2.0.0"}
	s, _ := newSession(t, r, map[string][]string{"h1": {statusFacts(r, "h1", "svc v2.0.0")}, "h2": {statusFacts(r, "h2", "svc v2.0.0")}})
	s.Inv.SecretsFile = filepath.Join(t.TempDir(), "inv.secrets.toml")
	if err := os.WriteFile(s.Inv.SecretsFile, []byte("# open to all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := s.Status(context.Background())
	if rep.OK() || len(rep.Rows) != 2 {
		t.Fatalf("status without secrets: %+v", rep.Rows)
	}
	for _, row := range rep.Rows {
		if row.State != "active" || row.Version != "2.0.0" || row.Config != "" || len(row.Problems) != 1 ||
			!strings.Contains(row.Problems[0], "config not compared: secrets file") {
			t.Errorf("row %+v", row)
		}
	}
}
