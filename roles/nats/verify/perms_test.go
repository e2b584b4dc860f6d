package verify

import (
	"slices"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// A user's refused samples come from every other user, including one of
// the same name in another account: only the user itself is left out.
func TestTenantsExcept(t *testing.T) {
	inv := &inventory.Inventory{Accounts: []inventory.Account{
		{Name: "A", Users: []inventory.User{{Name: "app", Allow: []string{"a.>"}}, {Name: "ops", Allow: []string{"ops.>"}}}},
		{Name: "B", Users: []inventory.User{{Name: "app", Allow: []string{"b.>"}}}},
	}}
	v := &verifier{inv: inv}
	tests := []struct {
		account, user string
		want          []string
	}{
		{"A", "app", []string{"A/ops", "B/app"}},
		{"A", "ops", []string{"A/app", "B/app"}},
		{"B", "app", []string{"A/app", "A/ops"}},
	}
	for _, tc := range tests {
		a := &inv.Accounts[slices.IndexFunc(inv.Accounts, func(a inventory.Account) bool { return a.Name == tc.account })]
		u := &a.Users[slices.IndexFunc(a.Users, func(u inventory.User) bool { return u.Name == tc.user })]
		var got []string
		for _, o := range v.tenantsExcept(a, u) {
			got = append(got, o.Label)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("tenantsExcept(%s/%s) = %v, want %v", tc.account, tc.user, got, tc.want)
		}
	}
}
