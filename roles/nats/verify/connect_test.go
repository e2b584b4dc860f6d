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
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, silent
		}
	}()
	defer func() {
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()
	inv := testInventory("2.14.9", 1, 2, 3)
	v := newVerifier(Options{Inventory: inv, Passwords: mapPasswords{}, ConnectTimeout: 100 * time.Millisecond,
		NATSURL: func(inventory.Host) string { return "nats://" + ln.Addr().String() }})
	start := time.Now()
	_, err = v.connect(inv.Hosts[0], "dev-user", "x")
	if !couldNotCheck(err) || refused(err) {
		t.Fatalf("err = %v, want a could-not-check connection error", err)
	}
	if !strings.HasPrefix(err.Error(), "could not check: connect to n1 as dev-user failed 3 times") {
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
