//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

const stream = "E2E_ORDERS"

// TestLifecycle walks one cluster through a life: first deploy, no-op
// re-apply, reloadable and restart-class changes, a refused apply with a
// host down, a killed apply, and the loss of a node. It is one test because
// each step starts from the state the previous one left, as in real life.
func TestLifecycle(t *testing.T) {
	hosts := lab.Hosts()
	base := writeInventory(t, "base")

	t.Run("bad inventory changes nothing", func(t *testing.T) {
		bad := writeInventory(t, "bad", replace(`"dev.*", "logs.dev.*"`, `"dev..x", "logs.dev.*"`))
		out, code := natsdeploy(t, "apply", bad)
		if code != 2 || !strings.Contains(out, "bad.toml:") || !strings.Contains(out, "dev..x") {
			t.Fatalf("exit %d, want 2 with file:line naming the subject:\n%s", code, out)
		}
		if got := hostExec(t, hosts[0], "test -e /etc/nats && echo present || echo absent"); got != "absent" {
			t.Fatalf("/etc/nats is %s on %s after a refused apply", got, hosts[0].Name)
		}
	})

	t.Run("first apply forms the cluster", func(t *testing.T) {
		out := mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "start nats-server.service") {
			t.Errorf("first apply did not start the service:\n%s", out)
		}
		checkCluster(t, hosts)
		checkHostSecurity(t, hosts[0])
	})

	inv, sec := loadInventory(t, base)
	adminPw := sec.Password("ADMIN", "admin")
	checkNoPlaintext(t, hosts, inv, sec)

	t.Run("R3 stream written", func(t *testing.T) {
		nc := connect(t, hosts[0], "admin", adminPw)
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"e2e.orders.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
			t.Fatalf("create R3 stream: %v", err)
		}
		for i := 0; i < 20; i++ {
			if _, err := js.Publish(ctx, fmt.Sprintf("e2e.orders.%d", i), []byte("order")); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	})

	t.Run("re-apply changes nothing", func(t *testing.T) {
		before := pids(t)
		sumsBefore := sums(t, hosts)
		out := mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "nothing to do") || strings.Contains(out, "update ") || strings.Contains(out, "create ") || strings.Contains(out, "restart nats") {
			t.Errorf("re-apply did something:\n%s", out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed on a no-op apply: %v -> %v", before, after)
		}
		if after := sums(t, hosts); fmt.Sprint(after) != fmt.Sprint(sumsBefore) {
			t.Errorf("files changed on a no-op apply")
		}
		out = mustNatsdeploy(t, "plan", base)
		if !strings.Contains(out, "nothing to do") {
			t.Errorf("plan on a converged cluster:\n%s", out)
		}
	})

	t.Run("permission change reloads, no restart", func(t *testing.T) {
		changed := writeInventory(t, "perm", replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`))
		devPw := sec.Password("DEV", "dev-user")
		nc := connect(t, hosts[1], "dev-user", devPw)
		if err := publishErr(nc, "tools.dev.x"); err == nil {
			t.Fatal("tools.dev.x allowed before the change: the check below proves nothing")
		}
		nc.Close()

		plan := mustNatsdeploy(t, "plan", changed)
		if !strings.Contains(plan, "update /etc/nats/accounts.conf") || strings.Contains(plan, "update /etc/nats/nats-server.conf") ||
			!strings.Contains(plan, `+     "tools.dev.*"`) && !strings.Contains(plan, "tools.dev.*") || !strings.Contains(plan, "reload nats-server.service") {
			t.Errorf("plan for a permission change:\n%s", plan)
		}
		if strings.Contains(plan, "$2a$") {
			t.Errorf("plan shows a bcrypt hash:\n%s", plan)
		}
		before := pids(t)
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		// With TLS on (lab.toml) the proof also names the certificate served.
		if !regexp.MustCompile(`reload confirmed: config_digest( and the certificate served)? sha256:`).MatchString(out) {
			t.Errorf("reload not confirmed by digest:\n%s", out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed on a reload: %v -> %v", before, after)
		}
		nc = connect(t, hosts[1], "dev-user", devPw)
		if err := publishErr(nc, "tools.dev.x"); err != nil {
			t.Errorf("tools.dev.x still refused after reload: %v", err)
		}
		nc.Close()
		base = changed
	})

	t.Run("quota change reloads", func(t *testing.T) {
		changed := writeInventory(t, "quota",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`max_streams = 1000`, `max_streams = 500`))
		before := pids(t)
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		if !strings.Contains(out, "update /etc/nats/accounts.conf") || strings.Contains(out, "update /etc/nats/nats-server.conf") {
			t.Errorf("apply touched the wrong files:\n%s", out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed: %v -> %v", before, after)
		}
		nc := connect(t, hosts[2], "admin", adminPw)
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ai, err := js.AccountInfo(ctx)
		if err != nil || ai.Limits.MaxStreams != 500 {
			t.Errorf("ADMIN max_streams after reload = %+v, %v; want 500", ai, err)
		}
		checkStream(t, hosts, adminPw, 20)
		base = changed
	})

	t.Run("restart-class change rolls one node at a time", func(t *testing.T) {
		changed := writeInventory(t, "restart",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "50MB"`),
			replace(`max_streams = 1000`, `max_streams = 500`),
			replace(`max_file_store = "4GB"`, `max_file_store = "5GB"`))
		// nats-server refuses to reload a new log size limit, so it is a
		// restart-class change like the store limit.
		plan := mustNatsdeploy(t, "plan", changed)
		if !strings.Contains(plan, "update /etc/nats/nats-server.conf") || strings.Contains(plan, "update /etc/nats/accounts.conf") {
			t.Errorf("plan:\n%s", plan)
		}
		before := pids(t)
		leader := metaLeader(t, hosts)
		stop := watchHealth(t, hosts)
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		if most, seen, worst := stop(); most > 1 {
			t.Errorf("%d nodes were down at once during the roll (%s; of %d polls); want at most 1", most, worst, seen)
		} else {
			t.Logf("at most %d node down at once over %d polls", most, seen)
		}
		for _, h := range hosts {
			var v struct {
				JetStream struct {
					Config struct {
						MaxStorage int64 `json:"max_storage"`
					} `json:"config"`
				} `json:"jetstream"`
			}
			monitor(t, h, "/varz", &v)
			if v.JetStream.Config.MaxStorage != 5<<30 {
				t.Errorf("%s: max_storage %d after the roll, want 5GB", h.Name, v.JetStream.Config.MaxStorage)
			}
		}
		checkRollOrder(t, out, len(hosts), leader)
		after := pids(t)
		for h, p := range before {
			if after[h] == p {
				t.Errorf("%s was not restarted (PID %d)", h, p)
			}
		}
		checkStream(t, hosts, adminPw, 20)
		base = changed
	})

	t.Run("new route password with a restart-class change: reload first, then roll", func(t *testing.T) {
		t.Setenv("E2E_ROUTE_PASSWORD", "rotated-route-password-0123")
		changed := writeInventory(t, "rotate",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "50MB"`),
			replace(`max_streams = 1000`, `max_streams = 500`),
			replace(`cluster_name = "nats-cluster"`, "cluster_name = \"nats-cluster\"\nroute_password_env = \"E2E_ROUTE_PASSWORD\""),
			replace(`max_file_store = "4GB"`, `max_file_store = "7GB"`))
		out := mustNatsdeploy(t, "apply", "--no-verify", changed)
		reloaded := strings.LastIndex(out, "reload confirmed")
		rolled := strings.Index(out, "(1 of 3, one host at a time")
		if !strings.Contains(out, "reloadable changes go first") || reloaded < 0 || rolled < reloaded ||
			!strings.Contains(out, "update /etc/nats/routes.conf") {
			t.Errorf("route password not reloaded everywhere before the restarts:\n%s", out)
		}
		checkCluster(t, hosts)
		checkStream(t, hosts, adminPw, 20)
		base = changed
	})

	t.Run("apply with a host down is refused and changes nothing", func(t *testing.T) {
		changed := writeInventory(t, "down", replace(`"prod.*", "logs.prod.*"`, `"prod.*", "tools.prod.*", "logs.prod.*"`))
		up := []lab.Host{hosts[0], hosts[2]}
		before := sums(t, up)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.Stop(ctx, hosts[1].Container); err != nil {
			t.Fatal(err)
		}
		out, code := natsdeploy(t, "apply", changed)
		if err := lab.Start(ctx, hosts[1].Container); err != nil {
			t.Fatal(err)
		}
		if code == 0 || !strings.Contains(out, "nats-2") || !strings.Contains(out, "nothing was changed") {
			t.Errorf("apply with nats-2 down: exit %d\n%s", code, out)
		}
		if after := sums(t, up); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("files changed on the hosts that were up")
		}
		// The node comes back by itself: the unit is enabled.
		eventually(t, 2*time.Minute, "nats-2 healthy after its host restarted", func() error {
			if code := monitor(t, hosts[1], "/healthz", nil); code != 200 {
				return fmt.Errorf("/healthz %d", code)
			}
			return nil
		})
		checkStream(t, hosts, adminPw, 20)
	})

	t.Run("killed apply is finished by the next apply", func(t *testing.T) {
		changed := writeInventory(t, "killed",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "50MB"`),
			replace(`max_streams = 1000`, `max_streams = 500`),
			replace(`max_file_store = "4GB"`, `max_file_store = "6GB"`))
		before := pids(t)
		// Killed while the first host of the roll is down in the middle of
		// its restart: its MainPID has changed or its /healthz is not
		// 200. The worst moment.
		first := ""
		killWhen(t, changed, func(out string) bool {
			order := rollOrder(out)
			if len(order) == 0 {
				return false
			}
			first = order[0]
			h, err := lab.Lookup(first)
			if err != nil {
				t.Fatal(err)
			}
			pid := hostExec(t, h, "systemctl show -p MainPID --value nats-server.service")
			return pid != strconv.Itoa(before[first]) || healthz(h) != 200
		})
		// The other two were never restarted: each still owes it.
		for _, h := range hosts {
			if h.Name == first {
				continue
			}
			if got := hostExec(t, h, "cat /var/lib/natsdeploy/pending-nats-server.service 2>/dev/null || echo none"); got != "restart" {
				t.Errorf("%s: pending handler %q after the kill, want restart", h.Name, got)
			}
		}
		plan := mustNatsdeploy(t, "plan", changed)
		if strings.Count(plan, "restart nats-server.service") < 2 || strings.Contains(plan, "update /etc/nats/") {
			t.Errorf("after the kill, plan should show only the restarts still owed:\n%s", plan)
		}
		mustNatsdeploy(t, "apply", "--no-verify", changed)
		for _, h := range hosts {
			if got := hostExec(t, h, "ls -a /etc/nats /usr/local/bin /var/lib/natsdeploy | grep -e natsdeploy-stage -e natsdeploy-new -e pending- || true"); got != "" {
				t.Errorf("%s: left behind after the repair: %s", h.Name, got)
			}
		}
		after := pids(t)
		for h, p := range before {
			if after[h] == p {
				t.Errorf("%s never restarted into its new config (PID %d)", h, p)
			}
		}
		if out := mustNatsdeploy(t, "plan", changed); !strings.Contains(out, "nothing to do") {
			t.Errorf("not converged after the repair run:\n%s", out)
		}
		checkStream(t, hosts, adminPw, 20)
		base = changed
	})

	t.Run("apply killed between commit and handlers is finished by the next", func(t *testing.T) {
		changed := writeInventory(t, "killed2",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "40MB"`),
			replace(`max_streams = 1000`, `max_streams = 500`),
			replace(`max_file_store = "4GB"`, `max_file_store = "6GB"`))
		before := pids(t)
		// The owed handler is written on every host before any file is
		// swapped in; kill as soon as the last host shows it, before a
		// restart is under way.
		killWhen(t, changed, func(string) bool {
			return hostExec(t, hosts[2], "cat /var/lib/natsdeploy/pending-nats-server.service 2>/dev/null || true") == "restart"
		})
		owed := 0
		for _, h := range hosts {
			if hostExec(t, h, "cat /var/lib/natsdeploy/pending-nats-server.service 2>/dev/null || true") == "restart" {
				owed++
			}
		}
		if owed < 2 {
			t.Errorf("%d hosts record the restart they owe after the kill, want at least 2", owed)
		}
		if plan := mustNatsdeploy(t, "plan", changed); !strings.Contains(plan, "restart nats-server.service") {
			t.Errorf("plan does not show the owed restarts:\n%s", plan)
		}
		mustNatsdeploy(t, "apply", "--no-verify", changed)
		after := pids(t)
		for h, p := range before {
			if after[h] == p {
				t.Errorf("%s never restarted into its new config (PID %d)", h, p)
			}
		}
		if out := mustNatsdeploy(t, "plan", changed); !strings.Contains(out, "nothing to do") {
			t.Errorf("not converged after the repair run:\n%s", out)
		}
		checkStream(t, hosts, adminPw, 20)
		base = changed
	})

	t.Run("R3 stream survives the loss of a node", func(t *testing.T) {
		// Killed, not stopped: no lame duck, no flush. Then held down
		// (stopped before systemd's restart) for the next apply to find.
		hostExec(t, hosts[2], "kill -9 $(systemctl show -p MainPID --value nats-server.service) && sleep 0.5 && systemctl stop nats-server.service")
		checkStream(t, hosts[:2], adminPw, 20)
		checkReplicas(t, hosts[:2], 20)
		nc := connect(t, hosts[0], "admin", adminPw)
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, "e2e.orders.during-outage", []byte("x")); err != nil {
			t.Errorf("publish with one node down: %v", err)
		}
	})

	t.Run("apply restarts the stopped node and converges", func(t *testing.T) {
		out := mustNatsdeploy(t, "apply", "--no-verify", base)
		if !strings.Contains(out, "[nats-3] start nats-server.service") {
			t.Errorf("apply did not start the stopped node:\n%s", out)
		}
		checkCluster(t, hosts)
		checkStream(t, hosts, adminPw, 21)
		// The killed node caught up: its own copy holds every message.
		checkReplicas(t, hosts, 21)
	})

	t.Run("upgrade rolls the new nats-server in and keeps the stream", func(t *testing.T) {
		upgraded := writeInventory(t, "upgrade",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`log_max_size = "100MB"`, `log_max_size = "40MB"`), // as the last killed apply left it
			replace(`max_streams = 1000`, `max_streams = 500`),
			replace(`max_file_store = "4GB"`, `max_file_store = "6GB"`),
			replace(`version = "2.14.9"`, `version = "2.15.2"`))
		plan := mustNatsdeploy(t, "plan", upgraded)
		if !strings.Contains(plan, "update /usr/local/bin/nats-server") || strings.Contains(plan, "update /etc/nats/") {
			t.Errorf("an upgrade should change the binary only:\n%s", plan)
		}
		out := mustNatsdeploy(t, "apply", upgraded) // and verify: version 2.15.2 everywhere
		if len(rollOrder(out)) != 3 || !strings.Contains(out, "verify passed") {
			t.Errorf("upgrade did not roll and verify:\n%s", out)
		}
		for _, h := range hosts {
			var v struct {
				Version string `json:"version"`
			}
			monitor(t, h, "/varz", &v)
			if v.Version != "2.15.2" {
				t.Errorf("%s runs %s after the upgrade", h.Name, v.Version)
			}
		}
		checkStream(t, hosts, adminPw, 21)
	})
}

// restartLine is apply's (and restart's) line for one step of a roll.
var restartLine = regexp.MustCompile(`\[(\S+)\] restart nats-server\.service \((\d+) of (\d+), one host at a time`)

// rollOrder returns the hosts the output says were restarted, in order.
func rollOrder(out string) []string {
	var order []string
	for _, m := range restartLine.FindAllStringSubmatch(out, -1) {
		order = append(order, m[1])
	}
	return order
}

// checkRollOrder asserts a roll of n hosts in the output: each host once,
// each healthy again before the next went down, and the meta leader from
// before the roll last, said so.
func checkRollOrder(t *testing.T, out string, n int, leader string) {
	t.Helper()
	order := rollOrder(out)
	seen := map[string]bool{}
	for _, h := range order {
		seen[h] = true
	}
	if len(order) != n || len(seen) != n {
		t.Fatalf("roll restarted %v, want each of %d hosts once:\n%s", order, n, out)
	}
	for i := 0; i+1 < n; i++ {
		healthy := strings.Index(out, "["+order[i]+"] nats-server.service restarted and healthy")
		// The roll's own line, not the plan's "restart ... (rolling".
		next := strings.Index(out, fmt.Sprintf("[%s] restart nats-server.service (%d of %d", order[i+1], i+2, n))
		if healthy < 0 || next < healthy {
			t.Fatalf("%s went down before %s was healthy again:\n%s", order[i+1], order[i], out)
		}
	}
	if order[n-1] != leader || !strings.Contains(out, fmt.Sprintf("[%s] restart nats-server.service (%d of %d, one host at a time; the JetStream meta leader, so last)", leader, n, n)) {
		t.Errorf("the meta leader before the roll was %s; the roll went %v:\n%s", leader, order, out)
	}
}

// metaLeader returns the JetStream meta leader every node names.
func metaLeader(t *testing.T, hosts []lab.Host) string {
	t.Helper()
	var leader string
	eventually(t, time.Minute, "one meta leader", func() error {
		seen := map[string]bool{}
		for _, h := range hosts {
			var jz struct {
				Meta struct {
					Leader string `json:"leader"`
				} `json:"meta_cluster"`
			}
			monitor(t, h, "/jsz", &jz)
			seen[jz.Meta.Leader] = true
			leader = jz.Meta.Leader
		}
		if len(seen) != 1 || leader == "" {
			return fmt.Errorf("nodes name %v", seen)
		}
		return nil
	})
	return leader
}

// killWhen starts an apply and kills it (SIGKILL, no cleanup) as soon as
// cond, asked after every chunk of output and every 50ms, holds.
func killWhen(t *testing.T, inv string, cond func(out string) bool) {
	t.Helper()
	cmd := exec.Command(binary, "apply", "--no-verify", inv)
	var mu sync.Mutex
	var seen strings.Builder
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			mu.Lock()
			seen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	killed := false
	for !killed && time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("apply finished before the moment to kill it came:\n%s", seen.String())
		case <-time.After(50 * time.Millisecond):
		}
		mu.Lock()
		out := seen.String()
		mu.Unlock()
		if cond(out) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	<-done
	pr.Close()
	if !killed {
		t.Fatalf("the moment to kill apply never came:\n%s", seen.String())
	}
	t.Logf("killed apply after:\n%s", seen.String())
}

// healthz returns a node's liveness (/healthz?js-enabled-only=true), 0
// when it does not answer. Liveness, not the full /healthz: that one also
// fails on a node that is up while one of its stream replicas catches up
// with a peer that just restarted, which is every roll's normal course.
func healthz(h lab.Host) int {
	code, _ := healthzErr(h)
	return code
}

// healthzErr is healthz with why there was no answer (code 0).
func healthzErr(h lab.Host) (int, error) {
	resp, err := monitorClient(time.Second).Get(monitorURL(h, "/healthz?js-enabled-only=true"))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// watchHealth polls every node's liveness until stop is called, which
// returns the most nodes seen down in one round, the rounds, and which
// nodes those were. A node is down when it answers anything but 200 or
// refuses the connection; a poll that times out says nothing either way
// (on this shared machine the lab's hosts can be starved of CPU for a
// second), so a round with one is left out, and stop fails the test when
// that leaves fewer than half the rounds.
func watchHealth(t *testing.T, hosts []lab.Host) (stop func() (most, rounds int, worst string)) {
	t.Helper()
	type result struct {
		most, rounds, unsure int
		worst                string
	}
	quit := make(chan struct{})
	done := make(chan result)
	go func() {
		var r result
		for {
			select {
			case <-quit:
				done <- r
				return
			case <-time.After(100 * time.Millisecond):
			}
			codes := make([]int, len(hosts))
			errs := make([]error, len(hosts))
			var wg sync.WaitGroup
			for i, h := range hosts {
				wg.Add(1)
				go func() { defer wg.Done(); codes[i], errs[i] = healthzErr(h) }()
			}
			wg.Wait()
			r.rounds++
			var down []string
			unsure := false
			for i, c := range codes {
				var ne net.Error
				switch {
				case errors.As(errs[i], &ne) && ne.Timeout():
					unsure = true
				case c != 200:
					down = append(down, fmt.Sprintf("%s %d", hosts[i].Name, c))
				}
			}
			if unsure {
				r.unsure++
				continue
			}
			if len(down) > r.most {
				r.most, r.worst = len(down), strings.Join(down, ", ")
			}
		}
	}()
	return func() (int, int, string) {
		close(quit)
		r := <-done
		if r.unsure*2 > r.rounds {
			t.Errorf("watching health: %d of %d polls timed out on some node; too few to tell how many were down at once", r.unsure, r.rounds)
		}
		return r.most, r.rounds - r.unsure, r.worst
	}
}

// checkReplicas reads, from each node's own monitoring endpoint, the state
// of its own copy of the stream: every node holds every message.
func checkReplicas(t *testing.T, hosts []lab.Host, want uint64) {
	t.Helper()
	for _, h := range hosts {
		eventually(t, time.Minute, h.Name+"'s replica current", func() error {
			var jz struct {
				Accounts []struct {
					Name    string `json:"name"`
					Streams []struct {
						Name  string `json:"name"`
						State struct {
							Msgs    uint64 `json:"messages"`
							LastSeq uint64 `json:"last_seq"`
						} `json:"state"`
					} `json:"stream_detail"`
				} `json:"account_details"`
			}
			monitor(t, h, "/jsz?acc=ADMIN&streams=true", &jz)
			for _, a := range jz.Accounts {
				for _, s := range a.Streams {
					if s.Name == stream {
						if s.State.Msgs < want || s.State.LastSeq < want {
							return fmt.Errorf("its copy has %d messages (last seq %d), want %d", s.State.Msgs, s.State.LastSeq, want)
						}
						return nil
					}
				}
			}
			return fmt.Errorf("no copy of %s on %s", stream, h.Name)
		})
	}
}

func connect(t *testing.T, h lab.Host, user, pw string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://"+h.Address+":4222", tlsOpt(), nats.UserInfo(user, pw), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		t.Fatalf("connect to %s as %s: %v", h.Name, user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publishErr publishes and returns the permission error, if any.
func publishErr(nc *nats.Conn, subject string) error {
	if err := nc.Publish(subject, []byte("x")); err != nil {
		return err
	}
	if err := nc.FlushTimeout(2 * time.Second); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	return nc.LastError()
}

// checkCluster asserts routes to every peer and one agreed meta leader.
func checkCluster(t *testing.T, hosts []lab.Host) {
	t.Helper()
	eventually(t, time.Minute, "cluster formed", func() error {
		leaders := map[string]bool{}
		for _, h := range hosts {
			peers, leader, size := clusterView(t, h)
			if len(peers) != len(hosts)-1 {
				return fmt.Errorf("%s has routes to %v, want the %d other nodes", h.Name, peers, len(hosts)-1)
			}
			if leader == "" || size != len(hosts) {
				return fmt.Errorf("%s: meta leader %q, cluster size %d", h.Name, leader, size)
			}
			leaders[leader] = true
			if code := monitor(t, h, "/healthz", nil); code != 200 {
				return fmt.Errorf("%s /healthz %d", h.Name, code)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("nodes disagree on the meta leader: %v", leaders)
		}
		return nil
	})
}

// clusterView is one node's own view: the peers it routes to (each once,
// however many pooled routes), the meta leader it names and the meta
// group's size.
func clusterView(t *testing.T, h lab.Host) (peers map[string]bool, leader string, size int) {
	t.Helper()
	var rz struct {
		Routes []struct {
			RemoteName string `json:"remote_name"`
		} `json:"routes"`
	}
	monitor(t, h, "/routez", &rz)
	peers = map[string]bool{}
	for _, r := range rz.Routes {
		peers[r.RemoteName] = true
	}
	var jz struct {
		Meta struct {
			Leader      string `json:"leader"`
			ClusterSize int    `json:"cluster_size"`
		} `json:"meta_cluster"`
	}
	monitor(t, h, "/jsz", &jz)
	return peers, jz.Meta.Leader, jz.Meta.ClusterSize
}

// checkStream reads the R3 stream through each given node.
func checkStream(t *testing.T, hosts []lab.Host, pw string, want uint64) {
	t.Helper()
	checkStreamNamed(t, hosts, pw, stream, want)
}

// checkStreamNamed reads the named stream of ADMIN through each given
// node.
func checkStreamNamed(t *testing.T, hosts []lab.Host, pw, stream string, want uint64) {
	t.Helper()
	for _, h := range hosts {
		eventually(t, time.Minute, stream+" readable via "+h.Name, func() error {
			nc, err := nats.Connect("nats://"+h.Address+":4222", tlsOpt(), nats.UserInfo("admin", pw), nats.Timeout(5*time.Second), nats.NoReconnect())
			if err != nil {
				return err
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			if info.State.Msgs < want {
				return fmt.Errorf("stream has %d messages, want %d", info.State.Msgs, want)
			}
			if _, err := s.GetMsg(ctx, 1); err != nil {
				return fmt.Errorf("read message 1: %w", err)
			}
			return nil
		})
	}
}

// checkNoPlaintext asserts that no user password is anywhere on a host's
// config, log, unit or state files. The passwords go to grep on stdin, not
// on its command line.
func checkNoPlaintext(t *testing.T, hosts []lab.Host, inv *inventory.Inventory, sec *secrets.Store) {
	t.Helper()
	var pws []string
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			pws = append(pws, sec.Password(a.Name, u.Name))
		}
	}
	for _, h := range hosts {
		cmd := exec.Command("docker", "exec", "-i", h.Container, "grep", "-rlF", "-f", "-",
			"/etc/nats", "/var/log/nats", "/etc/systemd/system", "/var/lib/natsdeploy", "/usr/local/bin")
		cmd.Stdin = strings.NewReader(strings.Join(pws, "\n") + "\n")
		out, err := cmd.CombinedOutput()
		if err == nil || len(out) > 0 {
			t.Errorf("%s: a user password is in %s (%v)", h.Name, out, err)
		}
	}
}

// checkHostSecurity asserts least privilege on disk and no plaintext
// password anywhere under /etc/nats.
func checkHostSecurity(t *testing.T, h lab.Host) {
	t.Helper()
	want := map[string]string{
		"/etc/nats":                  "750 root nats",
		"/etc/nats/accounts.conf":    "640 root nats",
		"/var/lib/nats":              "750 nats nats",
		"/var/log/nats":              "750 nats nats",
		"/usr/local/bin/nats-server": "755 root root",
		"/var/lib/natsdeploy":        "700 root root",
		// lab.toml turns TLS on: the node's key is the service's alone.
		"/etc/nats/server-key.pem":  "600 nats nats",
		"/etc/nats/server-cert.pem": "640 root nats",
		"/etc/nats/ca.pem":          "640 root nats",
	}
	for p, w := range want {
		if got := hostExec(t, h, "stat -c '%a %U %G' "+p); got != w {
			t.Errorf("%s: %s is %q, want %q", h.Name, p, got, w)
		}
	}
	if got := hostExec(t, h, "ps -o user= -C nats-server"); got != "nats" {
		t.Errorf("nats-server runs as %q, want nats", got)
	}
	if got := hostExec(t, h, "test -s /var/log/nats/nats-server.log && echo ok"); got != "ok" {
		t.Errorf("no log file under /var/log/nats")
	}
}
