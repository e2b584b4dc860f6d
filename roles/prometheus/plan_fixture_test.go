package prometheus

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
)

// planInventory is the lab's inventory as it is (Prometheus on, on nats-1;
// the exporter, the surveyor and Grafana off, so no scrape job of theirs).
func planInventory(t *testing.T) *inventory.Inventory {
	return planfixture.LoadInventory(t, filepath.Join("..", "..", "inventory", "lab.toml"), nil)
}

// TestPlanFixtures runs every case against the monitoring host. With
// -update it rewrites facts.txt from facts.gen, then every expected file.
func TestPlanFixtures(t *testing.T) {
	inv := planInventory(t)
	d := planfixture.Desired(t, Role{}, planfixture.Input(t, Role{}, inv, "nats-1", nil))
	planfixture.Run(t, filepath.Join("testdata", "plan"), golden.Update(), func(*testing.T, string) desired.Host { return d })
}

// Every host the role runs on, converged, needs nothing.
func TestPlanConvergedEveryHost(t *testing.T) {
	inv := planInventory(t)
	hosts := Role{}.Hosts(inv)
	if len(hosts) == 0 {
		t.Fatal("the role runs nowhere")
	}
	for _, h := range hosts {
		planfixture.Converged(t, planfixture.Desired(t, Role{}, planfixture.Input(t, Role{}, inv, h.Name, nil)))
	}
}
