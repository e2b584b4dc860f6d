package shell

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "/etc/nats/nats-server.conf", "a b", "it's", `"$HOME"`, "`id`", "a;b|c&d", "*", "new\nline", "'"} {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("sh for %q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) = %s: shell read back %q", s, Quote(s), out)
		}
	}
}

func TestJoin(t *testing.T) {
	if got, want := Join("chown", "nats:nats", "/a b"), "chown nats:nats '/a b'"; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
}

func TestQuoteCases(t *testing.T) {
	cases := map[string]string{
		"":                 "''",
		"plain":            "plain",
		"/etc/nats/a.conf": "/etc/nats/a.conf",
		"nats:nats":        "nats:nats",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"'":                `''\'''`,
		"~root":            "'~root'",
		"$HOME":            "'$HOME'",
	}
	for in, want := range cases {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	// Whatever the input, the shell must read back exactly that one word.
	hard := []string{
		"", " ", "a b", "it's", "''", `\`, `\'`, `"`, "$(id)", "`id`", "$HOME", "${x:-y}",
		"a\nb", "\t", "*", "?", "[a]", "~", "~/x", "!", "!!", "a;b", "a&&b", "a|b", "<>", "#c",
		"=x", "-n", "--", "x=1", "héllo wörld ✓", "'\"'\"'", "%s", "{a,b}", "\x01\x7f",
	}
	for _, in := range hard {
		out, err := exec.Command("/bin/sh", "-c", `printf '%s|' `+Quote(in)+` end`).Output()
		if err != nil {
			t.Fatalf("sh with %q: %v", Quote(in), err)
		}
		if got := string(out); got != in+"|end|" {
			t.Errorf("sh read Quote(%q) = %s back as %q", in, Quote(in), got)
		}
	}
	if got := Join("chown", "--", "nats:nats", "/a b"); got != "chown -- nats:nats '/a b'" {
		t.Errorf("Join = %s", got)
	}
}
