package nats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strconv"
	"sync"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
	"github.com/natsdeploy/natsdeploy/roles/nats/tlsprobe"
)

// nodeCerts are the TLS files of host: the CA bundle and its certificate,
// group-readable as the config is, and its key, readable by the service
// user alone. None when TLS is off. Without material (a render that only
// looks at what a role claims) the contents are placeholders.
func nodeCerts(inv *inventory.Inventory, host inventory.Host, tlsm *pki.Material) []desired.File {
	if !inv.TLS.On() {
		return nil
	}
	ca, cert, key := []byte("-"), []byte("-"), []byte("-")
	if tlsm != nil {
		n := tlsm.Nodes[host.Name]
		ca, cert, key = tlsm.Trust, n.Cert, n.Key
	}
	dir := inv.NATS.ConfigDir
	return []desired.File{
		{Path: path.Join(dir, CAFile), Content: ca, Mode: 0o640, Owner: "root", Group: User},
		{Path: path.Join(dir, CertFile), Content: cert, Mode: 0o640, Owner: "root", Group: User},
		{Path: path.Join(dir, KeyFile), Content: key, Mode: 0o600, Owner: User, Group: User, Sensitive: true},
	}
}

// servedWant is the fingerprint of the certificate a node must serve once
// it runs the files on disk, or "" without TLS.
func servedWant(certs []desired.File) string {
	for _, f := range certs {
		if path.Base(f.Path) == CertFile {
			c, err := pki.ParsePEM(f.Content)
			if err != nil {
				return "" // a placeholder: nothing to compare
			}
			return Fingerprint(c.Raw)
		}
	}
	return ""
}

// Fingerprint is a certificate's SHA-256, as hex.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// Mon reaches a node's monitoring port on the host's loopback, through
// its SSH connection, over http or https as the inventory says.
type Mon struct {
	Port  int
	HTTPS bool
	// TLS trusts the deployment's CA; nil without TLS material, when an
	// https port is read without checking its certificate (see Of).
	TLS *tls.Config
	// Inv is kept for the served-certificate probe.
	Inv *inventory.Inventory
}

// Monitor is the Mon for inv.
func Monitor(inv *inventory.Inventory, tlsm *pki.Material) Mon {
	m := Mon{Port: inv.NATS.HTTPPort, HTTPS: inv.TLS.MonitoringOn(), Inv: inv}
	if tlsm != nil {
		m.TLS = tlsm.ClientTLS("127.0.0.1")
	}
	return m
}

// plainTLSCheck is what Go's TLS server answers a plain HTTP request.
var plainTLSCheck = []byte("HTTP request to an HTTPS server")

// Of returns the Get for one host. While a change of scheme rolls out,
// nodes not yet restarted still serve the old one, so a request in the
// scheme the inventory asks for is tried again in the other when the node
// plainly speaks that one: gates and status must see every node. verify
// checks the scheme strictly. Through the SSH tunnel to the host's own
// loopback, whose end the host key already proves, an https port is read
// without its certificate checked when there is no CA at hand (status
// before any apply, turning TLS off).
func (m Mon) Of(rem desired.Remote) monitor.Get {
	plain := rem.HTTPClient()
	secure := httpsClient(plain, m.TLS)
	hp := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
	httpGet := func(ctx context.Context, p string) ([]byte, int, error) {
		return health.Get(ctx, plain, "http://"+hp+p)
	}
	httpsGet := func(ctx context.Context, p string) ([]byte, int, error) {
		return health.Get(ctx, secure, "https://"+hp+p)
	}
	return func(ctx context.Context, p string) ([]byte, int, error) {
		if m.HTTPS {
			body, code, err := httpsGet(ctx, p)
			var rh tls.RecordHeaderError
			if err != nil && errors.As(err, &rh) {
				return httpGet(ctx, p)
			}
			return body, code, err
		}
		body, code, err := httpGet(ctx, p)
		if err == nil && code == http.StatusBadRequest && bytes.Contains(body, plainTLSCheck) {
			return httpsGet(ctx, p)
		}
		return body, code, err
	}
}

type clientKey struct {
	plain *http.Client
	cfg   *tls.Config
}

// httpsClients are derived from each connection's HTTP client once, so
// gates polling every few hundred milliseconds reuse their TLS sessions.
var httpsClients sync.Map // clientKey -> *http.Client

// unverified reads an https port with no CA at hand (see Mon.Of); one
// value, so the client cache below keys on it.
var unverified = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // see Mon.Of

func httpsClient(plain *http.Client, cfg *tls.Config) *http.Client {
	if cfg == nil {
		cfg = unverified
	}
	key := clientKey{plain, cfg}
	if c, ok := httpsClients.Load(key); ok {
		return c.(*http.Client)
	}
	tr, ok := plain.Transport.(*http.Transport)
	if !ok {
		return plain
	}
	t := tr.Clone()
	t.TLSClientConfig = cfg.Clone()
	c := &http.Client{Timeout: plain.Timeout, Transport: t}
	actual, _ := httpsClients.LoadOrStore(key, c)
	return actual.(*http.Client)
}

// tunnelDial opens a TCP connection from the host through its SSH
// connection, as its HTTP client does; nil when the remote has no such
// client (a test fake).
func tunnelDial(rem desired.Remote) func(ctx context.Context, addr string) (net.Conn, error) {
	tr, ok := rem.HTTPClient().Transport.(*http.Transport)
	if !ok || tr.DialContext == nil {
		return nil
	}
	return func(ctx context.Context, addr string) (net.Conn, error) { return tr.DialContext(ctx, "tcp", addr) }
}

// ServedFingerprint is the fingerprint of the certificate a node serves on
// the first of its TLS listeners (monitoring, clients, routes), read on
// the host's loopback. "" when TLS is off.
func (m Mon) ServedFingerprint(ctx context.Context, rem desired.Remote) (string, error) {
	t := m.Inv.TLS
	n := m.Inv.NATS
	var port int
	natsProto := true
	switch {
	case t.MonitoringOn():
		port, natsProto = n.HTTPPort, false
	case t.ClientsOn():
		port = n.ClientPort
	case t.RoutesOn():
		port, natsProto = n.ClusterPort, false
	default:
		return "", nil
	}
	dial := tunnelDial(rem)
	if dial == nil {
		return "", errors.New("no tunnel to the host")
	}
	conn, err := dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", err
	}
	chain, err := tlsprobe.Served(ctx, conn, natsProto, "127.0.0.1", nil)
	if err != nil {
		return "", fmt.Errorf("port %d: %w", port, err)
	}
	return Fingerprint(chain[0].Raw), nil
}
