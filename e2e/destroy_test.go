//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles"
)

// TestDestroy: destroy removes every service and keeps the JetStream and
// Prometheus data with their owners, and apply brings the cluster back
// with the stream's messages; destroy --purge-data leaves nothing the
// roles render, checked path by path on every host, and apply after it
// builds a fresh working cluster, which is what the tests after this one
// find.
func TestDestroy(t *testing.T) {
	hosts := lab.Hosts()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Bare hosts: the lifecycle test leaves another version and other
	// settings behind, and this test is about what apply installs.
	if err := lab.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	base := writeInventory(t, "destroy")
	mustNatsdeploy(t, "apply", "--no-verify", base)
	checkCluster(t, hosts)
	inv, sec := loadInventory(t, base)
	adminPw := sec.Password("ADMIN", "admin")

	nc := connect(t, hosts[0], "admin", adminPw)
	js, _ := jetstream.New(nc)
	pubCtx, pubCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pubCancel()
	if _, err := js.CreateStream(pubCtx, jetstream.StreamConfig{Name: stream, Subjects: []string{"e2e.orders.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	for i := 0; i < 20; i++ {
		if _, err := js.Publish(pubCtx, fmt.Sprintf("e2e.orders.%d", i), []byte("order")); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	nc.Close()
	checkReplicas(t, hosts, 20)

	t.Run("without a terminal or --yes, destroy refuses and changes nothing", func(t *testing.T) {
		before := pids(t)
		out, code := natsdeploy(t, "destroy", base) // the test's stdin is no terminal
		if code != 2 || !strings.Contains(out, "--yes") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("exit %d, want 2 asking for --yes:\n%s", code, out)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("nats-server PIDs changed: %v -> %v", before, after)
		}
	})

	t.Run("destroy removes the services and keeps the data", func(t *testing.T) {
		out := mustNatsdeploy(t, "destroy", "--yes", base)
		for _, want := range []string{"keep /var/lib/nats (nats's data", "keep /var/lib/prometheus (prometheus's data", "role nats removed", "destroyed in"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		for _, h := range hosts {
			d := renderedHost(t, inv, h)
			if left := present(t, h, d, false); left != "" {
				t.Errorf("%s: still there after destroy: %s", h.Name, left)
			}
			for _, dir := range d.Dirs {
				if dir.Holds != desired.Data {
					continue
				}
				if got := hostExec(t, h, "stat -c '%U:%G %a' "+dir.Path); got != fmt.Sprintf("%s:%s %o", dir.Owner, dir.Group, dir.Mode.Perm()) {
					t.Errorf("%s: kept %s is %s", h.Name, dir.Path, got)
				}
			}
			for _, u := range d.Users {
				if got := hostExec(t, h, "id -u "+u.Name+" >/dev/null && echo kept"); got != "kept" {
					t.Errorf("%s: user %s gone without --purge-data", h.Name, u.Name)
				}
			}
			if got := hostExec(t, h, "ls /var/lib/nats/jetstream"); !strings.Contains(got, "ADMIN") {
				t.Errorf("%s: the JetStream store lost the ADMIN account: %q", h.Name, got)
			}
			if got := hostExec(t, h, "pgrep -x nats-server || true"); got != "" {
				t.Errorf("%s: nats-server still runs (pid %s)", h.Name, got)
			}
		}
		if out := mustNatsdeploy(t, "destroy", "--yes", base); !strings.Contains(out, "nothing to remove") {
			t.Errorf("a second destroy found something:\n%s", out)
		}
	})

	t.Run("apply after destroy brings the cluster back with its messages", func(t *testing.T) {
		out := mustNatsdeploy(t, "apply", base) // and verify
		if !strings.Contains(out, "verify passed") {
			t.Errorf("apply after destroy did not verify:\n%s", out)
		}
		checkCluster(t, hosts)
		checkStream(t, hosts, adminPw, 20)
		checkReplicas(t, hosts, 20)
	})

	t.Run("destroy --purge-data leaves nothing behind", func(t *testing.T) {
		out := mustNatsdeploy(t, "destroy", "--purge-data", "--yes", base)
		if strings.Contains(out, "\n  keep ") || strings.Contains(out, "] kept ") {
			t.Errorf("a purge kept something:\n%s", out)
		}
		for _, h := range hosts {
			if left := present(t, h, renderedHost(t, inv, h), true); left != "" {
				t.Errorf("%s: left behind by destroy --purge-data: %s", h.Name, left)
			}
		}
	})

	// Later tests start from what this leaves: a working cluster.
	t.Run("apply after a purge builds a fresh cluster", func(t *testing.T) {
		out := mustNatsdeploy(t, "apply", base)
		if !strings.Contains(out, "verify passed") {
			t.Errorf("apply after a purge did not verify:\n%s", out)
		}
		checkCluster(t, hosts)
		nc := connect(t, hosts[1], "admin", adminPw)
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Stream(ctx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after a purge: %v, want not found", stream, err)
		}
	})
}

// renderedHost is everything the roles render for h, as destroy sees it.
func renderedHost(t *testing.T, inv *inventory.Inventory, h lab.Host) desired.Host {
	t.Helper()
	var ih inventory.Host
	for _, x := range inv.Hosts {
		if x.Name == h.Name {
			ih = x
		}
	}
	var parts []desired.Part
	for _, r := range role.On(roles.All, inv, h.Name) {
		d, err := r.Desired(role.Input{Inv: inv, Host: ih})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, desired.Part{Role: r.Name(), Host: d})
	}
	d, err := desired.Merge(h.Name, parts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Files) == 0 || len(d.Units) == 0 {
		t.Fatalf("%s: the roles render nothing; the check below would prove nothing", h.Name)
	}
	return d
}

// present lists, in one command on the host, what of d is still there:
// every file, every directory (data ones only when purged), natsdeploy's
// state, every unit systemd still knows, and (when purged) every user and
// group. "" means nothing.
func present(t *testing.T, h lab.Host, d desired.Host, purged bool) string {
	t.Helper()
	var b strings.Builder
	for _, f := range d.Files {
		fmt.Fprintf(&b, "test -e %s && echo %s\n", f.Path, f.Path)
	}
	for _, dir := range d.Dirs {
		if dir.Holds == desired.Data && !purged {
			fmt.Fprintf(&b, "test -d %s || echo 'missing data dir %s'\n", dir.Path, dir.Path)
			continue
		}
		fmt.Fprintf(&b, "test -e %s && echo %s\n", dir.Path, dir.Path)
	}
	fmt.Fprintf(&b, "test -e %s && echo %s\n", facts.StateDir, facts.StateDir)
	for _, u := range d.Units {
		fmt.Fprintf(&b, "s=$(systemctl show -p LoadState --value %s); [ \"$s\" = not-found ] || echo 'unit %s '$s\n", u.Name, u.Name)
		fmt.Fprintf(&b, "systemctl is-failed --quiet %s && echo 'unit %s failed'\n", u.Name, u.Name)
	}
	if purged {
		for _, u := range d.Users {
			fmt.Fprintf(&b, "id -u %s >/dev/null 2>&1 && echo 'user %s'\n", u.Name, u.Name)
			fmt.Fprintf(&b, "getent group %s >/dev/null && echo 'group %s'\n", u.Name, u.Name)
		}
	}
	b.WriteString("true\n")
	return strings.Join(strings.Fields(hostExec(t, h, b.String())), " ")
}
