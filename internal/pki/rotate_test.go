package pki

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemCount(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n
		}
		n++
	}
}

// A CA rotation in two steps: first the new CA joins every trust bundle
// and signs nothing; then it signs every certificate while the old one
// stays trusted, so at no point does a link meet a certificate its peer
// cannot verify.
func TestCARotationInTwoSteps(t *testing.T) {
	now := time.Now()
	in := inv(tlsDir(t), 3)
	before := openSave(t, in, now)
	oldCA := leaf(t, before.Trust)

	if err := FinishRotation(in); err == nil || !strings.Contains(err.Error(), "no rotation under way") {
		t.Fatalf("finish without a start: %v", err)
	}
	if err := StartRotation(in, now); err != nil {
		t.Fatal(err)
	}
	if err := StartRotation(in, now); err == nil || !strings.Contains(err.Error(), "already under way") {
		t.Fatalf("a second start: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(in.TLS.Dir, NextCAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("next CA key: %v %v", fi, err)
	}

	mid := openSave(t, in, now)
	if len(mid.Issued) != 0 {
		t.Errorf("step one issued %v; it must only add trust", mid.Issued)
	}
	if pemCount(mid.Trust) != 2 || !bytes.HasPrefix(mid.Trust, before.Trust) {
		t.Errorf("trust during the rotation holds %d CAs, want the current one then the next", pemCount(mid.Trust))
	}
	for h, n := range mid.Nodes {
		if !bytes.Equal(n.Cert, before.Nodes[h].Cert) {
			t.Errorf("%s: certificate changed in step one", h)
		}
	}

	if err := FinishRotation(in); err != nil {
		t.Fatal(err)
	}
	if err := FinishRotation(in); err == nil {
		t.Error("a second finish succeeded")
	}
	after := openSave(t, in, now)
	if got := issuedHosts(after); len(got) != 3 {
		t.Errorf("after the switch issued %v, want every node", got)
	}
	newCA := leaf(t, after.Trust)
	if newCA.Equal(oldCA) {
		t.Fatal("the current CA did not change")
	}
	if pemCount(after.Trust) != 2 {
		t.Errorf("trust after the switch holds %d CAs, want the new one and the previous", pemCount(after.Trust))
	}
	for h, n := range after.Nodes {
		c := leaf(t, n.Cert)
		if err := c.CheckSignatureFrom(newCA); err != nil {
			t.Errorf("%s: not signed by the new CA: %v", h, err)
		}
		// A node not yet reloaded still presents its old certificate; the
		// bundle must still verify it.
		if err := Check(leaf(t, before.Nodes[h].Cert), after.Pool(), "10.0.0."+h[len(h)-1:], now, 0); err != nil {
			t.Errorf("%s: the old certificate no longer verifies mid-rollout: %v", h, err)
		}
	}
	if _, err := os.Stat(filepath.Join(in.TLS.Dir, NextCAFile)); !os.IsNotExist(err) {
		t.Errorf("the next CA file is still there: %v", err)
	}
	if again := open(t, in, now); len(again.Issued) != 0 {
		t.Errorf("the apply after the switch would issue %v", again.Issued)
	}
}

func TestStartRotationRefusals(t *testing.T) {
	in := inv(tlsDir(t), 1)
	if err := StartRotation(in, time.Now()); err == nil || !strings.Contains(err.Error(), "apply makes one") {
		t.Errorf("no CA yet: %v", err)
	}
	in.TLS.CACert = "/somewhere/ca.pem"
	if err := StartRotation(in, time.Now()); err == nil || !strings.Contains(err.Error(), "your own CA") {
		t.Errorf("own CA: %v", err)
	}
}

// One *tls.Config per server name: HTTP clients are cached on it.
func TestClientTLSStable(t *testing.T) {
	m := openSave(t, inv(tlsDir(t), 1), time.Now())
	first, again := m.ClientTLS("127.0.0.1"), m.ClientTLS("127.0.0.1")
	if first != again {
		t.Error("two configs for one server name")
	}
	if m.ClientTLS("127.0.0.1") == m.ClientTLS("") {
		t.Error("one config for two server names")
	}
}
