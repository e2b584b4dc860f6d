package verify

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// fakeProbe answers for a node that is down on both ports.
type fakeProbe struct{}

func (fakeProbe) HTTPGet(context.Context, inventory.Host, string) ([]byte, int, error) {
	return nil, 0, errors.New("connection refused")
}

func (fakeProbe) ServiceActive(context.Context, inventory.Host) (bool, string, error) {
	return false, "inactive", nil
}

// With nothing reachable, Run still returns a complete report quickly: every
// check fails with a reason, none hangs, nothing panics.
func TestRunNothingReachable(t *testing.T) {
	inv := testInventory("2.14.9", 1, 2, 3) // ports nothing listens on
	start := time.Now()
	rep := Run(context.Background(), Options{Inventory: inv, Passwords: mapPasswords{"DEV/dev-user": "x"}, Probe: fakeProbe{},
		ConnectTimeout: 500 * time.Millisecond, CheckTimeout: 3 * time.Second})
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())
	if rep.Failed() == 0 {
		t.Fatal("nothing reachable, yet no failure")
	}
	wantFailure(t, rep, "node/service", "n1", "expected nats-server.service active, saw inactive")
	wantFailure(t, rep, "node/health", "n2", "connection refused")
	wantFailure(t, rep, "permissions", "DEV/dev-user", "every node is down")
	wantFailure(t, rep, "permissions", "PROD/prod-user", "no password known for PROD/prod-user")
	wantFailure(t, rep, "jetstream", "SYS", "every node is down")
	for _, r := range rep.Results {
		if strings.Contains(r.Seen, "internal error") {
			t.Errorf("panic in %s: %s", r.Check, r.Seen)
		}
	}
}

func TestRunWithoutInventory(t *testing.T) {
	rep := Run(context.Background(), Options{})
	if rep.Failed() != 1 {
		t.Errorf("want one failure, got %+v", rep.Results)
	}
}
