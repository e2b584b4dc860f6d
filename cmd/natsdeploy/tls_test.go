package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyDER(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Bad TLS material the inventory names is a bad inventory: exit 2,
// naming the host and the files, before any host is contacted.
func TestOwnCertificateProblemsAreExit2(t *testing.T) {
	inv := offlineLab(t)
	dir := filepath.Dir(inv)
	caKey := newKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	writePEM(t, filepath.Join(dir, "ca-key.pem"), "PRIVATE KEY", keyDER(t, caKey))

	hostKey := newKey(t)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"nats-1"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, hostKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "n1.pem"), "CERTIFICATE", leafDER)
	// The key of another certificate: the pair does not go together.
	writePEM(t, filepath.Join(dir, "n1-key.pem"), "PRIVATE KEY", keyDER(t, newKey(t)))

	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "[tls]\n", "[tls]\nca_cert = \"ca.pem\"\nca_key = \"ca-key.pem\"\n", 1)
	first := strings.Index(text, "[[hosts]]")
	addr := strings.Index(text[first:], "\n") + first
	text = text[:addr] + text[addr:addr+strings.Index(text[addr+1:], "\n")+1] + "\ntls_cert = \"n1.pem\"\ntls_key = \"n1-key.pem\"" + text[addr+strings.Index(text[addr+1:], "\n")+1:]
	if err := os.WriteFile(inv, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply", "status"} {
		out, code := run(cmd, inv)
		if code != 2 || !strings.Contains(out, "host nats-1") || !strings.Contains(out, "do not go together") ||
			!strings.Contains(out, "nothing was changed") || strings.Contains(out, "connection refused") {
			t.Errorf("%s with a certificate and a key that do not go together: exit %d, want 2 naming the host, before any connection:\n%s", cmd, code, out)
		}
	}
}
