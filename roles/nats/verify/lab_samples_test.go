package verify

import (
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// The lab inventory's tenants (the seed's) must each get samples in both
// directions, and the refused samples must include the cases the issue
// names: other tenants' subjects, one token past a "*" rule, ">" for
// anyone not granted it.
func TestLabInventorySamples(t *testing.T) {
	inv, err := inventory.LoadWithOptions("../../../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true}) // the lab key need not exist
	if err != nil {
		t.Fatalf("load lab inventory: %v", err)
	}
	var all []Tenant
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			all = append(all, Tenant{Label: a.Name + "/" + u.Name, Perms: u.Permissions()})
		}
	}
	refused := map[string][]string{}
	for i, me := range all {
		others := append(append([]Tenant{}, all[:i]...), all[i+1:]...)
		for _, d := range []Dir{Pub, Sub} {
			ok, skipped := AllowedSamples(me.Perms, d, xTok)
			if len(ok) == 0 || len(skipped) > 0 {
				t.Errorf("%s %v: samples %v, skipped %v", me.Label, d, ok, skipped)
			}
			for _, s := range RefusedSamples(me.Perms, d, others, xTok) {
				refused[me.Label+" "+d.String()] = append(refused[me.Label+" "+d.String()], s.Subject)
			}
		}
	}
	want := map[string][]string{
		"DEV/dev-user publish":                    {"dev.x1.x2", "prod.x1", "services.user.x1.x2", "natsdeploy.verify.outside.x1"},
		"DEV/dev-user subscribe":                  {"dev.x1.x2", "prod.x1", ">"},
		"PROD/prod-user subscribe":                {"alerts.x1.x2", "dev.x1", ">"},
		"SERVICES/order-service publish":          {"services.user.x1.x2", "services.payment.x1.x2", "$JS.API.x1.x2"},
		"SERVICES/notification-service subscribe": {"notifications.user.x1.x2", ">"},
		"SYS/sys-user publish":                    {"dev.x1", "natsdeploy.verify.x1.x2"},
	}
	for key, subjects := range want {
		got := strings.Join(refused[key], " ")
		for _, s := range subjects {
			if !strings.Contains(" "+got+" ", " "+s+" ") {
				t.Errorf("%s refused samples %v lack %s", key, refused[key], s)
			}
		}
	}
	// Full access leaves nothing to refuse.
	for _, k := range []string{"ADMIN/admin publish", "ADMIN/admin subscribe", "MONITORING/monitor-user subscribe"} {
		if len(refused[k]) != 0 {
			t.Errorf("%s: refused samples %v, want none", k, refused[k])
		}
	}
}
