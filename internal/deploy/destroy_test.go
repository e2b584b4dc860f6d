package deploy

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// storeRole is a service with data the engine has never heard of.
type storeRole struct{}

func (storeRole) Name() string                                    { return "store" }
func (storeRole) Hosts(inv *inventory.Inventory) []inventory.Host { return inv.Hosts }
func (storeRole) Secrets(*inventory.Inventory) []secrets.Slot     { return nil }
func (storeRole) Artifacts(*inventory.Inventory, string) ([]artifact.Release, error) {
	return nil, nil
}
func (storeRole) Verify(context.Context, role.Env) []report.Result { return nil }
func (storeRole) Desired(in role.Input) (desired.Host, error) {
	return desired.Host{
		Name:  in.Host.Name,
		Users: []desired.User{{Name: "store", Home: "/var/lib/store"}},
		Dirs: []desired.Dir{
			{Path: "/etc/store", Owner: "root", Group: "store", Mode: fs.ModeDir | 0o750},
			{Path: "/var/lib/store", Owner: "store", Group: "store", Mode: fs.ModeDir | 0o750, Holds: desired.Data},
		},
		Files: []desired.File{
			{Path: "/etc/store/store.conf", Mode: 0o640, Owner: "root", Group: "store"},
			{Path: "/etc/systemd/system/store.service", Mode: 0o644, Owner: "root", Group: "root"},
		},
		Units: []desired.Unit{{Name: "store.service", UnitFile: "/etc/systemd/system/store.service"}},
	}, nil
}

// storeFacts is a host with the store installed and running.
const storeFacts = `os debian 12
arch x86_64
systemd 252
user store
file 640 root store 1111 /etc/store/store.conf
file 644 root root 2222 /etc/systemd/system/store.service
dir 750 root store /etc/store
dir 750 store store /var/lib/store
dir 700 root root /var/lib/natsdeploy
unit enabled active 42 store.service
`

func destroySession(t *testing.T, factsText string) (*Session, *[]string) {
	t.Helper()
	inv := &inventory.Inventory{Path: "test.toml", Hosts: []inventory.Host{{Name: "h1", Address: "192.0.2.1"}, {Name: "h2", Address: "192.0.2.2"}}}
	var log []string
	var mu sync.Mutex
	conns := map[string]apply.Conn{}
	for _, h := range inv.Hosts {
		conns[h.Name] = &host{name: h.Name, log: &log, mu: &mu, facts: []string{factsText}}
	}
	return New(inv, []role.Role{storeRole{}}, nil, conns, &strings.Builder{}), &log
}

// Destroy keeps the data, asks the facts which paths to look at (the
// state directory among them), releases the lock before it removes the
// state directory, and with purge removes the data and the user too.
func TestSessionDestroy(t *testing.T) {
	for _, purge := range []bool{false, true} {
		t.Run(fmt.Sprint("purge=", purge), func(t *testing.T) {
			s, log := destroySession(t, storeFacts)
			ctx := context.Background()
			if err := s.Lock(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.PlanDestroy(ctx, purge); err != nil {
				t.Fatal(err)
			}
			var printed strings.Builder
			s.PrintDestroy(&printed)
			keepLine := "keep /var/lib/store (store's data, owned by store; --purge-data removes it)"
			if strings.Contains(printed.String(), keepLine) == purge {
				t.Errorf("printout (purge %v):\n%s", purge, printed.String())
			}
			if !strings.Contains(printed.String(), "2 host(s) to clear (h1, h2): 2 unit(s) to stop") {
				t.Errorf("no summary:\n%s", printed.String())
			}
			if err := s.Destroy(ctx); err != nil {
				t.Fatal(err)
			}
			all := strings.Join(*log, "\n")
			for _, h := range []string{"h1", "h2"} {
				release := lastIndexOf(*log, h+": if grep -qxF")
				rmdir := indexOf(*log, h+": if [ -d /var/lib/natsdeploy ] && ! rmdir /var/lib/natsdeploy")
				script := indexOf(*log, h+": set -e\nsystemctl stop store.service")
				if script < 0 || release < script || rmdir < release {
					t.Errorf("%s: teardown %d, lock release %d, state dir %d; want in that order:\n%s", h, script, release, rmdir, all)
				}
			}
			if strings.Contains(all, "rm -rf -- /var/lib/store") != purge || strings.Contains(all, "userdel store") != purge {
				t.Errorf("data and user removed = %v, want %v:\n%s", !purge, purge, all)
			}
			if s.NothingToDestroy() {
				t.Error("NothingToDestroy on installed hosts")
			}
		})
	}
}

// Hosts with nothing left: nothing to destroy, and nothing but the state
// directory is touched.
func TestSessionDestroyNothingLeft(t *testing.T) {
	s, log := destroySession(t, "os debian 12\narch x86_64\nsystemd 252\nunit  inactive 0 store.service\n")
	ctx := context.Background()
	if err := s.PlanDestroy(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !s.NothingToDestroy() {
		t.Fatalf("something to destroy: %+v", s.Teardowns)
	}
	var printed strings.Builder
	s.PrintDestroy(&printed)
	if !strings.Contains(printed.String(), "h1: nothing to remove") || !strings.Contains(printed.String(), "nothing to remove: no host has anything natsdeploy installs") {
		t.Errorf("printout:\n%s", printed.String())
	}
	*log = nil
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range *log {
		if !strings.Contains(l, "rmdir /var/lib/natsdeploy") {
			t.Errorf("sent %q to a host with nothing to remove", l)
		}
	}
}

// A role's mistake refuses the destroy on every host before any change.
func TestSessionDestroyRefusesSystemPaths(t *testing.T) {
	s, log := destroySession(t, storeFacts+"dir 755 root root /var/lib\n")
	s.Roles = append(s.Roles, badRole{})
	err := s.PlanDestroy(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "directory /var/lib: a system directory") || !strings.Contains(err.Error(), "nothing was changed on any host") {
		t.Fatalf("PlanDestroy = %v", err)
	}
	for _, l := range *log {
		if !strings.HasSuffix(l, ": facts") {
			t.Errorf("sent %q", l)
		}
	}
}

type badRole struct{ storeRole }

func (badRole) Name() string { return "bad" }
func (badRole) Desired(in role.Input) (desired.Host, error) {
	return desired.Host{Name: in.Host.Name, Dirs: []desired.Dir{{Path: "/var/lib", Holds: desired.Data}}}, nil
}
