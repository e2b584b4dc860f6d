package apply

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
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
)

// twoRoles is a host with a NATS part and a Prometheus part, as Merge
// makes them, planned against a bare host.
func twoRoles(name string, conn Conn, withProm bool) Target {
	nats := desired.Host{
		Users: []desired.User{{Name: "nats", Home: "/var/lib/nats"}},
		Dirs:  []desired.Dir{{Path: "/etc/nats", Owner: "root", Group: "nats", Mode: 0o750}},
		Files: []desired.File{
			{Path: "/etc/nats/nats-server.conf", Content: []byte("n"), SHA256: "n1", Mode: 0o640, Owner: "root", Group: "nats",
				ValidateGroup: "nats-config", ValidateCmd: "check-nats {dir}", Service: "nats-server.service", OnChange: desired.Reload},
			{Path: "/etc/systemd/system/nats-server.service", Content: []byte("u"), SHA256: "u1", Mode: 0o644, Owner: "root", Group: "root",
				Service: "nats-server.service", OnChange: desired.Restart},
		},
		Units: []desired.Unit{{Name: "nats-server.service", UnitFile: "/etc/systemd/system/nats-server.service"}},
	}
	parts := []desired.Part{{Role: "nats", Host: nats}}
	if withProm {
		parts = append(parts, desired.Part{Role: "prometheus", Host: desired.Host{
			Users: []desired.User{{Name: "prometheus", Home: "/var/lib/prometheus"}},
			Files: []desired.File{
				{Path: "/etc/prometheus/prometheus.yml", Content: []byte("p"), SHA256: "p1", Mode: 0o640, Owner: "root", Group: "prometheus",
					ValidateGroup: "prometheus-config", ValidateCmd: "check-prom {dir}", Service: "prometheus.service", OnChange: desired.Reload},
				{Path: "/usr/local/bin/prometheus", Content: []byte("big"), SHA256: "b1", Mode: 0o755, Owner: "root", Group: "root",
					Service: "prometheus.service", OnChange: desired.Restart},
			},
			Units: []desired.Unit{{Name: "prometheus.service", UnitFile: "/etc/systemd/system/prometheus.service"}},
		}})
	}
	d, err := desired.Merge(name, parts...)
	if err != nil {
		panic(err)
	}
	bare := facts.Host{Users: map[string]bool{}, Dirs: map[string]facts.File{}, Files: map[string]facts.File{}, Units: map[string]facts.Unit{}}
	return Target{Name: name, Conn: conn, Desired: d, Plan: plan.Compute(d, bare)}
}

func TestWaves(t *testing.T) {
	t.Run("one role: the targets as they are", func(t *testing.T) {
		ts := []Target{twoRoles("n1", nil, false), twoRoles("n2", nil, false)}
		w := Waves(ts, nil)
		if len(w) != 1 || len(w[0]) != 2 || len(w[0][0].Plan.Files) != 2 {
			t.Fatalf("waves %+v", w)
		}
	})
	t.Run("the roles' order, not the hosts'", func(t *testing.T) {
		// A monitoring host that runs only Prometheus, listed first.
		mon := twoRoles("mon", nil, true)
		prom := map[string]bool{"prometheus.service": true}
		mon.Plan, mon.Desired = mon.Plan.Only(prom, true), mon.Desired.Only(prom, true)
		ts := []Target{mon, twoRoles("n1", nil, false)}
		for _, tc := range []struct {
			roles []string
			first string
		}{
			{[]string{"nats", "prometheus"}, "nats-server.service"},
			{[]string{"prometheus", "nats"}, "prometheus.service"},
			{nil, "prometheus.service"}, // no order given: as they appear
		} {
			w := Waves(ts, tc.roles)
			if len(w) != 2 {
				t.Fatalf("%v: %d waves", tc.roles, len(w))
			}
			if got := unitsOf(w[0]); len(got) != 1 || got[0].Name != tc.first {
				t.Errorf("roles %v: first wave's units %v, want %s", tc.roles, got, tc.first)
			}
		}
	})
	t.Run("two roles: one wave each, every host in both", func(t *testing.T) {
		ts := []Target{twoRoles("n1", nil, true), twoRoles("n2", nil, false)}
		w := Waves(ts, nil)
		if len(w) != 2 || len(w[0]) != 2 || len(w[1]) != 2 {
			t.Fatalf("%d waves", len(w))
		}
		for i, want := range []struct {
			n1, n2 string
			users  int
		}{
			{"/etc/nats/nats-server.conf /etc/systemd/system/nats-server.service", "/etc/nats/nats-server.conf /etc/systemd/system/nats-server.service", 2},
			{"/etc/prometheus/prometheus.yml /usr/local/bin/prometheus", "", 0},
		} {
			for j, wantFiles := range []string{want.n1, want.n2} {
				tg := w[i][j]
				var got []string
				for _, c := range tg.Plan.Files {
					got = append(got, c.File.Path)
				}
				if strings.Join(got, " ") != wantFiles {
					t.Errorf("wave %d, %s: files %q, want %q", i, tg.Name, got, wantFiles)
				}
				if j == 0 && (len(tg.Plan.Users) != want.users || len(tg.Desired.Users) != want.users) {
					t.Errorf("wave %d: users %v planned, %v desired; want %d", i, tg.Plan.Users, tg.Desired.Users, want.users)
				}
				if len(tg.Desired.Units) > 1 {
					t.Errorf("wave %d, %s: units %v", i, tg.Name, tg.Desired.Units)
				}
			}
		}
		if !w[0][0].Plan.DaemonReload || w[1][0].Plan.DaemonReload {
			t.Errorf("daemon-reload in wave 0 %v, wave 1 %v; want only where a unit file changed", w[0][0].Plan.DaemonReload, w[1][0].Plan.DaemonReload)
		}
		if !w[1][1].Plan.Empty() {
			t.Errorf("n2 has no prometheus, but its second wave is %+v", w[1][1].Plan)
		}
	})
}

// waveConn is a host whose batches record what each installed, and whose
// commands can wait for a file to have been sent first.
type waveConn struct {
	mu       sync.Mutex
	cmds     []string
	batches  []*waveBatch
	sent     map[string]chan struct{}
	failSend string // a send to this path fails
	// waitFor holds a command containing the key until the value's file
	// was sent.
	waitFor map[string]string
}

type waveBatch struct {
	c                    *waveConn
	files                []string
	installed, discarded bool
}

func newWaveConn() *waveConn {
	return &waveConn{sent: map[string]chan struct{}{}, waitFor: map[string]string{}}
}

func (c *waveConn) sentCh(dst string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent[dst] == nil {
		c.sent[dst] = make(chan struct{})
	}
	return c.sent[dst]
}

func (c *waveConn) Exec(ctx context.Context, cmd string) (string, error) {
	for sub, dst := range c.waitFor {
		if strings.Contains(cmd, sub) {
			select {
			case <-c.sentCh(dst):
			case <-time.After(5 * time.Second):
				return "", fmt.Errorf("%s was not sent while %q waited", dst, sub)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, cmd)
	return "", nil
}

func (c *waveConn) Upload(context.Context, io.Reader, string, fs.FileMode, string, string) error {
	return errors.New("Upload used on a conn that batches")
}

func (c *waveConn) HTTPClient() *http.Client { return nil }

func (c *waveConn) NewBatch() Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &waveBatch{c: c}
	c.batches = append(c.batches, b)
	return b
}

func (b *waveBatch) Send(ctx context.Context, r io.Reader, dst string, _ fs.FileMode, _, _ string) error {
	io.Copy(io.Discard, r)
	if dst == b.c.failSend {
		return fmt.Errorf("host n1: upload %s: connection lost", dst)
	}
	b.c.mu.Lock()
	b.files = append(b.files, dst)
	b.c.mu.Unlock()
	close(b.c.sentCh(dst))
	return nil
}

func (b *waveBatch) Install(context.Context) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.installed = true
	return nil
}

func (b *waveBatch) Discard(context.Context) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.discarded = true
}

// The files of a later wave travel while an earlier wave is validated, and
// each wave installs its own files only.
func TestPipelineSendsAhead(t *testing.T) {
	conn := newWaveConn()
	// Wave 0's validation cannot end before Prometheus' binary is sent:
	// only sending ahead lets it.
	conn.waitFor["check-nats"] = "/usr/local/bin/.prometheus.natsdeploy-new"
	waves := Waves([]Target{twoRoles("n1", conn, true)}, nil)
	ctx := context.Background()
	p := SendAhead(ctx, waves)
	if err := p.Stage(ctx, waves[0][0], 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Stage(ctx, waves[1][0], 1); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	if len(conn.batches) != 2 {
		t.Fatalf("%d batches, want one a wave", len(conn.batches))
	}
	for i, want := range [][]string{
		{"/etc/nats/.natsdeploy-stage/nats-server.conf", "/etc/systemd/system/.nats-server.service.natsdeploy-new"},
		{"/etc/prometheus/.natsdeploy-stage/prometheus.yml", "/usr/local/bin/.prometheus.natsdeploy-new"},
	} {
		b := conn.batches[i]
		slices.Sort(b.files)
		if !slices.Equal(b.files, want) || !b.installed || b.discarded {
			t.Errorf("wave %d: batch %+v, want %q installed", i, b, want)
		}
	}
	// One prepare for both waves: both users, both staging dirs.
	prep := conn.cmds[0]
	for _, want := range []string{"useradd", "nats", "prometheus", "/etc/nats/.natsdeploy-stage", "/etc/prometheus/.natsdeploy-stage"} {
		if !strings.Contains(prep, want) {
			t.Errorf("prepare lacks %q:\n%s", want, prep)
		}
	}
	if n := strings.Count(strings.Join(conn.cmds, "\n"), "useradd"); n != 2 {
		t.Errorf("%d useradds, want 2 (one prepare)", n)
	}
}

// A send that fails stops the waves after it, and what was sent and not
// installed is removed; the waves before it stage as ever.
func TestPipelineSendFails(t *testing.T) {
	conn := newWaveConn()
	conn.failSend = "/usr/local/bin/.prometheus.natsdeploy-new"
	waves := Waves([]Target{twoRoles("n1", conn, true)}, nil)
	ctx := context.Background()
	p := SendAhead(ctx, waves)
	if err := p.Stage(ctx, waves[0][0], 0); err != nil {
		t.Fatal(err)
	}
	err := p.Stage(ctx, waves[1][0], 1)
	if err == nil || !strings.Contains(err.Error(), "host n1: upload /usr/local/bin/prometheus: upload /usr/local/bin/.prometheus.natsdeploy-new: connection lost") {
		t.Fatalf("err = %v", err)
	}
	p.Close(ctx)
	if b := conn.batches[0]; !b.installed || b.discarded {
		t.Errorf("wave 0 batch %+v: want installed", b)
	}
	if b := conn.batches[1]; b.installed || !b.discarded {
		t.Errorf("wave 1 batch %+v: want discarded", b)
	}
}

// A run that stops after its first wave removes the later waves' files
// it sent.
func TestPipelineCloseDiscardsUnstaged(t *testing.T) {
	conn := newWaveConn()
	waves := Waves([]Target{twoRoles("n1", conn, true)}, nil)
	ctx := context.Background()
	p := SendAhead(ctx, waves)
	if err := p.Stage(ctx, waves[0][0], 0); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	if b := conn.batches[1]; b.installed || !b.discarded {
		t.Errorf("wave 1 batch %+v: want discarded", b)
	}
	if b := conn.batches[0]; b.discarded {
		t.Errorf("wave 0 batch %+v: installed, not to be discarded", b)
	}
}

// A cold start of a clustered unit is what waits for every send; a start
// of a unit with no cluster gate, or a restart, is not.
func TestColdClusterStart(t *testing.T) {
	clustered := desired.Unit{Name: "nats-server.service", Settled: &desired.ClusterGate{Desc: "meta leader"}}
	alone := desired.Unit{Name: "prometheus.service"}
	for _, tc := range []struct {
		name  string
		unit  desired.Unit
		start bool
		want  bool
	}{
		{"clustered, stopped", clustered, true, true},
		{"clustered, running", clustered, false, false},
		{"alone, stopped", alone, true, false},
	} {
		tg := Target{Name: "n1", Desired: desired.Host{Units: []desired.Unit{tc.unit}}, Plan: plan.Host{Handlers: map[string]desired.Handler{tc.unit.Name: desired.Restart}}}
		if tc.start {
			tg.Plan.Start = []string{tc.unit.Name}
		}
		if got := ColdClusterStart([]Target{{Name: "n0"}, tg}); got != tc.want {
			t.Errorf("%s: ColdClusterStart = %v, want %v", tc.name, got, tc.want)
		}
	}
}
