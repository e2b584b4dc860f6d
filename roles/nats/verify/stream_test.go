package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// readBack fetches the message through one node and compares it: the
// right content is nil, other content is an error at once, and a stream
// that is not there is retried until the context ends.
func TestReadBack(t *testing.T) {
	c := startCluster(t)
	v := newVerifier(c.options())
	defer v.closeShared()
	admin := &c.inv.Accounts[1]
	user := &admin.Users[0]
	nc, err := v.connectUser(c.inv.Hosts[0], admin, user)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const name = "READBACK_TEST"
	// Right after the start the meta leader may still call a peer offline
	// for placement (checkStream waits for that too): try until it does not.
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{"readback.test"}, Replicas: 3, AllowDirect: true}
	_, err = js.CreateStream(ctx, cfg)
	for err != nil && strings.Contains(err.Error(), "peer offline") && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		_, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "readback.test", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stream, want string
		wantErr            string // "" for none
	}{
		{"same content", name, "a", ""},
		{"other content", name, "b", `message 1 holds "a", not "b"`},
		{"no such stream", "READBACK_NONE", "a", "gave up: context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			d := v.dial(c.inv.Hosts[2], admin, user)
			defer d.close()
			err := readBack(rctx, d, tc.stream, ack.Sequence, []byte(tc.want))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
