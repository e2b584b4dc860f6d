package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// t0 is a fixed "now": every test moves time by passing Open a later one.
var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

const (
	validFor = 365 * 24 * time.Hour
	renew    = 30 * 24 * time.Hour
	day      = 24 * time.Hour
)

// inv is an inventory of NATS hosts named nats-1.. at 10.0.0.1.. with TLS
// on and its TLS directory at dir.
func inv(dir string, n int) *inventory.Inventory {
	i := &inventory.Inventory{TLS: &inventory.TLS{
		Clients: true, Routes: true, Monitoring: true, Dir: dir,
		ValidFor: inventory.Duration(validFor), RenewBefore: inventory.Duration(renew),
	}}
	for k := 1; k <= n; k++ {
		i.Hosts = append(i.Hosts, inventory.Host{Name: "nats-" + string(rune('0'+k)), Address: "10.0.0." + string(rune('0'+k))})
	}
	return i
}

// tlsDir names a TLS directory that does not exist yet: Save makes it
// 0700, where t.TempDir's own 0755 would be refused.
func tlsDir(t *testing.T) string { return filepath.Join(t.TempDir(), "inv.tls") }

func open(t *testing.T, in *inventory.Inventory, now time.Time) *Material {
	t.Helper()
	m, err := Open(in, now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func openSave(t *testing.T, in *inventory.Inventory, now time.Time) *Material {
	t.Helper()
	m := open(t, in, now)
	if err := m.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return m
}

func leaf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	c, err := ParsePEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issuedHosts returns the host names Open says it issued certificates for.
func issuedHosts(m *Material) []string {
	var out []string
	for _, l := range m.Issued {
		if rest, ok := strings.CutPrefix(l, "certificate for "); ok {
			out = append(out, rest[:strings.IndexByte(rest, ':')])
		}
	}
	return out
}

func caIssued(m *Material) bool {
	for _, l := range m.Issued {
		if strings.HasPrefix(l, "CA:") {
			return true
		}
	}
	return false
}

func TestOpenOff(t *testing.T) {
	for name, tls := range map[string]*inventory.TLS{
		"no [tls]":       nil,
		"no listener on": {Dir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Open(&inventory.Inventory{TLS: tls, Hosts: []inventory.Host{{Name: "a", Address: "10.0.0.1"}}}, t0)
			if m != nil || err != nil {
				t.Fatalf("Open = %v, %v; want nil, nil", m, err)
			}
			if err := m.Save(); err != nil {
				t.Fatalf("Save on nil Material: %v", err)
			}
		})
	}
}

// The first Open makes a CA and one certificate per NATS host, each
// carrying the names clients dial it by, usable both ways, chaining to
// the CA; a host without NATS gets none. Save writes the directory 0700
// and keys 0600.
func TestFirstOpenIssuesAndSaves(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab.tls")
	in := inv(dir, 3)
	no := false
	in.Hosts = append(in.Hosts, inventory.Host{Name: "mon", Address: "10.0.0.9", NATS: &no})
	m := open(t, in, t0)

	if !caIssued(m) {
		t.Errorf("Issued = %q, want a CA line", m.Issued)
	}
	if got := issuedHosts(m); strings.Join(got, ",") != "nats-1,nats-2,nats-3" {
		t.Errorf("issued for %v, want nats-1..3", got)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Open wrote the TLS directory (stat: %v); only Save may", err)
	}
	if len(m.Nodes) != 3 {
		t.Fatalf("Nodes = %d, want 3", len(m.Nodes))
	}
	for _, h := range in.NATSHosts() {
		n := m.Nodes[h.Name]
		c := leaf(t, n.Cert)
		if err := Check(c, m.Pool(), h.Address, t0, validFor-day); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
		for _, name := range []string{h.Name, "localhost", "127.0.0.1", "::1"} {
			if err := c.VerifyHostname(name); err != nil {
				t.Errorf("%s: %v", h.Name, err)
			}
		}
		if len(c.ExtKeyUsage) != 2 {
			t.Errorf("%s: EKU %v, want serverAuth and clientAuth", h.Name, c.ExtKeyUsage)
		}
		if n.Own || !n.NotAfter.Equal(c.NotAfter) {
			t.Errorf("%s: Own %v NotAfter %v, cert says %v", h.Name, n.Own, n.NotAfter, c.NotAfter)
		}
	}
	if ca := leaf(t, m.Trust); !ca.IsCA || bytes.Count(m.Trust, []byte("BEGIN CERTIFICATE")) != 1 {
		t.Errorf("Trust: want exactly one CA certificate")
	}

	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		"":               0o700,
		CAFile:           0o644,
		CAKeyFile:        0o600,
		"nats-1.pem":     0o644,
		"nats-1-key.pem": 0o600,
		"nats-3-key.pem": 0o600,
		PreviousCAFile:   0, // none: nothing was rotated
		"mon.pem":        0,
		"mon-key.pem":    0,
		"nats-2-key.pem": 0o600,
		"nats-2.pem":     0o644,
		"nats-3.pem":     0o644,
	}
	for f, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, f))
		switch {
		case mode == 0 && err == nil:
			t.Errorf("%s exists", f)
		case mode == 0:
		case err != nil:
			t.Errorf("%s: %v", f, err)
		case fi.Mode().Perm() != mode:
			t.Errorf("%s: mode %04o, want %04o", f, fi.Mode().Perm(), mode)
		}
	}
	if err := m.Save(); err != nil {
		t.Errorf("second Save: %v", err)
	}
}

// Open on a saved directory issues nothing and gives the very bytes it
// saved, so an apply with nothing due uploads nothing.
func TestReopenIsStable(t *testing.T) {
	dir := tlsDir(t)
	in := inv(dir, 3)
	first := openSave(t, in, t0)
	for _, now := range []time.Time{t0, t0.Add(day), t0.Add(validFor - renew - day)} {
		m := open(t, in, now)
		if len(m.Issued) != 0 || len(m.writes) != 0 {
			t.Errorf("%v: Issued %q, %d writes; want none", now, m.Issued, len(m.writes))
		}
		if !bytes.Equal(m.Trust, first.Trust) {
			t.Errorf("%v: Trust changed", now)
		}
		for name, n := range first.Nodes {
			got := m.Nodes[name]
			if !bytes.Equal(got.Cert, n.Cert) || !bytes.Equal(got.Key, n.Key) {
				t.Errorf("%v: %s certificate or key changed", now, name)
			}
		}
	}
}

// What Open re-issues on a later run, and that it touches nothing else.
func TestRenewal(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change alters the saved state before the second Open at now.
		change func(t *testing.T, dir string, in *inventory.Inventory) time.Time
		want   []string
		why    string
	}{
		{
			name: "one certificate due",
			change: func(t *testing.T, dir string, in *inventory.Inventory) time.Time {
				// nats-2's certificate is issued again 60 days on, so at
				// renewal time for the others it still has 60 days left.
				if err := os.Remove(filepath.Join(dir, "nats-2.pem")); err != nil {
					t.Fatal(err)
				}
				openSave(t, in, t0.Add(60*day))
				return t0.Add(validFor - renew + day)
			},
			want: []string{"nats-1", "nats-3"},
			why:  "within renew_before",
		},
		{
			name: "not yet due",
			change: func(*testing.T, string, *inventory.Inventory) time.Time {
				return t0.Add(validFor - renew - time.Hour)
			},
		},
		{
			name: "address changed",
			change: func(_ *testing.T, _ string, in *inventory.Inventory) time.Time {
				in.Hosts[1].Address = "nats-2.example.net"
				return t0.Add(day)
			},
			want: []string{"nats-2"},
			why:  "names changed",
		},
		{
			name: "key lost",
			change: func(t *testing.T, dir string, _ *inventory.Inventory) time.Time {
				if err := os.Remove(filepath.Join(dir, "nats-3-key.pem")); err != nil {
					t.Fatal(err)
				}
				return t0
			},
			want: []string{"nats-3"},
			why:  "key unreadable",
		},
		{
			name: "key of another node",
			change: func(t *testing.T, dir string, _ *inventory.Inventory) time.Time {
				k, err := os.ReadFile(filepath.Join(dir, "nats-2-key.pem"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "nats-1-key.pem"), k, 0o600); err != nil {
					t.Fatal(err)
				}
				return t0
			},
			want: []string{"nats-1"},
			why:  "does not match its key",
		},
		{
			name: "host added",
			change: func(_ *testing.T, _ string, in *inventory.Inventory) time.Time {
				in.Hosts = append(in.Hosts, inventory.Host{Name: "nats-4", Address: "10.0.0.4"})
				return t0
			},
			want: []string{"nats-4"},
			why:  "none yet",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tlsDir(t)
			in := inv(dir, 3)
			openSave(t, in, t0)
			now := tc.change(t, dir, in)
			// What the hosts had before this run: the saved certificates
			// (one missing or broken is issued anew here, so it differs).
			before := open(t, inv(dir, 3), t0)
			m := open(t, in, now)
			if caIssued(m) {
				t.Errorf("CA re-made: %q", m.Issued)
			}
			if got := issuedHosts(m); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("issued for %v, want %v (Issued %q)", got, tc.want, m.Issued)
			}
			for _, l := range m.Issued {
				if !strings.Contains(l, tc.why) {
					t.Errorf("Issued %q does not say %q", l, tc.why)
				}
			}
			for _, h := range in.NATSHosts() {
				n := m.Nodes[h.Name]
				reissued := strings.Contains(strings.Join(tc.want, ","), h.Name)
				same := bytes.Equal(n.Cert, before.Nodes[h.Name].Cert)
				if reissued == same {
					t.Errorf("%s: re-issued %v, but certificate unchanged %v", h.Name, reissued, same)
				}
				if err := Check(leaf(t, n.Cert), m.Pool(), h.Address, now, renew); err != nil {
					t.Errorf("%s after renewal: %v", h.Name, err)
				}
			}
			if err := m.Save(); err != nil {
				t.Fatal(err)
			}
			if again := open(t, in, now); len(again.Issued) != 0 {
				t.Errorf("third Open issued %q", again.Issued)
			}
		})
	}
}

// A CA that expires within renew_before is replaced; the old one stays in
// Trust until it expires, so nodes not yet reloaded still verify, and
// every node certificate is issued again from the new CA.
func TestCARotation(t *testing.T) {
	dir := tlsDir(t)
	in := inv(dir, 2)
	oldCA := leaf(t, openSave(t, in, t0).Trust)
	rot := oldCA.NotAfter.Add(-renew + day)
	// The day before: node certificates renewed from the old CA, as the
	// hosts have them when the CA comes due.
	first := openSave(t, in, rot.Add(-day))
	if caIssued(first) {
		t.Fatalf("CA rotated a day early: %q", first.Issued)
	}

	m := openSave(t, in, rot)
	if !caIssued(m) {
		t.Fatalf("CA not rotated at %v: %q", rot, m.Issued)
	}
	if got := issuedHosts(m); len(got) != 2 {
		t.Errorf("issued for %v, want both nodes", got)
	}
	newCA := leaf(t, m.Trust)
	if newCA.Equal(oldCA) {
		t.Fatal("first certificate of Trust is still the old CA")
	}
	if n := bytes.Count(m.Trust, []byte("BEGIN CERTIFICATE")); n != 2 || !bytes.Contains(m.Trust, first.Trust) {
		t.Errorf("Trust holds %d certificates, want the new CA and the old", n)
	}
	for name, n := range m.Nodes {
		c := leaf(t, n.Cert)
		if err := c.CheckSignatureFrom(newCA); err != nil {
			t.Errorf("%s not signed by the new CA: %v", name, err)
		}
		// A node still on its old certificate verifies against Trust.
		old := leaf(t, first.Nodes[name].Cert)
		if err := Check(old, m.Pool(), "127.0.0.1", rot, 0); err != nil {
			t.Errorf("%s's old certificate no longer verifies mid-rotation: %v", name, err)
		}
	}

	// The next run, still before the old CA expires: stable, both trusted.
	again := open(t, in, rot.Add(day))
	if len(again.Issued) != 0 || !bytes.Equal(again.Trust, m.Trust) {
		t.Errorf("after rotation: Issued %q, Trust changed %v", again.Issued, !bytes.Equal(again.Trust, m.Trust))
	}
	// Once the old CA has expired it leaves Trust; nothing is issued.
	later := open(t, in, oldCA.NotAfter.Add(time.Hour))
	if n := bytes.Count(later.Trust, []byte("BEGIN CERTIFICATE")); n != 1 || !leaf(t, later.Trust).Equal(newCA) {
		t.Errorf("after the old CA expired Trust holds %d certificates", n)
	}
	if later.Pool().Equal(m.Pool()) {
		t.Error("Pool still trusts the expired CA")
	}
}

// TLS material the operator brings: a CA with its key signs the node
// certificates; ca.pem in the TLS directory is that CA.
func TestOwnCA(t *testing.T) {
	dir, own := tlsDir(t), t.TempDir()
	ca, caKey := makeCA(t, t0, 5*validFor)
	in := inv(dir, 2)
	in.TLS.CACert = writePEM(t, own, "ca.pem", "CERTIFICATE", ca.Raw)
	in.TLS.CAKey = writeKey(t, own, "ca-key.pem", caKey)

	m := openSave(t, in, t0)
	if caIssued(m) {
		t.Errorf("made a CA though the operator gave one: %q", m.Issued)
	}
	if !leaf(t, m.Trust).Equal(ca) {
		t.Error("Trust is not the operator's CA")
	}
	for name, n := range m.Nodes {
		if err := leaf(t, n.Cert).CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the operator's CA key was copied into the TLS directory (stat: %v)", err)
	}
	if again := open(t, in, t0.Add(day)); len(again.Issued) != 0 {
		t.Errorf("second Open issued %q", again.Issued)
	}
}

// An operator's CA that expires within renew_before caps every
// certificate issued from it inside renew_before as well; Open must say
// so rather than issue certificates that are due the moment they exist
// (and again on every apply).
func TestOwnCANearExpiry(t *testing.T) {
	dir, own := tlsDir(t), t.TempDir()
	ca, caKey := makeCA(t, t0.Add(-validFor), validFor+10*day)
	in := inv(dir, 1)
	in.TLS.CACert = writePEM(t, own, "ca.pem", "CERTIFICATE", ca.Raw)
	in.TLS.CAKey = writeKey(t, own, "ca-key.pem", caKey)
	_, err := Open(in, t0)
	if err == nil || !strings.Contains(err.Error(), "ca_cert") || !strings.Contains(err.Error(), "renew_before") {
		t.Fatalf("Open = %v, want an error naming ca_cert and renew_before", err)
	}
}

// A host's own certificate (tls_cert, tls_key) is used as given when it
// is good, and refused, naming the host and the file, when it is not.
func TestOwnHostCertificate(t *testing.T) {
	ca, caKey := makeCA(t, t0, 5*validFor)
	other, otherKey := makeCA(t, t0, 5*validFor)
	for _, tc := range []struct {
		name string
		// make returns the certificate and the key to write for nats-2.
		make func(t *testing.T, h inventory.Host) (*x509.Certificate, crypto.Signer)
		err  string // "" when it must be accepted
	}{
		{"good", func(t *testing.T, h inventory.Host) (*x509.Certificate, crypto.Signer) {
			return makeLeaf(t, ca, caKey, h.Address, t0, validFor)
		}, ""},
		{"wrong key", func(t *testing.T, h inventory.Host) (*x509.Certificate, crypto.Signer) {
			c, _ := makeLeaf(t, ca, caKey, h.Address, t0, validFor)
			_, k := makeLeaf(t, ca, caKey, h.Address, t0, validFor)
			return c, k
		}, "do not go together"},
		{"other CA", func(t *testing.T, h inventory.Host) (*x509.Certificate, crypto.Signer) {
			return makeLeaf(t, other, otherKey, h.Address, t0, validFor)
		}, "does not chain"},
		{"lacks the address", func(t *testing.T, _ inventory.Host) (*x509.Certificate, crypto.Signer) {
			return makeLeaf(t, ca, caKey, "10.9.9.9", t0, validFor)
		}, "not valid for 10.0.0.2"},
		{"expired", func(t *testing.T, h inventory.Host) (*x509.Certificate, crypto.Signer) {
			return makeLeaf(t, ca, caKey, h.Address, t0.Add(-2*validFor), validFor)
		}, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, own := tlsDir(t), t.TempDir()
			in := inv(dir, 3)
			in.TLS.CACert = writePEM(t, own, "ca.pem", "CERTIFICATE", ca.Raw)
			in.TLS.CAKey = writeKey(t, own, "ca-key.pem", caKey)
			h := &in.Hosts[1]
			c, k := tc.make(t, *h)
			h.TLSCert = writePEM(t, own, "nats-2-own.pem", "CERTIFICATE", c.Raw)
			h.TLSKey = writeKey(t, own, "nats-2-own-key.pem", k)

			m, err := Open(in, t0)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Open accepted it")
				}
				for _, s := range []string{"nats-2", h.TLSCert, tc.err} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := m.Nodes["nats-2"]
			if !n.Own || !leaf(t, n.Cert).Equal(c) {
				t.Errorf("nats-2: Own %v, or not the operator's certificate", n.Own)
			}
			if got := issuedHosts(m); strings.Join(got, ",") != "nats-1,nats-3" {
				t.Errorf("issued for %v, want the two others only", got)
			}
			if err := m.Save(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "nats-2-key.pem")); !os.IsNotExist(err) {
				t.Errorf("the host's own key was copied into the TLS directory (stat: %v)", err)
			}
			// Never renewed by natsdeploy, even when due.
			if late := open(t, in, c.NotAfter.Add(-day)); strings.Contains(strings.Join(issuedHosts(late), ","), "nats-2") {
				t.Errorf("natsdeploy renewed an operator's certificate: %q", late.Issued)
			}
		})
	}
}

// Open refuses a TLS directory others can read: it holds private keys.
func TestDirOpenToOthers(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o700, true}, {0o755, false}, {0o750, false}, {0o701, false}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			if err := os.Mkdir(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, err := Open(inv(dir, 1), t0)
			if tc.ok != (err == nil) {
				t.Fatalf("mode %04o: Open = %v", tc.mode, err)
			}
			if err != nil && (!strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chmod 700")) {
				t.Errorf("error %q names neither the directory nor the fix", err)
			}
		})
	}
}

// A damaged CA file is an error, not a reason to make a new CA: a new CA
// would re-issue every certificate, and drop the old one from Trust while
// nodes still present certificates signed by it.
func TestDamagedCAFile(t *testing.T) {
	for _, f := range []string{CAFile, PreviousCAFile} {
		t.Run(f, func(t *testing.T) {
			dir := tlsDir(t)
			in := inv(dir, 1)
			openSave(t, in, t0)
			if err := os.WriteFile(filepath.Join(dir, f), []byte("not a certificate\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(in, t0)
			if err == nil || !strings.Contains(err.Error(), f) {
				t.Fatalf("Open = %v, want an error naming %s", err, f)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ca, caKey := makeCA(t, t0, 5*validFor)
	other, _ := makeCA(t, t0, 5*validFor)
	c, _ := makeLeaf(t, ca, caKey, "10.0.0.1", t0, validFor)
	pool := func(cs ...*x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		for _, c := range cs {
			p.AddCert(c)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pool *x509.CertPool
		addr string
		now  time.Time
		left time.Duration
		err  string
	}{
		{"good", pool(ca), "10.0.0.1", t0, renew, ""},
		{"good by loopback name", pool(other, ca), "localhost", t0, renew, ""},
		{"wrong CA", pool(other), "10.0.0.1", t0, 0, "does not chain"},
		{"wrong name", pool(ca), "10.0.0.2", t0, 0, "not valid for 10.0.0.2"},
		{"too soon", pool(ca), "10.0.0.1", t0.Add(validFor - renew + day), renew, "sooner than"},
		{"expired", pool(ca), "10.0.0.1", t0.Add(validFor + day), 0, "expired"},
		{"not yet valid", pool(ca), "10.0.0.1", t0.Add(-day), 0, "not valid before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(c, tc.pool, tc.addr, tc.now, tc.left)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Check = %v, want %q", err, tc.err)
			}
		})
	}
}

// ClientTLS trusts exactly Trust and checks the name it is given.
func TestClientTLS(t *testing.T) {
	m := openSave(t, inv(tlsDir(t), 1), t0)
	cfg := m.ClientTLS("127.0.0.1")
	if cfg.ServerName != "127.0.0.1" || cfg.RootCAs != m.Pool() || cfg.InsecureSkipVerify {
		t.Errorf("ClientTLS = %+v", cfg)
	}
}

// Helpers that play the operator: a CA of their own and certificates
// signed by it.

func makeCA(t *testing.T, from time.Time, life time.Duration) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "operator CA"},
		NotBefore: from.Add(-time.Hour), NotAfter: from.Add(life),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func makeLeaf(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, addr string, from time.Time, life time.Duration) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: addr},
		NotBefore: from, NotAfter: from.Add(life),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP(addr), net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeKey(t *testing.T, dir, name string, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}

// Your own CA rotated in two applies with [tls] trust: first the new CA
// joins every bundle while the old one still signs; then the new one
// signs, and the old one, moved to trust, keeps verifying the node
// certificates not yet replaced. At no step does a node present a
// certificate the bundle of that step does not verify.
func TestOwnCARotationWithTrust(t *testing.T) {
	dir, own := tlsDir(t), t.TempDir()
	oldCA, oldKey := makeCA(t, t0, 5*validFor)
	newCA, newKey := makeCA(t, t0, 6*validFor)
	in := inv(dir, 2)
	in.TLS.CACert = writePEM(t, own, "old.pem", "CERTIFICATE", oldCA.Raw)
	in.TLS.CAKey = writeKey(t, own, "old-key.pem", oldKey)
	before := openSave(t, in, t0)

	// Step 1: the new CA trusted, the old one still signing.
	in.TLS.Trust = []string{writePEM(t, own, "new.pem", "CERTIFICATE", newCA.Raw)}
	step1 := openSave(t, in, t0.Add(day))
	if len(step1.Issued) != 0 {
		t.Errorf("step 1 issued %q; only the bundle should change", step1.Issued)
	}
	if n := bytes.Count(step1.Trust, []byte("BEGIN CERTIFICATE")); n != 2 || !leaf(t, step1.Trust).Equal(oldCA) {
		t.Errorf("step 1 bundle holds %d certificates, want the old CA first and the new one", n)
	}

	// Step 2: the new CA signs; the old one is only trusted.
	in.TLS.CACert, in.TLS.CAKey = in.TLS.Trust[0], writeKey(t, own, "new-key.pem", newKey)
	in.TLS.Trust = []string{filepath.Join(own, "old.pem")}
	step2 := openSave(t, in, t0.Add(2*day))
	if got := issuedHosts(step2); len(got) != 2 {
		t.Errorf("step 2 issued for %v, want both nodes", got)
	}
	for name, n := range step2.Nodes {
		if err := leaf(t, n.Cert).CheckSignatureFrom(newCA); err != nil {
			t.Errorf("%s not signed by the new CA: %v", name, err)
		}
		// A node still on its old certificate, and a new one, verify
		// against the bundle of step 1 (what peers have before step 2
		// reaches them) and of step 2.
		for step, pool := range map[string]*Material{"1": step1, "2": step2} {
			for which, c := range map[string]*x509.Certificate{"old": leaf(t, before.Nodes[name].Cert), "new": leaf(t, n.Cert)} {
				if err := Check(c, pool.Pool(), "127.0.0.1", t0.Add(2*day), 0); err != nil {
					t.Errorf("%s: its %s certificate does not verify against the step %s bundle: %v", name, which, step, err)
				}
			}
		}
	}
}

// What trust refuses, before any connection: a certificate that is no
// CA, an expired CA, a file without a certificate.
func TestTrustRefused(t *testing.T) {
	own := t.TempDir()
	ca, caKey := makeCA(t, t0, 5*validFor)
	expired, _ := makeCA(t, t0.Add(-3*validFor), validFor)
	node, _ := makeLeaf(t, ca, caKey, "192.0.2.1", t0, validFor)
	junk := filepath.Join(own, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o600)
	for _, tc := range []struct {
		name, file, want string
	}{
		{"not a CA", writePEM(t, own, "node.pem", "CERTIFICATE", node.Raw), "is not a CA certificate"},
		{"expired", writePEM(t, own, "expired.pem", "CERTIFICATE", expired.Raw), "expired on"},
		{"no certificate", junk, "holds no PEM certificate"},
	} {
		in := inv(tlsDir(t), 1)
		in.TLS.Trust = []string{tc.file}
		_, err := Open(in, t0)
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "tls.trust: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want a pki.Error with %q", tc.name, err, tc.want)
		}
	}
}
