package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// isoPair is one isolation probe: a message published in account a must
// reach control (a subscriber in a) and must not reach foreign (a
// subscriber in account b) on the same subject.
type isoPair struct {
	b                  *inventory.Account
	pubUser, ctlUser   *inventory.User
	foreignUser        *inventory.User
	subject            string
	nonce              string
	ctlSub, foreignSub *nats.Subscription
	pubConn            *nats.Conn
	controlGot         bool
	setupErr, ctlErr   error
}

// findPair picks a subject some user of a may publish, some user of a may
// subscribe to (the control) and some user of b may subscribe to. Plain
// subjects are preferred over $-system and _INBOX ones.
func findPair(a, b *inventory.Account, tok TokenFunc) (*isoPair, bool) {
	var cands []string
	seen := map[string]bool{}
	addSamples := func(acc *inventory.Account, d Dir) {
		for k := range acc.Users {
			ss, _ := AllowedSamples(acc.Users[k].Permissions(), d, tok)
			for _, s := range ss {
				if !seen[s.Subject] {
					seen[s.Subject] = true
					cands = append(cands, s.Subject)
				}
			}
		}
	}
	addSamples(b, Sub)
	addSamples(a, Pub)
	plain := func(s string) bool { return !strings.HasPrefix(s, "$") && !strings.HasPrefix(s, "_INBOX.") }
	ordered := make([]string, 0, len(cands))
	for _, s := range cands {
		if plain(s) {
			ordered = append(ordered, s)
		}
	}
	for _, s := range cands {
		if !plain(s) {
			ordered = append(ordered, s)
		}
	}
	userFor := func(acc *inventory.Account, d Dir, s string) *inventory.User {
		for k := range acc.Users {
			if Allowed(acc.Users[k].Permissions(), d, s) {
				return &acc.Users[k]
			}
		}
		return nil
	}
	for _, s := range ordered {
		pub, foreign := userFor(a, Pub, s), userFor(b, Sub, s)
		if pub == nil || foreign == nil {
			continue
		}
		ctl := pub
		if !Allowed(pub.Permissions(), Sub, s) {
			ctl = userFor(a, Sub, s)
		}
		if ctl == nil {
			continue
		}
		return &isoPair{b: b, pubUser: pub, ctlUser: ctl, foreignUser: foreign, subject: s}, true
	}
	return nil, false
}

// checkIsolation publishes, from account a, one message per other account
// b on a subject a user of b may subscribe to, and checks that a's own
// subscriber gets it (so the probe can fail) while b's does not. All three
// connections of a pair go to the same node, so no interest has to travel
// over routes before the publish and a quiet window means what it says.
func (v *verifier) checkIsolation(ctx context.Context, a *inventory.Account, idx int) []Result {
	const check = "isolation"
	var pairs []*isoPair
	var unpaired []string
	for i := range v.inv.Accounts {
		b := &v.inv.Accounts[i]
		if b.Name == a.Name {
			continue
		}
		pair, ok := findPair(a, b, v.tokens(fmt.Sprintf("i%d-%d", idx, i)))
		if !ok {
			unpaired = append(unpaired, b.Name)
			continue
		}
		pair.nonce = fmt.Sprintf("natsdeploy verify %s isolation %s->%s", v.run, a.Name, b.Name)
		pairs = append(pairs, pair)
	}
	if len(pairs) == 0 {
		why := "no subject that a user of " + a.Name + " may publish and subscribe to and another account's user may subscribe to"
		if len(a.Users) == 0 {
			why = "account has no users"
		}
		return []Result{skip(check, a.Name, why)}
	}

	var out []Result
	var untested []string
	failPair := func(p *isoPair, expected, seen string) {
		out = append(out, fail(check, a.Name, expected, seen))
	}
	up, note := v.upHosts()
	if len(up) == 0 {
		return []Result{fail(check, a.Name, "a node to test on", "every node is down")}
	}
	host := func(i int) inventory.Host { return up[(idx+i)%len(up)] }

	// Subscribe everywhere first, then publish, then wait.
	var conns []*nats.Conn
	for i, p := range pairs {
		h := host(i)
		p.setupErr = v.setupPair(ctx, h, a, p)
		if couldNotCheck(p.setupErr) {
			// A node too slow to log in says nothing about isolation.
			untested = append(untested, p.b.Name+" ("+p.setupErr.Error()+")")
			continue
		}
		if p.setupErr != nil {
			failPair(p, "subscribers on "+p.subject+" in "+a.Name+" and "+p.b.Name+" via "+h.Name, p.setupErr.Error())
			continue
		}
		conns = append(conns, p.pubConn)
	}
	defer func() {
		for _, p := range pairs {
			for _, s := range []*nats.Subscription{p.ctlSub, p.foreignSub} {
				if s != nil {
					_ = s.Unsubscribe()
				}
			}
		}
	}()
	for _, p := range pairs {
		if p.setupErr == nil {
			if err := p.pubConn.Publish(p.subject, []byte(p.nonce)); err != nil {
				p.setupErr = fmt.Errorf("publish: %w", err)
				failPair(p, "message published on "+p.subject, p.setupErr.Error())
			}
		}
	}
	for _, nc := range conns {
		_ = flush(ctx, nc)
	}
	for _, p := range pairs {
		if p.setupErr == nil {
			p.controlGot, p.ctlErr = receive(ctx, p.ctlSub, p.nonce, 2*time.Second)
		}
	}
	// The foreign subscribers have had at least as long as the controls;
	// give them a quiet window more.
	select {
	case <-ctx.Done():
	case <-time.After(v.opts.QuietWindow):
	}
	var ok []string
	for _, p := range pairs {
		if p.setupErr != nil {
			continue
		}
		leaked, _ := receive(ctx, p.foreignSub, p.nonce, time.Millisecond)
		switch {
		case leaked:
			failPair(p, fmt.Sprintf("message published by %s on %s not seen in %s", label(a, p.pubUser), p.subject, p.b.Name),
				"received by "+label(p.b, p.foreignUser))
		case !p.controlGot:
			seen := "nothing within 2s"
			if p.ctlErr != nil {
				seen = p.ctlErr.Error()
			}
			failPair(p, fmt.Sprintf("message published by %s on %s received by %s (proves the probe can see it)",
				label(a, p.pubUser), p.subject, label(a, p.ctlUser)), seen)
		default:
			ok = append(ok, p.b.Name)
		}
	}
	if len(out) > 0 {
		return out
	}
	if len(ok) == 0 {
		return []Result{skip(check, a.Name, "could not check: "+strings.Join(untested, "; "))}
	}
	seen := fmt.Sprintf("messages published in %s reached %s's own subscribers and none in %s%s", a.Name, a.Name, list(ok), note)
	if len(untested) > 0 {
		seen += fmt.Sprintf(" (could not check %s)", strings.Join(untested, "; "))
	}
	if len(unpaired) > 0 {
		seen += fmt.Sprintf(" (untestable with %s: no subject a user of %s may publish and one of theirs may subscribe to)", list(unpaired), a.Name)
	}
	return []Result{pass(check, a.Name, seen)}
}

// setupPair connects the three users of a pair to node h and subscribes
// control and foreign, confirming the server accepted both subscriptions.
func (v *verifier) setupPair(ctx context.Context, h inventory.Host, a *inventory.Account, p *isoPair) error {
	pubConn, err := v.sharedConnFor(h, a, p.pubUser)
	if err != nil {
		return err
	}
	ctlConn, err := v.sharedConnFor(h, a, p.ctlUser)
	if err != nil {
		return err
	}
	foreignConn, err := v.sharedConnFor(h, p.b, p.foreignUser)
	if err != nil {
		return err
	}
	p.pubConn = pubConn
	if p.ctlSub, err = ctlConn.SubscribeSync(p.subject); err != nil {
		return fmt.Errorf("subscribe %s: %w", label(a, p.ctlUser), err)
	}
	if p.foreignSub, err = foreignConn.SubscribeSync(p.subject); err != nil {
		return fmt.Errorf("subscribe %s: %w", label(p.b, p.foreignUser), err)
	}
	for _, c := range []struct {
		nc  *nats.Conn
		sub *nats.Subscription
		who string
	}{{ctlConn, p.ctlSub, label(a, p.ctlUser)}, {foreignConn, p.foreignSub, label(p.b, p.foreignUser)}} {
		if err := flush(ctx, c.nc); err != nil {
			return fmt.Errorf("%s: %w", c.who, err)
		}
		// With PermissionErrOnSubscribe a refused subscription reports
		// its error here at once; a live one just times out.
		if _, err := c.sub.NextMsg(time.Millisecond); errors.Is(err, nats.ErrPermissionViolation) {
			return fmt.Errorf("subscription of %s refused: %w", c.who, err)
		}
	}
	return nil
}

// receive waits up to wait for a message carrying nonce; other messages
// on the subject are someone else's and are skipped.
func receive(ctx context.Context, sub *nats.Subscription, nonce string, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return false, ctx.Err()
		}
		m, err := sub.NextMsg(left)
		switch {
		case errors.Is(err, nats.ErrTimeout):
			return false, nil
		case err != nil:
			return false, err
		case string(m.Data) == nonce:
			return true, nil
		}
	}
}
