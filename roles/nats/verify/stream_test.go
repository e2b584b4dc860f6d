package verify

import (
	"context"
	"strings"
	"testing"
	"time"
)

// With one node in the inventory there is no other node to read the
// message back through: the check still passes on the write, reading
// back via none, rather than skipping as if a node could not be checked.
func TestStreamOneNode(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	inv := *c.inv
	inv.Hosts = inv.Hosts[:1]
	opts.Inventory = &inv
	v := newVerifier(opts)
	defer v.closeShared()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := v.checkStream(ctx)
	if len(rs) != 1 || !rs[0].OK || !strings.HasPrefix(rs[0].Seen, "R1 stream written via n1 (leader n") ||
		!strings.HasSuffix(rs[0].Seen, "), read back via none, deleted") {
		t.Errorf("rows %+v", rs)
	}
}
