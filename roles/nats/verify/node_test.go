package verify

import "testing"

// abbrev keeps 19 characters, "sha256:" and 12 hex digits: enough to tell
// digests apart in a passing row.
func TestAbbrev(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"sha256:0123456789ab", "sha256:0123456789ab"},
		{"sha256:0123456789abc", "sha256:0123456789ab..."},
		{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "sha256:0123456789ab..."},
	} {
		if got := abbrev(tc.in); got != tc.want {
			t.Errorf("abbrev(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
