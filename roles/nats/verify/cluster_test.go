package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/internal/testbin"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

// A real three-node nats-server cluster for the end-to-end tests of the
// verifier. The nodes listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all
// loopback on Linux) with the same ports, so the inventory looks like the
// lab's: one client, cluster and HTTP port for every host.
//
// The server config is written by hand here, not by the project's renderer,
// so these tests check the verifier against what nats-server really does
// with a known config rather than against our own rendering of it.

// testVersion is read from the binary so the version check has a truth.
func binVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	// "nats-server: v2.14.9"
	f := strings.Fields(string(out))
	return strings.TrimPrefix(f[len(f)-1], "v")
}

// testInventory is a small version of the seed's tenants, with one deny
// inside an allow rule and two users in one account.
func testInventory(version string, clientPort, clusterPort, httpPort int) *inventory.Inventory {
	js := func(mem, file inventory.Size, streams, consumers int) *inventory.AccountJetStream {
		return &inventory.AccountJetStream{MaxMem: mem, MaxFile: file, MaxStreams: streams, MaxConsumers: consumers}
	}
	const mb = 1 << 20
	return &inventory.Inventory{
		NATS: inventory.NATS{
			Version: version, ClusterName: "verify-test",
			ClientPort: clientPort, ClusterPort: clusterPort, HTTPPort: httpPort,
		},
		Hosts: []inventory.Host{
			{Name: "n1", Address: "127.0.0.1"},
			{Name: "n2", Address: "127.0.0.2"},
			{Name: "n3", Address: "127.0.0.3"},
		},
		Accounts: []inventory.Account{
			{Name: "SYS", System: true, Users: []inventory.User{
				{Name: "sys-user", Allow: []string{"$SYS.>"}, RequestReply: true}}},
			{Name: "ADMIN", JetStream: js(64*mb, 128*mb, 100, 1000), Users: []inventory.User{
				{Name: "admin", Allow: []string{">"}}}},
			{Name: "DEV", JetStream: js(32*mb, 64*mb, 10, 100), Users: []inventory.User{
				{Name: "dev-user", Allow: []string{"dev.*", "logs.dev.*"}, Deny: []string{"dev.secret"},
					JetStream: true, RequestReply: true}}},
			{Name: "PROD", JetStream: js(32*mb, 64*mb, 10, 100), Users: []inventory.User{
				{Name: "prod-user", Allow: []string{"prod.*", "alerts.*"}, JetStream: true, RequestReply: true}}},
			{Name: "SERVICES", Users: []inventory.User{
				{Name: "user-service", Allow: []string{"services.user.>", "events.user.>"}, RequestReply: true},
				{Name: "order-service", Allow: []string{"services.order.>", "events.order.>"}, RequestReply: true}}},
		},
	}
}

// testUserPerms is the permissions block of each user, written out by hand
// from the rules in testInventory (see inventory.User for the shorthands).
var testUserPerms = map[string]string{
	"sys-user": `{ publish: { allow: ["$SYS.>"] }, subscribe: { allow: ["$SYS.>", "_INBOX.>"] }, allow_responses: true }`,
	"admin":    `{ publish: { allow: [">"] }, subscribe: { allow: [">"] } }`,
	"dev-user": `{ publish: { allow: ["dev.*", "logs.dev.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"], deny: ["dev.secret"] },
	               subscribe: { allow: ["dev.*", "logs.dev.*", "_INBOX.>"], deny: ["dev.secret"] }, allow_responses: true }`,
	"prod-user": `{ publish: { allow: ["prod.*", "alerts.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"] },
	               subscribe: { allow: ["prod.*", "alerts.*", "_INBOX.>"] }, allow_responses: true }`,
	"user-service":  `{ publish: { allow: ["services.user.>", "events.user.>"] }, subscribe: { allow: ["services.user.>", "events.user.>", "_INBOX.>"] }, allow_responses: true }`,
	"order-service": `{ publish: { allow: ["services.order.>", "events.order.>"] }, subscribe: { allow: ["services.order.>", "events.order.>", "_INBOX.>"] }, allow_responses: true }`,
}

type mapPasswords map[string]string

func (m mapPasswords) Password(account, user string) string { return m[account+"/"+user] }

type testCluster struct {
	t     *testing.T
	bin   string
	inv   *inventory.Inventory
	pw    mapPasswords
	hash  map[string]string // user -> bcrypt hash
	nodes []*testNode
	// amend, when set, rewrites each node's config before its first start
	// (a clusterOption sets it): a test's own deliberate misconfiguration.
	amend func(h inventory.Host, text string) string
}

// clusterOption adjusts a test cluster after the passwords are chosen and
// before the configs are written.
type clusterOption func(c *testCluster)

type testNode struct {
	host   inventory.Host
	dir    string
	conf   string // path of the config file
	text   string // its current content
	cmd    *exec.Cmd
	exited chan struct{}
}

// freePorts returns n ports that are free on all three loopback addresses.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 200; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var others []net.Listener
		for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
			o, err := net.Listen("tcp", fmt.Sprintf("%s:%d", a, port))
			if err != nil {
				ok = false
				break
			}
			others = append(others, o)
		}
		hold = append(hold, l)
		hold = append(hold, others...)
		if ok {
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		t.Fatalf("could not find %d ports free on 127.0.0.1-3", n)
	}
	return ports
}

func startCluster(t *testing.T, opts ...clusterOption) *testCluster {
	t.Helper()
	bin := testbin.NATSServer(t)
	p := freePorts(t, 3)
	c := &testCluster{t: t, bin: bin, inv: testInventory(binVersion(t, bin), p[0], p[1], p[2]),
		pw: mapPasswords{}, hash: map[string]string{}}
	for _, a := range c.inv.Accounts {
		for _, u := range a.Users {
			pw := fmt.Sprintf("pw-%s-%d", u.Name, time.Now().UnixNano()%100000)
			h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
			if err != nil {
				t.Fatal(err)
			}
			c.pw[a.Name+"/"+u.Name] = pw
			c.hash[u.Name] = string(h)
		}
	}
	for _, o := range opts {
		o(c)
	}
	for _, h := range c.inv.Hosts {
		n := &testNode{host: h, dir: t.TempDir()}
		n.conf = filepath.Join(n.dir, "nats.conf")
		n.text = c.config(h)
		if c.amend != nil {
			n.text = c.amend(h, n.text)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		c.write(n)
		c.start(n)
	}
	t.Cleanup(c.stopAll)
	c.waitReady(30 * time.Second)
	return c
}

func (c *testCluster) config(h inventory.Host) string {
	nats := c.inv.NATS
	var routes []string
	for _, o := range c.inv.Hosts {
		if o.Name != h.Name {
			routes = append(routes, fmt.Sprintf("nats-route://route:routepw@%s:%d", o.Address, nats.ClusterPort))
		}
	}
	routeHash, _ := bcrypt.GenerateFromPassword([]byte("routepw"), 4)
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"%s:%d\"\nhttp: \"%s:%d\"\n", h.Name, h.Address, nats.ClientPort, h.Address, nats.HTTPPort)
	fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"%s:%d\"\n  routes: [%s]\n  authorization { user: route, password: %q }\n}\n",
		nats.ClusterName, h.Address, nats.ClusterPort, `"`+strings.Join(routes, `", "`)+`"`, routeHash)
	fmt.Fprintf(&b, "jetstream { store_dir: %q, max_memory_store: 268435456, max_file_store: 1073741824 }\n", "STORE_DIR")
	b.WriteString("accounts {\n")
	for _, a := range c.inv.Accounts {
		fmt.Fprintf(&b, "  %s {\n", a.Name)
		if a.JetStream != nil {
			fmt.Fprintf(&b, "    jetstream { max_mem: %d, max_file: %d, max_streams: %d, max_consumers: %d }\n",
				a.JetStream.MaxMem, a.JetStream.MaxFile, a.JetStream.MaxStreams, a.JetStream.MaxConsumers)
		}
		b.WriteString("    users: [\n")
		for _, u := range a.Users {
			fmt.Fprintf(&b, "      { user: %q, password: %q, permissions: %s }\n", u.Name, c.hash[u.Name], testUserPerms[u.Name])
		}
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("}\nsystem_account: SYS\n")
	return b.String()
}

func (c *testCluster) write(n *testNode) {
	text := strings.Replace(n.text, "STORE_DIR", filepath.Join(n.dir, "store"), 1)
	if err := os.WriteFile(n.conf, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) start(n *testNode) {
	cmd := exec.Command(c.bin, "-c", n.conf, "-l", filepath.Join(n.dir, "server.log"))
	// If the test binary dies, its servers must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.host.Name, err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func() { cmd.Wait(); close(n.exited) }()
}

// stop ends a node and waits for it, killing it if it lingers.
func (c *testCluster) stop(n *testNode) {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
	n.cmd = nil
}

func (c *testCluster) stopAll() {
	for _, n := range c.nodes {
		c.stop(n)
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			if b, err := os.ReadFile(filepath.Join(n.dir, "server.log")); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 30 {
					lines = lines[len(lines)-30:]
				}
				c.t.Logf("--- %s server.log (tail)\n%s", n.host.Name, strings.Join(lines, "\n"))
			}
		}
	}
}

// edit changes one node's config and reloads it (SIGHUP), then waits until
// /varz reports the new config digest, since a reload is asynchronous and a
// failed one is only logged, and then until the cluster is whole again: a
// reload can drop and re-establish routes, and the meta group follows.
func (c *testCluster) edit(n *testNode, old, new string) {
	c.t.Helper()
	if !strings.Contains(n.text, old) {
		c.t.Fatalf("%s config has no %q", n.host.Name, old)
	}
	before := c.varz(n).ConfigDigest
	n.text = strings.Replace(n.text, old, new, 1)
	c.write(n)
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.varz(n).ConfigDigest == before {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: config digest did not change after reload", n.host.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.waitReady(30 * time.Second)
}

type testVarz struct {
	ConfigDigest string `json:"config_digest"`
}

func (c *testCluster) varz(n *testNode) testVarz {
	var v testVarz
	c.getJSON(n, "/varz", &v)
	return v
}

func (c *testCluster) getJSON(n *testNode, path string, v any) int {
	resp, err := http.Get(fmt.Sprintf("http://%s:%d%s", n.host.Address, c.inv.NATS.HTTPPort, path))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

// routePool is nats-server's default cluster pool_size; the test config
// sets none.
const routePool = 3

// waitReady waits until the running nodes form a whole cluster: each
// answers /healthz 200 (the JetStream catch-up gate), has whole routes to
// exactly the other running nodes (by remote_name), and names the same
// running node as meta leader. It polls; the last state seen is in the
// failure message.
func (c *testCluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := c.notReady()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not ready after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notReady says what keeps the running nodes from being a whole cluster,
// or "" when nothing does.
func (c *testCluster) notReady() string {
	var running []string
	for _, n := range c.nodes {
		if n.cmd != nil {
			running = append(running, n.host.Name)
		}
	}
	leaders := map[string]bool{}
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		if code := c.getJSON(n, "/healthz", nil); code != 200 {
			return fmt.Sprintf("%s: /healthz %d", n.host.Name, code)
		}
		var rz struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
				Account    string `json:"account"`
			} `json:"routes"`
		}
		if code := c.getJSON(n, "/routez", &rz); code != 200 {
			return fmt.Sprintf("%s: /routez %d", n.host.Name, code)
		}
		// A whole route to a peer is routePool pooled connections plus the
		// system account's pinned one, which can come up last: until it
		// does, system requests (server pings, the JetStream API's internal
		// traffic) do not reach the peer.
		pooled, pinned := map[string]int{}, map[string]bool{}
		var peers []string
		for _, r := range rz.Routes {
			if !slices.Contains(peers, r.RemoteName) {
				peers = append(peers, r.RemoteName)
			}
			switch r.Account {
			case "":
				pooled[r.RemoteName]++
			case "SYS":
				pinned[r.RemoteName] = true
			}
		}
		want := slices.DeleteFunc(slices.Clone(running), func(o string) bool { return o == n.host.Name })
		slices.Sort(peers)
		if !slices.Equal(peers, want) {
			return fmt.Sprintf("%s: routes to %v, want %v", n.host.Name, peers, want)
		}
		for _, o := range want {
			if pooled[o] < routePool || !pinned[o] {
				return fmt.Sprintf("%s: to %s %d of %d pooled routes, SYS route %v", n.host.Name, o, pooled[o], routePool, pinned[o])
			}
		}
		var jsz struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		if code := c.getJSON(n, "/jsz", &jsz); code != 200 || jsz.Meta.Leader == "" {
			return fmt.Sprintf("%s: /jsz %d, no meta leader", n.host.Name, code)
		}
		// Right after a stop the others still name the stopped leader
		// until they elect a new one.
		if !slices.Contains(running, jsz.Meta.Leader) {
			return fmt.Sprintf("%s: meta leader %s is not running", n.host.Name, jsz.Meta.Leader)
		}
		leaders[jsz.Meta.Leader] = true
	}
	if len(leaders) != 1 {
		return fmt.Sprintf("nodes disagree on the meta leader: %v", leaders)
	}
	// Agreeing on a leader is not enough for an R3 placement right after a
	// reload: the leader must also count every peer current and online
	// ("no suitable peers for placement, peer offline" otherwise). The
	// engine's own gate, monitor.MetaSettled, says so; it needs every node
	// up, since the leader lists a stopped one as offline.
	if len(running) == len(c.nodes) {
		var gets []monitor.Get
		var names []string
		for _, n := range c.nodes {
			gets = append(gets, monitor.Over(http.DefaultClient, fmt.Sprintf("http://%s:%d", n.host.Address, c.inv.NATS.HTTPPort)))
			names = append(names, n.host.Name)
		}
		if err := monitor.MetaSettled(context.Background(), gets, names); err != nil {
			return err.Error()
		}
	}
	return ""
}

func (c *testCluster) options() Options {
	digests := c.digests()
	return Options{Inventory: c.inv, Passwords: c.pw, ExpectedDigest: func(_ context.Context, h inventory.Host) (string, error) {
		if d, ok := digests[h.Name]; ok {
			return d, nil
		}
		return "", fmt.Errorf("no digest for %s", h.Name)
	}}
}

// digests are the config digests of the files on disk, as `nats-server -t`
// reports them: what the engine reads with `nats-server -t`.
func (c *testCluster) digests() map[string]string {
	m := map[string]string{}
	for _, n := range c.nodes {
		out, err := exec.Command(c.bin, "-t", "-c", n.conf).CombinedOutput()
		if err != nil {
			c.t.Fatalf("nats-server -t %s: %v\n%s", n.conf, err, out)
		}
		s := string(out)
		i := strings.Index(s, "(sha256:")
		if i < 0 {
			c.t.Fatalf("no digest in %q", s)
		}
		m[n.host.Name] = strings.TrimSuffix(strings.Fields(s[i+1:])[0], ")")
	}
	return m
}
