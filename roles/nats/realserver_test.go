package nats

// These tests run a real nats-server on the rendered files: the binary named
// by $NATS_SERVER_BIN, else nats-server on $PATH. They are skipped only when
// neither exists; CI provides one.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsclient "github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/testbin"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// awkwardRoute is a route password with every character that needs escaping
// in a URL or a config string, to prove route URLs carry it intact.
const awkwardRoute = `r$o"u@t:e/%x\y`

var awkwardRouteHash = "$2a$11$hO8X7f07EYIfdAAMybaqiugPucMwl4aVQ0NIFrqvD8Hmi9iJFNtdi"

// localize points the inventory's directories into base, as on a host.
func localize(inv *inventory.Inventory, base string) {
	inv.NATS.ConfigDir = filepath.Join(base, "etc")
	inv.NATS.DataDir = filepath.Join(base, "data")
	inv.NATS.LogDir = filepath.Join(base, "log")
}

// writeConfig writes the rendered config files into the config dir,
// binding listeners to addr instead of all interfaces when addr is set (so
// three nodes can share one machine).
func writeConfig(t *testing.T, inv *inventory.Inventory, r Rendered, addr string) string {
	t.Helper()
	for _, d := range []string{inv.NATS.ConfigDir, inv.NATS.DataDir, inv.NATS.LogDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	server := r.Server
	if addr != "" {
		server = bytes.ReplaceAll(server, []byte(`"0.0.0.0:`), []byte(`"`+addr+`:`))
	}
	for name, content := range map[string][]byte{ConfigFile: server, RoutesFile: r.Routes, AccountsFile: r.Accounts, LoggingFile: r.Logging, TLSFile: r.TLS} {
		if content == nil {
			continue // a single node has no routes.conf
		}
		if err := os.WriteFile(filepath.Join(inv.NATS.ConfigDir, name), content, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(inv.NATS.ConfigDir, ConfigFile)
}

var digestRE = regexp.MustCompile(`is valid \((sha256:[0-9a-f]{64})\)`)

// checkConfig runs `nats-server -t -c` and returns the digest it prints.
func checkConfig(t *testing.T, bin, conf string) string {
	t.Helper()
	// From the config folder, as apply's ValidateCmd and the unit run it:
	// the certificate paths are relative.
	cmd := exec.Command(bin, "-t", "-c", conf)
	cmd.Dir = filepath.Dir(conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nats-server -t -c %s: %v\n%s", conf, err, out)
	}
	m := digestRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("nats-server -t printed no digest: %s", out)
	}
	return string(m[1])
}

func TestRealServerAcceptsConfig(t *testing.T) {
	bin := testbin.NATSServer(t)
	for _, tc := range []struct {
		name   string
		change func(*inventory.Inventory)
		sec    fakeSecrets
	}{
		{"fixture", func(*inventory.Inventory) {}, secrets},
		{"awkward route password", func(*inventory.Inventory) {}, fakeSecrets{awkwardRoute, awkwardRouteHash}},
		{"single host", func(inv *inventory.Inventory) { inv.Hosts = inv.Hosts[:1] }, secrets},
		{"surveyor user", func(inv *inventory.Inventory) { inv.Monitoring = &inventory.Monitoring{Host: "nats-1"} }, secrets},
		{"account without quota limits and deny rules", func(inv *inventory.Inventory) {
			inv.Accounts[2].JetStream = &inventory.AccountJetStream{}
			inv.Accounts[2].Users[0].Deny = []string{"dev.secret"}
			inv.Accounts[2].Users[0].Subscribe = []string{"dev.audit.>"}
			inv.Accounts[5].Users[0].Allow = nil // denied everything
			inv.NATS.Debug, inv.NATS.Trace = true, true
		}, secrets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := fixture()
			tc.change(probe)
			for i := range probe.Hosts {
				inv := fixture()
				tc.change(inv)
				localize(inv, t.TempDir())
				r, err := Render(inv, inv.Hosts[i], tc.sec)
				if err != nil {
					t.Fatal(err)
				}
				checkConfig(t, bin, writeConfig(t, inv, r, ""))
			}
		})
	}
}

// The shipped inventories render to configs nats-server accepts.
func TestRealServerAcceptsShippedInventories(t *testing.T) {
	bin := testbin.NATSServer(t)
	for _, p := range shippedInventories(t) {
		inv, err := loadShipped(t, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		localize(inv, t.TempDir())
		var tlsm *pki.Material
		if inv.TLS.On() {
			inv.TLS.Dir = filepath.Join(t.TempDir(), "tls")
			if tlsm, err = pki.Open(inv, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		for _, h := range inv.Hosts {
			r, err := Render(inv, h, secrets)
			if err != nil {
				t.Fatalf("%s %s: %v", p, h.Name, err)
			}
			conf := writeConfig(t, inv, r, "")
			writeCerts(t, inv, h, tlsm)
			checkConfig(t, bin, conf)
		}
	}
}

// A single host runs JetStream standalone. It starts from the rendered
// config when the accounts' quotas fit in the server's limits, and dies
// when they do not, which is why inventory validation refuses that case.
func TestRealSingleNode(t *testing.T) {
	bin := testbin.NATSServer(t)
	ports := freePorts(t, []string{"127.0.0.1"}, 3)
	single := func() *inventory.Inventory {
		inv := fixture()
		inv.Hosts = []inventory.Host{{Name: "solo", Address: "127.0.0.1"}}
		inv.NATS.ClientPort, inv.NATS.ClusterPort, inv.NATS.HTTPPort = ports[0], ports[1], ports[2]
		inv.NATS.MaxMemoryStore, inv.NATS.MaxFileStore = 64<<20, 256<<20
		localize(inv, t.TempDir())
		return inv
	}

	tooBig := single()
	r, err := Render(tooBig, tooBig.Hosts[0], secrets)
	if err != nil {
		t.Fatal(err)
	}
	conf := writeConfig(t, tooBig, r, "")
	checkConfig(t, bin, conf) // -t does not see the problem...
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-c", conf).CombinedOutput(); err == nil || ctx.Err() != nil {
		t.Fatalf("nats-server with oversized quotas: %v %v", err, ctx.Err()) // ...but the server does
	} else if logf, _ := os.ReadFile(filepath.Join(tooBig.NATS.LogDir, LogFile)); !bytes.Contains(logf, []byte("insufficient memory resources")) {
		t.Errorf("nats-server failed for another reason: %s\n%s", out, lastLines(logf, 5))
	}

	inv := single()
	for i := range inv.Accounts {
		if js := inv.Accounts[i].JetStream; js != nil {
			js.MaxMem, js.MaxFile = 8<<20, 32<<20
		}
	}
	if _, err := Desired(inv, inv.Hosts[0], secrets, testBinary); err != nil {
		t.Fatal(err)
	}
	if r, err = Render(inv, inv.Hosts[0], secrets); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", writeConfig(t, inv, r, "127.0.0.1"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	mon := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	waitFor(t, 20*time.Second, "single node healthy", func() error {
		if code, body := get(mon + "/healthz"); code != http.StatusOK {
			return fmt.Errorf("/healthz: %d %s", code, body)
		}
		return nil
	})
	client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	if err := protoCheck(client, "prod-user", testPassword("prod-user"), "prod.orders"); err != nil {
		t.Error(err)
	}
}

// TestRealCluster starts three nodes from rendered configs on 127.0.0.1-3
// and checks that routes authenticate and form a full mesh, JetStream
// elects one meta leader, users log in with their passwords and get the
// permissions asked for, and that what the role marks Reload really
// reloads while what it marks Restart really is refused by SIGHUP.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startRealCluster(t)
	bin, addrs, ports, base, sec, nodes := c.bin, c.addrs, c.ports, c.base, c.sec, c.nodes

	// Formed: every node healthy, routes to both others (by remote_name:
	// route pooling opens several connections per peer), one meta leader
	// that every node agrees on.
	waitFor(t, 60*time.Second, "cluster formed", func() error {
		leaders := map[string]bool{}
		for i, n := range nodes {
			if code, body := get(n.mon + "/healthz"); code != http.StatusOK {
				return fmt.Errorf("%s /healthz: %d %s", base.Hosts[i].Name, code, body)
			}
			var routez struct {
				Routes []struct {
					RemoteName string `json:"remote_name"`
				} `json:"routes"`
			}
			if err := getJSON(n.mon+"/routez", &routez); err != nil {
				return err
			}
			peers := map[string]bool{}
			for _, r := range routez.Routes {
				peers[r.RemoteName] = true
			}
			for j, h := range base.Hosts {
				if peers[h.Name] == (i == j) {
					return fmt.Errorf("%s routes to %v", base.Hosts[i].Name, peers)
				}
			}
			var jsz struct {
				Meta struct {
					Leader string `json:"leader"`
					Size   int    `json:"cluster_size"`
				} `json:"meta_cluster"`
			}
			if err := getJSON(n.mon+"/jsz", &jsz); err != nil {
				return err
			}
			if jsz.Meta.Leader == "" || jsz.Meta.Size != 3 {
				return fmt.Errorf("%s meta %+v", base.Hosts[i].Name, jsz.Meta)
			}
			leaders[jsz.Meta.Leader] = true
		}
		if len(leaders) != 1 {
			return fmt.Errorf("nodes disagree on the meta leader: %v", leaders)
		}
		return nil
	})

	// The unit's order gate names the meta leader every node agrees on,
	// reading each node's monitoring port as the SSH tunnel reaches it
	// (127.0.0.1 on the host); after the leader steps down, it names the
	// new one.
	d, err := Desired(base, base.Hosts[0], sec, testBinary)
	if err != nil {
		t.Fatal(err)
	}
	var order *desired.OrderGate
	for _, u := range d.Units {
		if u.Name == Service {
			order = u.Order
		}
	}
	var gateNodes []desired.Node
	for i, h := range base.Hosts {
		gateNodes = append(gateNodes, desired.Node{Name: h.Name, Remote: loopbackOn(addrs[i])})
	}
	agreed := func() (string, error) {
		leaders := map[string]bool{}
		for _, n := range nodes {
			var jsz struct {
				Meta struct {
					Leader string `json:"leader"`
				} `json:"meta_cluster"`
			}
			if err := getJSON(n.mon+"/jsz", &jsz); err != nil {
				return "", err
			}
			leaders[jsz.Meta.Leader] = true
		}
		if len(leaders) != 1 || leaders[""] {
			return "", fmt.Errorf("no agreed meta leader: %v", leaders)
		}
		for l := range leaders {
			return l, nil
		}
		return "", nil
	}
	first, err := agreed()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := order.Last(context.Background(), gateNodes); err != nil || got != first {
		t.Fatalf("order gate names %q (%v), want the meta leader %s", got, err, first)
	}
	preferred := base.Hosts[0].Name
	if preferred == first {
		preferred = base.Hosts[1].Name
	}
	nc, err := natsclient.Connect("nats://"+net.JoinHostPort(addrs[0], strconv.Itoa(ports[0])),
		natsclient.UserInfo("sys-user", testPassword("sys-user")), natsclient.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := nc.Request("$JS.API.META.LEADER.STEPDOWN", []byte(`{"placement":{"preferred":"`+preferred+`"}}`), 10*time.Second)
	nc.Close()
	if err != nil || !bytes.Contains(resp.Data, []byte(`"success":true`)) {
		t.Fatalf("meta leader step down: %v %s", err, respData(resp))
	}
	var second string
	waitFor(t, 30*time.Second, "a new meta leader", func() error {
		l, err := agreed()
		if err == nil && l == first {
			err = fmt.Errorf("%s still leads", l)
		}
		second = l
		return err
	})
	if got, err := order.Last(context.Background(), gateNodes); err != nil || got != second {
		t.Fatalf("after the step down the order gate names %q (%v), want the new meta leader %s", got, err, second)
	}
	waitFor(t, 30*time.Second, "every node healthy again", func() error {
		for i, n := range nodes {
			if code, body := get(n.mon + "/healthz"); code != http.StatusOK {
				return fmt.Errorf("%s /healthz: %d %s", base.Hosts[i].Name, code, body)
			}
		}
		return nil
	})

	// The running servers took the settings from the rendered files.
	var varz struct {
		ServerName    string `json:"server_name"`
		SystemAccount string `json:"system_account"`
		Cluster       struct {
			Name string `json:"name"`
		} `json:"cluster"`
		JetStream struct {
			Config struct {
				MaxMemory int64  `json:"max_memory"`
				MaxStore  int64  `json:"max_storage"`
				StoreDir  string `json:"store_dir"`
			} `json:"config"`
		} `json:"jetstream"`
		ConfigDigest string `json:"config_digest"`
	}
	if err := getJSON(nodes[1].mon+"/varz", &varz); err != nil {
		t.Fatal(err)
	}
	if varz.ServerName != "nats-2" || varz.SystemAccount != "SYS" || varz.Cluster.Name != "nats-cluster" ||
		varz.JetStream.Config.MaxMemory != 64<<20 || varz.JetStream.Config.MaxStore != 256<<20 ||
		varz.JetStream.Config.StoreDir != filepath.Join(nodes[1].inv.NATS.DataDir, "jetstream") {
		t.Errorf("nats-2 /varz: %+v", varz)
	}
	if logf, err := os.ReadFile(filepath.Join(nodes[1].inv.NATS.LogDir, LogFile)); err != nil || !bytes.Contains(logf, []byte("Server is ready")) {
		t.Errorf("nats-2 log file: %v\n%s", err, lastLines(logf, 10))
	}

	// Users log in with their passwords (the hashes are real) and get what
	// the inventory asked for, on any node.
	client := net.JoinHostPort(addrs[2], strconv.Itoa(ports[0]))
	if err := protoCheck(client, "dev-user", testPassword("dev-user"), "dev.a", "logs.dev.x"); err != nil {
		t.Error(err)
	}
	if err := protoDenied(client, "dev-user", testPassword("dev-user"), "dev.a.b"); err != nil {
		t.Error(err) // "*" is one token
	}
	if err := protoDenied(client, "dev-user", testPassword("dev-user"), "prod.a"); err != nil {
		t.Error(err)
	}
	if err := protoCheck(client, "admin", testPassword("admin"), "anything.at.all"); err != nil {
		t.Error(err)
	}
	if err := protoCheck(client, "sys-user", testPassword("sys-user"), "$SYS.REQ.SERVER.PING"); err != nil {
		t.Error(err)
	}
	if err := protoCheck(client, "dev-user", "wrong", "dev.a"); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("wrong password: %v", err)
	}

	// Reload: a permission and debug change only reload files; SIGHUP
	// applies them and /varz shows the digest -t computes.
	n1 := nodes[0]
	before := varzDigest(t, n1.mon)
	n1.inv.Accounts[2].Users[0].Allow = append(n1.inv.Accounts[2].Users[0].Allow, "dev2.>")
	n1.inv.NATS.Debug = true
	r, err := Render(n1.inv, n1.inv.Hosts[0], sec)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, n1.inv, r, addrs[0])
	want := checkConfig(t, bin, n1.conf)
	if want == before {
		t.Fatal("the change did not change the digest")
	}
	n1.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "reload applied", func() error {
		if got := varzDigest(t, n1.mon); got != want {
			return fmt.Errorf("config_digest %s, want %s", got, want)
		}
		return nil
	})
	client1 := net.JoinHostPort(addrs[0], strconv.Itoa(ports[0]))
	if err := protoCheck(client1, "dev-user", testPassword("dev-user"), "dev2.x.y"); err != nil {
		t.Errorf("after reload: %v", err)
	}

	// Restart: the log size limit lives in nats-server.conf because
	// nats-server refuses to reload it; prove that it does.
	n1.inv.NATS.LogMaxSize = 200 << 20
	if r, err = Render(n1.inv, n1.inv.Hosts[0], sec); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, n1.inv, r, addrs[0])
	n1.cmd.Process.Signal(syscall.SIGHUP)
	logPath := filepath.Join(n1.inv.NATS.LogDir, LogFile)
	waitFor(t, 10*time.Second, "reload refused", func() error {
		logf, _ := os.ReadFile(logPath)
		if !bytes.Contains(logf, []byte("config reload not supported for LogSizeLimit")) {
			return fmt.Errorf("no refusal in the log yet")
		}
		return nil
	})
	if got := varzDigest(t, n1.mon); got != want {
		t.Errorf("digest changed to %s after a refused reload", got)
	}
}

// realCluster is three nodes started from rendered configs on 127.0.0.1-3,
// with the same ports on each, as the lab has them on three hosts.
type realCluster struct {
	bin   string
	base  *inventory.Inventory // the inventory every node was rendered from
	sec   fakeSecrets
	addrs []string
	ports []int // client, cluster, monitoring
	nodes []*realNode
	tls   *pki.Material // nil without TLS
}

type realNode struct {
	inv    *inventory.Inventory // base with this node's directories
	conf   string
	cmd    *exec.Cmd
	mon    string // monitoring base URL
	exited chan struct{}
}

// stop ends the node (SIGTERM, then SIGKILL if it lingers) and waits for it.
func (n *realNode) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// startRealCluster starts the nodes and returns at once; tests wait for
// what they need. The nodes stop at the end of the test, with their logs
// shown if it failed.
func startRealCluster(t *testing.T) *realCluster {
	t.Helper()
	return startRealClusterWith(t, nil)
}

// startRealClusterWith starts the cluster with TLS set as tlsOn says (nil:
// off); the material is in c.tls.
func startRealClusterWith(t *testing.T, tlsOn *inventory.TLS) *realCluster {
	t.Helper()
	c := &realCluster{bin: testbin.NATSServer(t), addrs: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}}
	c.ports = freePorts(t, c.addrs, 3)

	c.base = fixture()
	c.base.NATS.ClientPort, c.base.NATS.ClusterPort, c.base.NATS.HTTPPort = c.ports[0], c.ports[1], c.ports[2]
	c.base.NATS.MaxMemoryStore = 64 << 20
	c.base.NATS.MaxFileStore = 256 << 20
	for i := range c.base.Hosts {
		c.base.Hosts[i].Address = c.addrs[i]
	}
	// TestRealCluster's system user asks the meta leader to step down.
	c.base.Accounts[0].Users[0].Allow = append(c.base.Accounts[0].Users[0].Allow, "$JS.API.META.LEADER.STEPDOWN")
	c.sec = fakeSecrets{awkwardRoute, awkwardRouteHash}

	root := t.TempDir()
	if tlsOn != nil {
		tlsOn.Dir = filepath.Join(root, "tls")
		c.base.TLS = tlsOn
		var err error
		if c.tls, err = pki.Open(c.base, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := c.tls.Save(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.addrs {
		inv := fixture()
		*inv = *c.base
		localize(inv, filepath.Join(root, c.base.Hosts[i].Name))
		r, err := Render(inv, inv.Hosts[i], c.sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(inv.NATS.ConfigDir, 0o750); err != nil {
			t.Fatal(err)
		}
		writeCerts(t, inv, inv.Hosts[i], c.tls)
		n := &realNode{inv: inv, conf: writeConfig(t, inv, r, c.addrs[i]), exited: make(chan struct{})}
		n.mon = fmt.Sprintf("http://%s:%d", c.addrs[i], c.ports[2])
		checkConfig(t, c.bin, n.conf)
		n.cmd = exec.Command(c.bin, "-c", n.conf)
		n.cmd.Dir = inv.NATS.ConfigDir // as the unit's WorkingDirectory
		// If the test binary dies, its servers must not outlive it.
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		n.cmd.Stdout, n.cmd.Stderr = &stderr, &stderr
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.cmd.Wait(); close(n.exited) }()
		t.Cleanup(func() {
			n.stop()
			if t.Failed() {
				logf, _ := os.ReadFile(filepath.Join(n.inv.NATS.LogDir, LogFile))
				t.Logf("%s stderr:\n%s\nlog:\n%s", n.inv.Hosts[i].Name, stderr.Bytes(), lastLines(logf, 40))
			}
		})
		c.nodes = append(c.nodes, n)
	}
	return c
}

// respData is a reply's body, or nothing when there is no reply.
func respData(m *natsclient.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// loopbackOn is a host whose loopback is addr: what the SSH tunnel gives
// the gates, for nodes that share one machine on 127.0.0.1-3.
type loopbackOn string

func (loopbackOn) Exec(context.Context, string) (string, error) {
	return "", fmt.Errorf("no commands on a loopback stand-in")
}

func (a loopbackOn) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(hostport)
			if err != nil || host != "127.0.0.1" {
				return nil, fmt.Errorf("gate asked %s, not the host's loopback", hostport)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(string(a), port))
		},
	}}
}

func varzDigest(t *testing.T, mon string) string {
	t.Helper()
	var v struct {
		ConfigDigest string `json:"config_digest"`
	}
	if err := getJSON(mon+"/varz", &v); err != nil {
		t.Fatal(err)
	}
	return v.ConfigDigest
}

// freePorts finds n TCP ports free on every one of addrs; it skips the test
// if the extra loopback addresses cannot be bound.
func freePorts(t *testing.T, addrs []string, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n && tries < 100; tries++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, a := range addrs[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				if tries == 0 && strings.Contains(err.Error(), "assign requested address") {
					l.Close()
					t.Skipf("cannot bind %s: %v", a, err)
				}
				ok = false
				break
			}
			held = append(held, l2)
		}
		l.Close()
		for _, h := range held {
			h.Close()
		}
		if ok {
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		t.Fatal("no free ports")
	}
	return ports
}

func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func get(u string) (int, string) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func getJSON(u string, v any) error {
	code, body := get(u)
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, code, body)
	}
	return json.Unmarshal([]byte(body), v)
}

// protoSession logs in with the plain client protocol, publishes to each
// subject, and returns the first -ERR (or nil after the closing PONG). A
// raw session keeps this test free of a client library and shows exactly
// what the server answered.
func protoSession(addr, user, pass string, subjects ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	rd := bufio.NewReader(conn)
	if _, err := rd.ReadString('\n'); err != nil { // INFO
		return err
	}
	connect, _ := json.Marshal(map[string]any{"user": user, "pass": pass, "verbose": false, "pedantic": false, "protocol": 1})
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s\r\n", connect)
	for _, s := range subjects {
		fmt.Fprintf(&b, "PUB %s 2\r\nhi\r\n", s)
	}
	b.WriteString("PING\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return err
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: %w", user, err)
		}
		switch {
		case strings.HasPrefix(line, "-ERR"):
			return fmt.Errorf("%s: %s", user, strings.TrimSpace(line))
		case strings.HasPrefix(line, "PONG"):
			return nil
		}
	}
}

func protoCheck(addr, user, pass string, subjects ...string) error {
	return protoSession(addr, user, pass, subjects...)
}

func protoDenied(addr, user, pass, subject string) error {
	err := protoSession(addr, user, pass, subject)
	if err == nil || !strings.Contains(err.Error(), "Permissions Violation") {
		return fmt.Errorf("%s publishing to %s: got %v, want a permissions violation", user, subject, err)
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
