package exporter

// Plan fixtures: facts in, plan and commands out, one folder a case under
// testdata/plan (files as in roles/nats/testdata/plan/README.md). The
// engine side is internal/planfixture; this file only renders the host.

import (
	"path/filepath"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/planfixture"
)

// TestPlanFixtures runs every case against nats-1, one of the NATS hosts
// the exporter runs on, with the lab's inventory and the exporter turned
// on. With -update it rewrites facts.txt from facts.gen, then every
// expected file.
func TestPlanFixtures(t *testing.T) {
	inv := labWithExporter(t)
	d := planfixture.Desired(t, Role{}, planfixture.Input(t, Role{}, inv, "nats-1", nil))
	planfixture.Run(t, filepath.Join("testdata", "plan"), golden.Update(), func(*testing.T, string) desired.Host { return d })
}

// Every host the role runs on, converged, needs nothing.
func TestPlanConvergedEveryHost(t *testing.T) {
	inv := labWithExporter(t)
	hosts := Role{}.Hosts(inv)
	if len(hosts) != 3 {
		t.Fatalf("the exporter runs on %d hosts, want the lab's 3", len(hosts))
	}
	for _, h := range hosts {
		planfixture.Converged(t, planfixture.Desired(t, Role{}, planfixture.Input(t, Role{}, inv, h.Name, nil)))
	}
}
