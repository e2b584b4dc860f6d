//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
)

// TestSecretsRotate rotates a user's and the route's password in a
// secrets file encrypted to the lab's SSH key: each goes out by reload (no
// node's PID changes), the old password is refused on every node and the
// new one accepted, every other password is as it was, and the cluster is
// whole after each.
func TestSecretsRotate(t *testing.T) {
	hosts := lab.Hosts()
	base := writeInventory(t, "rotate-base")
	mustNatsdeploy(t, "apply", "--no-verify", base)
	checkCluster(t, hosts)
	// Put the shared secrets back on the way out, so the tests after this
	// one meet the cluster with the passwords they read.
	t.Cleanup(func() { natsdeploy(t, "apply", "--no-verify", base) })

	// A copy of the shared secrets file, encrypted: the cluster's own
	// passwords, so the first apply with it has nothing to do.
	shared := filepath.Join(workDir, "lab.secrets.toml")
	own := filepath.Join(workDir, "rotate.secrets.toml")
	b, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, b, 0o600); err != nil {
		t.Fatal(err)
	}
	inv := writeInventory(t, "rotate-encrypted",
		replace("[ssh]", fmt.Sprintf("[secrets]\nencrypt = \"ssh-key\"\nidentity = %q\n[ssh]", filepath.Join(root, ".lab", "id_ed25519"))))
	text, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inv, []byte(strings.Replace(string(text), shared, own, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustNatsdeploy(t, "secrets", "encrypt", inv); !strings.Contains(out, "encrypted secrets file "+own) {
		t.Fatalf("secrets encrypt:\n%s", out)
	}
	if out := mustNatsdeploy(t, "apply", "--no-verify", inv); !strings.Contains(out, "nothing to do") {
		t.Fatalf("apply with the encrypted copy of the same passwords changed something:\n%s", out)
	}

	passwords := func() map[string]string {
		_, sec := loadInventory(t, inv)
		return map[string]string{
			"route": sec.RoutePassword(), "dev-user": sec.Password("DEV", "dev-user"),
			"prod-user": sec.Password("PROD", "prod-user"), "admin": sec.Password("ADMIN", "admin"), "sys-user": sec.Password("SYS", "sys-user"),
		}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		changed string
	}{
		{"user", []string{"dev-user"}, "dev-user"},
		{"route", []string{"--route"}, "route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := passwords()
			before := pids(t)
			out := mustNatsdeploy(t, append(append([]string{"secrets", "rotate"}, tc.args...), inv)...)
			if !strings.Contains(out, "reload confirmed") || strings.Contains(out, "one host at a time") {
				t.Errorf("not rolled out by reload alone:\n%s", out)
			}
			if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("nats-server restarted: PIDs %v, then %v", before, after)
			}
			checkCluster(t, hosts)
			raw, err := os.ReadFile(own)
			if err != nil || !secrets.IsEncrypted(raw) {
				t.Fatalf("the secrets file is no longer encrypted (%v)", err)
			}
			now := passwords()
			for k, v := range now {
				if k == tc.changed && v == old[k] {
					t.Errorf("%s's password did not change", k)
				}
				if k != tc.changed && v != old[k] {
					t.Errorf("%s's password changed too", k)
				}
				if strings.Contains(out, v) || strings.Contains(out, old[k]) {
					t.Errorf("the output shows %s's password", k)
				}
			}
			if tc.changed != "dev-user" {
				return
			}
			for _, h := range hosts {
				eventually(t, 30*time.Second, h.Name+" takes the new password and refuses the old", func() error {
					nc, err := nats.Connect("nats://"+h.Address+":4222", tlsOpt(), nats.UserInfo("dev-user", now["dev-user"]), nats.Timeout(5*time.Second), nats.NoReconnect())
					if err != nil {
						return fmt.Errorf("new password refused: %v", err)
					}
					nc.Close()
					nc, err = nats.Connect("nats://"+h.Address+":4222", tlsOpt(), nats.UserInfo("dev-user", old["dev-user"]), nats.Timeout(5*time.Second), nats.NoReconnect())
					if err == nil {
						nc.Close()
						return fmt.Errorf("old password still accepted")
					}
					return nil
				})
			}
		})
	}
}
