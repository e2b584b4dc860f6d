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

// TestRestart: `natsdeploy restart` rolls every node, one at a time, the
// meta leader last, with an R3 stream readable throughout and after;
// --host restarts that node alone; with a node down it refuses before
// touching any, naming the node. It leaves the cluster as apply made it.
func TestRestart(t *testing.T) {
	hosts := lab.Hosts()
	base := writeInventory(t, "restart-cmd")
	mustNatsdeploy(t, "apply", "--no-verify", base)
	checkCluster(t, hosts)
	_, sec := loadInventory(t, base)
	adminPw := sec.Password("ADMIN", "admin")

	const name = "E2E_RESTART"
	// Each use connects afresh, through a node that is up: a restart
	// closes the connections of the node it takes down.
	withJS := func(h lab.Host, f func(ctx context.Context, js jetstream.JetStream) error) error {
		nc, err := nats.Connect("nats://"+h.Address+":4222", tlsOpt(), nats.UserInfo("admin", adminPw), nats.Timeout(5*time.Second), nats.NoReconnect())
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return f(ctx, js)
	}
	err := withJS(hosts[0], func(ctx context.Context, js jetstream.JetStream) error {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"e2e.restart.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
			return fmt.Errorf("create R3 stream: %w", err)
		}
		for i := 0; i < 10; i++ {
			if _, err := js.Publish(ctx, fmt.Sprintf("e2e.restart.%d", i), []byte("x")); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		withJS(hosts[0], func(ctx context.Context, js jetstream.JetStream) error { return js.DeleteStream(ctx, name) })
	})
	streamHas := func(t *testing.T, want uint64) {
		t.Helper()
		for _, h := range hosts {
			eventually(t, time.Minute, name+" intact through "+h.Name, func() error {
				return withJS(h, func(ctx context.Context, js jetstream.JetStream) error {
					s, err := js.Stream(ctx, name)
					if err != nil {
						return err
					}
					info, err := s.Info(ctx)
					if err != nil {
						return err
					}
					if info.State.Msgs != want {
						return fmt.Errorf("%d messages, want %d", info.State.Msgs, want)
					}
					return nil
				})
			})
		}
	}

	t.Run("restart rolls every node, the meta leader last", func(t *testing.T) {
		before := pids(t)
		leader := metaLeader(t, hosts)
		stop := watchHealth(t, hosts)
		out := mustNatsdeploy(t, "restart", base)
		if most, seen, worst := stop(); most > 1 {
			t.Errorf("%d nodes down at once during the restart (%s; of %d polls)", most, worst, seen)
		}
		checkRollOrder(t, out, len(hosts), leader)
		order := rollOrder(out)
		if want := "nats-server.service: restarted on " + strings.Join(order, ", "); !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
		after := pids(t)
		for h, p := range before {
			if after[h] == p {
				t.Errorf("%s was not restarted (PID %d)", h, p)
			}
		}
		checkCluster(t, hosts)
		streamHas(t, 10)
	})

	t.Run("--host restarts that node alone", func(t *testing.T) {
		before := pids(t)
		out := mustNatsdeploy(t, "restart", "--host", "nats-2", base)
		if got := rollOrder(out); fmt.Sprint(got) != "[nats-2]" || !strings.Contains(out, "(1 of 1, one host at a time") {
			t.Errorf("restarted %v:\n%s", got, out)
		}
		after := pids(t)
		for h, p := range before {
			if (after[h] != p) != (h == "nats-2") {
				t.Errorf("%s: PID %d -> %d", h, p, after[h])
			}
		}
		streamHas(t, 10)
	})

	t.Run("with a node down it refuses and restarts nothing", func(t *testing.T) {
		hostExec(t, hosts[2], "systemctl stop nats-server.service")
		before := map[string]string{}
		for _, h := range hosts[:2] {
			before[h.Name] = hostExec(t, h, "systemctl show -p MainPID --value nats-server.service")
		}
		out, code := natsdeploy(t, "restart", "--host", "nats-1", base)
		if code != 1 || !strings.Contains(out, "host nats-3: nats-server.service is not ready") || !strings.Contains(out, "nothing was restarted") {
			t.Errorf("exit %d, want 1 naming nats-3:\n%s", code, out)
		}
		for _, h := range hosts[:2] {
			if got := hostExec(t, h, "systemctl show -p MainPID --value nats-server.service"); got != before[h.Name] {
				t.Errorf("%s: PID %s -> %s though restart refused", h.Name, before[h.Name], got)
			}
		}
		// Put nats-3 back the way an operator would.
		out = mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "[nats-3] start nats-server.service") {
			t.Errorf("apply did not start nats-3:\n%s", out)
		}
		checkCluster(t, hosts)
		streamHas(t, 10)
	})
}
