package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

// limit is how a configured quota appears on the server: a value the
// inventory leaves at 0 is unlimited, which the server reports as -1.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// checkJetStream compares an account's JetStream state with the inventory
// in two ways, because neither sees everything:
//
//   - each node's monitoring endpoint (/accountz, /jsz?acc=) shows whether
//     that node enabled JetStream for the account and its memory and file
//     limits as that node loaded them, so a change on one node shows;
//   - JetStream's own account info, as a user of the account gets it,
//     shows all four limits but is answered by the meta leader only.
//
// For an account without JetStream both must say it is off.
func (v *verifier) checkJetStream(ctx context.Context, a *inventory.Account) []Result {
	const check = "jetstream"
	var out []Result
	want := a.JetStream
	up, note := v.upHosts()
	if len(up) == 0 {
		return []Result{fail(check, a.Name, "a node to ask", "every node is down")}
	}
	for _, h := range up {
		out = append(out, v.nodeJetStream(ctx, h, a)...)
	}

	user, why := v.jsInfoUser(a)
	var client string
	switch {
	case user == nil:
		client = "; client view not checked: " + why
	default:
		info, via, err := v.accountInfo(ctx, a, user)
		switch {
		case want == nil && (errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)):
			client = fmt.Sprintf("; %s told %s it is off", via, label(a, user))
		case want == nil && err == nil:
			out = append(out, fail(check, a.Name, "JetStream not enabled for "+a.Name,
				fmt.Sprintf("account info answered for %s via %s: limits %s", label(a, user), via, fmtLimits(info.Limits))))
		case want == nil:
			out = append(out, fail(check, a.Name, "account info refused with \"jetstream not enabled for account\"", err.Error()))
		case err != nil:
			out = append(out, fail(check, a.Name, "account info for "+label(a, user), err.Error()))
		default:
			exp := jetstream.AccountLimits{MaxMemory: limit(int64(want.MaxMem)), MaxStore: limit(int64(want.MaxFile)),
				MaxStreams: int(limit(int64(want.MaxStreams))), MaxConsumers: int(limit(int64(want.MaxConsumers)))}
			got := info.Limits
			if got.MaxMemory != exp.MaxMemory || got.MaxStore != exp.MaxStore || got.MaxStreams != exp.MaxStreams || got.MaxConsumers != exp.MaxConsumers {
				out = append(out, fail(check, a.Name, "limits "+fmtLimits(exp), "limits "+fmtLimits(got)+" (account info via "+via+")"))
			} else {
				client = fmt.Sprintf("; account info (as %s): %s", label(a, user), fmtLimits(got))
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	if want == nil {
		return []Result{pass(check, a.Name, fmt.Sprintf("off on %d nodes%s%s", len(up), note, client))}
	}
	return []Result{pass(check, a.Name, fmt.Sprintf("on with max_mem/max_file as configured on %d nodes%s%s", len(up), note, client))}
}

func fmtLimits(l jetstream.AccountLimits) string {
	return fmt.Sprintf("max_mem %d, max_file %d, max_streams %d, max_consumers %d", l.MaxMemory, l.MaxStore, l.MaxStreams, l.MaxConsumers)
}

// nodeJetStream checks one node's view of the account over HTTP; it
// returns only failures.
func (v *verifier) nodeJetStream(ctx context.Context, h inventory.Host, a *inventory.Account) []Result {
	const check = "jetstream"
	target := a.Name
	want := a.JetStream
	wantOn := "JetStream enabled on " + h.Name
	if want == nil {
		wantOn = "JetStream not enabled on " + h.Name
	}
	var az struct {
		Account *struct {
			JetStream bool `json:"jetstream_enabled"`
		} `json:"account_detail"`
	}
	if err := v.getJSON(ctx, h, "/accountz?acc="+url.QueryEscape(a.Name), &az); err != nil {
		return []Result{fail(check, target, wantOn, err.Error())}
	}
	if az.Account == nil {
		return []Result{fail(check, target, wantOn, "account unknown to the node")}
	}
	if az.Account.JetStream != (want != nil) {
		return []Result{fail(check, target, wantOn, fmt.Sprintf("jetstream_enabled %v", az.Account.JetStream))}
	}
	if want == nil {
		return nil
	}
	var j monitor.Jsz
	if err := v.getJSON(ctx, h, "/jsz?acc="+url.QueryEscape(a.Name), &j); err != nil {
		return []Result{fail(check, target, "max_mem and max_file in /jsz on "+h.Name, err.Error())}
	}
	for _, d := range j.Accounts {
		if d.Name != a.Name {
			continue
		}
		// The server reports the account's limits as its reservation;
		// unlimited (-1) shows as the uint64 of -1.
		mem, file := int64(d.ReservedMemory), int64(d.ReservedStorage)
		if mem != limit(int64(want.MaxMem)) || file != limit(int64(want.MaxFile)) {
			return []Result{fail(check, target,
				fmt.Sprintf("max_mem %d, max_file %d on %s", limit(int64(want.MaxMem)), limit(int64(want.MaxFile)), h.Name),
				fmt.Sprintf("max_mem %d, max_file %d", mem, file))}
		}
		return nil
	}
	return []Result{fail(check, target, "account in /jsz?acc="+a.Name+" on "+h.Name, "not listed")}
}

// jsInfoUser picks a user of the account who may ask for JetStream account
// info ($JS.API.INFO, reply on _INBOX).
func (v *verifier) jsInfoUser(a *inventory.Account) (*inventory.User, string) {
	for k := range a.Users {
		p := a.Users[k].Permissions()
		if Allowed(p, Pub, "$JS.API.INFO") && Allowed(p, Sub, "_INBOX.x.*") {
			return &a.Users[k], ""
		}
	}
	return nil, "no user of " + a.Name + " may publish $JS.API.INFO"
}

// accountInfo asks for the account's JetStream info through the first node
// that takes a connection.
func (v *verifier) accountInfo(ctx context.Context, a *inventory.Account, u *inventory.User) (*jetstream.AccountInfo, string, error) {
	var errs []string
	up, _ := v.upHosts()
	for _, h := range up {
		nc, err := v.sharedConnFor(h, a, u)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, h.Name, err
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := js.AccountInfo(ictx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			// Only the meta leader answers account info.
			err = fmt.Errorf("no answer within 5s (no JetStream meta leader? see cluster/meta): %w", err)
		}
		return info, h.Name, err
	}
	if len(errs) == 0 {
		errs = append(errs, "every node is down")
	}
	return nil, "no node", errors.New(strings.Join(errs, "; "))
}

// checkSystem sends a server ping in the system account and expects an
// answer from every host, and from no one else.
func (v *verifier) checkSystem(ctx context.Context) []Result {
	const check = "system/ping"
	var sys *inventory.Account
	for i := range v.inv.Accounts {
		if v.inv.Accounts[i].System {
			sys = &v.inv.Accounts[i]
		}
	}
	if sys == nil {
		return []Result{skip(check, "system account", "the inventory names no system account")}
	}
	var user *inventory.User
	for k := range sys.Users {
		p := sys.Users[k].Permissions()
		if Allowed(p, Pub, "$SYS.REQ.SERVER.PING") && Allowed(p, Sub, "_INBOX.x") {
			user = &sys.Users[k]
			break
		}
	}
	if user == nil {
		return []Result{skip(check, sys.Name, "no user of "+sys.Name+" may publish $SYS.REQ.SERVER.PING and receive replies on _INBOX")}
	}
	target := label(sys, user)
	var want []string
	for _, h := range v.hosts {
		want = append(want, h.Name)
	}
	expected := "every server answers: " + list(want)

	var nc *nats.Conn
	errs := []string{"every node is down"}
	up, _ := v.upHosts()
	for i, h := range up {
		if i == 0 {
			errs = nil
		}
		c, err := v.connectUser(h, sys, user)
		if err == nil {
			nc = c
			break
		}
		errs = append(errs, err.Error())
	}
	if nc == nil {
		return []Result{fail(check, target, expected, strings.Join(errs, "; "))}
	}
	defer nc.Close()

	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return []Result{fail(check, target, expected, err.Error())}
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SYS.REQ.SERVER.PING", inbox, nil); err != nil {
		return []Result{fail(check, target, expected, err.Error())}
	}
	if err := flush(ctx, nc); err != nil {
		return []Result{fail(check, target, expected, err.Error())}
	}

	// Gather answers for up to 1.5s. Once every host answered, listen one
	// quiet window more: a server the inventory does not name may answer
	// after them, and it must not go unreported.
	answered := map[string]bool{}
	var extra []string
	deadline := time.Now().Add(1500 * time.Millisecond)
	quiet := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !quiet && len(answered) == len(want) {
			quiet = true
			if end := time.Now().Add(v.opts.QuietWindow); end.Before(deadline) {
				deadline = end
			}
		}
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var st struct {
			Server struct {
				Name string `json:"name"`
			} `json:"server"`
		}
		if json.Unmarshal(m.Data, &st) != nil || st.Server.Name == "" {
			continue
		}
		if slices.Contains(want, st.Server.Name) {
			answered[st.Server.Name] = true
		} else if !slices.Contains(extra, st.Server.Name) {
			extra = append(extra, st.Server.Name)
		}
	}
	var got, missing []string
	for _, w := range want {
		if answered[w] {
			got = append(got, w)
		} else {
			missing = append(missing, w)
		}
	}
	slices.Sort(extra) // in name order, not in the order they answered
	if len(missing) > 0 || len(extra) > 0 {
		seen := "answers from " + list(got)
		if len(missing) > 0 {
			seen += "; none from " + list(missing)
		}
		if len(extra) > 0 {
			seen += "; unexpected servers " + list(extra)
		}
		return []Result{fail(check, target, expected, seen)}
	}
	return []Result{pass(check, target, "answers from "+list(got))}
}
