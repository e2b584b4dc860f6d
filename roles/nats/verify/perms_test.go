package verify

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// A user's refused samples come from every other user, including one of
// the same name in another account: only the user itself is left out.
func TestTenantsExcept(t *testing.T) {
	inv := &inventory.Inventory{Accounts: []inventory.Account{
		{Name: "A", Users: []inventory.User{{Name: "app", Allow: []string{"a.>"}}, {Name: "ops", Allow: []string{"ops.>"}}}},
		{Name: "B", Users: []inventory.User{{Name: "app", Allow: []string{"b.>"}}}},
	}}
	v := &verifier{inv: inv}
	tests := []struct {
		account, user string
		want          []string
	}{
		{"A", "app", []string{"A/ops", "B/app"}},
		{"A", "ops", []string{"A/app", "B/app"}},
		{"B", "app", []string{"A/app", "A/ops"}},
	}
	for _, tc := range tests {
		a := &inv.Accounts[slices.IndexFunc(inv.Accounts, func(a inventory.Account) bool { return a.Name == tc.account })]
		u := &a.Users[slices.IndexFunc(a.Users, func(u inventory.User) bool { return u.Name == tc.user })]
		var got []string
		for _, o := range v.tenantsExcept(a, u) {
			got = append(got, o.Label)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("tenantsExcept(%s/%s) = %v, want %v", tc.account, tc.user, got, tc.want)
		}
	}
}

// probeUser on a real node, with samples chosen to disagree with what the
// server allows dev-user: a connection that is gone is one failure and the
// end of the probes; a probe that gets no answer on a live connection is
// that probe's failure, and the probes after it still run.
func TestProbeUser(t *testing.T) {
	c := startCluster(t)
	v := newVerifier(c.options())
	defer v.closeShared()
	n1 := c.inv.Hosts[0]
	devPerms := c.inv.Accounts[2].Users[0].Permissions()
	tests := []struct {
		name  string
		close bool // the connection is closed before the probes
		perms inventory.Permissions
		ss    samples
		want  []string // "expected | start of seen"
	}{
		{name: "connection gone", close: true, perms: devPerms,
			ss:   samples{pubOK: []Sample{{"dev.a", "allow rule dev.*"}, {"dev.b", "allow rule dev.*"}}},
			want: []string{"the connection to stay up for all probes on n1 | publish: nats: connection closed"}},
		// The inventory here says dev-user may publish on _INBOX.>, the
		// server does not: the subscription is accepted, the message never
		// comes. The refused subscription expected next is still probed.
		{name: "round trip never arrives", perms: inventory.Permissions{PublishAllow: []string{"_INBOX.>"}, SubscribeAllow: []string{"_INBOX.>"}},
			ss: samples{subOK: []Sample{{"_INBOX.nv-probe", "allow rule _INBOX.>"}}, subNo: []Sample{{"dev.c", "planted"}}},
			want: []string{
				"subscribe to _INBOX.nv-probe (allow rule _INBOX.>) accepted and receiving on n1 | no answer: subscription accepted, but a message published on it did not arrive within 2s",
				"subscribe to dev.c (planted) refused on n1 | accepted",
			}},
		// dev-user may neither subscribe nor publish on prod.x: nobody
		// answers the request.
		{name: "request not answered", perms: devPerms, ss: samples{requestReply: "prod.x"},
			want: []string{"request on prod.x answered by the same user (allow_responses) on n1 | "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := v.connect(n1, "dev-user", c.pw["DEV/dev-user"])
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.close {
				nc.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var got []string
			v.probeUser(ctx, nc, n1, tc.perms, "DEV/dev-user", tc.ss, func(h inventory.Host, expected, seen string) {
				got = append(got, expected+" on "+h.Name+" | "+seen)
			})
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], tc.want[i])
			}
			if !ok {
				t.Errorf("failures:\n  %s\nwant (prefixes):\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// A check whose time is gone says so once, for the first node, instead
// of one row per node or a login it cannot finish.
func TestCheckUserOutOfTime(t *testing.T) {
	inv := testInventory("2.14.9", 1, 2, 3)
	v := newVerifier(Options{Inventory: inv, Passwords: mapPasswords{"DEV/dev-user": "a-long-enough-password"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var a *inventory.Account
	for i := range inv.Accounts {
		if inv.Accounts[i].Name == "DEV" {
			a = &inv.Accounts[i]
		}
	}
	if a == nil || len(a.Users) == 0 {
		t.Fatal("the test inventory has no DEV user")
	}
	rs := v.checkUser(ctx, a, &a.Users[0], 0)
	if len(rs) != 1 || rs[0].OK || rs[0].Expected != "checks to finish on n1" {
		t.Errorf("rows %+v, want one failure: checks to finish on n1", rs)
	}
}
