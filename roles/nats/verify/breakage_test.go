package verify

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
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

func TestVerifyPasses(t *testing.T) {
	c := startCluster(t)
	rep := runVerify(t, c.options())
	if rep.Failed() != 0 {
		t.Fatalf("%d checks failed", rep.Failed())
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

	rep := runVerify(t, opts)
	wantFailure(t, rep, "node/health", "n3", "expected /healthz 200, saw", "connection refused", "client port:")
	wantFailure(t, rep, "cluster/routes", "n1", "expected routes to n2, n3, saw routes to n2")
	wantFailure(t, rep, "cluster/routes", "n2", "expected routes to n1, n3, saw routes to n1")
	wantFailure(t, rep, "system/ping", "SYS/sys-user", "expected every server answers: n1, n2, n3, saw answers from n1, n2; none from n3")
	wantFailure(t, rep, "cluster/meta", "cluster", "expected one meta leader seen by all 3 nodes, cluster_size 3, saw", "n3: down (see node/health)")
	wantFailure(t, rep, "cluster/stream", "ADMIN/admin", "expected")
	// If n3 was the meta leader, the JetStream API has no leader until the
	// others elect one, and account info goes unanswered meanwhile.
	onlyFailures(t, rep, "node/health n3", "node/version n3", "node/digest n3", "cluster/", "system/ping", "jetstream ADMIN", "jetstream DEV", "jetstream PROD")
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
	wantFailure(t, rep, "jetstream", "DEV", "expected max_mem 33554432, max_file 67108864 on n3, saw max_mem 50331648, max_file 67108864")
	wantFailure(t, rep, "jetstream", "PROD",
		"expected limits max_mem 33554432, max_file 67108864, max_streams 10, max_consumers 100, saw limits max_mem 33554432, max_file 67108864, max_streams 20, max_consumers 100")
	// When n3 is the meta leader, account info (answered by the leader
	// alone) shows DEV's change too.
	onlyFailures(t, rep, "jetstream DEV", "jetstream PROD", "node/digest")
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
