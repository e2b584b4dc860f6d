package nats

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/tlsprobe"
)

// listener is one of a node's ports that TLS can guard.
type listener struct {
	check string // report check name
	port  int
	// infoFirst: the port sends INFO before the TLS handshake (clients);
	// the route port starts with the handshake, the monitoring port is
	// plain https.
	infoFirst, http bool
}

func tlsListeners(inv *inventory.Inventory) []listener {
	var ls []listener
	n, t := inv.NATS, inv.TLS
	if t.ClientsOn() {
		ls = append(ls, listener{"tls/clients", n.ClientPort, true, false})
	}
	if t.RoutesOn() && len(inv.NATSHosts()) > 1 {
		ls = append(ls, listener{"tls/routes", n.ClusterPort, false, false})
	}
	if t.MonitoringOn() {
		ls = append(ls, listener{"tls/monitoring", n.HTTPPort, false, true})
	}
	return ls
}

// verifyTLS proves, for every node and every listener the inventory puts
// TLS on, that a plaintext client is refused and that the certificate
// served chains to the CA, names the host's address and expires no sooner
// than renew_before from now. Ports are reached on the host's loopback
// through its SSH connection, so no firewall between here and the hosts
// decides the answer.
func verifyTLS(ctx context.Context, env role.Env) []report.Result {
	ls := tlsListeners(env.Inv)
	if len(ls) == 0 {
		return nil
	}
	hosts := env.Inv.NATSHosts()
	out := make([]report.Result, len(hosts)*len(ls))
	var wg sync.WaitGroup
	for i, h := range hosts {
		for j, l := range ls {
			wg.Add(1)
			go func(slot *report.Result) {
				defer wg.Done()
				start := time.Now()
				*slot = checkListener(ctx, env, h, l)
				slot.Duration = time.Since(start)
			}(&out[i*len(ls)+j])
		}
	}
	wg.Wait()
	return out
}

func checkListener(ctx context.Context, env role.Env, h inventory.Host, l listener) report.Result {
	res := report.Result{Check: l.check, Target: h.Name,
		Expected: fmt.Sprintf("port %d refuses plaintext; its certificate chains to the CA, names %s and is valid for at least %s", l.port, h.Address, env.Inv.TLS.RenewBefore)}
	skip := func(why string) report.Result {
		res.Skipped, res.Seen = true, why
		return res
	}
	rem := env.Remote(h.Name)
	if rem == nil {
		return skip("could not check: host not connected")
	}
	if env.TLS == nil {
		return skip("could not check: no TLS material")
	}
	dial := tunnelDial(rem)
	if dial == nil {
		return skip("could not check: no tunnel to the host")
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))

	conn, err := dial(cctx, addr)
	if err != nil {
		return skip("could not check: " + err.Error())
	}
	var plain bool
	var seen string
	if l.http {
		plain, seen, err = plainHTTPAccepted(cctx, conn)
	} else {
		plain, seen, err = tlsprobe.PlaintextAccepted(cctx, conn, 3*time.Second, l.infoFirst)
	}
	switch {
	case err != nil:
		return skip("could not check: " + err.Error())
	case plain:
		res.Seen = "a plaintext client was answered: " + seen
		return res
	}

	if conn, err = dial(cctx, addr); err != nil {
		return skip("could not check: " + err.Error())
	}
	chain, err := tlsprobe.Served(cctx, conn, l.infoFirst, h.Address, nil)
	if err != nil {
		res.Seen = "plaintext refused, but no certificate served: " + err.Error()
		return res
	}
	if err := pki.Check(chain[0], env.TLS.Pool(), h.Address, time.Now(), env.Inv.TLS.RenewBefore.D()); err != nil {
		res.Seen = "plaintext refused; certificate " + err.Error()
		return res
	}
	res.OK = true
	res.Seen = fmt.Sprintf("plaintext refused; certificate of %s valid until %s", chain[0].Subject.CommonName, chain[0].NotAfter.UTC().Format(time.DateOnly))
	return res
}

// plainHTTPAccepted sends a plain HTTP request to the monitoring port and
// reports whether it was served: an https-only port answers 400 "Client
// sent an HTTP request to an HTTPS server".
func plainHTTPAccepted(ctx context.Context, conn net.Conn) (bool, string, error) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, "GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false, "", err
	}
	b, err := io.ReadAll(io.LimitReader(conn, 4096))
	if len(b) == 0 && err != nil {
		return false, "closed: " + err.Error(), nil
	}
	s := string(b)
	first, _, _ := strings.Cut(s, "\r\n")
	if strings.Contains(s, string(plainTLSCheck)) {
		return false, first, nil
	}
	return strings.HasPrefix(first, "HTTP/1.") && strings.Contains(first, " 200 "), first, nil
}
