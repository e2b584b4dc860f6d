package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
)

// fakeConn records every command of every host in one ordered log and
// serves the host's monitoring endpoint from an httptest server.
type fakeConn struct {
	name    string
	log     *[]string
	mu      *sync.Mutex
	healthy *atomic.Bool
	digest  *atomic.Value // what /varz reports as the running config's digest
	srv     *httptest.Server
	fail    string // a command containing this fails
	state   string // what systemctl is-active prints; "" for active
}

func (c *fakeConn) Exec(ctx context.Context, cmd string) (string, error) {
	c.mu.Lock()
	*c.log = append(*c.log, c.name+": "+cmd)
	c.mu.Unlock()
	// A command with nothing to do is a wasted SSH session, and "rm -rf "
	// or "mv -f " with a missing argument is worse.
	if f := strings.Fields(cmd); len(f) == 0 || strings.HasSuffix(strings.TrimSpace(cmd), "rm -rf") {
		return "", fmt.Errorf("empty command %q", cmd)
	}
	if c.fail != "" && strings.Contains(cmd, c.fail) {
		return "config error on line 3", fmt.Errorf("exit status 1")
	}
	if strings.HasPrefix(cmd, "systemctl is-active ") {
		if c.state == "" {
			return "active\n", nil
		}
		return c.state + "\n", nil
	}
	if strings.Contains(cmd, "journalctl") {
		return "nats-server[77]: [FTL] Error listening on port: 0.0.0.0:4222", nil
	}
	if strings.Contains(cmd, "nats-server -t") {
		return "nats-server: configuration file /etc/nats/nats-server.conf is valid (sha256:" + strings.Repeat("a", 64) + ")\n", nil
	}
	return "", nil
}

func (c *fakeConn) Upload(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	io.Copy(io.Discard, r)
	return nil
}

func (c *fakeConn) HTTPClient() *http.Client { return c.srv.Client() }

func newCluster(t *testing.T, n int) ([]Target, *[]string, []*fakeConn) {
	var log []string
	var mu sync.Mutex
	var targets []Target
	var conns []*fakeConn
	for i := 1; i <= n; i++ {
		c := &fakeConn{name: fmt.Sprintf("n%d", i), log: &log, mu: &mu, healthy: &atomic.Bool{}, digest: &atomic.Value{}}
		c.healthy.Store(true)
		c.digest.Store("sha256:" + strings.Repeat("a", 64))
		c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/varz" {
				fmt.Fprintf(w, `{"config_digest":%q}`, c.digest.Load())
				return
			}
			if !c.healthy.Load() {
				w.WriteHeader(503)
				w.Write([]byte(`{"error":"not current"}`))
			}
		}))
		t.Cleanup(c.srv.Close)
		unit := desired.Unit{Name: "nats-server.service", Ready: readyGate(c.srv.URL), Reload: reloadGate(c.srv.URL),
			DiagnoseCmd: "journalctl -u nats-server.service -n 5"}
		targets = append(targets, Target{
			Name:    c.name,
			Conn:    c,
			Desired: desired.Host{Name: c.name, Units: []desired.Unit{unit}},
			Plan:    plan.Host{Name: c.name, Handlers: map[string]desired.Handler{}},
		})
		conns = append(conns, c)
	}
	return targets, &log, conns
}

// readyGate and reloadGate are what a role supplies: here /healthz 200,
// and the digest `nats-server -t` prints showing up in /varz.
func readyGate(base string) *desired.Gate {
	return &desired.Gate{Desc: "/healthz", Check: func(ctx context.Context, n desired.Node) error {
		return health.OK(ctx, n.Remote.HTTPClient(), base+"/healthz")
	}}
}

func reloadGate(base string) *desired.ReloadGate {
	return &desired.ReloadGate{
		Desc: "config_digest",
		Want: func(ctx context.Context, n desired.Node) (string, error) {
			out, err := n.Remote.Exec(ctx, "nats-server -t -c /etc/nats/nats-server.conf")
			if err != nil {
				return "", err
			}
			_, d, _ := strings.Cut(strings.TrimSpace(out), "(")
			return strings.TrimSuffix(d, ")"), nil
		},
		Check: func(ctx context.Context, n desired.Node, want string) error {
			body, _, err := health.Get(ctx, n.Remote.HTTPClient(), base+"/varz")
			if err != nil {
				return err
			}
			if !strings.Contains(string(body), want) {
				return fmt.Errorf("varz says %s, want %s", body, want)
			}
			return nil
		},
	}
}

func filter(log []string, sub string) []string {
	var out []string
	for _, l := range log {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

var fast = Timeouts{Start: 2 * time.Second, Health: 2 * time.Second, Reload: 2 * time.Second}

func nolog(string, string, ...any) {}

func TestRollingRestartOrderAndGate(t *testing.T) {
	targets, log, conns := newCluster(t, 3)
	targets[0].Plan.Handlers["nats-server.service"] = desired.Restart
	targets[2].Plan.Handlers["nats-server.service"] = desired.Restart
	targets[1].Plan.Handlers["nats-server.service"] = desired.Reload
	if err := Handlers(context.Background(), targets, fast, nolog); err != nil {
		t.Fatal(err)
	}
	got := filter(*log, "systemctl")
	want := []string{"n2: systemctl reload nats-server.service", "n1: systemctl restart nats-server.service", "n3: systemctl restart nats-server.service"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("systemctl calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(filter(*log, "rm -f /var/lib/natsdeploy/pending-nats-server.service")); n != 3 {
		t.Errorf("pending markers cleared %d times, want 3", n)
	}

	// With n2 unhealthy, n1 must not be restarted: quorum would be at risk.
	*log = nil
	conns[1].healthy.Store(false)
	targets[1].Plan.Handlers = map[string]desired.Handler{}
	err := Handlers(context.Background(), targets, fast, nolog)
	if err == nil || !strings.Contains(err.Error(), "not restarting nats-server.service on n1: host n2 is not ready") {
		t.Fatalf("error = %v", err)
	}
	if got := filter(*log, "systemctl restart"); len(got) != 0 {
		t.Errorf("restarted despite unhealthy peer: %v", got)
	}
}

func TestColdStartStartsAllBeforeWaiting(t *testing.T) {
	targets, log, conns := newCluster(t, 3)
	for i := range targets {
		targets[i].Plan.Start = []string{"nats-server.service"}
		conns[i].healthy.Store(false)
	}
	// Nodes become healthy only once all three were started, as a real
	// JetStream cluster does when it needs its meta quorum.
	go func() {
		for {
			if len(filter(*logSnapshot(log, conns[0].mu), "systemctl start")) == 3 {
				for _, c := range conns {
					c.healthy.Store(true)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if err := Handlers(context.Background(), targets, fast, nolog); err != nil {
		t.Fatal(err)
	}
}

// A unit whose file orders it before the next (StartsBefore) starts with
// it in one command where both start, alone where only it starts; the
// next unit's ready gate is still waited for, and both pending markers go
// in one command.
func TestStartsBeforeStartsInOneCommand(t *testing.T) {
	targets, log, conns := newCluster(t, 3)
	logUnit := desired.Unit{Name: "nats-server-log.service", StartsBefore: "nats-server.service"}
	for i := range targets {
		targets[i].Desired.Units = append([]desired.Unit{logUnit}, targets[i].Desired.Units...)
	}
	targets[0].Plan.Start = []string{"nats-server-log.service", "nats-server.service"}
	targets[1].Plan.Start = []string{"nats-server.service"}
	targets[2].Plan.Start = []string{"nats-server-log.service"}
	conns[0].healthy.Store(false)
	go func() {
		time.Sleep(100 * time.Millisecond)
		conns[0].healthy.Store(true)
	}()
	var l logs
	if err := Handlers(context.Background(), targets, fast, l.f); err != nil {
		t.Fatal(err)
	}
	got := filter(*log, "systemctl start")
	slices.Sort(got)
	want := []string{
		"n1: systemctl start nats-server-log.service nats-server.service",
		"n2: systemctl start nats-server.service",
		"n3: systemctl start nats-server-log.service",
	}
	if !slices.Equal(got, want) {
		t.Errorf("starts:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := filter(*log, "n1: rm -f"); len(got) != 1 || !strings.Contains(got[0], "pending-nats-server-log.service") || !strings.Contains(got[0], "pending-nats-server.service") {
		t.Errorf("n1 cleared its markers with %q, want one command for both", got)
	}
	if !slices.Contains(l.lines, "[n1] nats-server.service is running and healthy") || !slices.Contains(l.lines, "[n1] nats-server-log.service is running and healthy") {
		t.Errorf("said:\n%s\nwant both units of n1 reported", l.text())
	}

	// A failed start names both units and shows the main unit's journal.
	*log = nil
	conns[0].fail = "systemctl start"
	err := Handlers(context.Background(), targets[:1], fast, nolog)
	if err == nil || !strings.Contains(err.Error(), "start nats-server-log.service and nats-server.service") || !strings.Contains(err.Error(), "last lines from n1") {
		t.Fatalf("failed start: %v", err)
	}
}

func logSnapshot(log *[]string, mu *sync.Mutex) *[]string {
	mu.Lock()
	defer mu.Unlock()
	cp := append([]string(nil), *log...)
	return &cp
}

func TestFailedStartShowsJournal(t *testing.T) {
	targets, _, conns := newCluster(t, 1)
	targets[0].Plan.Start = []string{"nats-server.service"}
	conns[0].healthy.Store(false)
	err := Handlers(context.Background(), targets, Timeouts{Start: 300 * time.Millisecond}, nolog)
	if err == nil || !strings.Contains(err.Error(), "did not become healthy") || !strings.Contains(err.Error(), "last lines from n1") {
		t.Fatalf("error = %v", err)
	}
}

func TestStageValidatesAndCommitWritesMarkerFirst(t *testing.T) {
	targets, log, conns := newCluster(t, 1)
	tg := targets[0]
	conf := desired.File{Path: "/etc/nats/nats-server.conf", Content: []byte("x"), Mode: 0o640, Owner: "root", Group: "nats",
		ValidateGroup: "nats-config", ValidateCmd: "runuser -u nats -- /usr/local/bin/nats-server -t -c {dir}/nats-server.conf",
		Service: "nats-server.service", OnChange: desired.Restart}
	acc := conf
	acc.Path, acc.OnChange = "/etc/nats/accounts.conf", desired.Reload
	bin := desired.File{Path: "/usr/local/bin/nats-server", Content: []byte("bin"), Mode: 0o755, Owner: "root", Group: "root", Service: "nats-server.service", OnChange: desired.Restart}
	tg.Desired.Files = []desired.File{bin, conf, acc}
	tg.Plan.Files = []plan.FileChange{{File: bin, Upload: true}, {File: acc, Upload: true}}
	tg.Plan.Handlers["nats-server.service"] = desired.Restart
	if err := Stage(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	val := filter(*log, " -t -c ")
	if len(val) != 1 || !strings.Contains(val[0], "/usr/local/bin/.nats-server.natsdeploy-new -t -c /etc/nats/.natsdeploy-stage/nats-server.conf") {
		t.Errorf("validation used %v; want the staged binary on the staged dir", val)
	}
	if cp := filter(*log, "cp -p /etc/nats/nats-server.conf /etc/nats/.natsdeploy-stage/nats-server.conf"); len(cp) != 1 {
		t.Errorf("unchanged group file not copied into stage: %v", *log)
	}
	*log = nil
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	script := (*log)[0]
	marker := strings.Index(script, "echo restart > /var/lib/natsdeploy/pending-nats-server.service")
	mv := strings.Index(script, "mv -f")
	if marker < 0 || mv < 0 || marker > mv {
		t.Errorf("marker must precede the swap:\n%s", script)
	}

	// A rejected config aborts: staged files are removed, nothing committed.
	*log = nil
	conns[0].fail = " -t -c "
	err := Stage(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "rejected, none of its files was swapped in") || !strings.Contains(err.Error(), "config error on line 3") {
		t.Fatalf("Stage error = %v", err)
	}
	if rm := filter(*log, "rm -rf /usr/local/bin/.nats-server.natsdeploy-new /etc/nats/.natsdeploy-stage"); len(rm) != 1 {
		t.Errorf("abort did not clean up: %v", *log)
	}
}

// A reload the service did not take (it only logged the refusal, so the
// old digest stays) must fail as not confirmed and keep the host's pending
// record, so the next apply owes the reload again.
func TestReloadNotConfirmedKeepsPending(t *testing.T) {
	targets, log, conns := newCluster(t, 2)
	targets[0].Plan.Handlers["nats-server.service"] = desired.Reload
	targets[1].Plan.Handlers["nats-server.service"] = desired.Reload
	conns[1].digest.Store("sha256:" + strings.Repeat("b", 64)) // still the old config
	err := Handlers(context.Background(), targets, fast, nolog)
	if err == nil || !strings.Contains(err.Error(), "host n2: reload of nats-server.service not confirmed") {
		t.Fatalf("error = %v, want n2's reload not confirmed", err)
	}
	if !strings.Contains(err.Error(), "last lines from n2") {
		t.Errorf("error does not show n2's journal: %v", err)
	}
	if got := filter(*log, "n2: rm -f /var/lib/natsdeploy/pending-"); len(got) != 0 {
		t.Errorf("n2's pending record was cleared though its reload is unconfirmed: %v", got)
	}
	// n1's reload took, but the cluster never got to settle: the next
	// apply owes n1's reload (harmless) and the settling after it.
	if got := filter(*log, "rm -f /var/lib/natsdeploy/pending-"); len(got) != 0 {
		t.Errorf("a pending record was cleared before the reloads were all confirmed: %v", got)
	}
}

// After a reload the unit's cluster gate must hold before apply clears the
// pending records and reports success; a member the gate names as lagging
// for longer than the reload timeout is restarted, alone, and no other.
func TestReloadSettlesAndRepairsLaggingMember(t *testing.T) {
	cases := []struct {
		name  string
		heals string // the member whose restart heals the cluster; "" heals by itself
		never bool   // the gate never passes
		// reload is the reload timeout: short where a restart must come,
		// ample where none may, so a loaded machine's slow polls cannot
		// turn healing by itself into a restart.
		reload    time.Duration
		restarts  []string
		wantErr   string
		wantClear int
	}{
		{name: "links come back by themselves", heals: "", reload: 10 * time.Second, restarts: nil, wantClear: 3},
		{name: "one member cut off", heals: "n3", reload: 300 * time.Millisecond, restarts: []string{"n3: systemctl restart nats-server.service"}, wantClear: 3},
		{name: "never settles", never: true, reload: 300 * time.Millisecond, wantErr: "not settled after the reload: nats-server.service: after 300ms: n2 has no route to n1",
			restarts: []string{"n2: systemctl restart nats-server.service", "n2: systemctl restart nats-server.service", "n2: systemctl restart nats-server.service"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			targets, log, _ := newCluster(t, 3)
			var polls atomic.Int32
			gate := &desired.ClusterGate{Desc: "all linked", Check: func(context.Context, []desired.Node) error {
				n := polls.Add(1)
				switch {
				case tc.never:
					return &desired.Lagging{Nodes: []string{"n2", "n1"}, Err: fmt.Errorf("n2 has no route to n1")}
				case tc.heals == "" && n < 3:
					return &desired.Lagging{Nodes: []string{"n1"}, Err: fmt.Errorf("n1 has no route to n2")}
				case tc.heals != "" && len(filter(*log, tc.heals+": systemctl restart")) == 0:
					return &desired.Lagging{Nodes: []string{tc.heals, "n1"}, Err: fmt.Errorf("%s has no route to n1", tc.heals)}
				}
				return nil
			}}
			for i := range targets {
				targets[i].Desired.Units[0].Settled = gate
				targets[i].Plan.Handlers["nats-server.service"] = desired.Reload
			}
			var l logs
			err := Handlers(context.Background(), targets, Timeouts{Health: 2 * time.Second, Reload: tc.reload}, l.f)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if got := filter(*log, "systemctl restart"); strings.Join(got, "\n") != strings.Join(tc.restarts, "\n") {
				t.Errorf("restarts %v, want %v", got, tc.restarts)
			}
			if got := filter(*log, "rm -f /var/lib/natsdeploy/pending-nats-server.service"); len(got) != tc.wantClear {
				t.Errorf("pending records cleared %d times, want %d", len(got), tc.wantClear)
			}
			if tc.wantErr == "" && !strings.Contains(l.text(), "nats-server.service settled after the reload: all linked") {
				t.Errorf("no settled line:\n%s", l.text())
			}
			// Clearing a record before the gate held would let an
			// interrupted apply forget the settling it owed.
			if clr := strings.Index(strings.Join(*log, "\n"), "rm -f /var/lib/natsdeploy/pending-"); clr >= 0 && polls.Load() == 0 {
				t.Errorf("records cleared without asking the gate")
			}
		})
	}
}

// After each restart the unit's cluster gate must hold before the next
// host goes down; one that never settles stops the roll.
func TestRollingRestartWaitsForClusterGate(t *testing.T) {
	targets, log, _ := newCluster(t, 3)
	var settled atomic.Bool
	var asked atomic.Int32
	gate := &desired.ClusterGate{Desc: "all members current", Check: func(_ context.Context, nodes []desired.Node) error {
		asked.Add(1)
		if len(nodes) != 3 {
			return fmt.Errorf("gate saw %d nodes, want 3", len(nodes))
		}
		if !settled.Load() {
			return fmt.Errorf("n2 behind")
		}
		return nil
	}}
	for i := range targets {
		targets[i].Desired.Units[0].Settled = gate
		targets[i].Plan.Handlers["nats-server.service"] = desired.Restart
	}
	err := Handlers(context.Background(), targets, Timeouts{Health: 400 * time.Millisecond}, nolog)
	if err == nil || !strings.Contains(err.Error(), "host n1 restarted, but nats-server.service") || !strings.Contains(err.Error(), "n2 behind") {
		t.Fatalf("error = %v", err)
	}
	if got := filter(*log, "systemctl restart"); len(got) != 1 {
		t.Errorf("restarts before the cluster settled: %v", got)
	}
	settled.Store(true)
	*log = nil
	if err := Handlers(context.Background(), targets, fast, nolog); err != nil {
		t.Fatal(err)
	}
	if got := filter(*log, "systemctl restart"); len(got) != 3 || asked.Load() < 3 {
		t.Errorf("restarts %v, gate asked %d times", got, asked.Load())
	}
}

// A cluster gate that passes once and then fails again (a link dropped a
// moment after all were up) is not settled: apply waits until it has kept
// passing for the hold, without restarting anyone for a blip.
func TestReloadSettledOnlyAfterHold(t *testing.T) {
	targets, log, _ := newCluster(t, 3)
	var polls atomic.Int32
	var passedAt []int32
	var mu sync.Mutex
	gate := &desired.ClusterGate{Desc: "all linked", Check: func(context.Context, []desired.Node) error {
		n := polls.Add(1)
		if n == 2 {
			return &desired.Lagging{Nodes: []string{"n3"}, Err: fmt.Errorf("n3 has no route to n1")}
		}
		mu.Lock()
		passedAt = append(passedAt, n)
		mu.Unlock()
		return nil
	}}
	for i := range targets {
		targets[i].Desired.Units[0].Settled = gate
		targets[i].Plan.Handlers["nats-server.service"] = desired.Reload
	}
	var l logs
	if err := Handlers(context.Background(), targets, Timeouts{Health: 2 * time.Second, Reload: 2 * time.Second, Hold: 300 * time.Millisecond}, l.f); err != nil {
		t.Fatal(err)
	}
	if got := filter(*log, "systemctl restart"); len(got) != 0 {
		t.Errorf("a blip restarted %v", got)
	}
	// Poll 1 passed, 2 failed: the hold starts again from poll 3, and
	// needs more than one pass after it.
	if n := polls.Load(); n < 4 {
		t.Errorf("settled after %d polls (passes at %v): the failure inside the hold was ignored", n, passedAt)
	}
	if !strings.Contains(l.text(), "settled after the reload") {
		t.Errorf("no settled line:\n%s", l.text())
	}
}

// logs collects Logf lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) f(host, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, "["+host+"] "+fmt.Sprintf(format, args...))
}

func (l *logs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// What a person reads during a roll: which restart of how many, and the
// cold start said once.
func TestHandlersSayWhatTheyDo(t *testing.T) {
	targets, _, _ := newCluster(t, 3)
	for i := range targets {
		targets[i].Plan.Start = []string{"nats-server.service"}
		targets[i].Desired.Units[0].Settled = &desired.ClusterGate{Desc: "ok", Check: func(context.Context, []desired.Node) error { return nil }}
	}
	var l logs
	if err := Handlers(context.Background(), targets, fast, l.f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.text(), "starting nats-server.service on all 3 hosts together") {
		t.Errorf("cold start not announced:\n%s", l.text())
	}
	targets, _, _ = newCluster(t, 3)
	for i := range targets {
		targets[i].Plan.Handlers["nats-server.service"] = desired.Restart
	}
	l = logs{}
	if err := Handlers(context.Background(), targets, fast, l.f); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"[n1] restart nats-server.service (1 of 3, one host at a time)", "[n2] restart nats-server.service (2 of 3, one host at a time)", "[n3] restart nats-server.service (3 of 3, one host at a time)"} {
		if !strings.Contains(l.text(), want) {
			t.Errorf("restart %d: no %q in\n%s", i+1, want, l.text())
		}
	}
	if strings.Contains(l.text(), "together") {
		t.Errorf("a roll announced a cold start:\n%s", l.text())
	}
}

// Two hosts are a cluster too: the cluster gate is asked after each
// restart; one host alone has no cluster to wait for.
func TestClusterGateFromTwoHosts(t *testing.T) {
	for _, n := range []int{1, 2} {
		targets, _, _ := newCluster(t, n)
		asked := 0
		for i := range targets {
			targets[i].Plan.Handlers["nats-server.service"] = desired.Restart
			targets[i].Desired.Units[0].Settled = &desired.ClusterGate{Desc: "ok", Check: func(context.Context, []desired.Node) error { asked++; return nil }}
		}
		if err := Handlers(context.Background(), targets, fast, nolog); err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{1: 0, 2: 2}[n]; asked != want {
			t.Errorf("%d hosts: cluster gate asked %d times, want %d", n, asked, want)
		}
	}
}

// A unit that names no diagnose command gets its own journal.
func TestDiagnoseDefaultsToTheJournal(t *testing.T) {
	targets, log, conns := newCluster(t, 1)
	targets[0].Desired.Units[0].DiagnoseCmd = ""
	targets[0].Plan.Start = []string{"nats-server.service"}
	conns[0].healthy.Store(false)
	err := Handlers(context.Background(), targets, Timeouts{Start: 300 * time.Millisecond}, nolog)
	if err == nil || !strings.Contains(err.Error(), "Error listening on port") {
		t.Fatalf("error = %v, want the journal's lines", err)
	}
	if got := filter(*log, "journalctl -u nats-server.service -n 20 --no-pager"); len(got) != 1 {
		t.Errorf("journal not read: %v", *log)
	}
}

// Commit records the sums of the files it moved into place, so that the
// next facts need not hash them; a commit that moves nothing records
// nothing.
func TestCommitRecordsSums(t *testing.T) {
	targets, log, _ := newCluster(t, 1)
	tg := targets[0]
	bin := desired.File{Path: "/usr/local/bin/nats-server", Source: "/dev/null", SHA256: strings.Repeat("b", 64), Mode: 0o755, Owner: "root", Group: "root"}
	conf := desired.File{Path: "/etc/nats/routes.conf", Content: []byte("x"), SHA256: strings.Repeat("c", 64), Mode: 0o640, Owner: "root", Group: "nats"}
	mode := desired.File{Path: "/etc/nats/tls.conf", Content: []byte("y"), SHA256: strings.Repeat("d", 64), Mode: 0o640, Owner: "root", Group: "nats"}
	tg.Desired.Files = []desired.File{bin, conf, mode}
	tg.Plan.Files = []plan.FileChange{{File: bin, Upload: true}, {File: conf, Upload: true}, {File: mode}}
	*log = nil
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	want := facts.RecordSums(map[string]string{bin.Path: bin.SHA256, conf.Path: conf.SHA256})
	if script := strings.Join(*log, "\n"); !strings.Contains(script, want) {
		t.Errorf("commit does not record the moved files' sums (%s):\n%s", want, script)
	}
	tg.Plan.Files = []plan.FileChange{{File: mode}}
	*log = nil
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if script := strings.Join(*log, "\n"); strings.Contains(script, "sums") {
		t.Errorf("a commit that moves nothing writes sums:\n%s", script)
	}
}

// Commit moves each staged file from where Stage put it: a validated
// group's files from the group's staging folder, any other file from its
// own hidden neighbour; then the staging folder goes.
func TestCommitMovesFromWhereStagePut(t *testing.T) {
	targets, log, _ := newCluster(t, 1)
	tg := targets[0]
	conf := desired.File{Path: "/etc/nats/nats-server.conf", Content: []byte("x"), Mode: 0o640, Owner: "root", Group: "nats",
		ValidateGroup: "nats-config", ValidateCmd: "true {dir}", Service: "nats-server.service", OnChange: desired.Restart}
	unit := desired.File{Path: "/etc/systemd/system/nats-server.service", Content: []byte("u"), Mode: 0o644, Owner: "root", Group: "root",
		Service: "nats-server.service", OnChange: desired.Restart}
	tg.Desired.Files = []desired.File{conf, unit}
	tg.Plan.Files = []plan.FileChange{{File: conf, Upload: true}, {File: unit, Upload: true}}
	// Every file of the group changed: nothing to copy into the stage,
	// and no empty command for it.
	if err := Stage(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	*log = nil
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	script := strings.Join(*log, "\n")
	for _, want := range []string{
		"mv -f /etc/nats/.natsdeploy-stage/nats-server.conf /etc/nats/nats-server.conf",
		"mv -f /etc/systemd/system/.nats-server.service.natsdeploy-new /etc/systemd/system/nats-server.service",
		"rm -rf /etc/nats/.natsdeploy-stage",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("commit lacks %q:\n%s", want, script)
		}
	}
	// Exactly the staging folders of the groups go, never a file's own
	// folder (rm -rf /etc/systemd/system would be a disaster).
	var rms []string
	for _, l := range strings.Split(script, "\n") {
		if strings.Contains(l, "rm -rf") {
			rms = append(rms, strings.TrimSpace(strings.TrimPrefix(l, "exec ")))
		}
	}
	if len(rms) != 1 || rms[0] != "rm -rf /etc/nats/.natsdeploy-stage" {
		t.Errorf("commit removes %q, want only the group's staging folder:\n%s", rms, script)
	}
	// Nothing to enable, no daemon-reload owed: systemd is left alone.
	if strings.Contains(script, "systemctl") {
		t.Errorf("commit runs systemctl with nothing to enable or reload:\n%s", script)
	}
	// Units to enable: one enable without its own reload for all, then
	// one daemon-reload.
	*log = nil
	tg.Plan.Enable = []string{"nats-server.service", "prometheus.service"}
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	script = strings.Join(*log, "\n")
	enable := strings.Index(script, "systemctl enable --quiet --no-reload nats-server.service prometheus.service\n")
	reload := strings.Index(script, "systemctl daemon-reload")
	if enable < 0 || reload < enable || strings.Count(script, "systemctl enable") != 1 || strings.Count(script, "daemon-reload") != 1 {
		t.Errorf("want one enable --no-reload, then one daemon-reload:\n%s", script)
	}
	// Nothing to abort: no command at all.
	*log = nil
	tg.Plan.Files = nil
	Abort(context.Background(), tg)
	if len(*log) != 0 {
		t.Errorf("abort with nothing staged sent %v", *log)
	}
}

// leaderGate is an order gate that names whatever leader says, and
// records the nodes it was shown.
func leaderGate(leader *atomic.Value, shown *atomic.Int32) *desired.OrderGate {
	return &desired.OrderGate{Desc: "the leader", Last: func(_ context.Context, nodes []desired.Node) (string, error) {
		shown.Store(int32(len(nodes)))
		l, _ := leader.Load().(string)
		if l == "?" {
			return "", fmt.Errorf("no node answers")
		}
		return l, nil
	}}
}

// The host the order gate names goes last, asked again before every
// step: leadership that moves during the roll moves the host kept for
// last with it. Without an answer the roll goes on in inventory order.
func TestRollingRestartLeaderLast(t *testing.T) {
	tests := []struct {
		name   string
		leader []string // what the gate says before each restart
		want   []string
		note   string // in the log of the last restart
	}{
		{"leader first in inventory", []string{"n1", "n1", "n1"}, []string{"n2", "n3", "n1"}, "[n1] restart nats-server.service (3 of 3, one host at a time; the leader, so last)"},
		{"leader in the middle", []string{"n2", "n2", "n2"}, []string{"n1", "n3", "n2"}, "[n2] restart nats-server.service (3 of 3, one host at a time; the leader, so last)"},
		{"leader already last", []string{"n3", "n3", "n3"}, []string{"n1", "n2", "n3"}, "; the leader, so last)"},
		// n1 restarted; leadership moves to n2, which now waits.
		{"leadership moves during the roll", []string{"n3", "n2", "n2"}, []string{"n1", "n3", "n2"}, "[n2] restart nats-server.service (3 of 3, one host at a time; the leader, so last)"},
		// Moved to a host already restarted: nothing to keep for last.
		{"leadership moves to a restarted host", []string{"n2", "n1", "n1"}, []string{"n1", "n2", "n3"}, ""},
		{"no leader", []string{"", "", ""}, []string{"n1", "n2", "n3"}, ""},
		{"gate cannot answer", []string{"?", "?", "?"}, []string{"n1", "n2", "n3"}, "warning: cannot tell which host nats-server.service should restart last (the leader): no node answers; going in inventory order"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			targets, log, _ := newCluster(t, 3)
			var leader atomic.Value
			var shown atomic.Int32
			leader.Store(tc.leader[0])
			gate := leaderGate(&leader, &shown)
			for i := range targets {
				targets[i].Desired.Units[0].Order = gate
				targets[i].Plan.Handlers["nats-server.service"] = desired.Restart
			}
			step := 0
			var l logs
			logf := func(host, format string, args ...any) {
				l.f(host, format, args...)
				if strings.HasSuffix(format, "restarted and healthy") && step+1 < len(tc.leader) {
					step++
					leader.Store(tc.leader[step])
				}
			}
			done, err := rollingRestart(context.Background(), targets, targets[0].Desired.Units[0], fast, logf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range filter(*log, "systemctl restart") {
				got = append(got, strings.SplitN(c, ":", 2)[0])
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") || strings.Join(done, " ") != strings.Join(tc.want, " ") {
				t.Errorf("restarted %v (reported %v), want %v", got, done, tc.want)
			}
			if shown.Load() != 3 {
				t.Errorf("order gate shown %d nodes, want all 3", shown.Load())
			}
			if tc.note != "" && !strings.Contains(l.text(), tc.note) {
				t.Errorf("log lacks %q:\n%s", tc.note, l.text())
			}
			if tc.note == "" && strings.Contains(l.text(), "so last") {
				t.Errorf("log claims a host went last for the leader:\n%s", l.text())
			}
		})
	}
}

// Only the hosts that owe a restart are restarted, with the leader among
// them last; a host that owes nothing is still asked to be ready, and
// still shown to the order gate.
func TestRollingRestartSubsetLeaderLast(t *testing.T) {
	targets, log, conns := newCluster(t, 3)
	var leader atomic.Value
	var shown atomic.Int32
	leader.Store("n1")
	for i := range targets {
		targets[i].Desired.Units[0].Order = leaderGate(&leader, &shown)
	}
	targets[0].Plan.Handlers["nats-server.service"] = desired.Restart
	targets[2].Plan.Handlers["nats-server.service"] = desired.Restart
	if err := Handlers(context.Background(), targets, fast, nolog); err != nil {
		t.Fatal(err)
	}
	if got := filter(*log, "systemctl restart"); strings.Join(got, "|") != "n3: systemctl restart nats-server.service|n1: systemctl restart nats-server.service" {
		t.Errorf("restarts %v, want n3 then n1 (the leader)", got)
	}
	if shown.Load() != 3 {
		t.Errorf("order gate shown %d nodes, want 3", shown.Load())
	}
	*log = nil
	conns[1].healthy.Store(false)
	err := Handlers(context.Background(), targets, Timeouts{Health: 300 * time.Millisecond}, nolog)
	if err == nil || !strings.Contains(err.Error(), "not restarting nats-server.service on n3: host n2 is not ready") {
		t.Fatalf("error = %v, want n2 named", err)
	}
	if got := filter(*log, "systemctl restart"); len(got) != 0 {
		t.Errorf("restarted with n2 not ready: %v", got)
	}
}

// restartPlan marks unit for a restart on the hosts named, as the restart
// command does for its --host selection.
func restartPlan(targets []Target, unit string, hosts ...string) {
	for i := range targets {
		targets[i].Plan.Handlers = map[string]desired.Handler{}
		for _, h := range hosts {
			if targets[i].Name == h {
				targets[i].Plan.Handlers[unit] = desired.Restart
			}
		}
	}
}

func hostsOf(done []Restarted) string {
	var out []string
	for _, r := range done {
		out = append(out, r.Host+":"+r.Unit)
	}
	return strings.Join(out, " ")
}

// A restart on demand is apply's roll over the chosen hosts: one at a
// time, the leader last, every other host ready first, pending records
// cleared; it says what it restarted, in order.
func TestRestartOnDemand(t *testing.T) {
	const unit = "nats-server.service"
	tests := []struct {
		name  string
		hosts []string // --host; every host when empty
		want  string
	}{
		{"every host, leader last", []string{"n1", "n2", "n3"}, "n1:" + unit + " n3:" + unit + " n2:" + unit},
		{"one host", []string{"n1"}, "n1:" + unit},
		{"the leader alone", []string{"n2"}, "n2:" + unit},
		{"two hosts, the leader among them", []string{"n3", "n2"}, "n3:" + unit + " n2:" + unit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			targets, log, _ := newCluster(t, 3)
			var leader atomic.Value
			var shown atomic.Int32
			leader.Store("n2")
			for i := range targets {
				targets[i].Desired.Units[0].Order = leaderGate(&leader, &shown)
			}
			restartPlan(targets, unit, tc.hosts...)
			var l logs
			done, err := Restart(context.Background(), targets, fast, l.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostsOf(done); got != tc.want {
				t.Errorf("restarted %s, want %s", got, tc.want)
			}
			var sent []string
			for _, c := range filter(*log, "systemctl restart") {
				sent = append(sent, strings.SplitN(c, ":", 2)[0]+":"+unit)
			}
			if strings.Join(sent, " ") != tc.want {
				t.Errorf("systemctl restart sent to %v, want %s", sent, tc.want)
			}
			if n := len(filter(*log, "rm -f /var/lib/natsdeploy/pending-"+unit)); n != len(tc.hosts) {
				t.Errorf("pending records cleared %d times, want %d", n, len(tc.hosts))
			}
			if !strings.Contains(l.text(), "[] "+unit+" is ready on n1, n2, n3") {
				t.Errorf("no preflight line:\n%s", l.text())
			}
		})
	}
}

// Restart refuses before touching anything when any host that runs the
// unit is not ready, chosen or not, or the cluster is not settled, and
// names every host in the way.
func TestRestartRefusesBeforeTouchingAnything(t *testing.T) {
	const unit = "nats-server.service"
	tests := []struct {
		name  string
		spoil func(targets []Target, conns []*fakeConn)
		want  []string
	}{
		{"a chosen host unhealthy", func(_ []Target, c []*fakeConn) { c[0].healthy.Store(false) },
			[]string{"host n1: nats-server.service is not ready", "503"}},
		{"a host not chosen unhealthy", func(_ []Target, c []*fakeConn) { c[2].healthy.Store(false) },
			[]string{"host n3: nats-server.service is not ready"}},
		{"two hosts unhealthy, both named", func(_ []Target, c []*fakeConn) { c[1].healthy.Store(false); c[2].healthy.Store(false) },
			[]string{"host n2: nats-server.service is not ready", "host n3: nats-server.service is not ready"}},
		{"cluster not settled", func(ts []Target, _ []*fakeConn) {
			for i := range ts {
				ts[i].Desired.Units[0].Settled = &desired.ClusterGate{Desc: "members current", Check: func(context.Context, []desired.Node) error {
					return fmt.Errorf("leader sees n3 behind")
				}}
			}
		}, []string{"nats-server.service", "leader sees n3 behind"}},
		// Without a ready gate, an active unit is a ready one.
		{"no ready gate, unit failed", func(ts []Target, c []*fakeConn) {
			for i := range ts {
				ts[i].Desired.Units[0].Ready = nil
			}
			c[1].state = "failed"
		}, []string{"host n2: nats-server.service is not ready", "systemd says failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			targets, log, conns := newCluster(t, 3)
			restartPlan(targets, unit, "n1", "n2")
			tc.spoil(targets, conns)
			done, err := Restart(context.Background(), targets, Timeouts{Health: 300 * time.Millisecond, Preflight: 300 * time.Millisecond}, nolog)
			if err == nil {
				t.Fatalf("restart went ahead: %v", done)
			}
			for _, w := range append(tc.want, "not restarting anything", "nothing was restarted") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if len(done) != 0 {
				t.Errorf("reported restarts %v", done)
			}
			for _, l := range *log {
				if strings.Contains(l, "systemctl restart") || strings.Contains(l, "rm -f") {
					t.Errorf("touched a host: %s", l)
				}
			}
		})
	}
	targets, _, _ := newCluster(t, 3)
	if _, err := Restart(context.Background(), targets, fast, nolog); err == nil || err.Error() != "nothing to restart" {
		t.Errorf("restart with nothing chosen: %v", err)
	}
}

// A restart that fails midway reports what it did before the failure.
func TestRestartFailureSaysWhatWasDone(t *testing.T) {
	targets, _, conns := newCluster(t, 3)
	restartPlan(targets, "nats-server.service", "n1", "n2", "n3")
	conns[1].fail = "systemctl restart"
	done, err := Restart(context.Background(), targets, fast, nolog)
	if err == nil || !strings.Contains(err.Error(), "host n2: restart nats-server.service") {
		t.Fatalf("error = %v", err)
	}
	if got := hostsOf(done); got != "n1:nats-server.service" {
		t.Errorf("done = %s, want n1 only", got)
	}
}

// A cold start is done when the cluster gate passes: one that never does
// fails the start and names the unit. A single host has no cluster to
// start together, and says nothing of one.
func TestColdStartWaitsForTheClusterGate(t *testing.T) {
	for _, n := range []int{1, 2} {
		targets, _, _ := newCluster(t, n)
		rec := &eventLog{}
		for i := range targets {
			targets[i].Plan.Start = []string{"nats-server.service"}
			targets[i].Desired.Units[0].Settled = &desired.ClusterGate{Desc: "no meta leader", Check: func(context.Context, []desired.Node) error {
				return errors.New("no meta leader")
			}}
			targets[i].Events = rec
		}
		var l logs
		err := Handlers(context.Background(), targets, Timeouts{Start: 100 * time.Millisecond}, l.f)
		together := strings.Contains(l.text(), "together")
		var settle []string
		for _, e := range rec.all() {
			if e.Phase == progress.Settle {
				settle = append(settle, fmt.Sprintf("%s %s %s", e.Host, e.Kind, e.Unit))
			}
		}
		slices.Sort(settle)
		switch n {
		case 1:
			if err != nil || together || len(settle) > 0 {
				t.Errorf("1 host: Handlers = %v, announced a cold cluster: %v, settle events %q\n%s", err, together, settle, l.text())
			}
		case 2:
			if err == nil || !strings.Contains(err.Error(), "nats-server.service: after 100ms: no meta leader") || !together {
				t.Errorf("2 hosts: Handlers = %v, announced a cold cluster: %v\n%s", err, together, l.text())
			}
			// The wait is said on every member, and how it ended.
			want := []string{"n1 fail nats-server.service", "n1 start nats-server.service", "n2 fail nats-server.service", "n2 start nats-server.service"}
			if !slices.Equal(settle, want) {
				t.Errorf("settle events %q, want %q", settle, want)
			}
		}
	}
}

// A cluster that settles is said to have settled, on every member.
func TestSettleEventsOnEveryMember(t *testing.T) {
	targets, _, _ := newCluster(t, 3)
	rec := &eventLog{}
	for i := range targets {
		targets[i].Desired.Units[0].Settled = &desired.ClusterGate{Desc: "meta", Check: func(context.Context, []desired.Node) error { return nil }}
		targets[i].Events = rec
	}
	if err := waitSettled(context.Background(), targets, targets[0].Desired.Units[0], time.Second); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.all() {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Host, e.Phase, e.Kind, e.Unit))
	}
	slices.Sort(got)
	var want []string
	for _, h := range []string{"n1", "n2", "n3"} {
		want = append(want, h+" settle done nats-server.service", h+" settle start nats-server.service")
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// The wait for a settled cluster after a reload lasts the reload timeout
// plus the hold: a gate that takes most of the timeout to pass still has
// the whole hold to prove it keeps passing.
func TestWaitStableGivesTheHoldOnTopOfTheTimeout(t *testing.T) {
	targets, _, _ := newCluster(t, 3)
	start := time.Now()
	passFrom := 120 * time.Millisecond
	gate := &desired.ClusterGate{Desc: "all linked", Check: func(context.Context, []desired.Node) error {
		if time.Since(start) < passFrom {
			return errors.New("n3 has no route to n1")
		}
		return nil
	}}
	for i := range targets {
		targets[i].Desired.Units[0].Settled = gate
	}
	u := targets[0].Desired.Units[0]
	if err := waitStable(context.Background(), targets, u, 150*time.Millisecond, 200*time.Millisecond); err != nil {
		t.Fatalf("a gate passing from %s on, timeout 150ms, hold 200ms: %v", passFrom, err)
	}
	if took := time.Since(start); took < passFrom+200*time.Millisecond {
		t.Errorf("settled after %s, before the gate had passed for the hold", took)
	}
	start = time.Now()
	passFrom = time.Hour
	err := waitStable(context.Background(), targets, u, 100*time.Millisecond, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("a gate that never passes: %v, want its error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a gate that never passes was waited on for %s; timeout and hold are 100ms each", took)
	}
}

// diagnoseConn answers every command with out and err.
type diagnoseConn struct {
	fakeConn
	out string
	err error
}

func (c *diagnoseConn) Exec(context.Context, string) (string, error) { return c.out, c.err }

// diagnose shows what the unit's diagnose command printed, indented under
// the host's name, also when the command failed (tail of a log that is
// not there yet beside a journal that is); nothing when it printed
// nothing.
func TestDiagnose(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		err       error
		want      string
	}{
		{"printed", "line 1\nline 2\n", nil, "\n  last lines from n1:\n    line 1\n    line 2"},
		{"printed and failed", "journal line\ntail: cannot open\n", errors.New("exit status 1"), "\n  last lines from n1:\n    journal line\n    tail: cannot open"},
		{"failed silently", "", errors.New("exit status 1"), ""},
		{"printed blanks", " \n\n", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := Target{Name: "n1", Conn: &diagnoseConn{out: tc.out, err: tc.err}}
			if got := diagnose(context.Background(), tg, desired.Unit{Name: "nats-server.service", DiagnoseCmd: "journalctl; tail"}); got != tc.want {
				t.Errorf("diagnose = %q, want %q", got, tc.want)
			}
		})
	}
}
