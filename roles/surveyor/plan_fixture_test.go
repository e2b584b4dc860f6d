package surveyor

// Plan fixtures: facts in, plan and commands out, one folder a case under
// testdata/plan (files as in roles/nats/testdata/plan/README.md). The
// engine side is internal/planfixture; this file only renders the host.

import (
	"path/filepath"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/planfixture"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// planSecrets are the fixed secrets the cases render with: a generated
// password would change the credentials file's sha256 on every run.
var planSecrets = map[string]string{nats.SurveyorSlot.Name: "Fixture-surveyor-password-not-secret"}

// planInventory is the lab's inventory with the surveyor turned on (and
// only it: the exporter stays off).
func planInventory(t *testing.T) *inventory.Inventory {
	return planfixture.LoadInventory(t, filepath.Join("..", "..", "inventory", "lab.toml"), func(inv *inventory.Inventory) {
		on := true
		inv.Monitoring.Surveyor.Enabled = &on
	})
}

// TestPlanFixtures runs every case against the monitoring host. With
// -update it rewrites facts.txt from facts.gen, then every expected file.
func TestPlanFixtures(t *testing.T) {
	inv := planInventory(t)
	in := planfixture.Input(t, Role{}, inv, "nats-1", planSecrets)
	d := planfixture.Desired(t, Role{}, in)
	root := filepath.Join("testdata", "plan")
	planfixture.Run(t, root, golden.Update(), func(*testing.T, string) desired.Host { return d })
	planfixture.NoSecret(t, root, planSecrets)

	// The role runs on the monitoring host alone: converged, it needs
	// nothing (the converged case pins the same).
	if hosts := (Role{}).Hosts(inv); len(hosts) != 1 || hosts[0].Name != "nats-1" {
		t.Fatalf("the surveyor runs on %v, want nats-1 alone", hosts)
	}
	planfixture.Converged(t, d)
}
