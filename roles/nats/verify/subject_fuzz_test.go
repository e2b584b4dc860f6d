package verify

import (
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// covers is Match written another way, token list against token list,
// recursively: the verifier's expectations rest on Match following NATS,
// so two formulations must agree on every pair of valid subjects.
func covers(p, s []string) bool {
	switch {
	case len(p) == 0:
		return len(s) == 0
	case p[0] == ">":
		return len(s) > 0
	case len(s) == 0:
		return false
	case s[0] == ">":
		return false // only a ">" pattern covers a ">" subject
	case p[0] == "*":
		return covers(p[1:], s[1:])
	case s[0] == "*":
		return false // a literal token cannot cover a wildcard
	default:
		return p[0] == s[0] && covers(p[1:], s[1:])
	}
}

func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{
		{"dev.*", "dev.orders"}, {">", "a.b"}, {"a.>", "a"}, {"*", "*"}, {"a.*.c", "a.b.c"},
		{"dev.*", "dev.>"}, {"$JS.API.>", "$JS.API.INFO"}, {"a.b", "a.b.c"}, {"*.>", "x"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if inventory.SubjectError(pattern) != nil || inventory.SubjectError(subject) != nil {
			return
		}
		got := Match(pattern, subject)
		if want := covers(strings.Split(pattern, "."), strings.Split(subject, ".")); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, subject, got, want)
		}
		// Every subject covers itself, and ">" covers everything.
		if !Match(subject, subject) || !Match(">", subject) {
			t.Fatalf("%q does not cover itself, or > does not cover it", subject)
		}
		// Allowed follows Match: allowed by the pattern alone, refused
		// once the same pattern is also denied.
		p := inventory.Permissions{PublishAllow: []string{pattern}}
		if Allowed(p, Pub, subject) != got {
			t.Fatalf("Allowed(allow %q, %q) = %v, Match says %v", pattern, subject, !got, got)
		}
		p.PublishDeny = []string{pattern}
		if got && Allowed(p, Pub, subject) && !strings.ContainsAny(subject, "*>") {
			t.Fatalf("%q allowed though denied by %q", subject, pattern)
		}
	})
}
