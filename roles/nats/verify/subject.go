package verify

import (
	"fmt"
	"strings"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// Subject matching and sample generation. The verifier decides what to
// expect from the inventory's rules alone, so the matcher has to follow NATS
// semantics exactly: tokens are separated by ".", "*" matches exactly one
// token and ">" (only as the last token) matches one or more tokens.

// Match reports whether pattern matches subject. subject may itself contain
// wildcards (a subscription); then Match reports whether pattern covers every
// subject the wildcard subject stands for, which is the conservative answer a
// verifier needs: "dev.*" does not cover ">" nor "dev.>".
func Match(pattern, subject string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" && i == len(pt)-1 {
			// A full wildcard needs at least one more token and then covers
			// whatever follows, wildcards included.
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		s := st[i]
		switch {
		case p == "*":
			if s == ">" {
				return false
			}
		case s == "*" || s == ">":
			// A literal token cannot cover a wildcard.
			return false
		case p != s:
			return false
		}
	}
	return len(pt) == len(st)
}

// Dir is a direction a permission applies to.
type Dir int

const (
	Pub Dir = iota
	Sub
)

func (d Dir) String() string {
	if d == Sub {
		return "subscribe"
	}
	return "publish"
}

// rules returns the allow and deny lists of p for direction d.
func rules(p inventory.Permissions, d Dir) (allow, deny []string) {
	if d == Sub {
		return p.SubscribeAllow, p.SubscribeDeny
	}
	return p.PublishAllow, p.PublishDeny
}

// Allowed reports whether permissions p let a client use subject in
// direction d: some allow rule covers it and no deny rule matches it.
//
// An empty allow list means nothing is allowed. The inventory has no way to
// say "unrestricted" other than allow = [">"], so a direction without allow
// rules is one the user was not granted; if the rendered config let such a
// user through anyway, the verifier reports it.
func Allowed(p inventory.Permissions, d Dir, subject string) bool {
	allow, deny := rules(p, d)
	return anyMatch(allow, subject) && !denied(deny, subject)
}

func anyMatch(patterns []string, subject string) bool {
	for _, p := range patterns {
		if Match(p, subject) {
			return true
		}
	}
	return false
}

// denied reports whether a deny rule hits subject. For a literal subject
// that is Match; for a wildcard subject it is enough that the two overlap,
// since the server would then at least filter some of its messages.
func denied(deny []string, subject string) bool {
	for _, p := range deny {
		if Match(p, subject) || overlap(p, subject) {
			return true
		}
	}
	return false
}

// overlap reports whether some literal subject matches both a and b.
func overlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(at) && i == len(bt):
			return true
		case i < len(at) && at[i] == ">" || i < len(bt) && bt[i] == ">":
			// ">" needs at least one token on the other side, or the other
			// side's own ">" at this position.
			return i < len(at) && i < len(bt)
		case i == len(at) || i == len(bt):
			return false
		case at[i] == "*" || bt[i] == "*" || at[i] == bt[i]:
			continue
		default:
			return false
		}
	}
}

// TokenFunc returns the i-th generated token (i counts from 1) of a sample
// subject. The verifier passes one that embeds a run id so that samples of
// different checks and runs never collide; tests pass "x1", "x2", ...
type TokenFunc func(i int) string

// Sample is a concrete subject chosen to exercise a rule.
type Sample struct {
	Subject string
	// Why names the rule the sample comes from, for failure messages.
	Why string
}

// concrete turns pattern into a subject it matches: the n-th wildcard token
// becomes tok(base+n) and a trailing ">" becomes extra tokens. A pattern
// that is only ">" becomes "natsdeploy.verify.<tokens>" so the traffic is
// recognisable as the verifier's.
func concrete(pattern string, base, extra int, tok TokenFunc) string {
	pt := strings.Split(pattern, ".")
	var out []string
	if pattern == ">" {
		out = []string{"natsdeploy", "verify"}
	}
	n := base
	for i, p := range pt {
		switch {
		case p == ">" && i == len(pt)-1:
			for k := 0; k < extra; k++ {
				n++
				out = append(out, tok(n))
			}
		case p == "*":
			n++
			out = append(out, tok(n))
		default:
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// sampleFor returns a subject matched by allow and by no deny rule, trying a
// few shapes (">" expanded to 2, 1 and 3 tokens, fresh token numbers) so a
// wildcard deny inside the allow rule can be stepped around. ok is false when
// the deny rules cover every shape (for example allow "a.*" deny "a.*").
func sampleFor(allow string, deny []string, tok TokenFunc) (subject string, ok bool) {
	for _, base := range []int{0, 10, 20} {
		for _, extra := range []int{2, 1, 3} {
			s := concrete(allow, base, extra, tok)
			if Match(allow, s) && !denied(deny, s) {
				return s, true
			}
		}
	}
	return "", false
}

// AllowedSamples returns one concrete subject per allow rule of p in
// direction d that the user must be able to use. Rules whose every sample is
// denied come back in skipped, with the reason in Why.
func AllowedSamples(p inventory.Permissions, d Dir, tok TokenFunc) (samples, skipped []Sample) {
	allow, deny := rules(p, d)
	seen := map[string]bool{}
	for _, rule := range allow {
		s, ok := sampleFor(rule, deny, tok)
		if !ok {
			skipped = append(skipped, Sample{Subject: rule,
				Why: fmt.Sprintf("every subject of allow rule %s is denied by %s", rule, strings.Join(deny, ", "))})
			continue
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		samples = append(samples, Sample{Subject: s, Why: "allow rule " + rule})
	}
	return samples, skipped
}

// Tenant is another user whose rules supply samples the user under test
// must not reach.
type Tenant struct {
	Label string // "ACCOUNT/user"
	Perms inventory.Permissions
}

// OutsidePrefix starts the subject that no user without ">" may use.
const OutsidePrefix = "natsdeploy.verify.outside"

// RefusedSamples returns subjects the user with permissions p must be
// refused in direction d:
//   - a sample of each of its own deny rules;
//   - one token deeper than each allow rule with a "*" and no ">";
//   - samples of other tenants' allow rules that p does not allow;
//   - a subject outside every rule (OutsidePrefix), unless allowed;
//   - for subscribe, the full wildcard ">" unless an allow rule covers it.
//
// Every returned subject is one that Allowed(p, d, subject) is false for,
// and no subject appears twice.
func RefusedSamples(p inventory.Permissions, d Dir, others []Tenant, tok TokenFunc) []Sample {
	allow, deny := rules(p, d)
	var out []Sample
	seen := map[string]bool{}
	add := func(s, why string) {
		if seen[s] || Allowed(p, d, s) {
			return
		}
		seen[s] = true
		out = append(out, Sample{Subject: s, Why: why})
	}
	for _, rule := range deny {
		add(concrete(rule, 0, 2, tok), "deny rule "+rule)
	}
	for _, rule := range allow {
		if strings.Contains("."+rule+".", ".*.") && !strings.HasSuffix(rule, ">") {
			add(concrete(rule+".*", 0, 0, tok), "one token deeper than "+rule)
		}
	}
	for _, t := range others {
		oAllow, oDeny := rules(t.Perms, d)
		for _, rule := range oAllow {
			if s, ok := sampleFor(rule, oDeny, tok); ok {
				add(s, t.Label+"'s rule "+rule)
			}
		}
	}
	add(OutsidePrefix+"."+tok(1), "outside every rule")
	if d == Sub && !anyMatch(allow, ">") {
		add(">", "full wildcard > not granted")
	}
	return out
}
