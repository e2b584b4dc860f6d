package verify

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// A node that accepts the connection but never completes the handshake (a
// server too busy to answer) is a connection problem: tried a bounded
// number of times, then "could not check", never a refused login.
func TestConnectSlowServerIsCouldNotCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 10)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, silent
		}
	}()
	// The accepting goroutine must be gone before accepted is closed.
	defer func() {
		ln.Close()
		<-stopped
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()
	inv := testInventory("2.14.9", 1, 2, 3)
	v := newVerifier(Options{Inventory: inv, Passwords: mapPasswords{}, ConnectTimeout: 100 * time.Millisecond, ConnectBackoff: 10 * time.Millisecond,
		NATSURL: func(inventory.Host) string { return "nats://" + ln.Addr().String() }})
	start := time.Now()
	_, err = v.connect(inv.Hosts[0], "dev-user", "x")
	if !couldNotCheck(err) || refused(err) {
		t.Fatalf("err = %v, want a could-not-check connection error", err)
	}
	if !strings.HasPrefix(err.Error(), "could not check: connect to n1 as dev-user failed 5 times") {
		t.Errorf("message %q", err)
	}
	if n := len(accepted); n != connectTries {
		t.Errorf("%d connection attempts, want %d", n, connectTries)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

func TestRefusedIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("nats: Authorization Violation"), true},
		{fmt.Errorf("nats: expected 'PONG', got 'PING'"), false},
		{fmt.Errorf("nats: timeout"), false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("refused(%v) = %v", tc.err, got)
		}
	}
}

// A node whose client port accepts connections but never completes a
// login (CPUs saturated) must cost the report no failure: every check that
// needed that node says "could not check" and proves what it can on the
// others; nothing is reported as a refused permission or a leak.
func TestVerifySlowNodeIsNeverAFailure(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // open, silent
		}
	}()
	opts.NATSURL = func(h inventory.Host) string {
		if h.Name == "n3" {
			return "nats://" + ln.Addr().String()
		}
		return fmt.Sprintf("nats://%s:%d", h.Address, opts.Inventory.NATS.ClientPort)
	}
	opts.ConnectTimeout, opts.ConnectBackoff = 200*time.Millisecond, 10*time.Millisecond

	rep := runVerify(t, opts)
	skipped := 0
	for _, r := range rep.Results {
		if !r.OK && !r.Skipped && strings.Contains(r.Detail(), "n3") {
			t.Errorf("a slow n3 is reported as a failure: %s %s: %s", r.Check, r.Target, r.Detail())
		}
		if strings.Contains(r.Detail(), "could not check: connect to n3") {
			skipped++
		}
	}
	if skipped == 0 {
		t.Error("no row says it could not check n3: the slow node went unnoticed")
	}
	// What could be proven on n1 and n2 passes, naming n3 as not checked;
	// a check left with nothing proven is a skip. Pairs and the stream's
	// node are picked in inventory order, so the rows are always these.
	for _, w := range []struct{ key, status, part string }{
		{"cluster/stream ADMIN/admin", "ok", "read back via n2 (could not check: connect to n3 as admin failed 5 times"},
		{"isolation ADMIN", "ok", "none in SYS, PROD, SERVICES (could not check DEV (could not check: connect to n3 as "},
		{"isolation DEV", "skip", "could not check: ADMIN (could not check: connect to n3 as dev-user failed 5 times"},
	} {
		rs := findResults(rep, strings.Fields(w.key)[0], strings.Fields(w.key)[1])
		if len(rs) != 1 || rs[0].Status() != w.status || !strings.Contains(rs[0].Seen, w.part) {
			t.Errorf("%s: want one %s row with %q, got %+v", w.key, w.status, w.part, rs)
		}
	}
}
