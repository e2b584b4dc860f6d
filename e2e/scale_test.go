//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

// TestScaleOutAndIn grows the cluster from 3 to 5 nodes and back with a
// stream's data intact throughout: new nodes join, the existing ones learn
// the routes by reload; a removal is refused without --allow-remove, and
// refused when a stream has more replicas than members would be left;
// with it, the departing members are stopped and taken out of the meta
// group and their replicas moved to the three left.
func TestScaleOutAndIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	three := lab.Hosts()
	five, err := lab.Resize(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var more strings.Builder
	for _, h := range five[3:] {
		fmt.Fprintf(&more, "[[hosts]]\nname = %q\naddress = %q\n\n", h.Name, h.Address)
	}
	invThree := writeInventory(t, "scale-3")
	invFive := writeInventory(t, "scale-5", replace("# ---- Tenants", more.String()+"# ---- Tenants"))
	t.Cleanup(func() {
		// Leave a 3-node cluster for the tests after this one, whatever
		// step failed: without its streams, the two extra members taken
		// out (a no-op when they already are), then the lab shrunk.
		if t.Failed() {
			if nc, err := connectAny(three, sec3(t, invThree)); err == nil {
				js, _ := jetstream.New(nc)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				for _, s := range []string{"E2E_SCALE", "E2E_SCALE_WIDE"} {
					_ = js.DeleteStream(ctx, s)
				}
				cancel()
				nc.Close()
			}
			natsdeploy(t, "apply", "--no-verify", "--allow-remove", invThree)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := lab.Resize(ctx, lab.DefaultHosts); err != nil {
			t.Errorf("shrink the lab back: %v", err)
		}
	})

	mustNatsdeploy(t, "apply", "--no-verify", invThree)
	checkCluster(t, three)
	_, sec := loadInventory(t, invThree)
	pw := sec.Password("ADMIN", "admin")
	nc := connect(t, three[0], "admin", pw)
	js, _ := jetstream.New(nc)
	// A fresh minute for each use: the applies in between take longer.
	sctx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return ctx
	}
	for _, s := range []string{"E2E_SCALE", "E2E_SCALE_WIDE"} {
		_ = js.DeleteStream(sctx(), s)
	}
	if _, err := js.CreateStream(sctx(), jetstream.StreamConfig{Name: "E2E_SCALE", Subjects: []string{"e2e.scale.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := js.Publish(sctx(), fmt.Sprintf("e2e.scale.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("scale out to 5: the new nodes join, the others reload", func(t *testing.T) {
		before := pids(t)
		out := mustNatsdeploy(t, "apply", "--no-verify", invFive)
		for _, h := range five[3:] {
			if !strings.Contains(out, "["+h.Name+"] start nats-server.service") {
				t.Errorf("%s not started:\n%s", h.Name, out)
			}
		}
		if strings.Contains(out, "restart nats-server.service (") {
			t.Errorf("existing nodes restarted for new routes:\n%s", out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs of the existing nodes changed: %v -> %v", before, after)
		}
		checkCluster(t, five)
		checkStreamNamed(t, five, pw, "E2E_SCALE", 20)
		mustNatsdeploy(t, "verify", invFive)
	})

	// A stream over all five, so the members to remove hold replicas.
	if _, err := js.CreateStream(sctx(), jetstream.StreamConfig{Name: "E2E_SCALE_WIDE", Subjects: []string{"e2e.wide.>"}, Replicas: 5, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := js.Publish(sctx(), fmt.Sprintf("e2e.wide.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("scale in without --allow-remove is refused", func(t *testing.T) {
		before := pids(t)
		out, code := natsdeploy(t, "apply", invThree)
		if code != 2 || !strings.Contains(out, "nats-4") || !strings.Contains(out, "nats-5") || !strings.Contains(out, "--allow-remove") || !strings.Contains(out, "nothing was changed") {
			t.Errorf("exit %d, want 2 naming nats-4, nats-5 and --allow-remove:\n%s", code, out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed: %v -> %v", before, after)
		}
		plan := mustNatsdeploy(t, "plan", invThree)
		if !strings.Contains(plan, "nats-4") || !strings.Contains(plan, "not in the inventory") {
			t.Errorf("plan does not show the departures:\n%s", plan)
		}
	})

	t.Run("scale in that would leave an R5 stream short is refused", func(t *testing.T) {
		out, code := natsdeploy(t, "apply", "--allow-remove", invThree)
		if code == 0 || !strings.Contains(out, "stream E2E_SCALE_WIDE in account ADMIN has 5 replicas, and 3 members would be left") || !strings.Contains(out, "nothing was changed") {
			t.Errorf("exit %d, want a refusal naming the R5 stream:\n%s", code, out)
		}
		for _, h := range five[3:] {
			if got := hostExec(t, h, "systemctl is-active nats-server.service || true"); got != "active" {
				t.Errorf("%s's nats-server is %s after a refused removal", h.Name, got)
			}
		}
	})

	t.Run("scale in to 3 moves the replicas and removes the peers", func(t *testing.T) {
		if _, err := js.UpdateStream(sctx(), jetstream.StreamConfig{Name: "E2E_SCALE_WIDE", Subjects: []string{"e2e.wide.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		out := mustNatsdeploy(t, "apply", "--allow-remove", invThree)
		for _, h := range five[3:] {
			if !strings.Contains(out, "removed "+h.Name+" from the JetStream meta group") {
				t.Errorf("no peer removal of %s:\n%s", h.Name, out)
			}
			if got := hostExec(t, h, "systemctl is-active nats-server.service || true"); got == "active" {
				t.Errorf("%s's nats-server still runs", h.Name)
			}
			if got := hostExec(t, h, "systemctl is-enabled nats-server.service || true"); got != "disabled" {
				t.Errorf("%s's nats-server is %s, want disabled", h.Name, got)
			}
			// Its files stay: destroy is for that.
			hostExec(t, h, "test -d /var/lib/nats")
		}
		checkCluster(t, three) // cluster_size 3: the peers are gone
		for name, want := range map[string]uint64{"E2E_SCALE": 20, "E2E_SCALE_WIDE": 10} {
			checkReplicaStates(t, three, name, want)
		}
		if !strings.Contains(out, "verify passed") {
			t.Errorf("apply's verify did not pass:\n%s", out)
		}
	})
}

func sec3(t *testing.T, inv string) string {
	_, sec := loadInventory(t, inv)
	return sec.Password("ADMIN", "admin")
}

// connectAny connects as admin to the first node that answers.
func connectAny(hosts []lab.Host, pw string) (*nats.Conn, error) {
	var urls []string
	for _, h := range hosts {
		urls = append(urls, "nats://"+h.Address+":4222")
	}
	return nats.Connect(strings.Join(urls, ","), tlsOpt(), nats.UserInfo("admin", pw), nats.Timeout(5*time.Second))
}
