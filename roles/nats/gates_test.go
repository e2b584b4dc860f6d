package nats

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
)

// fakeNode is a host whose loopback monitoring port is an httptest server
// and whose commands are answered from a map.
type fakeNode struct {
	srv  *httptest.Server
	mu   sync.Mutex
	body map[string]string // path -> body; a missing path is a 503
	out  map[string]string // command -> output
	ran  []string
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{body: map[string]string{}, out: map[string]string{}}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		b, ok := n.body[r.URL.Path]
		n.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"not ready"}`))
			return
		}
		w.Write([]byte(b))
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) set(path, body string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.body[path] = body
}

func (n *fakeNode) Exec(_ context.Context, cmd string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ran = append(n.ran, cmd)
	out, ok := n.out[cmd]
	if !ok {
		return "", errors.New("exit status 1")
	}
	return out, nil
}

// HTTPClient sends every request, whatever its host (127.0.0.1:8222 as the
// gates write it), to the fake's server: what the SSH tunnel does.
func (n *fakeNode) HTTPClient() *http.Client {
	target, _ := url.Parse(n.srv.URL)
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "127.0.0.1:8222" {
			return nil, errors.New("gate asked " + r.URL.Host + ", not the monitoring port on loopback")
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func natsUnit(t *testing.T) desired.Unit {
	t.Helper()
	h, err := Desired(fixture(), fixture().Hosts[0], secrets, testBinary)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range h.Units {
		if u.Name == Service {
			return u
		}
	}
	t.Fatal("no nats-server unit")
	return desired.Unit{}
}

func TestReadyGate(t *testing.T) {
	u, fn := natsUnit(t), newFakeNode(t)
	n := desired.Node{Name: "nats-1", Remote: fn}
	if err := u.Ready.Check(context.Background(), n); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("ready while /healthz is 503: %v", err)
	}
	fn.set("/healthz", `{"status":"ok"}`)
	if err := u.Ready.Check(context.Background(), n); err != nil {
		t.Fatalf("not ready with /healthz 200: %v", err)
	}
}

func TestReloadGate(t *testing.T) {
	u, fn := natsUnit(t), newFakeNode(t)
	n := desired.Node{Name: "nats-1", Remote: fn}
	ctx := context.Background()
	digest := "sha256:" + strings.Repeat("ab", 32)
	cmd := "cd /etc/nats && runuser -u nats -- /usr/local/bin/nats-server -t -c nats-server.conf 2>&1"
	if _, err := u.Reload.Want(ctx, n); err == nil {
		t.Fatal("Want succeeded though nats-server -t failed")
	}
	fn.out[cmd] = "nats-server: configuration file /etc/nats/nats-server.conf is valid (" + digest + ")\n"
	want, err := u.Reload.Want(ctx, n)
	if err != nil || want != digest {
		t.Fatalf("Want = %q, %v", want, err)
	}
	fn.set("/varz", `{"server_name":"nats-1","config_digest":"sha256:`+strings.Repeat("cd", 32)+`"}`)
	if err := u.Reload.Check(ctx, n, want); err == nil || !strings.Contains(err.Error(), "did not take effect") {
		t.Fatalf("a stale digest passed: %v", err)
	}
	fn.set("/varz", `{"server_name":"nats-1","config_digest":"`+digest+`"}`)
	if err := u.Reload.Check(ctx, n, want); err != nil {
		t.Fatalf("the new digest failed: %v", err)
	}
	fn.out[cmd] = "nats-server: config error"
	if _, err := u.Reload.Want(ctx, n); err == nil || !strings.Contains(err.Error(), "no digest") {
		t.Fatalf("Want without a digest = %v", err)
	}
}

func TestSettledGate(t *testing.T) {
	u := natsUnit(t)
	var nodes []desired.Node
	var fakes []*fakeNode
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		fn := newFakeNode(t)
		fakes = append(fakes, fn)
		nodes = append(nodes, desired.Node{Name: name, Remote: fn})
		fn.set("/jsz", `{"meta_cluster":{"leader":"nats-2","cluster_size":3}}`)
	}
	routes := func(names ...string) string {
		var rs []string
		for _, n := range names {
			rs = append(rs, `{"remote_name":"`+n+`"}`)
		}
		return `{"routes":[` + strings.Join(rs, ",") + `]}`
	}
	fakes[0].set("/routez", routes("nats-2", "nats-2")) // a pool: one peer, many routes
	fakes[1].set("/routez", routes("nats-1"))
	fakes[2].set("/routez", routes())
	ctx := context.Background()
	// nats-3 lost every route: it is named first, the one to repair.
	err := u.Settled.Check(ctx, nodes)
	var lag *desired.Lagging
	if !errors.As(err, &lag) || strings.Join(lag.Nodes, " ") != "nats-3 nats-1 nats-2" || !strings.Contains(err.Error(), "nats-3 has no route to nats-1, nats-2") {
		t.Fatalf("with nats-3 cut off: %v (%#v)", err, lag)
	}
	for i, names := range [][]string{{"nats-2", "nats-3"}, {"nats-1", "nats-3"}, {"nats-1", "nats-2"}} {
		fakes[i].set("/routez", routes(names...))
	}
	fakes[1].set("/jsz", `{"meta_cluster":{"leader":"nats-2","cluster_size":3,"replicas":[{"name":"nats-1","current":true},{"name":"nats-3","current":false}]}}`)
	if err := u.Settled.Check(ctx, nodes); err == nil || !strings.Contains(err.Error(), "nats-3") {
		t.Fatalf("settled with nats-3 behind: %v", err)
	}
	fakes[1].set("/jsz", `{"meta_cluster":{"leader":"nats-2","cluster_size":3,"replicas":[{"name":"nats-1","current":true},{"name":"nats-3","current":true}]}}`)
	if err := u.Settled.Check(ctx, nodes); err != nil {
		t.Fatalf("not settled: %v", err)
	}
}

// The order gate names the node that reports itself meta leader, through
// each node's own monitoring port on loopback.
func TestOrderGate(t *testing.T) {
	u := natsUnit(t)
	if u.Order == nil {
		t.Fatal("nats-server.service has no order gate: a roll would restart the meta leader whenever its turn came")
	}
	var nodes []desired.Node
	var fakes []*fakeNode
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		fn := newFakeNode(t)
		fakes = append(fakes, fn)
		nodes = append(nodes, desired.Node{Name: name, Remote: fn})
		fn.set("/jsz", `{"meta_cluster":{"leader":"nats-1","cluster_size":3}}`)
	}
	fakes[0].set("/jsz", `{"meta_cluster":{"leader":"nats-2","cluster_size":3}}`) // stale
	fakes[1].set("/jsz", `{"meta_cluster":{"leader":"nats-2","cluster_size":3}}`)
	got, err := u.Order.Last(context.Background(), nodes)
	if err != nil || got != "nats-2" {
		t.Fatalf("Last = %q, %v; want nats-2", got, err)
	}
}
