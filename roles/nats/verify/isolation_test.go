package verify

import (
	"context"
	"maps"
	"testing"
	"time"
)

// The isolation probes run on connections shared with the rest of the
// run: a subscription left behind would keep receiving (and the server
// keep routing) every later check's messages on that subject.
func TestIsolationLeavesNoSubscriptions(t *testing.T) {
	c := startCluster(t)
	v := newVerifier(c.options())
	defer v.closeShared()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range v.inv.Accounts {
		a := &v.inv.Accounts[i]
		for _, r := range v.checkIsolation(ctx, a, i) {
			if !r.OK {
				t.Errorf("isolation %s: %s %s", a.Name, r.Status(), r.Detail())
			}
		}
	}
	v.mu.Lock()
	shared := maps.Clone(v.shared)
	v.mu.Unlock()
	if len(shared) == 0 {
		t.Fatal("no shared connection was used")
	}
	for key, sc := range shared {
		if sc.nc == nil {
			t.Errorf("%q: no connection: %v", key, sc.err)
			continue
		}
		if n := sc.nc.NumSubscriptions(); n != 0 {
			t.Errorf("%q: %d subscriptions left open", key, n)
		}
	}
	// Run promises every connection closed when it returns.
	v.closeShared()
	for key, sc := range shared {
		if sc.nc != nil && !sc.nc.IsClosed() {
			t.Errorf("%q: still open after closeShared", key)
		}
	}
}
