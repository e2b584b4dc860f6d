package verify

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// streamUser picks who creates the verification stream: the first user,
// in inventory order, of an account with JetStream whose rules allow the
// JetStream API calls the check makes and publishing on some subject.
// It returns the subject to capture, or why no user qualifies.
func (v *verifier) streamUser(name string) (*inventory.Account, *inventory.User, string, string) {
	api := []string{
		"$JS.API.STREAM.CREATE." + name,
		"$JS.API.STREAM.INFO." + name,
		"$JS.API.STREAM.DELETE." + name,
		"$JS.API.DIRECT.GET." + name,
	}
	inbox := "_INBOX.x.*" // nats.go's request/reply subscription
	tok := v.tokens("s")
	anyJS := false
	for i := range v.inv.Accounts {
		a := &v.inv.Accounts[i]
		if a.JetStream == nil {
			continue
		}
		anyJS = true
	users:
		for k := range a.Users {
			u := &a.Users[k]
			p := u.Permissions()
			for _, s := range api {
				if !Allowed(p, Pub, s) {
					continue users
				}
			}
			if !Allowed(p, Sub, inbox) {
				continue
			}
			if s := "natsdeploy.verify." + tok(1); Allowed(p, Pub, s) {
				return a, u, s, ""
			}
			samples, _ := AllowedSamples(p, Pub, tok)
			for _, s := range samples {
				if !strings.HasPrefix(s.Subject, "$") && !strings.HasPrefix(s.Subject, "_INBOX.") {
					return a, u, s.Subject, ""
				}
			}
		}
	}
	if !anyJS {
		return nil, nil, "", "no account has JetStream"
	}
	return nil, nil, "", "no user of a JetStream account may call $JS.API.STREAM.*, $JS.API.DIRECT.GET.* and publish on a plain subject"
}

// checkStream creates a stream replicated on every node (R3 on the usual
// three; at most 5, the JetStream maximum) through the first node that
// accepts a connection, writes one message, reads it back through each
// other node alone, and deletes the stream again, also when a step fails.
// placementWait bounds how long a placement refused for a peer thought
// offline is tried again.
const placementWait = 5 * time.Second

func (v *verifier) checkStream(ctx context.Context) (out []Result) {
	const check = "cluster/stream"
	name := "NATSDEPLOY_VERIFY_" + strings.ToUpper(v.run)
	acc, user, subject, why := v.streamUser(name)
	if acc == nil {
		return []Result{skip(check, "cluster", why)}
	}
	target := label(acc, user)
	replicas := min(len(v.hosts), 5)

	// Every node's login starts now, beside the writer's: the readers'
	// logins (a bcrypt comparison each) then happen while the stream is
	// created and replicated, not after it.
	up, note := v.upHosts()
	dials := make([]*dialing, len(up))
	for i, h := range up {
		dials[i] = v.dial(h, acc, user)
	}
	defer func() {
		for _, d := range dials {
			d.close()
		}
	}()
	var nc *nats.Conn
	var via inventory.Host
	errs := []string{"every node is down"}
	for i, h := range up {
		if i == 0 {
			errs = nil
		}
		c, err := dials[i].wait()
		if err == nil {
			nc, via = c, h
			break
		}
		errs = append(errs, err.Error())
	}
	if nc == nil {
		return []Result{fail(check, target, "a connection to any node", strings.Join(errs, "; "))}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return []Result{fail(check, target, "a JetStream client", err.Error())}
	}

	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "natsdeploy verify; deleted when the check ends",
		Subjects:    []string{subject},
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
		AllowDirect: true, // lets each replica answer reads itself
		MaxMsgs:     10,
		MaxBytes:    1 << 20,
	}
	_, err = js.CreateStream(ctx, cfg)
	// Right after nodes start or reload, the meta leader may not have
	// heard from a peer yet and calls it offline for placement, though
	// every node is healthy. That passes within seconds; anything else,
	// or the same answer for longer, is the verdict.
	for deadline := time.Now().Add(placementWait); err != nil && strings.Contains(err.Error(), "peer offline") && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
		_, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		return []Result{fail(check, target, fmt.Sprintf("R%d stream %s created via %s", replicas, name, via.Name), err.Error())}
	}
	defer func() {
		// The run's context may be spent; deleting is still owed.
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(dctx, name); err != nil {
			out = append(out, fail("cluster/cleanup", target, "stream "+name+" deleted",
				fmt.Sprintf("%v (remove it with: nats stream rm %s)", err, name)))
		}
	}()

	payload := []byte("natsdeploy verify " + v.run)
	ack, err := js.Publish(ctx, subject, payload)
	if err != nil {
		return []Result{fail(check, target, "message stored in "+name+" via "+via.Name, err.Error())}
	}

	// All replicas current, as the stream leader sees them.
	info, err := v.waitReplicas(ctx, js, name, replicas)
	if err != nil {
		return []Result{fail(check, target, fmt.Sprintf("%d current replicas of %s", replicas, name), err.Error())}
	}

	// Every node at once: each read is its own connection to one node, so
	// none can answer for another, and one after another they outlast the
	// check's time on a big or busy cluster (9 nodes on the bench's two
	// loaded cores did).
	readErrs := make([]error, len(up))
	var wg sync.WaitGroup
	for i, h := range up {
		if h.Name == via.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			readErrs[i] = readBack(ctx, dials[i], name, ack.Sequence, payload)
		}()
	}
	wg.Wait()
	var read, unread []string
	for i, h := range up {
		if h.Name == via.Name {
			continue
		}
		err := readErrs[i]
		if couldNotCheck(err) {
			unread = append(unread, err.Error())
			continue
		}
		if err != nil {
			out = append(out, fail(check, target, fmt.Sprintf("message %d of %s read via %s", ack.Sequence, name, h.Name), err.Error()))
			continue
		}
		read = append(read, h.Name)
	}
	if len(out) > 0 {
		return out
	}
	if len(unread) > 0 {
		note += " (" + strings.Join(unread, "; ") + ")"
	}
	if len(read) == 0 && len(unread) > 0 {
		return []Result{skip(check, target, fmt.Sprintf("R%d stream written via %s (leader %s), but %s", replicas, via.Name, info.Cluster.Leader, strings.Join(unread, "; ")))}
	}
	return []Result{pass(check, target, fmt.Sprintf("R%d stream written via %s (leader %s), read back via %s%s, deleted",
		replicas, via.Name, info.Cluster.Leader, list(read), note))}
}

// waitReplicas polls stream info until every follower is current. A
// healthy cluster gets there in milliseconds; 8s covers a slow disk without
// letting a dead follower hold the whole run to the check timeout.
func (v *verifier) waitReplicas(ctx context.Context, js jetstream.JetStream, name string, replicas int) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	var last string
	for {
		s, err := js.Stream(ctx, name)
		if err == nil {
			info := s.CachedInfo()
			current := 0
			var peers []string
			if info.Cluster != nil {
				for _, r := range info.Cluster.Replicas {
					if r.Current {
						current++
					}
					peers = append(peers, fmt.Sprintf("%s current=%v", r.Name, r.Current))
				}
				if info.Cluster.Leader != "" && current == replicas-1 {
					return info, nil
				}
				last = fmt.Sprintf("leader %q, followers: %s", info.Cluster.Leader, list(peers))
			} else {
				last = "no cluster info"
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s (gave up: %w)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readBack fetches the message with a direct get through one node's own
// connection, retrying until the replica there has it or the check times
// out.
func readBack(ctx context.Context, d *dialing, name string, seq uint64, want []byte) error {
	nc, err := d.wait()
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var m *jetstream.RawStreamMsg
		s, err := js.Stream(rctx, name)
		if err == nil {
			m, err = s.GetMsg(rctx, seq)
		}
		cancel()
		switch {
		case err == nil && bytes.Equal(m.Data, want):
			return nil
		case err == nil:
			// Wrong content is not lag; waiting will not fix it.
			return fmt.Errorf("message %d holds %q, not %q", seq, m.Data, want)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialing is a login to one node under way.
type dialing struct {
	done chan struct{}
	nc   *nats.Conn
	err  error
}

func (v *verifier) dial(h inventory.Host, a *inventory.Account, u *inventory.User) *dialing {
	d := &dialing{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.nc, d.err = v.connectUser(h, a, u)
	}()
	return d
}

// wait returns the login's connection once it is made, or why not.
func (d *dialing) wait() (*nats.Conn, error) {
	<-d.done
	return d.nc, d.err
}

// close waits for the login, so that no connection outlives the check.
func (d *dialing) close() {
	if nc, _ := d.wait(); nc != nil {
		nc.Close()
	}
}
