package diff

import (
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\n"
	new := "a\nb\nc\nD\ne\nf\ng\nh\n"
	got := Unified(old, new, 1)
	want := "@@ line 3 @@\n  c\n- d\n+ D\n  e\n@@ line 7 @@\n  g\n+ h\n"
	if got != want {
		t.Errorf("Unified =\n%s\nwant\n%s", got, want)
	}
	if Unified(old, old, 3) != "" {
		t.Error("identical inputs gave a diff")
	}
	if got := Unified("", "x\n", 3); got != "@@ line 1 @@\n+ x\n" {
		t.Errorf("new file diff = %q", got)
	}
}

func TestRedact(t *testing.T) {
	hash := "$2a$11$" + strings.Repeat("A", 53)
	in := `{user: "admin", password: "` + hash + `"}` + "\nroutes = [nats-route://route:s3cr3t-Pa55@10.0.0.2:6222]\n"
	got := Redact(in)
	if strings.Contains(got, hash) || strings.Contains(got, "s3cr3t") {
		t.Errorf("secret left in %q", got)
	}
	if !strings.Contains(got, "<bcrypt hash>") || !strings.Contains(got, "nats-route://route:<redacted>@10.0.0.2:6222") {
		t.Errorf("Redact = %q", got)
	}
}
