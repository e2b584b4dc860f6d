package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// abbrev keeps 19 characters, "sha256:" and 12 hex digits: enough to tell
// digests apart in a passing row.
func TestAbbrev(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"sha256:0123456789ab", "sha256:0123456789ab"},
		{"sha256:0123456789abc", "sha256:0123456789ab..."},
		{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "sha256:0123456789ab..."},
	} {
		if got := abbrev(tc.in); got != tc.want {
			t.Errorf("abbrev(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// answer is one scripted reply of a monitoring endpoint.
type answer struct {
	body   string
	status int
	err    error
}

// scriptProbe answers each path as scripted (404 for any other) and
// reports a fixed service state.
type scriptProbe struct {
	paths  map[string]answer
	active bool
	state  string
	err    error
}

func (p scriptProbe) HTTPGet(_ context.Context, _ inventory.Host, path string) ([]byte, int, error) {
	a, ok := p.paths[path]
	if !ok {
		return []byte("not found"), 404, nil
	}
	return []byte(a.body), a.status, a.err
}

func (p scriptProbe) ServiceActive(context.Context, inventory.Host) (bool, string, error) {
	return p.active, p.state, p.err
}

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// healthyPaths are the answers of a healthy n1 running 2.14.9 and the
// deployed config, routed to n2 and n3 over pooled routes.
func healthyPaths() map[string]answer {
	return map[string]answer{
		"/healthz": {body: `{"status":"ok"}`, status: 200},
		"/varz":    {body: `{"server_name":"n1","version":"2.14.9","config_digest":"` + testDigest + `"}`, status: 200},
		"/routez":  {body: `{"routes":[{"remote_name":"n2"},{"remote_name":"n3"},{"remote_name":"n2"},{"remote_name":"n3"}]}`, status: 200},
	}
}

// checkNode on scripted answers: each row's status and text, and whether
// the node counts as down for the other checks.
func TestCheckNode(t *testing.T) {
	// A client port that accepts: the node is up even if monitoring is not.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "nats://" + closed.Addr().String()
	closed.Close()

	refused := errors.New("dial tcp: connection refused")
	tests := []struct {
		name     string
		edit     func(p *scriptProbe)
		url      string // client URL; default: the listening port
		digest   func(context.Context, inventory.Host) (string, error)
		wantRows []string // check status seen (or "expected X, saw Y")
		wantDown bool
	}{
		{name: "healthy", wantRows: []string{
			"node/health ok /healthz 200",
			"node/version ok nats-server 2.14.9 named n1",
			"node/digest ok running the deployed config sha256:0123456789ab...",
			"node/service ok nats-server.service active",
			"cluster/routes ok routes to n2, n3 (4 connections)",
		}},
		{name: "version with v prefix", edit: func(p *scriptProbe) {
			p.paths["/varz"] = answer{body: `{"server_name":"n1","version":"v2.14.9","config_digest":"` + testDigest + `"}`, status: 200}
		}, wantRows: []string{
			"node/health ok /healthz 200",
			"node/version ok nats-server v2.14.9 named n1",
			"node/digest ok running the deployed config sha256:0123456789ab...",
			"node/service ok nats-server.service active",
			"cluster/routes ok routes to n2, n3 (4 connections)",
		}},
		{name: "wrong name, stale config, a route missing, unhealthy", edit: func(p *scriptProbe) {
			p.paths["/healthz"] = answer{body: "{\"status\": \"unavailable\",\n \"error\": \"JetStream not current\"}", status: 503}
			p.paths["/varz"] = answer{body: `{"server_name":"n9","version":"2.14.9","config_digest":"sha256:ffff"}`, status: 200}
			p.paths["/routez"] = answer{body: `{"routes":[{"remote_name":"n2"}]}`, status: 200}
		}, wantRows: []string{
			`node/health FAIL expected /healthz 200, saw 503 {"status": "unavailable", "error": "JetStream not current"}`,
			"node/version FAIL expected nats-server 2.14.9 named n1, saw nats-server 2.14.9 named n9",
			"node/digest FAIL expected config_digest " + testDigest + ", saw sha256:ffff (the running config is not the one deployed: a reload failed or the file was changed)",
			"node/service ok nats-server.service active",
			"cluster/routes FAIL expected routes to n2, n3, saw routes to n2",
		}},
		{name: "wrong version, no digest in varz, service failed", edit: func(p *scriptProbe) {
			p.paths["/varz"] = answer{body: `{"server_name":"n1","version":"2.10.0"}`, status: 200}
			p.active, p.state = false, "failed"
		}, wantRows: []string{
			"node/health ok /healthz 200",
			"node/version FAIL expected nats-server 2.14.9 named n1, saw nats-server 2.10.0 named n1",
			"node/digest FAIL expected config_digest " + testDigest + ", saw no config_digest in /varz (nats-server older than 2.11?)",
			"node/service FAIL expected nats-server.service active, saw failed",
			"cluster/routes ok routes to n2, n3 (4 connections)",
		}},
		{name: "varz and routez unreadable, service manager unreachable", edit: func(p *scriptProbe) {
			p.paths["/varz"] = answer{err: errors.New("varz: timeout")}
			delete(p.paths, "/routez")
			p.err = errors.New("ssh: gone")
		}, wantRows: []string{
			"node/health ok /healthz 200",
			"node/version FAIL expected nats-server 2.14.9 named n1, saw varz: timeout",
			"node/digest FAIL expected config_digest " + testDigest + ", saw varz: timeout",
			"node/service FAIL expected nats-server.service active, saw ssh: gone",
			"cluster/routes FAIL expected routes to n2, n3, saw /routez answered 404: not found",
		}},
		{name: "digest on disk unreadable, probe without service state", edit: func(p *scriptProbe) {
			p.err = ErrUnsupported
		}, digest: func(context.Context, inventory.Host) (string, error) { return "", errors.New("nats-server -t: exit 1") },
			wantRows: []string{
				"node/health ok /healthz 200",
				"node/version ok nats-server 2.14.9 named n1",
				"node/digest FAIL expected the digest of the config on disk, saw nats-server -t: exit 1",
				"node/service skip not supported by this probe",
				"cluster/routes ok routes to n2, n3 (4 connections)",
			}},
		// Monitoring refused but the client port answers: unhealthy, not
		// down, so the other checks still use the node.
		{name: "monitoring refused, client port up", edit: func(p *scriptProbe) {
			for path := range p.paths {
				p.paths[path] = answer{err: refused}
			}
		}, wantRows: []string{
			"node/health FAIL expected /healthz 200, saw dial tcp: connection refused",
			"node/version FAIL expected nats-server 2.14.9 named n1, saw dial tcp: connection refused",
			"node/digest FAIL expected config_digest " + testDigest + ", saw dial tcp: connection refused",
			"node/service ok nats-server.service active",
			"cluster/routes FAIL expected routes to n2, n3, saw dial tcp: connection refused",
		}},
		{name: "both ports dead: down", url: deadURL, edit: func(p *scriptProbe) {
			for path := range p.paths {
				p.paths[path] = answer{err: refused}
			}
			p.active, p.state = false, "inactive"
		}, wantRows: []string{
			"node/health FAIL expected /healthz 200, saw dial tcp: connection refused; client port: dial tcp " + strings.TrimPrefix(deadURL, "nats://") + ": connect: connection refused",
			"node/service FAIL expected nats-server.service active, saw inactive",
			"node/version FAIL expected an answer from n1, saw not checked: node down, see node/health",
			"node/digest FAIL expected an answer from n1, saw not checked: node down, see node/health",
			"cluster/routes FAIL expected an answer from n1, saw not checked: node down, see node/health",
		}, wantDown: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := scriptProbe{paths: healthyPaths(), active: true, state: "active"}
			if tc.edit != nil {
				tc.edit(&p)
			}
			url := "nats://" + ln.Addr().String()
			if tc.url != "" {
				url = tc.url
			}
			digest := tc.digest
			if digest == nil {
				digest = func(context.Context, inventory.Host) (string, error) { return testDigest, nil }
			}
			inv := testInventory("2.14.9", 1, 2, 3)
			v := newVerifier(Options{Inventory: inv, Probe: p, ExpectedDigest: digest,
				NATSURL: func(inventory.Host) string { return url }})
			var got []string
			for _, r := range v.checkNode(context.Background(), inv.Hosts[0]) {
				if r.Target != "n1" {
					t.Errorf("%s: target %q", r.Check, r.Target)
				}
				if r.OK || r.Skipped {
					got = append(got, r.Check+" "+r.Status()+" "+r.Seen)
				} else {
					got = append(got, r.Check+" "+r.Status()+" "+r.Detail())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantRows, "\n") {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.wantRows, "\n  "))
			}
			_, down := v.down["n1"]
			if down != tc.wantDown {
				t.Errorf("n1 down = %v, want %v", down, tc.wantDown)
			}
			if up, _ := v.upHosts(); len(up) != 3-len(v.down) {
				t.Errorf("up hosts %v with down %v", up, v.down)
			}
		})
	}
}

// hostProbes scripts each host on its own.
type hostProbes map[string]scriptProbe

func (p hostProbes) HTTPGet(ctx context.Context, h inventory.Host, path string) ([]byte, int, error) {
	return p[h.Name].HTTPGet(ctx, h, path)
}

func (p hostProbes) ServiceActive(ctx context.Context, h inventory.Host) (bool, string, error) {
	return p[h.Name].ServiceActive(ctx, h)
}

// checkMeta on scripted /jsz answers of n1, n2 and n3: one row, passing
// only when every node names the same leader and a group of three.
func TestCheckMeta(t *testing.T) {
	jsz := func(leader string, size int) answer {
		return answer{body: fmt.Sprintf(`{"meta_cluster":{"name":"verify-test","leader":%q,"cluster_size":%d}}`, leader, size), status: 200}
	}
	const expected = "expected one meta leader seen by all 3 nodes, cluster_size 3, saw "
	tests := []struct {
		name string
		jsz  [3]answer
		down string // a host already found down
		want string
	}{
		{name: "agreed", jsz: [3]answer{jsz("n2", 3), jsz("n2", 3), jsz("n2", 3)},
			want: "ok leader n2 seen by all 3 nodes, cluster_size 3"},
		{name: "two leaders", jsz: [3]answer{jsz("n2", 3), jsz("n2", 3), jsz("n3", 3)},
			want: "FAIL " + expected + "n1: leader n2, size 3; n2: leader n2, size 3; n3: leader n3, size 3"},
		{name: "no leader anywhere", jsz: [3]answer{jsz("", 3), jsz("", 3), jsz("", 3)},
			want: "FAIL " + expected + "n1: leader (none), size 3; n2: leader (none), size 3; n3: leader (none), size 3"},
		{name: "group of two", jsz: [3]answer{jsz("n1", 2), jsz("n1", 3), jsz("n1", 3)},
			want: "FAIL " + expected + "n1: leader n1, size 2; n2: leader n1, size 3; n3: leader n1, size 3"},
		{name: "not clustered, unreadable", jsz: [3]answer{{body: `{}`, status: 200}, {err: errors.New("timeout")}, jsz("n1", 3)},
			want: "FAIL " + expected + "n1: no meta_cluster (JetStream not clustered); n2: timeout; n3: leader n1, size 3"},
		{name: "a node down", jsz: [3]answer{jsz("n1", 3), jsz("n1", 3), jsz("n1", 3)}, down: "n3",
			want: "FAIL " + expected + "n1: leader n1, size 3; n2: leader n1, size 3; n3: down (see node/health)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := hostProbes{}
			for i, h := range []string{"n1", "n2", "n3"} {
				p[h] = scriptProbe{paths: map[string]answer{"/jsz": tc.jsz[i]}}
			}
			v := newVerifier(Options{Inventory: testInventory("2.14.9", 1, 2, 3), Probe: p})
			if tc.down != "" {
				v.markDown(inventory.Host{Name: tc.down}, "test")
			}
			rs := v.checkMeta(context.Background())
			if len(rs) != 1 {
				t.Fatalf("%d rows, want 1: %v", len(rs), rs)
			}
			r := rs[0]
			got := r.Status() + " " + r.Seen
			if !r.OK {
				got = r.Status() + " " + r.Detail()
			}
			if r.Check != "cluster/meta" || r.Target != "cluster" || got != tc.want {
				t.Errorf("%s %s %s\nwant %s", r.Check, r.Target, got, tc.want)
			}
		})
	}
}
