//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

type verifyResult struct {
	Check    string `json:"check"`
	Target   string `json:"target"`
	OK       bool   `json:"ok"`
	Skipped  bool   `json:"skipped"`
	Expected string `json:"expected"`
	Seen     string `json:"seen"`
}

// verifyJSON runs `natsdeploy verify --json` and returns its exit code and
// the failed results.
func verifyJSON(t *testing.T, inv string) (int, []verifyResult) {
	t.Helper()
	cmd := exec.Command(binary, "verify", "--json", inv)
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("verify: %v", err)
		}
		code = ee.ExitCode()
	}
	var rep struct {
		OK      bool           `json:"ok"`
		Results []verifyResult `json:"results"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("verify --json printed no JSON: %v\n%s", err, out)
	}
	if len(rep.Results) < 20 {
		t.Fatalf("verify ran only %d checks", len(rep.Results))
	}
	var failed []verifyResult
	for _, r := range rep.Results {
		if !r.OK && !r.Skipped {
			failed = append(failed, r)
		}
		// A dashboard panel whose source role the lab leaves disabled is
		// skipped by design, saying so.
		if r.Skipped && code == 0 && !strings.Contains(r.Seen, "is disabled") {
			t.Errorf("verify skipped %s %s on a healthy cluster: %s", r.Check, r.Target, r.Seen)
		}
	}
	if rep.OK != (len(failed) == 0) || (code == 0) != (len(failed) == 0) {
		t.Errorf("exit %d, ok %v, but %d failures", code, rep.OK, len(failed))
	}
	return code, failed
}

// expectFailure asserts that verify fails, and that one failure is the
// check on target (or on "target@node") with its message containing each
// of words.
func expectFailure(t *testing.T, inv, check, target string, words ...string) {
	t.Helper()
	code, failed := verifyJSON(t, inv)
	if code == 0 {
		t.Fatalf("verify passed on a cluster broken on purpose (want %s %s to fail)", check, target)
	}
	for _, f := range failed {
		if f.Check != check || f.Target != target && !strings.HasPrefix(f.Target, target+"@") {
			continue
		}
		text := f.Target + " | " + f.Expected + " | " + f.Seen
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s %s failed, but its message %q does not mention %q", check, target, text, w)
			}
		}
		return
	}
	t.Errorf("no %s failure on %s; failures were: %+v", check, target, failed)
}

func expectPass(t *testing.T, inv string) {
	t.Helper()
	if code, failed := verifyJSON(t, inv); code != 0 {
		t.Fatalf("verify failed (exit %d): %+v", code, failed)
	}
}

// TestVerifyCatchesBreakage deploys the lab inventory, proves verify
// passes, then breaks the cluster by hand one way at a time: verify must
// fail with the right message, and apply must repair it.
func TestVerifyCatchesBreakage(t *testing.T) {
	hosts := lab.Hosts()
	inv := writeInventory(t, "verify")
	out := mustNatsdeploy(t, "apply", inv) // apply runs verify at its end
	if !strings.Contains(out, "verify passed") {
		t.Fatalf("apply did not end with a passing verify:\n%s", out)
	}
	expectPass(t, inv)
	if out := hostExec(t, hosts[0], "ls /var/lib/nats/jetstream/ADMIN/streams 2>/dev/null || true"); strings.Contains(out, "NATSDEPLOY_VERIFY") {
		t.Errorf("verify left its stream behind: %s", out)
	}

	repair := func(t *testing.T) {
		t.Helper()
		mustNatsdeploy(t, "apply", "--no-verify", inv)
		expectPass(t, inv)
	}

	// verify just passed on these configs: an apply that changes nothing
	// takes permissions, isolation and quotas from its proofs, and
	// --full-verify checks them again.
	t.Run("no-op apply reuses proofs", func(t *testing.T) {
		const proven = "proven by an earlier run on the same config"
		out := mustNatsdeploy(t, "apply", inv)
		if !strings.Contains(out, "nothing to do") || !strings.Contains(out, "verify passed") || !strings.Contains(out, proven) ||
			!strings.Contains(out, "(as this apply read them)") {
			t.Errorf("a no-op apply after verify:\n%s", out)
		}
		out = mustNatsdeploy(t, "apply", "--full-verify", inv)
		if !strings.Contains(out, "verify passed") || strings.Contains(out, proven) {
			t.Errorf("apply --full-verify:\n%s", out)
		}
	})

	t.Run("node stopped", func(t *testing.T) {
		hostExec(t, hosts[2], "systemctl stop nats-server.service")
		expectFailure(t, inv, "node/health", "nats-3", "/healthz")
		expectFailure(t, inv, "system/ping", "SYS/sys-user", "none from nats-3")
		repair(t)
	})

	t.Run("permission widened by hand on one node", func(t *testing.T) {
		hostExec(t, hosts[1], `sed -i 's/allow: \["dev\.\*", /allow: ["dev.>", /' /etc/nats/accounts.conf && systemctl reload nats-server.service`)
		time.Sleep(time.Second)
		expectFailure(t, inv, "permissions", "DEV/dev-user", "nats-2", "one token deeper than dev.*", "accepted")
		expectFailure(t, inv, "node/config", "nats-2", "/etc/nats/accounts.conf changed")
		plan := mustNatsdeploy(t, "plan", inv)
		if !strings.Contains(plan, "nats-1: no changes") || !strings.Contains(plan, "update /etc/nats/accounts.conf") {
			t.Errorf("plan should repair accounts.conf on nats-2 only:\n%s", plan)
		}
		repair(t)
	})

	t.Run("user removed by hand", func(t *testing.T) {
		hostExec(t, hosts[0], `sed -i 's/user: "order-service"/user: "order-service-gone"/' /etc/nats/accounts.conf && systemctl reload nats-server.service`)
		time.Sleep(time.Second)
		expectFailure(t, inv, "permissions", "SERVICES/order-service", "nats-1", "Authorization Violation")
		repair(t)
	})

	t.Run("account quota changed by hand", func(t *testing.T) {
		for _, h := range hosts {
			hostExec(t, h, `sed -i '/"DEV" {/,/max_streams/ s/max_streams: [0-9]*/max_streams: 7/' /etc/nats/accounts.conf && systemctl reload nats-server.service`)
		}
		time.Sleep(time.Second)
		expectFailure(t, inv, "jetstream", "DEV", "7")
		repair(t)
	})

	t.Run("natscli contexts work for every tenant", func(t *testing.T) {
		natscli := os.Getenv("NATSCLI_BIN")
		if natscli == "" {
			natscli = filepath.Join(root, "bin", "tools", "nats")
		}
		if _, err := os.Stat(natscli); err != nil {
			t.Fatalf("natscli not found at %s (make tools installs it): %v", natscli, err)
		}
		cfg := t.TempDir()
		ctxDir := filepath.Join(cfg, "nats", "context")
		out := mustNatsdeploy(t, "contexts", "--dir", ctxDir, inv)
		cases := []struct {
			user, allowed, refused string
		}{
			{"admin", "anything.at.all", ""},
			{"dev-user", "dev.orders", "prod.orders"},
			{"prod-user", "alerts.disk", "dev.orders"},
			{"monitor-user", "any.subject", ""},
			{"order-service", "services.order.create", "services.payment.charge"},
			{"sys-user", "$SYS.natsdeploy.test", "dev.orders"},
		}
		for _, c := range cases {
			name := contextName(t, out, c.user)
			fi, err := os.Stat(filepath.Join(ctxDir, name+".json"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("context file of %s: %v mode %v", c.user, err, fi)
				continue
			}
			pub := func(subject string) (string, error) {
				cmd := exec.Command(natscli, "--context", name, "pub", subject, "hello", "--timeout", "3s")
				cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+cfg)
				b, err := cmd.CombinedOutput()
				return string(b), err
			}
			if out, err := pub(c.allowed); err != nil || strings.Contains(out, "Permissions Violation") {
				t.Errorf("nats --context %s pub %s: %v\n%s", name, c.allowed, err, out)
			}
			if c.refused != "" {
				if out, err := pub(c.refused); err == nil || !strings.Contains(out, "Permissions Violation") {
					t.Errorf("nats --context %s pub %s was not refused: %v\n%s", name, c.refused, err, out)
				}
			}
		}
	})
}

// contextName finds the context of user in the output of `contexts`.
func contextName(t *testing.T, out, user string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasSuffix(f[0], "-"+user) {
			return f[0]
		}
	}
	t.Fatalf("no context for %s in:\n%s", user, out)
	return ""
}

// burnCPUs keeps every CPU of this machine busy (the lab's hosts share
// them) until stop is called or limit passes.
func burnCPUs(t *testing.T, limit time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	var cmds []*exec.Cmd
	for i := 0; i < runtime.NumCPU(); i++ {
		c := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			cancel()
			t.Fatalf("start CPU burner: %v", err)
		}
		cmds = append(cmds, c)
	}
	stop = func() {
		cancel()
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// Verify must give the same verdict with the control machine's CPUs
// saturated: a slow login is retried, never reported as a refused
// permission, and nothing is skipped on a healthy cluster.
func TestVerifyUnderCPULoad(t *testing.T) {
	inv := writeInventory(t, "cpu")
	mustNatsdeploy(t, "apply", "--no-verify", inv)
	checkCluster(t, lab.Hosts())
	expectPass(t, inv)
	stop := burnCPUs(t, 5*time.Minute)
	start := time.Now()
	expectPass(t, inv)
	t.Logf("verify passed with %d CPU burners in %s", runtime.NumCPU(), time.Since(start).Round(time.Millisecond))
	stop()
}
