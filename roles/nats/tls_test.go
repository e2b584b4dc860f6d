package nats

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsclient "github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
	"github.com/natsdeploy/natsdeploy/roles/nats/tlsprobe"
)

// writeCerts puts the node's TLS files in its config folder, as apply does.
func writeCerts(t *testing.T, inv *inventory.Inventory, h inventory.Host, tlsm *pki.Material) {
	t.Helper()
	for _, f := range nodeCerts(inv, h, tlsm) {
		p := filepath.Join(inv.NATS.ConfigDir, path.Base(f.Path))
		if err := os.WriteFile(p, f.Content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func allTLS() *inventory.TLS {
	return &inventory.TLS{Clients: true, Routes: true, Monitoring: true,
		ValidFor: inventory.DefaultTLSValidFor, RenewBefore: inventory.DefaultTLSRenewBefore}
}

func TestGoldenTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  *inventory.TLS
	}{
		{"all", allTLS()},
		{"monitoring-only", &inventory.TLS{Monitoring: true}},
		{"routes-only", &inventory.TLS{Routes: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := fixture()
			inv.TLS = tc.tls
			r := mustRender(t, inv, 0)
			for _, name := range []string{ConfigFile, RoutesFile, TLSFile} {
				golden.Check(t, filepath.Join("testdata", "tls-"+tc.name+"-"+name+".golden"), r.byName()[name])
			}
		})
	}
}

// What each listener's switch writes where: https and allow_non_tls need
// a restart, the tls blocks reload.
func TestTLSSwitches(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		tls                        *inventory.TLS
		https, allowNonTLS, client bool
		routeTLS                   bool
	}{
		{"off", nil, false, false, false, false},
		{"clients", &inventory.TLS{Clients: true}, false, false, true, false},
		{"routes", &inventory.TLS{Routes: true}, false, false, false, true},
		{"monitoring", &inventory.TLS{Monitoring: true}, true, true, true, false},
		{"clients+monitoring", &inventory.TLS{Clients: true, Monitoring: true}, true, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := fixture()
			inv.TLS = tc.tls
			r := mustRender(t, inv, 0)
			srv, routes, tl := string(r.Server), string(r.Routes), string(r.TLS)
			if got := strings.Contains(srv, "\nhttps: "); got != tc.https {
				t.Errorf("https in nats-server.conf: %v, want %v", got, tc.https)
			}
			if got := strings.Contains(srv, "\nhttp: "); got == tc.https {
				t.Errorf("http in nats-server.conf: %v, want %v", got, !tc.https)
			}
			if got := strings.Contains(srv, "allow_non_tls: true"); got != tc.allowNonTLS {
				t.Errorf("allow_non_tls: %v, want %v", got, tc.allowNonTLS)
			}
			if got := strings.Contains(tl, "tls {"); got != tc.client {
				t.Errorf("tls block in tls.conf: %v, want %v", got, tc.client)
			}
			if got := strings.Contains(routes, "verify: true"); got != tc.routeTLS {
				t.Errorf("route tls with verify: %v, want %v", got, tc.routeTLS)
			}
			if !strings.Contains(srv, `include "tls.conf"`) {
				t.Error("nats-server.conf must always include tls.conf, so that turning client TLS on or off is a reload")
			}
		})
	}
}

func TestDesiredTLSFiles(t *testing.T) {
	inv := fixture()
	inv.TLS = allTLS()
	inv.TLS.Dir = t.TempDir() + "/tls"
	tlsm, err := pki.Open(inv, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, err := DesiredTLS(inv, inv.Hosts[1], secrets, testBinary, tlsm)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		mode         os.FileMode
		owner, group string
		sensitive    bool
		content      []byte
	}{
		"/etc/nats/ca.pem":          {0o640, "root", "nats", false, tlsm.Trust},
		"/etc/nats/server-cert.pem": {0o640, "root", "nats", false, tlsm.Nodes["nats-2"].Cert},
		"/etc/nats/server-key.pem":  {0o600, "nats", "nats", true, tlsm.Nodes["nats-2"].Key},
	}
	seen := 0
	for _, f := range h.Files {
		w, ok := want[f.Path]
		if !ok {
			continue
		}
		seen++
		if f.Mode != w.mode || f.Owner != w.owner || f.Group != w.group || f.Sensitive != w.sensitive {
			t.Errorf("%s: %04o %s:%s sensitive=%v, want %04o %s:%s sensitive=%v", f.Path, f.Mode, f.Owner, f.Group, f.Sensitive, w.mode, w.owner, w.group, w.sensitive)
		}
		if f.OnChange != desired.Reload || f.ValidateGroup != ValidateGroup {
			t.Errorf("%s: on change %v in group %q; a renewal must be validated with the config and reloaded", f.Path, f.OnChange, f.ValidateGroup)
		}
		if !bytes.Equal(f.Content, w.content) || len(w.content) == 0 {
			t.Errorf("%s: content is not the node's own material", f.Path)
		}
	}
	if seen != len(want) {
		t.Errorf("%d TLS files, want %d", seen, len(want))
	}
	// Another node's key never goes to this one.
	for _, f := range h.Files {
		if bytes.Equal(f.Content, tlsm.Nodes["nats-1"].Key) {
			t.Errorf("%s carries nats-1's key", f.Path)
		}
	}
}

// A real three-node cluster with TLS on every listener, from the rendered
// files: routes form with both ends verified, clients need TLS and the
// CA, the monitoring port is https only, and a renewed certificate is
// served after a SIGHUP, with the same process and routes still whole.
func TestRealTLSCluster(t *testing.T) {
	c := startRealClusterWith(t, allTLS())
	mon := Monitor(c.base, c.tls)
	gets := make([]monitor.Get, len(c.addrs))
	names := make([]string, len(c.addrs))
	for i, a := range c.addrs {
		gets[i], names[i] = mon.Of(loopbackOn(a)), c.base.Hosts[i].Name
	}
	ctx := context.Background()
	waitFor(t, 60*time.Second, "routes whole over TLS", func() error { return monitor.RoutesWhole(ctx, gets, names) })

	client := net.JoinHostPort(c.addrs[0], strconv.Itoa(c.ports[0]))
	// Tried again: a loaded machine makes a first login slow ("expected
	// PONG, got PING"), which is not what this checks.
	waitFor(t, 30*time.Second, "a client with the CA connects", func() error {
		nc, err := natsclient.Connect("nats://"+client, natsclient.Secure(c.tls.ClientTLS("")),
			natsclient.UserInfo("sys-user", testPassword("sys-user")), natsclient.Timeout(5*time.Second))
		if err == nil {
			nc.Close()
		}
		return err
	})
	if nc, err := natsclient.Connect("nats://"+client, natsclient.UserInfo("sys-user", testPassword("sys-user")), natsclient.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a client without the CA connected")
	}
	for i, port := range []int{c.ports[0], c.ports[1]} {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(c.addrs[1], strconv.Itoa(port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ok, seen, err := tlsprobe.PlaintextAccepted(ctx, conn, 3*time.Second, i == 0)
		if err != nil || ok {
			t.Errorf("port %d: plaintext accepted=%v (%s), err %v; TLS must be required", port, ok, seen, err)
		}
	}
	resp, err := http.Get("http://" + net.JoinHostPort(c.addrs[2], strconv.Itoa(c.ports[2])) + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, plainTLSCheck) {
		t.Errorf("plain http on the monitoring port: %d %s, want the https server's refusal", resp.StatusCode, body)
	}
	// Every listener serves a certificate that chains to the CA and names
	// the address dialled.
	for i, port := range []int{c.ports[0], c.ports[1], c.ports[2]} {
		conn, err := net.Dial("tcp", net.JoinHostPort(c.addrs[0], strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		chain, err := tlsprobe.Served(ctx, conn, i == 0, c.addrs[0], nil)
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		if err := pki.Check(chain[0], c.tls.Pool(), c.addrs[0], time.Now(), 24*time.Hour); err != nil {
			t.Errorf("port %d: %v", port, err)
		}
	}

	// verify's TLS rows: all pass on the real thing; each fails when what
	// it proves is not so.
	env := role.Env{Inv: c.base, TLS: c.tls, Remote: func(name string) desired.Remote {
		for i, h := range c.base.Hosts {
			if h.Name == name {
				return loopbackOn(c.addrs[i])
			}
		}
		return nil
	}}
	rows := verifyTLS(ctx, env)
	if len(rows) != 9 {
		t.Fatalf("%d TLS rows, want 3 listeners x 3 nodes: %+v", len(rows), rows)
	}
	for _, r := range rows {
		if !r.OK {
			t.Errorf("%s %s: %s", r.Check, r.Target, r.Seen)
		}
	}
	otherInv := *c.base
	otherTLS := *c.base.TLS
	otherTLS.Dir = t.TempDir() + "/other"
	otherInv.TLS = &otherTLS
	otherCA, err := pki.Open(&otherInv, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	soon := *c.base
	soonTLS := *c.base.TLS
	soonTLS.RenewBefore = soonTLS.ValidFor + inventory.Duration(time.Hour)
	soon.TLS = &soonTLS
	for _, tc := range []struct {
		name, want string
		env        role.Env
	}{
		{"another CA", "does not chain to the CA", role.Env{Inv: c.base, TLS: otherCA, Remote: env.Remote}},
		{"expiring within renew_before", "sooner than", role.Env{Inv: &soon, TLS: c.tls, Remote: env.Remote}},
	} {
		for _, r := range verifyTLS(ctx, tc.env) {
			if r.OK || r.Skipped || !strings.Contains(r.Seen, tc.want) {
				t.Errorf("%s: %s %s ok=%v skipped=%v %q, want a failure saying %q", tc.name, r.Check, r.Target, r.OK, r.Skipped, r.Seen, tc.want)
			}
		}
	}

	// Renewal: with renew_before past the lifetime, every node's
	// certificate is due now; nats-1 gets its new files and a SIGHUP.
	due := *c.base
	dueTLS := *c.base.TLS
	dueTLS.RenewBefore = dueTLS.ValidFor + inventory.Duration(time.Hour)
	due.TLS = &dueTLS
	renewed, err := pki.Open(&due, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(renewed.Issued) != 3 {
		t.Fatalf("issued %v, want the 3 node certificates", renewed.Issued)
	}
	n1 := c.nodes[0]
	old := servedFP(t, mon, c.addrs[0])
	writeCerts(t, n1.inv, n1.inv.Hosts[0], renewed)
	want := servedWant(nodeCerts(n1.inv, n1.inv.Hosts[0], renewed))
	if want == old || want == "" {
		t.Fatalf("renewed fingerprint %q, old %q", want, old)
	}
	pid := n1.cmd.Process.Pid
	if err := n1.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	gate := reloadGate(mon, "", want)
	waitFor(t, 20*time.Second, "renewed certificate served", func() error {
		return gate.Check(ctx, desired.Node{Name: "nats-1", Remote: loopbackOn(c.addrs[0])}, varzDigestTLS(t, gets[0]))
	})
	if n1.cmd.Process.Pid != pid {
		t.Error("the node was restarted, not reloaded")
	}
	waitFor(t, 30*time.Second, "routes whole after the renewal", func() error { return monitor.RoutesWhole(ctx, gets, names) })
	// The old certificate's fingerprint is no longer what the gate wants.
	if err := reloadGate(mon, "", old).Check(ctx, desired.Node{Name: "nats-1", Remote: loopbackOn(c.addrs[0])}, varzDigestTLS(t, gets[0])); err == nil {
		t.Error("the reload gate accepted the old certificate after the renewal")
	}
}

func servedFP(t *testing.T, mon Mon, addr string) string {
	t.Helper()
	fp, err := mon.ServedFingerprint(context.Background(), loopbackOn(addr))
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func varzDigestTLS(t *testing.T, get monitor.Get) string {
	t.Helper()
	d, err := monitor.Digest(context.Background(), get)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var _ = tls.VersionTLS12

// A cluster that serves plaintext while the inventory asks for TLS fails
// every TLS row, naming the plaintext answer.
func TestVerifyTLSPlaintextCluster(t *testing.T) {
	c := startRealCluster(t)
	ctx := context.Background()
	gets := make([]monitor.Get, len(c.addrs))
	names := make([]string, len(c.addrs))
	for i, a := range c.addrs {
		gets[i], names[i] = monitor.Over(loopbackOn(a).HTTPClient(), "http://127.0.0.1:"+strconv.Itoa(c.ports[2])), c.base.Hosts[i].Name
	}
	waitFor(t, 60*time.Second, "routes whole", func() error { return monitor.RoutesWhole(ctx, gets, names) })
	inv := *c.base
	on := allTLS()
	on.Dir = t.TempDir() + "/tls"
	inv.TLS = on
	tlsm, err := pki.Open(&inv, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := role.Env{Inv: &inv, TLS: tlsm, Remote: func(name string) desired.Remote {
		for i, h := range inv.Hosts {
			if h.Name == name {
				return loopbackOn(c.addrs[i])
			}
		}
		return nil
	}}
	rows := verifyTLS(ctx, env)
	if len(rows) != 9 {
		t.Fatalf("%d rows, want 9", len(rows))
	}
	for _, r := range rows {
		if r.OK || r.Skipped || !strings.Contains(r.Seen, "plaintext client was answered") {
			t.Errorf("%s %s: ok=%v skipped=%v %q, want a failure for the plaintext answer", r.Check, r.Target, r.OK, r.Skipped, r.Seen)
		}
	}
}
