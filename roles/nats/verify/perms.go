package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// tenantsExcept lists every user but one, as sources of subjects that user
// must be refused.
func (v *verifier) tenantsExcept(a *inventory.Account, u *inventory.User) []Tenant {
	var out []Tenant
	for i := range v.inv.Accounts {
		oa := &v.inv.Accounts[i]
		for k := range oa.Users {
			ou := &oa.Users[k]
			if oa.Name == a.Name && ou.Name == u.Name {
				continue
			}
			out = append(out, Tenant{Label: label(oa, ou), Perms: ou.Permissions()})
		}
	}
	return out
}

// errSubjectRefused says the server refused a publish or subscription.
var errSubjectRefused = errors.New("refused")

// permProbe runs permission probes on one connection, one subject at a
// time. Each probe ends with a flush, after which nats.go has read any
// -ERR the server sent for it; the refusal names the subject, so
// LastError identifies it even though the error stays set afterwards.
type permProbe struct {
	ctx   context.Context
	nc    *nats.Conn
	nonce string
}

func (pp *permProbe) refusedNow(kind, subject string) bool {
	err := pp.nc.LastError()
	return err != nil && errors.Is(err, nats.ErrPermissionViolation) &&
		strings.Contains(err.Error(), fmt.Sprintf("%s to %q", kind, subject))
}

// publish returns nil if the server accepted the message,
// errSubjectRefused if it refused it, or another error if the connection
// failed and the answer is unknown.
func (pp *permProbe) publish(subject string) error {
	if err := pp.nc.Publish(subject, []byte(pp.nonce)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := flush(pp.ctx, pp.nc); err != nil {
		return err
	}
	if pp.refusedNow("Publish", subject) {
		return errSubjectRefused
	}
	return nil
}

// subscribe returns nil if the subscription was accepted and, when
// roundTrip is set, a message this connection publishes on it arrives.
func (pp *permProbe) subscribe(subject string, roundTrip bool) error {
	sub, err := pp.nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	if err := flush(pp.ctx, pp.nc); err != nil {
		return err
	}
	if pp.refusedNow("Subscription", subject) {
		return errSubjectRefused
	}
	if !roundTrip {
		return nil
	}
	if err := pp.nc.Publish(subject, []byte(pp.nonce)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		switch {
		case errors.Is(err, nats.ErrPermissionViolation):
			return errSubjectRefused
		case errors.Is(err, nats.ErrTimeout):
		case err != nil:
			return fmt.Errorf("receive: %w", err)
		case string(m.Data) == pp.nonce:
			return nil
		}
	}
	return fmt.Errorf("subscription accepted, but a message published on it did not arrive within 2s (last error: %v)", pp.nc.LastError())
}

// requestReply answers a request on subject from a subscription of the same
// user: the reply goes to an _INBOX subject the user has no publish right
// on, so it only gets through by allow_responses.
func (pp *permProbe) requestReply(subject string) error {
	sub, err := pp.nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	if err := flush(pp.ctx, pp.nc); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(pp.ctx, 2*time.Second)
	defer cancel()
	m, err := pp.nc.RequestWithContext(rctx, subject, []byte(pp.nonce))
	if err != nil {
		return fmt.Errorf("%w (last error: %v)", err, pp.nc.LastError())
	}
	if !bytes.Equal(m.Data, []byte(pp.nonce)) {
		return fmt.Errorf("reply %q, not %q", m.Data, pp.nonce)
	}
	return nil
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, errSubjectRefused):
		return "refused"
	default:
		return "no answer: " + err.Error()
	}
}

type samples struct {
	pubOK, pubNo, subOK, subNo []Sample
	requestReply               string // "" for none
}

// probeUser runs every probe of one user on one connection. It stops at
// the first sign that the connection or the check's time is gone, since
// every later probe would only repeat that.
func (v *verifier) probeUser(ctx context.Context, nc *nats.Conn, h inventory.Host, p inventory.Permissions, target string,
	ss samples, failf func(h inventory.Host, expected, seen string)) {
	pp := &permProbe{ctx: ctx, nc: nc, nonce: fmt.Sprintf("natsdeploy verify %s %s", v.run, target)}
	broken := func(err error) bool {
		if err == nil || errors.Is(err, errSubjectRefused) || (!nc.IsClosed() && ctx.Err() == nil) {
			return false
		}
		failf(h, "the connection to stay up for all probes", err.Error())
		return true
	}
	for _, s := range ss.pubOK {
		err := pp.publish(s.Subject)
		if broken(err) {
			return
		}
		if err != nil {
			failf(h, fmt.Sprintf("publish to %s (%s) accepted", s.Subject, s.Why), outcome(err))
		}
	}
	for _, s := range ss.pubNo {
		err := pp.publish(s.Subject)
		if broken(err) {
			return
		}
		if !errors.Is(err, errSubjectRefused) {
			failf(h, fmt.Sprintf("publish to %s (%s) refused", s.Subject, s.Why), outcome(err))
		}
	}
	for _, s := range ss.subOK {
		roundTrip := Allowed(p, Pub, s.Subject)
		err := pp.subscribe(s.Subject, roundTrip)
		if broken(err) {
			return
		}
		if err != nil {
			what := "accepted"
			if roundTrip {
				what = "accepted and receiving"
			}
			failf(h, fmt.Sprintf("subscribe to %s (%s) %s", s.Subject, s.Why, what), outcome(err))
		}
	}
	for _, s := range ss.subNo {
		err := pp.subscribe(s.Subject, false)
		if broken(err) {
			return
		}
		if !errors.Is(err, errSubjectRefused) {
			failf(h, fmt.Sprintf("subscribe to %s (%s) refused", s.Subject, s.Why), outcome(err))
		}
	}
	if ss.requestReply != "" {
		if err := pp.requestReply(ss.requestReply); err != nil {
			failf(h, fmt.Sprintf("request on %s answered by the same user (allow_responses)", ss.requestReply), err.Error())
		}
	}
}

// checkUser proves one user's permissions on every node: each allowed
// sample works for publish and subscribe (and a message makes the round
// trip where both are allowed), each refused sample is refused,
// request/reply works where allow_responses is granted, and a wrong
// password is refused. One passing row per user; one row per failure.
func (v *verifier) checkUser(ctx context.Context, a *inventory.Account, u *inventory.User, idx int) []Result {
	const check = "permissions"
	target := label(a, u)
	pw, err := v.password(a, u)
	if err != nil {
		return []Result{fail(check, target, "a password to log in with", err.Error())}
	}
	p := u.Permissions()
	tok := v.tokens(fmt.Sprintf("u%d", idx))
	pubOK, pubSkip := AllowedSamples(p, Pub, tok)
	subOK, subSkip := AllowedSamples(p, Sub, tok)
	others := v.tenantsExcept(a, u)
	pubNo := RefusedSamples(p, Pub, others, tok)
	subNo := RefusedSamples(p, Sub, others, tok)

	// One subject both directions allow, for request/reply.
	var rr string
	if p.AllowResponses {
		rrSamples, _ := AllowedSamples(p, Sub, v.tokens(fmt.Sprintf("r%d", idx)))
		for _, s := range rrSamples {
			if Allowed(p, Pub, s.Subject) && !strings.HasPrefix(s.Subject, "_INBOX.") {
				rr = s.Subject
				break
			}
		}
	}

	up, note := v.upHosts()
	if len(up) == 0 {
		return []Result{fail(check, target, "a node to log in to", "every node is down")}
	}
	// The logins go to every node at once, with the wrong password beside
	// them: a login is the costly part (bcrypt on the server, a TLS
	// handshake), and on a fleet each node pays it with its own CPU. The
	// login slots still bound how many are in flight. The probes then run
	// one node after another, so no node's probe can answer for another's
	// (they publish the same subjects with the same nonce).
	type found struct {
		nc             *nats.Conn
		out, unchecked []Result
	}
	if ctx.Err() != nil {
		return []Result{fail(check, target, "checks to finish on "+up[0].Name, ctx.Err().Error())}
	}
	per := make([]found, len(up)+1)
	var wg sync.WaitGroup
	for i, h := range up {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &per[i]
			nc, err := v.connect(h, u.Name, pw)
			switch {
			case couldNotCheck(err):
				f.unchecked = append(f.unchecked, skip(check, target, err.Error()))
			case err != nil:
				f.out = append(f.out, fail(check, target, "log in as "+u.Name+" on "+h.Name, err.Error()))
			default:
				f.nc = nc
			}
		}()
	}
	// A wrong password, on one node (each login costs the server a bcrypt
	// comparison); users are spread over the nodes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, h := &per[len(up)], up[idx%len(up)]
		if nc, err := v.connect(h, u.Name, pw+"-wrong"); err == nil {
			nc.Close()
			f.out = append(f.out, fail(check, target, "login with a wrong password refused on "+h.Name, "logged in"))
		} else if couldNotCheck(err) {
			f.unchecked = append(f.unchecked, skip(check, target, err.Error()))
		} else if !errors.Is(err, nats.ErrAuthorization) {
			f.out = append(f.out, fail(check, target, "login with a wrong password refused with an authorization violation on "+h.Name, err.Error()))
		}
	}()
	wg.Wait()
	stopped := false // the check's time ran out: said once, the rest left
	for i, h := range up {
		f := &per[i]
		if f.nc == nil {
			continue
		}
		if !stopped && ctx.Err() != nil {
			f.out = append(f.out, fail(check, target, "checks to finish on "+h.Name, ctx.Err().Error()))
			stopped = true
		}
		if !stopped {
			// The target stays the user; the node goes into the
			// expectation, so all of one user's findings sort together.
			v.probeUser(ctx, f.nc, h, p, target, samples{pubOK, pubNo, subOK, subNo, rr}, func(h inventory.Host, expected, seen string) {
				f.out = append(f.out, fail(check, target, expected+" on "+h.Name, seen))
			})
		}
		f.nc.Close()
	}
	var out, unchecked []Result
	nodes := 0
	for _, f := range per {
		out = append(out, f.out...)
		unchecked = append(unchecked, f.unchecked...)
		if f.nc != nil {
			nodes++
		}
	}

	if len(out) > 0 || len(unchecked) > 0 {
		return append(out, unchecked...)
	}
	seen := fmt.Sprintf("on %d nodes%s: publish %d allowed/%d refused, subscribe %d allowed/%d refused",
		nodes, note, len(pubOK), len(pubNo), len(subOK), len(subNo))
	if rr != "" {
		seen += ", request/reply"
	}
	seen += ", wrong password refused"
	for _, s := range append(pubSkip, subSkip...) {
		seen += "; not sampled: " + s.Why
	}
	return []Result{pass(check, target, seen)}
}
