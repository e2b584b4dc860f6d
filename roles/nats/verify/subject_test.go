package verify

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, subject string
		want             bool
	}{
		{"dev.x", "dev.x", true},
		{"dev.x", "dev.y", false},
		{"dev.x", "dev", false},
		{"dev.x", "dev.x.y", false},
		{"dev.*", "dev.a", true},
		{"dev.*", "dev", false},
		{"dev.*", "dev.a.b", false}, // * is exactly one token
		{"dev.*", "prod.a", false},
		{"*.dev", "x.dev", true},
		{"*.dev", "dev", false},
		{"logs.*.*", "logs.dev.a", true},
		{"logs.*.*", "logs.dev", false},
		{"services.user.>", "services.user.a", true},
		{"services.user.>", "services.user.a.b.c", true},
		{"services.user.>", "services.user", false}, // > needs one or more
		{"services.user.>", "services.order.a", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{">", "$SYS.REQ.SERVER.PING", true},
		{"$SYS.>", "$SYS.REQ.SERVER.PING", true},
		{"$SYS.>", "SYS.REQ", false},
		{"a.*.c.>", "a.b.c.d", true},
		{"a.*.c.>", "a.b.c", false},
		{"a.*.c.>", "a.b.x.d", false},
		// wildcard subjects: the pattern must cover all of them
		{">", ">", true},
		{">", "dev.*", true},
		{"dev.*", ">", false},
		{"dev.*", "dev.>", false},
		{"dev.*", "dev.*", true},
		{"dev.>", "dev.*", true},
		{"dev.>", "dev.>", true},
		{"dev.>", ">", false},
		{"dev.x", "dev.*", false},
		{"*", ">", false},
		{"_INBOX.>", "_INBOX.abc.*", true},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.subject); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.subject, got, c.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"a.b", "a.b", true},
		{"a.*", "a.b", true},
		{"a.*", "*.b", true},
		{"a.>", "a", false},
		{"a.>", "a.b.c", true},
		{">", "x", true},
		{"a.*", "a.b.c", false},
		{"a.*.c", "a.>", true},
		{"a.b", "a.c", false},
	}
	for _, c := range cases {
		if got := overlap(c.a, c.b); got != c.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := overlap(c.b, c.a); got != c.want {
			t.Errorf("overlap(%q, %q) = %v, want %v (symmetry)", c.b, c.a, got, c.want)
		}
	}
}

func xTok(i int) string { return fmt.Sprintf("x%d", i) }

func TestAllowed(t *testing.T) {
	p := inventory.Permissions{
		PublishAllow:   []string{"dev.*", "logs.>"},
		PublishDeny:    []string{"dev.secret", "logs.audit.>"},
		SubscribeAllow: []string{"dev.*", "_INBOX.>"},
	}
	cases := []struct {
		d       Dir
		subject string
		want    bool
	}{
		{Pub, "dev.a", true},
		{Pub, "dev.secret", false}, // deny inside allow
		{Pub, "dev.a.b", false},
		{Pub, "logs.app.1", true},
		{Pub, "logs.audit.x", false},
		{Pub, "logs.audit", true}, // logs.audit.> needs a further token
		{Pub, "_INBOX.x", false},
		{Sub, "_INBOX.x.y", true},
		{Sub, "dev.secret", true}, // deny was publish-only
		{Sub, "logs.app", false},
		{Sub, ">", false},
		{Sub, "dev.*", true},
		{Sub, "dev.>", false},
	}
	for _, c := range cases {
		if got := Allowed(p, c.d, c.subject); got != c.want {
			t.Errorf("Allowed(%v, %q) = %v, want %v", c.d, c.subject, got, c.want)
		}
	}
	// A direction without allow rules grants nothing.
	if Allowed(inventory.Permissions{PublishAllow: []string{">"}}, Sub, "a") {
		t.Error("empty subscribe allow list must grant nothing")
	}
}

func TestAllowedSamples(t *testing.T) {
	cases := []struct {
		name        string
		allow, deny []string
		want        []string
		skipped     []string
	}{
		{"single token wildcard", []string{"dev.*"}, nil, []string{"dev.x1"}, nil},
		{"full wildcard", []string{"services.user.>"}, nil, []string{"services.user.x1.x2"}, nil},
		{"bare full wildcard", []string{">"}, nil, []string{"natsdeploy.verify.x1.x2"}, nil},
		{"literal", []string{"alerts.fire"}, nil, []string{"alerts.fire"}, nil},
		{"middle wildcard", []string{"logs.*.app"}, nil, []string{"logs.x1.app"}, nil},
		{"mixed", []string{"a.*.b.>"}, nil, []string{"a.x1.b.x2.x3"}, nil},
		{"system", []string{"$SYS.>"}, nil, []string{"$SYS.x1.x2"}, nil},
		// deny inside allow: the sample steps around the deny rule
		{"deny literal inside *", []string{"dev.*"}, []string{"dev.x1"}, []string{"dev.x11"}, nil},
		{"deny * inside >", []string{"dev.>"}, []string{"dev.*.*"}, []string{"dev.x1"}, nil},
		{"deny * and *.* inside >", []string{"dev.>"}, []string{"dev.*", "dev.*.*"}, []string{"dev.x1.x2.x3"}, nil},
		{"deny > inside > at depth", []string{">"}, []string{"natsdeploy.>"}, nil, []string{">"}},
		{"deny everything", []string{"dev.*"}, []string{"dev.*"}, nil, []string{"dev.*"}},
		{"deny wider", []string{"dev.*"}, []string{">"}, nil, []string{"dev.*"}},
		{"deny unrelated", []string{"dev.*", "prod.*"}, []string{"prod.*"}, []string{"dev.x1"}, []string{"prod.*"}},
		{"duplicates collapse", []string{"dev.*", "dev.*"}, nil, []string{"dev.x1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, d := range []Dir{Pub, Sub} {
				var p inventory.Permissions
				if d == Pub {
					p.PublishAllow, p.PublishDeny = c.allow, c.deny
				} else {
					p.SubscribeAllow, p.SubscribeDeny = c.allow, c.deny
				}
				got, skipped := AllowedSamples(p, d, xTok)
				if !reflect.DeepEqual(subjects(got), c.want) {
					t.Errorf("%v samples = %v, want %v", d, subjects(got), c.want)
				}
				if !reflect.DeepEqual(subjects(skipped), c.skipped) {
					t.Errorf("%v skipped = %v, want %v", d, subjects(skipped), c.skipped)
				}
				for _, s := range got {
					if !Allowed(p, d, s.Subject) {
						t.Errorf("sample %q is not allowed by its own rules", s.Subject)
					}
				}
				for _, s := range skipped {
					if s.Why == "" {
						t.Errorf("skipped %q without a reason", s.Subject)
					}
				}
			}
		})
	}
}

func subjects(ss []Sample) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Subject)
	}
	return out
}

// The seed's tenants, as Permissions() expands them (see inventory.User).
var (
	devPerms = inventory.Permissions{
		PublishAllow:   []string{"dev.*", "logs.dev.*", "metrics.dev.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"},
		SubscribeAllow: []string{"dev.*", "logs.dev.*", "metrics.dev.*", "_INBOX.>"},
		AllowResponses: true,
	}
	prodPerms = inventory.Permissions{
		PublishAllow:   []string{"prod.*", "logs.prod.*", "metrics.prod.*", "alerts.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"},
		SubscribeAllow: []string{"prod.*", "logs.prod.*", "metrics.prod.*", "alerts.*", "_INBOX.>"},
		AllowResponses: true,
	}
	adminPerms   = inventory.Permissions{PublishAllow: []string{">"}, SubscribeAllow: []string{">"}}
	userSvcPerms = inventory.Permissions{
		PublishAllow:   []string{"services.user.>", "events.user.>", "notifications.user.>"},
		SubscribeAllow: []string{"services.user.>", "events.user.>", "notifications.user.>", "_INBOX.>"},
		AllowResponses: true,
	}
)

func TestRefusedSamples(t *testing.T) {
	others := []Tenant{
		{Label: "ADMIN/admin", Perms: adminPerms},
		{Label: "PROD/prod-user", Perms: prodPerms},
		{Label: "SERVICES/user-service", Perms: userSvcPerms},
	}
	cases := []struct {
		name   string
		p      inventory.Permissions
		d      Dir
		others []Tenant
		want   []Sample
	}{
		{
			name: "dev publish", p: devPerms, d: Pub, others: others,
			want: []Sample{
				{"dev.x1.x2", "one token deeper than dev.*"},
				{"logs.dev.x1.x2", "one token deeper than logs.dev.*"},
				{"metrics.dev.x1.x2", "one token deeper than metrics.dev.*"},
				{"natsdeploy.verify.x1.x2", "ADMIN/admin's rule >"},
				{"prod.x1", "PROD/prod-user's rule prod.*"},
				{"logs.prod.x1", "PROD/prod-user's rule logs.prod.*"},
				{"metrics.prod.x1", "PROD/prod-user's rule metrics.prod.*"},
				{"alerts.x1", "PROD/prod-user's rule alerts.*"},
				// PROD's $JS.API.> is dev's too, so it is not a refused sample
				{"services.user.x1.x2", "SERVICES/user-service's rule services.user.>"},
				{"events.user.x1.x2", "SERVICES/user-service's rule events.user.>"},
				{"notifications.user.x1.x2", "SERVICES/user-service's rule notifications.user.>"},
				{"natsdeploy.verify.outside.x1", "outside every rule"},
			},
		},
		{
			name: "dev subscribe", p: devPerms, d: Sub, others: others[1:],
			want: []Sample{
				{"dev.x1.x2", "one token deeper than dev.*"},
				{"logs.dev.x1.x2", "one token deeper than logs.dev.*"},
				{"metrics.dev.x1.x2", "one token deeper than metrics.dev.*"},
				{"prod.x1", "PROD/prod-user's rule prod.*"},
				{"logs.prod.x1", "PROD/prod-user's rule logs.prod.*"},
				{"metrics.prod.x1", "PROD/prod-user's rule metrics.prod.*"},
				{"alerts.x1", "PROD/prod-user's rule alerts.*"},
				{"services.user.x1.x2", "SERVICES/user-service's rule services.user.>"},
				{"events.user.x1.x2", "SERVICES/user-service's rule events.user.>"},
				{"notifications.user.x1.x2", "SERVICES/user-service's rule notifications.user.>"},
				{"natsdeploy.verify.outside.x1", "outside every rule"},
				{">", "full wildcard > not granted"},
			},
		},
		{
			name: "full access has nothing to refuse", p: adminPerms, d: Sub, others: others,
			want: nil,
		},
		{
			name: "deny inside allow is refused",
			p: inventory.Permissions{
				PublishAllow: []string{">"},
				PublishDeny:  []string{"$SYS.>", "secret.*"},
			},
			d: Pub, others: nil,
			want: []Sample{
				{"$SYS.x1.x2", "deny rule $SYS.>"},
				{"secret.x1", "deny rule secret.*"},
			},
		},
		{
			name: "other tenant's deny shapes its sample",
			p:    inventory.Permissions{PublishAllow: []string{"a.*"}},
			d:    Pub,
			others: []Tenant{{Label: "B/b", Perms: inventory.Permissions{
				PublishAllow: []string{"b.>"}, PublishDeny: []string{"b.*.*"}}}},
			want: []Sample{
				{"a.x1.x2", "one token deeper than a.*"},
				{"b.x1", "B/b's rule b.>"},
				{"natsdeploy.verify.outside.x1", "outside every rule"},
			},
		},
		{
			name: "wider rule of the same user absorbs the deeper sample",
			p:    inventory.Permissions{SubscribeAllow: []string{"a.*", "a.>"}},
			d:    Sub,
			want: []Sample{
				{"natsdeploy.verify.outside.x1", "outside every rule"},
				{">", "full wildcard > not granted"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := RefusedSamples(c.p, c.d, c.others, xTok)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n%v\nwant:\n%v", got, c.want)
			}
			for _, s := range got {
				if Allowed(c.p, c.d, s.Subject) {
					t.Errorf("refused sample %q is allowed", s.Subject)
				}
			}
		})
	}
}
