// Package pki keeps the TLS material of a deployment on the control
// machine: a CA (natsdeploy's own, or the operator's) and one certificate
// per NATS node, issued, checked and renewed here. Only the CA certificate
// and each node's own certificate and key ever leave this machine; the CA
// key stays in the inventory's TLS directory (0600).
//
// Open decides what must be (re)issued without writing anything, so plan
// can show it; Save writes it. Output is stable: an unchanged inventory on
// a day no certificate is due gives unchanged bytes, so an apply with
// nothing to do uploads nothing.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/atomicfile"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// File names in the TLS directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	PreviousCAFile = "ca-previous.pem"
	// The next CA of a rotation in progress (StartRotation): trusted
	// everywhere, signing nothing yet.
	NextCAFile    = "ca-next.pem"
	NextCAKeyFile = "ca-next-key.pem"
)

// CAValidity is the lifetime of a CA natsdeploy makes. The CA is renewed,
// like a node certificate, when it expires sooner than renew_before; the
// previous one stays trusted until it expires, so the switch rolls out by
// reload with every link still verifying.
const CAValidity = 10 * 365 * 24 * time.Hour

// Material is the TLS material of one deployment.
type Material struct {
	// Trust is the CA bundle every node and client trusts (PEM): the
	// current CA and, during a CA rotation, the previous one.
	Trust []byte
	// Nodes are the certificates by host name, for every NATS host.
	Nodes map[string]Node
	// Issued says, per line, what Open made that is not saved yet
	// ("certificate for nats-1: expires in 20 days").
	Issued []string

	dir      string
	ca       *x509.Certificate
	pool     *x509.CertPool
	writes   []write
	validFor time.Duration
	renew    time.Duration
	// clientCfgs: serverName -> *tls.Config (see ClientTLS).
	clientCfgs sync.Map
}

// Node is one node's certificate and key, PEM.
type Node struct {
	Cert, Key []byte
	NotAfter  time.Time
	// Own is true for a certificate the operator supplied (tls_cert):
	// natsdeploy never renews it.
	Own bool
}

type write struct {
	path string
	data []byte
	mode os.FileMode
}

// Names are the names a node's certificate must carry: what clients and
// other nodes dial it by (its inventory address), its name, and the
// loopback names natsdeploy's own checks use through the SSH tunnel.
func Names(h inventory.Host) (dns []string, ips []net.IP) {
	add := func(s string) {
		if ip := net.ParseIP(s); ip != nil {
			for _, have := range ips {
				if have.Equal(ip) {
					return
				}
			}
			ips = append(ips, ip)
			return
		}
		s = strings.ToLower(s)
		if !slices.Contains(dns, s) {
			dns = append(dns, s)
		}
	}
	add(h.Address)
	add(h.Name)
	add("localhost")
	add("127.0.0.1")
	add("::1")
	return dns, ips
}

// Open loads the TLS material of inv and decides what to issue: a CA when
// there is none, a certificate for each NATS host that has none, whose
// names or CA changed, or that expires within renew_before. Nothing is
// written; Save does that. It returns nil when the inventory has no TLS.
func Open(inv *inventory.Inventory, now time.Time) (m *Material, err error) {
	defer func() {
		if err != nil {
			m, err = nil, &Error{Err: err}
		}
	}()
	return load(inv, now)
}

// Error is what Open found wrong with the TLS material the inventory
// names or the TLS directory holds: the operator's to fix, found before
// any host is contacted.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func load(inv *inventory.Inventory, now time.Time) (*Material, error) {
	t := inv.TLS
	if !t.On() {
		return nil, nil
	}
	m := &Material{Nodes: map[string]Node{}, dir: t.Dir, validFor: t.ValidFor.D(), renew: t.RenewBefore.D()}
	if fi, err := os.Stat(t.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("TLS directory %s is open to others (mode %04o); it holds private keys: chmod 700 %s", t.Dir, fi.Mode().Perm(), t.Dir)
	}
	caKey, err := m.openCA(t, now)
	if err != nil {
		return nil, err
	}
	for _, h := range inv.NATSHosts() {
		if h.TLSCert != "" {
			n, err := m.own(h, now)
			if err != nil {
				return nil, err
			}
			m.Nodes[h.Name] = n
			continue
		}
		n, why, err := m.stored(h, now)
		if err != nil {
			return nil, err
		}
		if why != "" {
			if caKey == nil {
				return nil, fmt.Errorf("host %s: certificate %s, and there is no CA key to issue one: set [tls] ca_key, or give the host tls_cert and tls_key", h.Name, why)
			}
			if n, err = m.issue(h, caKey, now); err != nil {
				return nil, fmt.Errorf("host %s: issue certificate: %w", h.Name, err)
			}
			m.Issued = append(m.Issued, fmt.Sprintf("certificate for %s: %s", h.Name, why))
			m.writes = append(m.writes,
				write{filepath.Join(t.Dir, h.Name+".pem"), n.Cert, 0o644},
				write{filepath.Join(t.Dir, h.Name+"-key.pem"), n.Key, 0o600})
		}
		m.Nodes[h.Name] = n
	}
	return m, nil
}

// openCA loads or makes the CA and sets the trust bundle. It returns the
// CA key, nil when the operator's CA came without one.
func (m *Material) openCA(t *inventory.TLS, now time.Time) (crypto.Signer, error) {
	stored := filepath.Join(t.Dir, CAFile)
	prevPath := filepath.Join(t.Dir, PreviousCAFile)
	// Only a missing file means "none": taking a damaged one for missing
	// would make a new CA, re-issue every certificate and drop the old CA
	// from Trust while nodes still present certificates it signed.
	old, err := readStoredCert(stored)
	if err != nil {
		return nil, err
	}
	prev, err := readStoredCert(prevPath)
	if err != nil {
		return nil, err
	}

	var ca *x509.Certificate
	var key crypto.Signer
	switch {
	case t.CACert != "":
		if ca, err = readCert(t.CACert); err != nil {
			return nil, fmt.Errorf("tls.ca_cert: %w", err)
		}
		if !ca.IsCA {
			return nil, fmt.Errorf("tls.ca_cert: %s is not a CA certificate (basic constraints CA:FALSE); name the CA that signs the node certificates", t.CACert)
		}
		if now.After(ca.NotAfter) {
			return nil, fmt.Errorf("tls.ca_cert: %s expired on %s; name a valid CA", t.CACert, ca.NotAfter.Format(time.DateOnly))
		}
		if t.CAKey != "" {
			if key, err = readKey(t.CAKey); err != nil {
				return nil, fmt.Errorf("tls.ca_key: %w", err)
			}
			if !samePublic(ca.PublicKey, key.Public()) {
				return nil, fmt.Errorf("tls.ca_key: %s is not the key of ca_cert %s", t.CAKey, t.CACert)
			}
			// A certificate never outlives its CA, so each one issued
			// now would be due at once, and again on every apply.
			if ca.NotAfter.Sub(now) < m.renew {
				return nil, fmt.Errorf("tls.ca_cert: %s expires on %s, within renew_before (%s): every certificate issued from it would be due for renewal at once; name a new CA in ca_cert and ca_key (the old one stays trusted until it expires)", t.CACert, ca.NotAfter.Format(time.DateOnly), m.renew)
			}
		}
	default:
		ca = old
		if ca != nil {
			if key, err = readKey(filepath.Join(t.Dir, CAKeyFile)); err != nil {
				return nil, fmt.Errorf("natsdeploy's CA in %s: %w (remove %s to make a new CA, which re-issues every certificate)", t.Dir, err, stored)
			}
			if !samePublic(ca.PublicKey, key.Public()) {
				return nil, fmt.Errorf("natsdeploy's CA in %s: %s is not the key of %s", t.Dir, CAKeyFile, CAFile)
			}
		}
		if ca == nil || ca.NotAfter.Sub(now) < m.renew {
			why := "none yet"
			if ca != nil {
				why = "expires " + ca.NotAfter.Format(time.DateOnly)
			}
			if ca, key, err = newCA(now); err != nil {
				return nil, fmt.Errorf("make CA: %w", err)
			}
			m.Issued = append(m.Issued, "CA: "+why)
			m.writes = append(m.writes, write{filepath.Join(t.Dir, CAKeyFile), pemKey(key), 0o600})
		}
	}
	m.ca = ca
	if old == nil || !old.Equal(ca) {
		m.writes = append(m.writes, write{stored, pemCert(ca), 0o644})
		if old != nil && now.Before(old.NotAfter) {
			// The old CA stays trusted until the new one has reached
			// every node, so no link fails to verify mid-rotation.
			prev = old
			m.writes = append(m.writes, write{prevPath, pemCert(old), 0o644})
		}
	}
	m.pool = x509.NewCertPool()
	m.pool.AddCert(ca)
	m.Trust = pemCert(ca)
	next, err := readStoredCert(filepath.Join(t.Dir, NextCAFile))
	if err != nil {
		return nil, err
	}
	if next != nil && !next.Equal(ca) {
		m.pool.AddCert(next)
		m.Trust = append(m.Trust, pemCert(next)...)
	}
	if prev != nil && now.Before(prev.NotAfter) && !prev.Equal(ca) {
		m.pool.AddCert(prev)
		m.Trust = append(m.Trust, pemCert(prev)...)
	}
	extra, err := readTrust(t.Trust, now)
	if err != nil {
		return nil, err
	}
	for _, c := range extra {
		if !c.Equal(ca) && (next == nil || !c.Equal(next)) && (prev == nil || !c.Equal(prev)) {
			m.pool.AddCert(c)
			m.Trust = append(m.Trust, pemCert(c)...)
		}
	}
	return key, nil
}

// readTrust reads the CA certificates [tls] trust names, every
// certificate of each file, refusing what could not serve as a CA: a
// certificate that is no CA, or one expired.
func readTrust(files []string, now time.Time) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("tls.trust: %w", err)
		}
		n := 0
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tls.trust: %s: certificate %d: %w", p, n+1, err)
			}
			n++
			switch {
			case !c.IsCA:
				return nil, fmt.Errorf("tls.trust: %s: certificate %d (%s) is not a CA certificate; name CA certificates only", p, n, c.Subject)
			case now.After(c.NotAfter):
				return nil, fmt.Errorf("tls.trust: %s: certificate %d (%s) expired on %s; remove it", p, n, c.Subject, c.NotAfter.Format(time.DateOnly))
			}
			out = append(out, c)
		}
		if n == 0 {
			return nil, fmt.Errorf("tls.trust: %s holds no PEM certificate", p)
		}
	}
	return out, nil
}

// stored returns the host's stored certificate and why it must be issued
// again ("" when it is fine).
func (m *Material) stored(h inventory.Host, now time.Time) (Node, string, error) {
	certPath := filepath.Join(m.dir, h.Name+".pem")
	keyPath := filepath.Join(m.dir, h.Name+"-key.pem")
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return Node{}, "none yet", nil
	}
	if err != nil {
		return Node{}, "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return Node{}, "key unreadable", nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Node{}, "does not match its key", nil
	}
	c := pair.Leaf
	if c == nil {
		if c, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return Node{}, "unreadable", nil
		}
	}
	n := Node{Cert: certPEM, Key: keyPEM, NotAfter: c.NotAfter}
	if err := c.CheckSignatureFrom(m.ca); err != nil {
		return n, "signed by another CA", nil
	}
	if left := c.NotAfter.Sub(now); left < m.renew {
		return n, fmt.Sprintf("expires %s, within renew_before", c.NotAfter.Format(time.DateOnly)), nil
	}
	dns, ips := Names(h)
	if !sameNames(c, dns, ips) {
		return n, "names changed", nil
	}
	return n, "", nil
}

// own checks an operator's certificate for h: it must match its key,
// chain to the trusted CA, carry the host's address and not be expired.
func (m *Material) own(h inventory.Host, now time.Time) (Node, error) {
	certPEM, err := os.ReadFile(h.TLSCert)
	if err != nil {
		return Node{}, fmt.Errorf("host %s: tls_cert: %w", h.Name, err)
	}
	keyPEM, err := os.ReadFile(h.TLSKey)
	if err != nil {
		return Node{}, fmt.Errorf("host %s: tls_key: %w", h.Name, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Node{}, fmt.Errorf("host %s: tls_cert %s and tls_key %s do not go together: %v", h.Name, h.TLSCert, h.TLSKey, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return Node{}, fmt.Errorf("host %s: tls_cert %s: %w", h.Name, h.TLSCert, err)
	}
	if err := Check(leaf, m.pool, h.Address, now, 0); err != nil {
		return Node{}, fmt.Errorf("host %s: tls_cert %s: %w", h.Name, h.TLSCert, err)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, u) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
			return Node{}, fmt.Errorf("host %s: tls_cert %s is not for both server and client authentication; routes verify both ends with it", h.Name, h.TLSCert)
		}
	}
	return Node{Cert: certPEM, Key: keyPEM, NotAfter: leaf.NotAfter, Own: true}, nil
}

// Check reports why c is not good for the server at addr: it must chain to
// pool, carry addr among its names and be valid from now until at least
// now+left.
func Check(c *x509.Certificate, pool *x509.CertPool, addr string, now time.Time, left time.Duration) error {
	// Verify reports either end of the validity window as "does not chain
	// to the CA"; say which, so an expired certificate is not taken for a
	// wrong CA.
	if now.After(c.NotAfter) {
		return fmt.Errorf("expired on %s", c.NotAfter.Format(time.RFC3339))
	}
	if now.Before(c.NotBefore) {
		return fmt.Errorf("not valid before %s (is this machine's clock right?)", c.NotBefore.Format(time.RFC3339))
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("does not chain to the CA: %w", err)
	}
	if err := c.VerifyHostname(addr); err != nil {
		return fmt.Errorf("not valid for %s: %w", addr, err)
	}
	if c.NotAfter.Sub(now) < left {
		return fmt.Errorf("expires %s, sooner than %s from now", c.NotAfter.Format(time.RFC3339), left)
	}
	return nil
}

// Save writes what Open issued: the directory 0700, keys 0600.
func (m *Material) Save() error {
	if m == nil || len(m.writes) == 0 {
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("TLS directory: %w", err)
	}
	if err := os.Chmod(m.dir, 0o700); err != nil {
		return fmt.Errorf("TLS directory: %w", err)
	}
	// Keys before certificates: a certificate on disk always has its key.
	ws := slices.Clone(m.writes)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].mode < ws[j].mode })
	for _, w := range ws {
		if err := atomicfile.Write(w.path, w.data, w.mode); err != nil {
			return fmt.Errorf("save %s: %w", w.path, err)
		}
	}
	m.writes = nil
	return nil
}

// Pool is the trusted CA bundle.
func (m *Material) Pool() *x509.CertPool { return m.pool }

// ClientTLS is how natsdeploy's own clients (the verifier, monitoring
// reads) trust the nodes. serverName is the name the certificate must
// carry: the address dialled, or "127.0.0.1" through a tunnel.
//
// The same serverName gives the same *tls.Config, so that HTTP clients
// keyed on it are built once per run: a new one per request would open a
// new SSH channel and TLS handshake every time, and leave the old idle.
// Callers must not change it.
func (m *Material) ClientTLS(serverName string) *tls.Config {
	if c, ok := m.clientCfgs.Load(serverName); ok {
		return c.(*tls.Config)
	}
	c, _ := m.clientCfgs.LoadOrStore(serverName, &tls.Config{RootCAs: m.pool, ServerName: serverName, MinVersion: tls.VersionTLS12})
	return c.(*tls.Config)
}

func newCA(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "natsdeploy CA " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func (m *Material) issue(h inventory.Host, caKey crypto.Signer, now time.Time) (Node, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Node{}, err
	}
	dns, ips := Names(h)
	notAfter := now.Add(m.validFor)
	if notAfter.After(m.ca.NotAfter) {
		notAfter = m.ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: h.Name},
		NotBefore:    now.Add(-time.Hour), // clocks on the hosts may lag this one
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Both: a route dials out (client) and is dialled (server) with
		// the same certificate.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca, key.Public(), caKey)
	if err != nil {
		return Node{}, err
	}
	return Node{Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Key: pemKey(key), NotAfter: notAfter}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the runtime's source does not fail
	}
	return n.Add(n, big.NewInt(1))
}

func sameNames(c *x509.Certificate, dns []string, ips []net.IP) bool {
	if len(c.DNSNames) != len(dns) || len(c.IPAddresses) != len(ips) {
		return false
	}
	for _, d := range dns {
		if !slices.Contains(c.DNSNames, d) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func samePublic(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(fmt.Sprintf("marshal a key this package made: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func readCert(p string) (*x509.Certificate, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", p)
	}
	return x509.ParseCertificate(blk.Bytes)
}

// readStoredCert reads a certificate natsdeploy keeps in the TLS
// directory: nil when there is none yet.
func readStoredCert(p string) (*x509.Certificate, error) {
	c, err := readCert(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("TLS directory: %w (restore it, or remove it to start over: a new CA re-issues every certificate)", err)
	}
	return c, nil
}

func readKey(p string) (crypto.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM key", p)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: %q is not a private key PEM block", p, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", p)
	}
	return s, nil
}

// ParsePEM returns the first certificate of a PEM bundle.
func ParsePEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(bytes.TrimSpace(b))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// StartRotation begins replacing natsdeploy's own CA: a new CA is made and
// saved as the next one, which every node and client then trusts beside
// the current one (the next apply rolls the bundle out by reload) while
// every certificate is still signed by the current one. FinishRotation
// then switches. In two steps so that clients outside natsdeploy can take
// the new bundle before any node presents a certificate only it verifies.
func StartRotation(inv *inventory.Inventory, now time.Time) error {
	t := inv.TLS
	switch {
	case !t.On():
		return errors.New("the inventory turns TLS off: there is no CA to rotate")
	case t.CACert != "":
		return fmt.Errorf("tls.ca_cert names your own CA (%s): rotate it in two applies: first add the new CA to [tls] trust, then name it in ca_cert and ca_key and move the old one to trust", t.CACert)
	}
	cur, err := readStoredCert(filepath.Join(t.Dir, CAFile))
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("no CA in %s yet: apply makes one", t.Dir)
	}
	if next, err := readStoredCert(filepath.Join(t.Dir, NextCAFile)); err != nil || next != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("a rotation is already under way (%s): finish it with rotate-ca --finish", filepath.Join(t.Dir, NextCAFile))
	}
	ca, key, err := newCA(now)
	if err != nil {
		return fmt.Errorf("make CA: %w", err)
	}
	// Key first: a next CA on disk always has its key.
	if err := atomicfile.Write(filepath.Join(t.Dir, NextCAKeyFile), pemKey(key), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(t.Dir, NextCAFile), pemCert(ca), 0o644)
}

// FinishRotation makes the next CA the current one and keeps the old one
// as the previous, still trusted until it expires: the next apply issues
// every node a certificate from the new CA, by reload. Safe to run again
// after a crash part way.
func FinishRotation(inv *inventory.Inventory) error {
	t := inv.TLS
	if !t.On() || t.CACert != "" {
		return errors.New("no rotation of natsdeploy's own CA to finish")
	}
	nextPath, nextKeyPath := filepath.Join(t.Dir, NextCAFile), filepath.Join(t.Dir, NextCAKeyFile)
	next, err := readStoredCert(nextPath)
	if err != nil {
		return err
	}
	if next == nil {
		return fmt.Errorf("no rotation under way in %s: start one with rotate-ca", t.Dir)
	}
	key, err := readKey(nextKeyPath)
	if err != nil {
		return fmt.Errorf("next CA: %w", err)
	}
	if !samePublic(next.PublicKey, key.Public()) {
		return fmt.Errorf("%s is not the key of %s", nextKeyPath, nextPath)
	}
	cur, err := readStoredCert(filepath.Join(t.Dir, CAFile))
	if err != nil {
		return err
	}
	if cur != nil && !cur.Equal(next) {
		if err := atomicfile.Write(filepath.Join(t.Dir, PreviousCAFile), pemCert(cur), 0o644); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(t.Dir, CAKeyFile), pemKey(key), 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(t.Dir, CAFile), pemCert(next), 0o644); err != nil {
		return err
	}
	for _, p := range []string{nextPath, nextKeyPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
