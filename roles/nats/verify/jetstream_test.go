package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// A quota the inventory leaves at 0 is unlimited, which the server
// reports as -1.
func TestLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{{0, -1}, {-1, -1}, {1, 1}, {1 << 30, 1 << 30}} {
		if got := limit(tc.in); got != tc.want {
			t.Errorf("limit(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// nodeJetStream on one node's scripted /accountz and /jsz: nothing when
// the node runs the account as configured, else one row saying what the
// node shows.
func TestNodeJetStream(t *testing.T) {
	const (
		dev     = `{"account_detail":{"jetstream_enabled":true}}`
		devOff  = `{"account_detail":{"jetstream_enabled":false}}`
		devJsz  = `{"account_details":[{"name":"OTHER","reserved_memory":1,"reserved_storage":1},{"name":"DEV","reserved_memory":33554432,"reserved_storage":67108864}]}`
		unknown = `{"account_detail":null}`
	)
	inv := testInventory("2.14.9", 1, 2, 3)
	devAcc, sysAcc := &inv.Accounts[2], &inv.Accounts[0]
	unlimited := inventory.Account{Name: "DEV", JetStream: &inventory.AccountJetStream{}}
	tests := []struct {
		name  string
		acc   *inventory.Account
		paths map[string]answer
		want  string // "expected | seen", "" for no row
	}{
		{"as configured", devAcc, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200}, "/jsz?acc=DEV": {body: devJsz, status: 200}}, ""},
		{"unlimited shows as -1", &unlimited, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200},
			"/jsz?acc=DEV": {body: `{"account_details":[{"name":"DEV","reserved_memory":18446744073709551615,"reserved_storage":18446744073709551615}]}`, status: 200}}, ""},
		{"off, as configured", sysAcc, map[string]answer{"/accountz?acc=SYS": {body: devOff, status: 200}}, ""},
		{"off where it should be on", devAcc, map[string]answer{"/accountz?acc=DEV": {body: devOff, status: 200}},
			"JetStream enabled on n1 | jetstream_enabled false"},
		{"on where it should be off", sysAcc, map[string]answer{"/accountz?acc=SYS": {body: dev, status: 200}},
			"JetStream not enabled on n1 | jetstream_enabled true"},
		{"account unknown", devAcc, map[string]answer{"/accountz?acc=DEV": {body: unknown, status: 200}},
			"JetStream enabled on n1 | account unknown to the node"},
		{"accountz unreadable", sysAcc, map[string]answer{"/accountz?acc=SYS": {err: errors.New("timeout")}},
			"JetStream not enabled on n1 | timeout"},
		{"jsz unreadable", devAcc, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200}, "/jsz?acc=DEV": {body: "busy", status: 503}},
			"max_mem and max_file in /jsz on n1 | /jsz?acc=DEV answered 503: busy"},
		{"memory raised", devAcc, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200},
			"/jsz?acc=DEV": {body: `{"account_details":[{"name":"DEV","reserved_memory":50331648,"reserved_storage":67108864}]}`, status: 200}},
			"max_mem 33554432, max_file 67108864 on n1 | max_mem 50331648, max_file 67108864"},
		{"file raised", devAcc, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200},
			"/jsz?acc=DEV": {body: `{"account_details":[{"name":"DEV","reserved_memory":33554432,"reserved_storage":1}]}`, status: 200}},
			"max_mem 33554432, max_file 67108864 on n1 | max_mem 33554432, max_file 1"},
		{"not listed", devAcc, map[string]answer{"/accountz?acc=DEV": {body: dev, status: 200},
			"/jsz?acc=DEV": {body: `{"account_details":[{"name":"OTHER"}]}`, status: 200}},
			"account in /jsz?acc=DEV on n1 | not listed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(Options{Inventory: inv, Probe: scriptProbe{paths: tc.paths}})
			var got []string
			for _, r := range v.nodeJetStream(context.Background(), inv.Hosts[0], tc.acc) {
				if r.Check != "jetstream" || r.Target != tc.acc.Name || r.OK || r.Skipped {
					t.Errorf("row %+v", r)
				}
				got = append(got, r.Expected+" | "+r.Seen)
			}
			if want := strings.Join(nonEmpty(tc.want), "\n"); strings.Join(got, "\n") != want {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), want)
			}
		})
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// When no node takes a login, system/ping and cluster/stream say why for
// every node they tried, or that none was up to try.
func TestNoLogin(t *testing.T) {
	inv := testInventory("2.14.9", 1, 2, 3)
	sys := strings.Repeat("no password known for SYS/sys-user; ", 3)
	admin := strings.Repeat("no password known for ADMIN/admin; ", 3)
	tests := []struct {
		name string
		down []string
		want []string // check target status detail
	}{
		{"every login refused", nil, []string{
			"system/ping SYS/sys-user FAIL expected every server answers: n1, n2, n3, saw " + strings.TrimSuffix(sys, "; "),
			"cluster/stream ADMIN/admin FAIL expected a connection to any node, saw " + strings.TrimSuffix(admin, "; "),
		}},
		{"every node down", []string{"n1", "n2", "n3"}, []string{
			"system/ping SYS/sys-user FAIL expected every server answers: n1, n2, n3, saw every node is down",
			"cluster/stream ADMIN/admin FAIL expected a connection to any node, saw every node is down",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(Options{Inventory: inv, Passwords: mapPasswords{}})
			for _, h := range tc.down {
				v.markDown(inventory.Host{Name: h}, "test")
			}
			var got []string
			for _, r := range append(v.checkSystem(context.Background()), v.checkStream(context.Background())...) {
				got = append(got, r.Check+" "+r.Target+" "+r.Status()+" "+r.Detail())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// A server the inventory does not name is reported even when it answers
// after every named one: here the inventory names n1 only, whose own
// answer comes first, and n2 and n3 answer through their routes.
func TestSystemPingReportsServersNotInInventory(t *testing.T) {
	c := startCluster(t)
	c.waitReady(30 * time.Second)
	opts := c.options()
	inv := *opts.Inventory
	inv.Hosts = inv.Hosts[:1]
	opts.Inventory = &inv
	v := newVerifier(opts)
	defer v.closeShared()
	rs := v.checkSystem(context.Background())
	if len(rs) != 1 || rs[0].OK || !strings.Contains(rs[0].Detail(), "answers from n1; unexpected servers n2, n3") {
		t.Errorf("system/ping = %+v, want a failure naming n2 and n3", rs)
	}
}

// The quiet window starts only once every named server has answered: with
// a window of next to nothing, system/ping still hears all three.
func TestSystemPingWaitsForEveryNamedServer(t *testing.T) {
	c := startCluster(t)
	c.waitReady(30 * time.Second)
	opts := c.options()
	opts.QuietWindow = time.Nanosecond
	v := newVerifier(opts)
	defer v.closeShared()
	rs := v.checkSystem(context.Background())
	if len(rs) != 1 || !rs[0].OK {
		t.Errorf("system/ping = %+v, want ok with answers from n1, n2, n3", rs)
	}
}
