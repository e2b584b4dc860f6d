//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

// loadStream is written continuously while the cluster is operated on.
const loadStream = "E2E_LOAD"

// publisher writes numbered messages to an R3 file stream, one at a time,
// each with its number as the message ID, retrying one until it is
// acknowledged before the next: so every acknowledged number must be in
// the stream exactly once, in order, whatever happened to the cluster.
type publisher struct {
	js      jetstream.JetStream
	quit    chan struct{}
	done    chan error
	mu      sync.Mutex
	acked   uint64        // numbers 1..acked are acknowledged
	retries int           // publishes that failed and were sent again
	longest time.Duration // the longest wait between two acknowledgements
	errs    map[string]int
}

func startPublisher(t *testing.T, js jetstream.JetStream) *publisher {
	p := &publisher{js: js, quit: make(chan struct{}), done: make(chan error, 1), errs: map[string]int{}}
	go func() { p.done <- p.run() }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *publisher) run() error {
	last := time.Now()
	for n := uint64(1); ; n++ {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := p.js.Publish(ctx, "e2e.load.msg", []byte(strconv.FormatUint(n, 10)), jetstream.WithMsgID(strconv.FormatUint(n, 10)))
			cancel()
			if err == nil {
				break
			}
			p.mu.Lock()
			p.retries++
			p.errs[shortErr(err)]++
			p.mu.Unlock()
			// A message not yet acknowledged is never given up: the
			// test stops only between two messages.
			if time.Since(last) > 3*time.Minute {
				return fmt.Errorf("message %d not acknowledged for %s: %v", n, time.Since(last).Round(time.Second), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		now := time.Now()
		p.mu.Lock()
		p.acked = n
		if gap := now.Sub(last); gap > p.longest {
			p.longest = gap
		}
		p.mu.Unlock()
		last = now
		select {
		case <-p.quit:
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\n"); i > 0 {
		s = s[:i]
	}
	return s
}

// stop ends publishing after the message in flight is acknowledged.
func (p *publisher) stop() error {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(4 * time.Minute):
		return errors.New("publisher did not stop")
	}
}

func (p *publisher) status() (acked uint64, retries int, longest time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.retries, p.longest
}

// progress waits until at least n more messages are acknowledged: each
// step of the test must be survived by a publisher that keeps going.
func (p *publisher) progress(t *testing.T, n uint64, what string) {
	t.Helper()
	from, _, _ := p.status()
	eventually(t, 2*time.Minute, fmt.Sprintf("%d messages acknowledged after %s", n, what), func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("publisher stopped: %v", err)
		default:
		}
		if got, _, _ := p.status(); got < from+n {
			return fmt.Errorf("%d acknowledged since", got-from)
		}
		return nil
	})
}

// rotateRoutePassword deletes the route password from the run's secrets
// file, as the file's own header tells operators to: the next apply
// generates a new one.
func rotateRoutePassword(t *testing.T) {
	t.Helper()
	p := filepath.Join(workDir, "lab.secrets.toml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\[route\]\n(?:[^\[\n].*\n)*`)
	if !re.Match(b) {
		t.Fatalf("no [route] entry in %s", p)
	}
	if err := os.WriteFile(p, re.ReplaceAll(b, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func nodeVersions(t *testing.T, hosts []lab.Host) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range hosts {
		var v struct {
			Version string `json:"version"`
		}
		monitor(t, h, "/varz", &v)
		out[h.Name] = v.Version
	}
	return out
}

// TestZeroLossUnderLoad operates on the cluster the way its operators do,
// while a client publishes with acknowledgements, and then proves that
// every acknowledged message is in the stream exactly once, in order, on
// every replica: an upgrade between two real releases, an on-demand
// rolling restart, a node cut off from the network and back, a route
// password rotation, and a downgrade.
func TestZeroLossUnderLoad(t *testing.T) {
	hosts := lab.Hosts()
	older, newer := lab.NATSServerVersions[0], lab.NATSServerVersions[1]
	base := writeInventory(t, "load-old")
	upgraded := writeInventory(t, "load-new", replace(`version = "`+older+`"`, `version = "`+newer+`"`))
	mustNatsdeploy(t, "apply", "--no-verify", base)
	checkCluster(t, hosts)

	_, sec := loadInventory(t, base)
	var urls []string
	// The node the test cuts off first, and no shuffling: the client sits
	// on the node that vanishes, the harder case, every run.
	for _, i := range []int{2, 0, 1} {
		urls = append(urls, "nats://"+hosts[i].Address+":4222")
	}
	nc, err := nats.Connect(strings.Join(urls, ","), tlsOpt(), nats.UserInfo("admin", sec.Password("ADMIN", "admin")),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.Timeout(5*time.Second),
		// A node cut off the network drops packets without a reset: only
		// missed PINGs tell the client its server is gone. nats.go's
		// default (every 2 minutes) would keep it publishing into the void
		// that long; a client that wants to ride out a partition pings
		// often, and so does this one.
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3), nats.DontRandomize())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, loadStream)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: loadStream, Subjects: []string{"e2e.load.>"},
		Replicas: 3, Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}

	pub := startPublisher(t, js)
	pub.progress(t, 50, "the start")

	t.Run("upgrade", func(t *testing.T) {
		mustNatsdeploy(t, "apply", "--no-verify", upgraded)
		checkCluster(t, hosts)
		for name, v := range nodeVersions(t, hosts) {
			if v != newer {
				t.Errorf("%s runs %s after the upgrade, want %s", name, v, newer)
			}
		}
		pub.progress(t, 50, "the upgrade")
	})

	t.Run("rolling restart", func(t *testing.T) {
		before := pids(t)
		mustNatsdeploy(t, "restart", upgraded)
		checkCluster(t, hosts)
		after := pids(t)
		for name, pid := range before {
			if after[name] == pid {
				t.Errorf("%s kept PID %d through restart", name, pid)
			}
		}
		pub.progress(t, 50, "the rolling restart")
	})

	t.Run("node cut off and back", func(t *testing.T) {
		cut := hosts[2]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.Disconnect(ctx, cut.Container); err != nil {
			t.Fatal(err)
		}
		reconnected := false
		defer func() {
			if !reconnected {
				_ = lab.Connect(context.Background(), cut.Container)
			}
		}()
		// The two others keep a quorum: publishing goes on.
		pub.progress(t, 100, "cutting off "+cut.Name)
		if err := lab.Connect(ctx, cut.Container); err != nil {
			t.Fatal(err)
		}
		reconnected = true
		checkCluster(t, hosts)
		pub.progress(t, 50, "reconnecting "+cut.Name)
	})

	t.Run("route password rotation", func(t *testing.T) {
		rotateRoutePassword(t)
		before := pids(t)
		out := mustNatsdeploy(t, "apply", "--no-verify", upgraded)
		if !strings.Contains(out, "settled after the reload") {
			t.Errorf("apply did not wait for the cluster to settle after the reload:\n%s", out)
		}
		// Routes whole and a meta leader right when apply returns: no
		// waiting here, that is apply's promise.
		checkClusterNow(t, hosts)
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) && !strings.Contains(out, "to make its links afresh") {
			t.Errorf("PIDs changed without a repair restart: %v -> %v", before, after)
		}
		pub.progress(t, 50, "the rotation")
	})

	if err := pub.stop(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	acked, retries, longest := pub.status()
	t.Logf("zero-loss: %d messages acknowledged, %d publishes retried, longest wait between acknowledgements %s; errors seen: %v",
		acked, retries, longest.Round(time.Millisecond), pub.errs)
	checkExactlyOnce(t, js, acked)
	checkReplicaStates(t, hosts, loadStream, acked)

	t.Run("downgrade", func(t *testing.T) {
		mustNatsdeploy(t, "apply", "--no-verify", base)
		checkCluster(t, hosts)
		for name, v := range nodeVersions(t, hosts) {
			if v != older {
				t.Errorf("%s runs %s after the downgrade, want %s", name, v, older)
			}
		}
		checkExactlyOnce(t, js, acked)
		checkReplicaStates(t, hosts, loadStream, acked)
	})
}

// checkClusterNow is checkCluster without the wait: one look.
func checkClusterNow(t *testing.T, hosts []lab.Host) {
	t.Helper()
	leaders := map[string]bool{}
	for _, h := range hosts {
		peers, leader, _ := clusterView(t, h)
		if len(peers) != len(hosts)-1 {
			t.Errorf("right after apply, %s routes to %v, want the %d other nodes", h.Name, peers, len(hosts)-1)
		}
		leaders[leader] = true
	}
	if len(leaders) != 1 || leaders[""] {
		t.Errorf("right after apply, meta leaders seen: %v", leaders)
	}
}

// checkExactlyOnce reads the whole stream: message i carries number i, for
// every i up to the last acknowledged one, and nothing else. A read that
// fails for want of a stream leader (right after the cluster was
// operated on) is tried again from the start; a wrong message is not.
func checkExactlyOnce(t *testing.T, js jetstream.JetStream, acked uint64) {
	t.Helper()
	var wrong error
	eventually(t, time.Minute, loadStream+" read in full", func() error {
		var err error
		wrong, err = readNumbered(js, acked)
		return err
	})
	if wrong != nil {
		t.Error(wrong)
	}
}

// readNumbered returns (a finding, nil) once the stream was read, or
// (nil, a read error).
func readNumbered(js jetstream.JetStream, acked uint64) (error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, loadStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs != acked || info.State.FirstSeq != 1 || info.State.LastSeq != acked {
		return fmt.Errorf("stream holds %d messages, seq %d..%d; want exactly the %d acknowledged, 1..%d",
			info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, acked, acked), nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	want := uint64(1)
	for want <= info.State.LastSeq {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("fetch at message %d: %w", want, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			n, _ := strconv.ParseUint(string(m.Data()), 10, 64)
			if n != want {
				return fmt.Errorf("message at position %d carries number %d, want %d (a loss, a duplicate or a reorder)", want, n, want), nil
			}
			want++
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("fetch at message %d: %w", want, err)
		}
		if got == 0 {
			return nil, fmt.Errorf("fetch at message %d of %d: nothing", want, info.State.LastSeq)
		}
	}
	return nil, nil
}

// checkReplicaStates reads each node's own copy of the stream from its own
// monitoring port: every replica holds the same messages (count, sequence
// range and bytes) as the one read in full.
func checkReplicaStates(t *testing.T, hosts []lab.Host, name string, want uint64) {
	t.Helper()
	var bytes []uint64
	for _, h := range hosts {
		eventually(t, time.Minute, h.Name+"'s replica of "+name+" current", func() error {
			var jz struct {
				Accounts []struct {
					Streams []struct {
						Name  string `json:"name"`
						State struct {
							Msgs     uint64 `json:"messages"`
							Bytes    uint64 `json:"bytes"`
							FirstSeq uint64 `json:"first_seq"`
							LastSeq  uint64 `json:"last_seq"`
						} `json:"state"`
					} `json:"stream_detail"`
				} `json:"account_details"`
			}
			monitor(t, h, "/jsz?acc=ADMIN&streams=true", &jz)
			for _, a := range jz.Accounts {
				for _, s := range a.Streams {
					if s.Name != name {
						continue
					}
					st := s.State
					if st.Msgs != want || st.FirstSeq != 1 || st.LastSeq != want {
						return fmt.Errorf("its copy has %d messages, seq %d..%d; want %d, 1..%d", st.Msgs, st.FirstSeq, st.LastSeq, want, want)
					}
					bytes = append(bytes, st.Bytes)
					return nil
				}
			}
			return fmt.Errorf("no copy of %s on %s", name, h.Name)
		})
	}
	for i := range bytes {
		if bytes[i] != bytes[0] {
			t.Errorf("replicas differ in size: %v bytes", bytes)
			break
		}
	}
}
