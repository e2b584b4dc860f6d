// Package tlsprobe looks at what a nats-server listener offers: the INFO
// it sends first on the client and route ports, whether it takes a
// plaintext client, and the certificate it serves. The verifier uses it to
// prove TLS is required where the inventory says so, and apply to see that
// a reload put a renewed certificate in service.
package tlsprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Info is the part of a server's INFO line this package reads.
type Info struct {
	TLSRequired  bool `json:"tls_required"`
	TLSAvailable bool `json:"tls_available"`
	AuthRequired bool `json:"auth_required"`
}

// ReadInfo reads the INFO line a client or route port sends on connect.
func ReadInfo(ctx context.Context, conn net.Conn) (Info, *bufio.Reader, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rd := bufio.NewReaderSize(conn, 4096)
	line, err := rd.ReadString('\n')
	if err != nil {
		return Info{}, rd, fmt.Errorf("read INFO: %w", err)
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		return Info{}, rd, fmt.Errorf("expected INFO, got %q", short(line))
	}
	var in Info
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		return Info{}, rd, fmt.Errorf("decode INFO: %w", err)
	}
	return in, rd, nil
}

// PlaintextAccepted sends a plaintext CONNECT and PING and reports
// whether the server answered them (PONG, or an -ERR about the login,
// which means it read the plaintext): a server that requires TLS reads
// those bytes as a broken handshake and closes the connection. The client
// port sends its INFO first (infoFirst); a route port with TLS expects the
// handshake first, so anything in plaintext it answers means it took
// plaintext.
func PlaintextAccepted(ctx context.Context, conn net.Conn, wait time.Duration, infoFirst bool) (bool, string, error) {
	defer conn.Close()
	rd := bufio.NewReaderSize(conn, 4096)
	if infoFirst {
		var err error
		if _, rd, err = ReadInfo(ctx, conn); err != nil {
			return false, "", err
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"natsdeploy-verify\"}\r\nPING\r\n")); err != nil {
		return false, "write refused: " + err.Error(), nil
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	line, err := rd.ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "PONG"), strings.HasPrefix(line, "-ERR 'Authorization Violation'"), strings.HasPrefix(line, "PING"), strings.HasPrefix(line, "INFO "):
		return true, line, nil
	case err != nil:
		return false, "closed: " + err.Error(), nil
	default:
		return false, short(line), nil
	}
}

// Served returns the certificate chain the listener on conn serves. With
// natsProto the server's INFO comes first, as on nats-server's client port
// (unless handshake_first is set); its route port with TLS starts with
// the handshake. The chain is returned
// unverified, for the caller to judge; cert, when not nil, is offered as
// the client certificate a route port demands.
func Served(ctx context.Context, conn net.Conn, natsProto bool, serverName string, cert *tls.Certificate) ([]*x509.Certificate, error) {
	defer conn.Close()
	if natsProto {
		if _, _, err := ReadInfo(ctx, conn); err != nil {
			return nil, err
		}
	}
	var chain []*x509.Certificate
	cfg := &tls.Config{
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
		// Verified by the caller against the CA it expects: here only
		// captured, so that a wrong certificate is reported as such and
		// not as a failed handshake.
		InsecureSkipVerify: true, //nolint:gosec // verified by the caller
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				chain = append(chain, c)
			}
			return nil
		},
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tc := tls.Client(conn, cfg)
	err := tc.HandshakeContext(ctx)
	if len(chain) > 0 {
		// A route port may still refuse us after sending its certificate;
		// the certificate is what was asked for.
		return chain, nil
	}
	if err == nil {
		err = errors.New("no certificate served")
	}
	return nil, fmt.Errorf("TLS handshake: %w", err)
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
