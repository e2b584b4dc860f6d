package verify

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/inventory"
)

func runVerify(t *testing.T, opts Options) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep := Run(ctx, opts)
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())
	return rep
}

// TestVerifyPasses requires, on a healthy cluster, exactly the rows the
// inventory calls for, in report order, each with its status: a check
// that silently stops running (or runs twice) fails here, not only one
// that fails.
func TestVerifyPasses(t *testing.T) {
	c := startCluster(t)
	rep := runVerify(t, c.options())

	var want []string
	for _, h := range []string{"n1", "n2", "n3"} {
		want = append(want,
			"node/health "+h+" ok",
			"node/version "+h+" ok",
			"node/digest "+h+" ok",
			"node/service "+h+" skip", // HTTPProbe cannot see systemd
			"cluster/routes "+h+" ok")
	}
	want = append(want,
		"cluster/meta cluster ok",
		"cluster/stream ADMIN/admin ok",
		"jetstream SYS ok", "jetstream ADMIN ok", "jetstream DEV ok", "jetstream PROD ok", "jetstream SERVICES ok",
		"system/ping SYS/sys-user ok",
		// One row per user: a passing user is proven on every node in one row.
		"permissions SYS/sys-user ok", "permissions ADMIN/admin ok", "permissions DEV/dev-user ok",
		"permissions PROD/prod-user ok", "permissions SERVICES/user-service ok", "permissions SERVICES/order-service ok",
		"isolation SYS ok", "isolation ADMIN ok", "isolation DEV ok", "isolation PROD ok", "isolation SERVICES ok")
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Check+" "+r.Target+" "+r.Status())
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// What the passing rows say they proved.
	seen := map[string]string{}
	for _, r := range rep.Results {
		seen[r.Check+" "+r.Target] = r.Seen
	}
	ver := c.inv.NATS.Version
	for _, h := range []string{"n1", "n2", "n3"} {
		wantSeen(t, seen, "node/version "+h, "nats-server "+ver+" named "+h)
		wantSeen(t, seen, "cluster/routes "+h, "routes to ")
	}
	// A passing digest row shows the digest shortened; failures show it whole.
	for h, d := range c.digests() {
		if got, want := seen["node/digest "+h], "running the deployed config "+d[:19]+"..."; got != want {
			t.Errorf("node/digest %s: got %q, want %q", h, got, want)
		}
	}
	wantSeen(t, seen, "cluster/routes n1", "routes to n2, n3 (")
	wantSeen(t, seen, "cluster/routes n2", "routes to n1, n3 (")
	wantSeen(t, seen, "cluster/routes n3", "routes to n1, n2 (")
	wantSeen(t, seen, "cluster/meta cluster", "seen by all 3 nodes, cluster_size 3")
	wantSeen(t, seen, "cluster/stream ADMIN/admin", "R3 stream written via n1", "read back via n2, n3", "deleted")
	wantSeen(t, seen, "system/ping SYS/sys-user", "answers from n1, n2, n3")
	for _, u := range []string{"SYS/sys-user", "ADMIN/admin", "DEV/dev-user", "PROD/prod-user", "SERVICES/user-service", "SERVICES/order-service"} {
		wantSeen(t, seen, "permissions "+u, "on 3 nodes: ", "wrong password refused")
	}
	// dev-user: publish dev.*, logs.dev.* and three JetStream API rules;
	// subscribe dev.*, logs.dev.*, _INBOX.>.
	wantSeen(t, seen, "permissions DEV/dev-user", "publish 5 allowed/", "subscribe 3 allowed/", "request/reply")
	// Each account is shown isolated from every other account a probe
	// exists for.
	wantSeen(t, seen, "isolation ADMIN", "none in SYS, DEV, PROD, SERVICES")
	wantSeen(t, seen, "isolation SYS", "none in ADMIN")
	wantSeen(t, seen, "isolation DEV", "none in ADMIN")
	wantSeen(t, seen, "isolation PROD", "none in ADMIN")
	wantSeen(t, seen, "isolation SERVICES", "none in ADMIN")
	// Whole rows where nothing varies from run to run: a note, a count or
	// a clause that is off by one shows here.
	for key, want := range map[string]string{
		"jetstream SYS":                      "off on 3 nodes; client view not checked: no user of SYS may publish $JS.API.INFO",
		"jetstream ADMIN":                    "on with max_mem/max_file as configured on 3 nodes; account info (as ADMIN/admin): max_mem 67108864, max_file 134217728, max_streams 100, max_consumers 1000",
		"jetstream DEV":                      "on with max_mem/max_file as configured on 3 nodes; account info (as DEV/dev-user): max_mem 33554432, max_file 67108864, max_streams 10, max_consumers 100",
		"jetstream PROD":                     "on with max_mem/max_file as configured on 3 nodes; account info (as PROD/prod-user): max_mem 33554432, max_file 67108864, max_streams 10, max_consumers 100",
		"jetstream SERVICES":                 "off on 3 nodes; client view not checked: no user of SERVICES may publish $JS.API.INFO",
		"system/ping SYS/sys-user":           "answers from n1, n2, n3",
		"permissions SYS/sys-user":           "on 3 nodes: publish 1 allowed/13 refused, subscribe 2 allowed/11 refused, request/reply, wrong password refused",
		"permissions ADMIN/admin":            "on 3 nodes: publish 1 allowed/0 refused, subscribe 1 allowed/0 refused, wrong password refused",
		"permissions DEV/dev-user":           "on 3 nodes: publish 5 allowed/12 refused, subscribe 3 allowed/13 refused, request/reply, wrong password refused",
		"permissions PROD/prod-user":         "on 3 nodes: publish 5 allowed/11 refused, subscribe 3 allowed/12 refused, request/reply, wrong password refused",
		"permissions SERVICES/user-service":  "on 3 nodes: publish 2 allowed/12 refused, subscribe 3 allowed/10 refused, request/reply, wrong password refused",
		"permissions SERVICES/order-service": "on 3 nodes: publish 2 allowed/12 refused, subscribe 3 allowed/10 refused, request/reply, wrong password refused",
	} {
		if got := seen[key]; got != want {
			t.Errorf("%s:\n  got  %q\n  want %q", key, got, want)
		}
	}
	// The stream's leader varies; the rest of its row does not.
	if s := seen["cluster/stream ADMIN/admin"]; !strings.HasPrefix(s, "R3 stream written via n1 (leader n") || !strings.HasSuffix(s, "), read back via n2, n3, deleted") {
		t.Errorf("cluster/stream ADMIN/admin: %q", s)
	}
	// Whole isolation rows: a note about nodes that could not be checked
	// or accounts no probe exists for appears only when there is one.
	untestable := func(a, others string) string {
		return " (untestable with " + others + ": no subject a user of " + a + " may publish and one of theirs may subscribe to)"
	}
	for a, want := range map[string]string{
		"SYS":      "none in ADMIN" + untestable("SYS", "DEV, PROD, SERVICES"),
		"ADMIN":    "none in SYS, DEV, PROD, SERVICES",
		"DEV":      "none in ADMIN" + untestable("DEV", "SYS, PROD, SERVICES"),
		"PROD":     "none in ADMIN" + untestable("PROD", "SYS, DEV, SERVICES"),
		"SERVICES": "none in ADMIN" + untestable("SERVICES", "SYS, DEV, PROD"),
	} {
		want = "messages published in " + a + " reached " + a + "'s own subscribers and " + want
		if got := seen["isolation "+a]; got != want {
			t.Errorf("isolation %s:\n  got  %q\n  want %q", a, got, want)
		}
	}
}

// wantSeen asserts the Seen text of one row holds every part.
func wantSeen(t *testing.T, seen map[string]string, key string, parts ...string) {
	t.Helper()
	s, ok := seen[key]
	if !ok {
		t.Errorf("no row %s", key)
		return
	}
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s: want %q in %q", key, p, s)
		}
	}
}

// findResult returns the results of one check and target.
func findResults(rep Report, check, target string) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Check == check && r.Target == target {
			out = append(out, r)
		}
	}
	return out
}

// wantFailure asserts that check/target failed with a detail containing
// every one of parts.
func wantFailure(t *testing.T, rep Report, check, target string, parts ...string) {
	t.Helper()
	rs := findResults(rep, check, target)
	if len(rs) == 0 {
		t.Errorf("no %s result for %s", check, target)
		return
	}
	for _, r := range rs {
		if r.OK || r.Skipped {
			continue
		}
		d := r.Detail()
		all := true
		for _, p := range parts {
			if !strings.Contains(d, p) {
				all = false
			}
		}
		if all {
			return
		}
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Status()+": "+r.Detail())
	}
	t.Errorf("%s %s: want a failure containing %q, got:\n  %s", check, target, parts, strings.Join(got, "\n  "))
}

// onlyFailures asserts every failure is of one of the given check/target
// prefixes, so a break shows where it should and nowhere else.
func onlyFailures(t *testing.T, rep Report, allowed ...string) {
	t.Helper()
	for _, r := range rep.Results {
		if r.OK || r.Skipped {
			continue
		}
		key := r.Check + " " + r.Target
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(key, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("unexpected failure: %s %s: %s", r.Check, r.Target, r.Detail())
		}
	}
}

func TestVerifyFailsWhenNodeStopped(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	opts.CheckTimeout = 6 * time.Second // what a dead node costs: keep the test short
	c.stop(c.nodes[2])
	// The survivors have dropped their routes to n3 and agree on a meta
	// leader (a new one if n3 led): the state the assertions describe.
	c.waitReady(30 * time.Second)

	rep := runVerify(t, opts)
	wantFailure(t, rep, "node/health", "n3", "expected /healthz 200, saw", "connection refused", "client port:")
	wantFailure(t, rep, "cluster/routes", "n1", "expected routes to n2, n3, saw routes to n2")
	wantFailure(t, rep, "cluster/routes", "n2", "expected routes to n1, n3, saw routes to n1")
	wantFailure(t, rep, "system/ping", "SYS/sys-user", "expected every server answers: n1, n2, n3, saw answers from n1, n2; none from n3")
	wantRow(t, rep, "system/ping", "SYS/sys-user", "every server answers: n1, n2, n3", "answers from n1, n2; none from n3")
	wantFailure(t, rep, "cluster/meta", "cluster", "expected one meta leader seen by all 3 nodes, cluster_size 3, saw", "n3: down (see node/health)")
	// Either the R3 create is refused or a replica stays behind, depending
	// on whether the meta leader has marked n3 offline yet.
	wantFailure(t, rep, "cluster/stream", "ADMIN/admin", "expected")
	// n1 and n2 have a meta leader between them (waitReady), so account
	// info is answered and the JetStream rows pass.
	onlyFailures(t, rep, "node/health n3", "node/version n3", "node/digest n3", "cluster/routes", "cluster/meta", "cluster/stream", "system/ping")
	// The other checks leave the dead node out, say so, and still prove
	// what they can on the others.
	wantFailure(t, rep, "node/version", "n3", "not checked: node down, see node/health")
	for _, r := range rep.Results {
		if r.Check == "permissions" && (!r.OK || !strings.Contains(r.Seen, "on 2 nodes (left out: n3 down")) {
			t.Errorf("permissions %s: want a pass on the 2 live nodes, got %s: %s", r.Target, r.Status(), r.Detail())
		}
	}
}

func TestVerifyFailsOnWidenedPermission(t *testing.T) {
	c := startCluster(t)
	opts := c.options() // the digests as deployed, before the hand edit
	// By hand on n2 only: dev-user may publish on dev.> instead of dev.*.
	c.edit(c.nodes[1], `publish: { allow: ["dev.*", "logs.dev.*"`, `publish: { allow: ["dev.>", "logs.dev.*"`)

	rep := runVerify(t, opts)
	wantFailure(t, rep, "permissions", "DEV/dev-user", "expected publish to dev.", "(one token deeper than dev.*) refused on n2, saw accepted")
	wantFailure(t, rep, "node/digest", "n2", "the running config is not the one deployed")
	onlyFailures(t, rep, "permissions DEV/dev-user", "node/digest n2")
	for _, r := range findResults(rep, "permissions", "DEV/dev-user") {
		if !strings.Contains(r.Expected, " on n2") {
			t.Errorf("only n2 was changed, yet: %s", r.Detail())
		}
	}
}

func TestVerifyFailsOnRemovedUser(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	for _, n := range c.nodes {
		c.edit(n, userLine(t, n.text, "order-service"), "")
	}

	rep := runVerify(t, opts)
	for _, h := range []string{"n1", "n2", "n3"} {
		wantFailure(t, rep, "permissions", "SERVICES/order-service", "expected log in as order-service on "+h+", saw", "Authorization Violation")
		wantFailure(t, rep, "node/digest", h, "the running config is not the one deployed")
	}
	onlyFailures(t, rep, "permissions SERVICES/order-service", "node/digest")
}

func TestVerifyFailsOnChangedQuota(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	// DEV's memory quota raised on n3 only: only that node's view shows it.
	c.edit(c.nodes[2], "max_mem: 33554432, max_file: 67108864, max_streams: 10", "max_mem: 50331648, max_file: 67108864, max_streams: 10")
	// PROD's stream quota raised everywhere: account info shows it.
	for _, n := range c.nodes {
		c.edit(n, "PROD {\n    jetstream { max_mem: 33554432, max_file: 67108864, max_streams: 10,",
			"PROD {\n    jetstream { max_mem: 33554432, max_file: 67108864, max_streams: 20,")
	}

	rep := runVerify(t, opts)
	// Exact rows: the new value (what the node runs) must be what is shown
	// as seen, next to the configured one as expected.
	wantRow(t, rep, "jetstream", "DEV", "max_mem 33554432, max_file 67108864 on n3", "max_mem 50331648, max_file 67108864")
	wantRow(t, rep, "jetstream", "PROD",
		"limits max_mem 33554432, max_file 67108864, max_streams 10, max_consumers 100",
		"limits max_mem 33554432, max_file 67108864, max_streams 20, max_consumers 100 (account info via n1)")
	// n1 and n2 still run DEV's configured memory quota.
	for _, r := range findResults(rep, "jetstream", "DEV") {
		if strings.Contains(r.Expected, " on n1") || strings.Contains(r.Expected, " on n2") {
			t.Errorf("DEV unchanged on n1 and n2, yet: %s", r.Detail())
		}
	}
	// When n3 is the meta leader, account info (answered by the leader
	// alone) shows DEV's change too.
	onlyFailures(t, rep, "jetstream DEV", "jetstream PROD", "node/digest")
}

// wantRow asserts a failed row of check/target with exactly this expected
// and seen text.
func wantRow(t *testing.T, rep Report, check, target, expected, seen string) {
	t.Helper()
	rs := findResults(rep, check, target)
	for _, r := range rs {
		if !r.OK && !r.Skipped && r.Expected == expected && r.Seen == seen {
			return
		}
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Status()+": "+r.Detail())
	}
	t.Errorf("%s %s: want a failure \"expected %s, saw %s\", got:\n  %s", check, target, expected, seen, strings.Join(got, "\n  "))
}

// userLine is the config line that defines user name.
func userLine(t *testing.T, text, name string) string {
	t.Helper()
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.Contains(l, fmt.Sprintf("{ user: %q,", name)) {
			return l
		}
	}
	t.Fatalf("no config line for user %s", name)
	return ""
}

// withConfig rewrites every node's config before the first start.
func withConfig(edit func(text string) string) clusterOption {
	return func(c *testCluster) {
		c.amend = func(_ inventory.Host, text string) string { return edit(text) }
	}
}

// replaceOnce replaces old in text, failing the test if it is not there.
func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("config has no %q", old)
	}
	return strings.Replace(text, old, new, 1)
}

// A stream export from ADMIN imported by PROD, on every node: what admin
// publishes on prod.> reaches PROD's subscribers. The isolation row of
// ADMIN must say so, naming both accounts and the users.
func TestVerifyFailsOnLeakingImport(t *testing.T) {
	c := startCluster(t, withConfig(func(text string) string {
		text = replaceOnce(t, text, "  ADMIN {\n", "  ADMIN {\n    exports: [ { stream: \"prod.>\" } ]\n")
		return replaceOnce(t, text, "  PROD {\n", "  PROD {\n    imports: [ { stream: { account: ADMIN, subject: \"prod.>\" } } ]\n")
	}))

	rep := runVerify(t, c.options())
	wantFailure(t, rep, "isolation", "ADMIN", "expected message published by ADMIN/admin on prod.", "not seen in PROD, saw received by PROD/prod-user")
	onlyFailures(t, rep, "isolation ADMIN")
	// Only the ADMIN -> PROD probe leaks; the other pairs of ADMIN pass
	// and are not reported.
	if rs := findResults(rep, "isolation", "ADMIN"); len(rs) != 1 {
		t.Errorf("want one isolation row for ADMIN, got %d", len(rs))
	}
}

// An inventory asking for another version than the one running: every
// node's version row fails and shows both.
func TestVerifyFailsOnWrongVersion(t *testing.T) {
	c := startCluster(t)
	opts := c.options()
	inv := *c.inv
	inv.NATS.Version = "2.10.99"
	opts.Inventory = &inv

	rep := runVerify(t, opts)
	running := c.inv.NATS.Version
	for _, h := range []string{"n1", "n2", "n3"} {
		wantFailure(t, rep, "node/version", h, "expected nats-server 2.10.99 named "+h+", saw nats-server "+running+" named "+h)
	}
	onlyFailures(t, rep, "node/version")
}

// By hand on n3 only: dev-user may subscribe to dev.> instead of dev.*.
// The permissions row must name n3, and only n3.
func TestVerifyFailsOnWidenedSubscribe(t *testing.T) {
	c := startCluster(t)
	opts := c.options() // the digests as deployed, before the hand edit
	c.edit(c.nodes[2], `subscribe: { allow: ["dev.*", "logs.dev.*"`, `subscribe: { allow: ["dev.>", "logs.dev.*"`)

	rep := runVerify(t, opts)
	wantFailure(t, rep, "permissions", "DEV/dev-user", "expected subscribe to dev.", "(one token deeper than dev.*) refused on n3, saw accepted")
	wantFailure(t, rep, "node/digest", "n3", "the running config is not the one deployed")
	onlyFailures(t, rep, "permissions DEV/dev-user", "node/digest n3")
	for _, r := range findResults(rep, "permissions", "DEV/dev-user") {
		if !strings.HasSuffix(r.Expected, " on n3") || !strings.HasPrefix(r.Expected, "subscribe to ") {
			t.Errorf("only n3's subscribe rule was changed, yet: %s", r.Detail())
		}
	}
}

// bcrypt reads only the first 72 bytes of a password, so a server that
// stores the hash of a 72-byte password accepts that password with
// anything appended: a wrong password that logs in. The verifier's
// wrong-password probe must catch it.
func TestVerifyFailsWhenWrongPasswordAccepted(t *testing.T) {
	c := startCluster(t, func(c *testCluster) {
		pw := strings.Repeat("p", 72)
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
		if err != nil {
			t.Fatal(err)
		}
		c.pw["SERVICES/order-service"] = pw
		c.hash["order-service"] = string(h)
	})

	rep := runVerify(t, c.options())
	// Users are spread over the nodes for this probe: order-service is the
	// sixth user (index 5), so it runs on n3.
	wantFailure(t, rep, "permissions", "SERVICES/order-service", "expected login with a wrong password refused on n3, saw logged in")
	onlyFailures(t, rep, "permissions SERVICES/order-service")
	if rs := findResults(rep, "permissions", "SERVICES/order-service"); len(rs) != 1 {
		t.Errorf("want only the wrong-password row for order-service, got %d rows", len(rs))
	}
}
