package nats

// Plan fixtures, pyinfra style: facts in, plan and commands out. Each folder
// under testdata/plan is one case; testdata/plan/README.md describes the
// files. Everything a case says is in its data files; internal/planfixture
// is the only place that knows the engine's Go API, so the fixtures can
// prove that a refactor of the engine changes nothing a host would see.
// This file only says how a case's host is rendered.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/planfixture"
	"github.com/natsdeploy/natsdeploy/inventory"
)

var planFixtures = filepath.Join("testdata", "plan")

// fakeBinaryContent is the artifact every case deploys; its sha256 is what
// the cases' facts name for an up-to-date /usr/local/bin/nats-server.
const fakeBinaryContent = "fake nats-server 2.14.9 for plan fixtures; never executed\n"

// TestPlanFixtures runs every case. With -update it rewrites facts.txt of
// cases that have a facts.gen, then every expected file.
func TestPlanFixtures(t *testing.T) {
	bin := fakeBinary(t)
	planfixture.Run(t, planFixtures, golden.Update(), func(t *testing.T, dir string) desired.Host {
		inv, host := caseHost(t, dir)
		d, err := renderHost(inv, host, bin)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// fakeBinary writes the artifact; nothing executes it.
func fakeBinary(t *testing.T) Artifact {
	t.Helper()
	b := planfixture.StandIn(t, "nats-server", "2.14.9", fakeBinaryContent)
	return Artifact{Path: b.Path, SHA256: b.SHA256, Version: b.Version}
}

// caseHost loads the case's inventory.toml, or the shared one, and picks
// the host its host file names (default nats-1).
func caseHost(t *testing.T, dir string) (*inventory.Inventory, inventory.Host) {
	t.Helper()
	invPath := filepath.Join(dir, "inventory.toml")
	if _, err := os.Stat(invPath); err != nil {
		invPath = filepath.Join(planFixtures, "inventory.toml")
	}
	inv := planfixture.LoadInventory(t, invPath, nil)
	name := "nats-1"
	if b, err := os.ReadFile(filepath.Join(dir, "host")); err == nil {
		name = strings.TrimSpace(string(b))
	}
	return inv, planfixture.Host(t, inv, name)
}

// Every host of the shared inventory, with the facts of a host that is as
// desired, needs nothing: the idempotency of the whole cluster, not only of
// the host the converged case pins.
func TestPlanConvergedEveryHost(t *testing.T) {
	inv, _ := caseHost(t, planFixtures)
	bin := fakeBinary(t)
	for _, h := range inv.Hosts {
		d, err := renderHost(inv, h, bin)
		if err != nil {
			t.Fatal(err)
		}
		planfixture.Converged(t, d)
	}
}

// The shared inventory is fixture() in TOML, so the cases and the goldens
// describe the same cluster.
func TestPlanInventoryIsFixture(t *testing.T) {
	inv, _ := caseHost(t, planFixtures)
	for i := range inv.Hosts {
		got, want := mustRender(t, inv, i).byName(), mustRender(t, fixture(), i).byName()
		for name := range want {
			if !bytes.Equal(got[name], want[name]) {
				t.Errorf("%s of %s: testdata/plan/inventory.toml and fixture() render differently", name, inv.Hosts[i].Name)
			}
		}
	}
}

// renderHost is the host's desired state as the engine sees it: the role's
// part, merged (alone here) the way deploy merges every role on a host.
// Not planfixture.Desired: the nats role renders from its own Secrets
// interface (the test's fixed bcrypt hashes), not from a role.Input.
func renderHost(inv *inventory.Inventory, h inventory.Host, bin Artifact) (desired.Host, error) {
	d, err := Desired(inv, h, secrets, bin)
	if err != nil {
		return d, err
	}
	return desired.Merge(h.Name, desired.Part{Role: Role{}.Name(), Host: d})
}
