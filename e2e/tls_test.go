//go:build e2e

package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

// TestTLS: lab.toml turns TLS on for clients, routes and monitoring. Every
// node refuses plaintext where TLS is on and serves the certificate
// natsdeploy issued it; verify proves both; renewing every certificate is
// a reload (same PIDs), after which each node serves its new certificate
// and the stream written before is whole; the next apply does nothing.
func TestTLS(t *testing.T) {
	hosts := lab.Hosts()
	inv := writeInventory(t, "tls")
	mustNatsdeploy(t, "apply", inv)
	_, sec := loadInventory(t, inv)
	adminPw := sec.Password("ADMIN", "admin")

	// apply ended with a passing verify (exit 0); its TLS rows:
	rows := tlsRows(t, inv)
	if len(rows) != 3*len(hosts) {
		t.Fatalf("verify ran %d TLS rows, want one per listener (3) per node: %+v", len(rows), rows)
	}

	for _, h := range hosts {
		// A client without TLS is refused...
		if nc, err := nats.Connect("nats://"+h.Address+":4222", nats.UserInfo("admin", adminPw),
			nats.Timeout(5*time.Second), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Errorf("%s: a client without the CA connected", h.Name)
		}
		// ...and so is plain http on the monitoring port.
		plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
		if resp, err := plain.Get("http://" + h.Address + ":8222/varz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
				t.Errorf("%s: plain http on the monitoring port answered %d %q", h.Name, resp.StatusCode, b)
			}
		}
		if got, want := servedCert(t, h), issuedCert(t, h); got != want {
			t.Errorf("%s: serves certificate %s, natsdeploy issued %s", h.Name, got, want)
		}
	}

	// Renew every certificate: renew_before beyond every current
	// certificate's remaining life (and valid_for longer still, so the new
	// ones are not due again).
	nc := connect(t, hosts[0], "admin", adminPw)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "TLSRENEW", Subjects: []string{"tlsrenew.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := js.Publish("tlsrenew.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	before := map[string]string{}
	for _, h := range hosts {
		before[h.Name] = issuedCert(t, h)
	}
	pidsBefore := pids(t)
	renew := writeInventory(t, "tls-renew", replace(`dir = "lab.tls"`, `dir = "lab.tls"
valid_for = "8761h"
renew_before = "8760h1m"`))
	out := mustNatsdeploy(t, "apply", renew)
	for _, h := range hosts {
		if !strings.Contains(out, "issued certificate for "+h.Name) {
			t.Errorf("apply did not say it issued %s's certificate:\n%s", h.Name, out)
		}
	}
	if strings.Contains(out, "restart nats-server") {
		t.Errorf("a renewal restarted nats-server:\n%s", out)
	}
	if after := pids(t); !equalPIDs(pidsBefore, after) {
		t.Errorf("nats-server PIDs changed across a renewal: %v -> %v", pidsBefore, after)
	}
	for _, h := range hosts {
		now := issuedCert(t, h)
		if now == before[h.Name] {
			t.Errorf("%s: certificate not renewed", h.Name)
		}
		if got := servedCert(t, h); got != now {
			t.Errorf("%s: serves %s after the renewal, want the new %s", h.Name, got, now)
		}
	}
	checkCluster(t, hosts)
	checkStreamNamed(t, hosts, adminPw, "TLSRENEW", 50)
	// Each apply below ends with verify: exit 0 means it passed.
	if out := mustNatsdeploy(t, "apply", renew); !strings.Contains(out, "nothing to do") || !strings.Contains(out, "verify passed") {
		t.Errorf("the apply after a renewal changed something, or verify did not pass:\n%s", out)
	}

	// A CA rotation, both steps by reload: first the next CA joins every
	// node's bundle and signs nothing; then every node gets a certificate
	// from it, the old CA still trusted.
	pidsBefore = pids(t)
	out = mustNatsdeploy(t, "tls", "rotate-ca", renew)
	if strings.Contains(out, "restart nats-server") || strings.Contains(out, "issued certificate") {
		t.Errorf("rotate-ca's first step restarted a node or issued a certificate:\n%s", out)
	}
	for _, h := range hosts {
		if n := hostExec(t, h, "grep -c 'BEGIN CERTIFICATE' /etc/nats/ca.pem"); n != "2" {
			t.Errorf("%s: the CA bundle holds %s certificates mid-rotation, want the current and the next", h.Name, n)
		}
	}
	if !strings.Contains(out, "verify passed") {
		t.Errorf("verify did not pass mid-rotation:\n%s", out)
	}
	out = mustNatsdeploy(t, "tls", "rotate-ca", "--finish", renew)
	for _, h := range hosts {
		if !strings.Contains(out, "issued certificate for "+h.Name) {
			t.Errorf("the switch did not issue %s a certificate from the new CA:\n%s", h.Name, out)
		}
		if got, want := servedCert(t, h), issuedCert(t, h); got != want {
			t.Errorf("%s: serves %s after the switch, want %s", h.Name, got, want)
		}
	}
	if after := pids(t); !equalPIDs(pidsBefore, after) {
		t.Errorf("nats-server PIDs changed across the CA rotation: %v -> %v", pidsBefore, after)
	}
	checkCluster(t, hosts)
	checkStreamNamed(t, hosts, adminPw, "TLSRENEW", 50)
	if !strings.Contains(out, "verify passed") {
		t.Errorf("verify did not pass after the switch:\n%s", out)
	}
}

func tlsRows(t *testing.T, inv string) []verifyResult {
	t.Helper()
	out, err := exec.Command(binary, "verify", "--json", inv).Output()
	if err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	var rows []verifyResult
	var rep struct {
		Results []verifyResult `json:"results"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Check, "tls/") {
			if !r.OK {
				t.Errorf("%s %s: %s", r.Check, r.Target, r.Seen)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// issuedCert is the fingerprint of the certificate natsdeploy keeps for h.
func issuedCert(t *testing.T, h lab.Host) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(workDir, "lab.tls", h.Name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no certificate in lab.tls", h.Name)
	}
	s := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(s[:8])
}

// servedCert is the fingerprint of the certificate h's https monitoring
// port serves, verified against the lab's CA and the host's address.
func servedCert(t *testing.T, h lab.Host) string {
	t.Helper()
	cfg, err := labTLS()
	if err != nil || cfg == nil {
		t.Fatalf("lab CA: %v", err)
	}
	cfg.ServerName = h.Address
	var fp string
	eventually(t, 20*time.Second, h.Name+" serves a certificate", func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.Address+":8222", cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		s := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
		fp = hex.EncodeToString(s[:8])
		return nil
	})
	return fp
}

func equalPIDs(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
