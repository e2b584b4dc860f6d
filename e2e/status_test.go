//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

type statusRow struct {
	Host      string   `json:"host"`
	Role      string   `json:"role"`
	Service   string   `json:"service"`
	OK        bool     `json:"ok"`
	Reachable bool     `json:"reachable"`
	State     string   `json:"state"`
	Version   string   `json:"version"`
	Config    bool     `json:"config_in_sync"`
	Problems  []string `json:"problems"`
	Details   struct {
		Routes     []string `json:"routes"`
		MetaLeader string   `json:"meta_leader"`
	} `json:"details"`
}

// statusJSON runs `natsdeploy status --json` and returns its exit code and
// rows (stdout only: the exit message goes to stderr).
func statusJSON(t *testing.T, inv string) (int, []statusRow) {
	t.Helper()
	cmd := exec.Command(binary, "status", "--json", inv)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("status: %v", err)
		}
		code = ee.ExitCode()
	}
	var doc struct {
		OK       bool        `json:"ok"`
		Services []statusRow `json:"services"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("status --json printed no JSON document: %v\n%s\n%s", err, out, stderr.String())
	}
	if doc.OK != (code == 0) {
		t.Errorf("status exit %d but ok %v", code, doc.OK)
	}
	return code, doc.Services
}

// natsRow finds the nats-server row of host.
func natsRow(rows []statusRow, host string) (statusRow, bool) {
	for _, r := range rows {
		if r.Host == host && r.Service == "nats-server.service" {
			return r, true
		}
	}
	return statusRow{}, false
}

// TestStatus: after apply, status shows every node up and in sync, routed
// to the other two, all naming one meta leader, and changes nothing on the
// hosts; with nats stopped on one node it exits 1 and names that node; with
// a node cut off the network, that node is a row saying it cannot be
// reached and the others are shown.
func TestStatus(t *testing.T) {
	hosts := lab.Hosts()
	inv := writeInventory(t, "status")
	mustNatsdeploy(t, "apply", "--no-verify", inv)

	// apply waits for the cluster to settle after what it started; a
	// route the previous test's changes dropped may take a moment more.
	var rows []statusRow
	eventually(t, time.Minute, "status exits 0 after apply", func() error {
		code, r := statusJSON(t, inv)
		rows = r
		if code != 0 {
			return fmt.Errorf("exit %d: %+v", code, r)
		}
		return nil
	})
	leaders := map[string]bool{}
	for _, h := range hosts {
		r, ok := natsRow(rows, h.Name)
		if !ok {
			t.Fatalf("no nats-server row for %s: %+v", h.Name, rows)
		}
		var others []string
		for _, o := range hosts {
			if o.Name != h.Name {
				others = append(others, o.Name)
			}
		}
		if !r.OK || !r.Reachable || r.State != "active" || !r.Config || r.Version != "2.14.9" || !slices.Equal(r.Details.Routes, others) || r.Details.MetaLeader == "" {
			t.Errorf("%s: %+v; want ok, active, in sync, 2.14.9, routes %v and a meta leader", h.Name, r, others)
		}
		leaders[r.Details.MetaLeader] = true
	}
	if len(leaders) != 1 {
		t.Errorf("nodes name different meta leaders: %v", leaders)
	}

	// It changed nothing: the same processes, files, and secrets file,
	// and no lock left anywhere.
	pidsBefore, sumsBefore := pids(t), sums(t, hosts)
	secretsBefore, err := os.ReadFile(filepath.Join(workDir, "lab.secrets.toml"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := mustNatsdeploy(t, "status", inv)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("status took %s; it should take a few seconds", took)
	}
	if !strings.Contains(out, "up and in sync") {
		t.Errorf("status text on a healthy cluster:\n%s", out)
	}
	if after := pids(t); fmt.Sprint(after) != fmt.Sprint(pidsBefore) {
		t.Errorf("PIDs changed by status: %v -> %v", pidsBefore, after)
	}
	if after := sums(t, hosts); fmt.Sprint(after) != fmt.Sprint(sumsBefore) {
		t.Errorf("files changed by status")
	}
	if after, _ := os.ReadFile(filepath.Join(workDir, "lab.secrets.toml")); string(after) != string(secretsBefore) {
		t.Errorf("status changed the secrets file")
	}
	for _, h := range hosts {
		if got := hostExec(t, h, "test -e /var/lib/natsdeploy/lock && echo locked || echo free"); got != "free" {
			t.Errorf("%s: %s after status", h.Name, got)
		}
	}

	t.Run("node stopped", func(t *testing.T) {
		hostExec(t, hosts[2], "systemctl stop nats-server.service")
		code, rows := statusJSON(t, inv)
		if code != 1 {
			t.Errorf("status exit %d with nats stopped on %s, want 1", code, hosts[2].Name)
		}
		r, ok := natsRow(rows, hosts[2].Name)
		if !ok || r.OK || r.State == "active" || len(r.Problems) == 0 {
			t.Errorf("%s's row: %+v; want not ok, not active, with problems", hosts[2].Name, r)
		}
		out, code := natsdeploy(t, "status", inv)
		if code != 1 || !strings.Contains(out, hosts[2].Name+" nats-server.service: nats-server.service is ") {
			t.Errorf("status text (exit %d) does not name %s:\n%s", code, hosts[2].Name, out)
		}
		mustNatsdeploy(t, "apply", "--no-verify", inv)
		eventually(t, time.Minute, "status exits 0 after the repair", func() error {
			if code, r := statusJSON(t, inv); code != 0 {
				return fmt.Errorf("exit %d: %+v", code, r)
			}
			return nil
		})
	})

	// A host cut off the network is a row saying so, after the connect
	// timeout, and the others are shown anyway.
	t.Run("node cut off", func(t *testing.T) {
		cut := hosts[2]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.Disconnect(ctx, cut.Container); err != nil {
			t.Fatal(err)
		}
		reconnected := false
		defer func() {
			if !reconnected {
				_ = lab.Connect(context.Background(), cut.Container)
			}
		}()
		start := time.Now()
		code, rows := statusJSON(t, inv)
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("status with a host cut off took %s", took)
		}
		var cutRows []statusRow
		for _, r := range rows {
			if r.Host == cut.Name {
				cutRows = append(cutRows, r)
			}
		}
		if code != 1 || len(cutRows) != 1 || cutRows[0].Reachable || len(cutRows[0].Problems) != 1 || !strings.Contains(cutRows[0].Problems[0], "cannot connect") {
			t.Errorf("exit %d, %s's rows %+v; want 1 and one unreachable row saying why", code, cut.Name, cutRows)
		}
		for _, h := range hosts[:2] {
			if r, ok := natsRow(rows, h.Name); !ok || !r.Reachable || r.State != "active" {
				t.Errorf("%s not shown while %s is cut off: %+v", h.Name, cut.Name, r)
			}
		}
		// verify fails on it, and restart refuses to take anything down.
		if out, code := natsdeploy(t, "verify", inv); code == 0 || !strings.Contains(out, cut.Name) {
			t.Errorf("verify with %s cut off: exit %d, want a failure naming it:\n%s", cut.Name, code, out)
		}
		before := map[string]string{}
		for _, h := range hosts[:2] {
			before[h.Name] = hostExec(t, h, "systemctl show -p MainPID --value nats-server.service")
		}
		if out, code := natsdeploy(t, "restart", inv); code == 0 || !strings.Contains(out, cut.Name) {
			t.Errorf("restart with %s cut off: exit %d, want a refusal naming it:\n%s", cut.Name, code, out)
		}
		for _, h := range hosts[:2] {
			if got := hostExec(t, h, "systemctl show -p MainPID --value nats-server.service"); got != before[h.Name] {
				t.Errorf("restart with %s cut off restarted %s (PID %s -> %s)", cut.Name, h.Name, before[h.Name], got)
			}
		}
		if err := lab.Connect(ctx, cut.Container); err != nil {
			t.Fatal(err)
		}
		reconnected = true
		eventually(t, 2*time.Minute, "status exits 0 once the node is back", func() error {
			if code, r := statusJSON(t, inv); code != 0 {
				return fmt.Errorf("exit %d: %+v", code, r)
			}
			return nil
		})
	})
}

// TestUnlock: unlock names the holder of each lock and removes it, but not
// one whose holder still runs on this machine unless --force.
func TestUnlock(t *testing.T) {
	hosts := lab.Hosts()
	inv := writeInventory(t, "unlock")
	here, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	plant := func(h lab.Host, machine string, pid int) {
		t.Helper()
		now := time.Now().Unix()
		hostExec(t, h, fmt.Sprintf("mkdir -p -m 0700 /var/lib/natsdeploy && printf 'machine=%s\\nuser=ops\\npid=%d\\nsince=%d\\nexpires=%d\\n' > /var/lib/natsdeploy/lock",
			machine, pid, now, now+1800))
	}
	locked := func(h lab.Host) bool {
		t.Helper()
		return hostExec(t, h, "test -e /var/lib/natsdeploy/lock && echo locked || echo free") == "locked"
	}

	plant(hosts[0], "ops-laptop", 4242)
	out := mustNatsdeploy(t, "unlock", inv)
	if !strings.Contains(out, "nats-1: removed the lock of ops@ops-laptop pid 4242") || !strings.Contains(out, "nats-2: not locked") || locked(hosts[0]) {
		t.Errorf("unlock of another machine's lock:\n%s", out)
	}

	// This test's own process stands in for an apply running here.
	plant(hosts[1], here, os.Getpid())
	out, code := natsdeploy(t, "unlock", inv)
	if code != 1 || !strings.Contains(out, "nats-2: lock of ops@"+here) || !strings.Contains(out, "NOT removed") || !locked(hosts[1]) {
		t.Errorf("unlock of a live local holder's lock (exit %d):\n%s", code, out)
	}
	out = mustNatsdeploy(t, "unlock", "--force", inv)
	if !strings.Contains(out, "(--force)") || locked(hosts[1]) {
		t.Errorf("unlock --force:\n%s", out)
	}
}
