package grafana

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

// planSecrets are the fixed secrets the cases render with: generated ones
// would change admin.env's and grafana.env's sha256 on every run.
var planSecrets = map[string]string{
	SecretAdmin: "Fixture-admin-password-not-secret",
	SecretKey:   "Fixture-secret-key-not-secret",
}

// TestPlanFixtures runs every case against the monitoring host, with the
// lab's inventory and Grafana turned on. With -update it rewrites
// facts.txt from facts.gen, then every expected file.
func TestPlanFixtures(t *testing.T) {
	inv := labInventory(t, nil)
	d := planfixture.Desired(t, Role{}, planfixture.Input(t, Role{}, inv, "nats-1", planSecrets))
	root := filepath.Join("testdata", "plan")
	planfixture.Run(t, root, golden.Update(), func(*testing.T, string) desired.Host { return d })
	planfixture.NoSecret(t, root, planSecrets)

	// The role runs on the monitoring host alone: converged, it needs
	// nothing (the converged case pins the same).
	if hosts := (Role{}).Hosts(inv); len(hosts) != 1 || hosts[0].Name != "nats-1" {
		t.Fatalf("grafana runs on %v, want nats-1 alone", hosts)
	}
	planfixture.Converged(t, d)
}
