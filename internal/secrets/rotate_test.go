package secrets

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// entryLines returns the lines of the file outside the [header] table, and
// those inside it.
func entryLines(text, header string) (outside, inside []string) {
	in := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "[") {
			in = l == header
		}
		if in {
			inside = append(inside, l)
		} else {
			outside = append(outside, l)
		}
	}
	return outside, inside
}

// Rotating one password changes that entry alone: every other line of the
// file stays byte for byte, and the store hands out the new password with
// a hash of it.
func TestRotateChangesOneEntry(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		rotate  func(*Store) error
		current func(*Store) string
		hash    func(*Store) (string, error)
	}{
		{"user", `[accounts.APP.app]`, func(s *Store) error { return s.RotateUser("APP", "app") },
			func(s *Store) string { return s.Password("APP", "app") },
			func(s *Store) (string, error) { return s.BcryptHash("APP", "app") }},
		{"system user", `[accounts.SYS.sys]`, func(s *Store) error { return s.RotateUser("SYS", "sys") },
			func(s *Store) string { return s.Password("SYS", "sys") },
			func(s *Store) (string, error) { return s.BcryptHash("SYS", "sys") }},
		{"route", `[route]`, (*Store).RotateRoute, (*Store).RoutePassword, (*Store).RouteBcryptHash},
		{"slot with a hash", `[secrets.hashed]`, func(s *Store) error { return s.RotateSecret("hashed") },
			func(s *Store) string { return s.Secret("hashed") },
			func(s *Store) (string, error) { return s.SecretBcrypt("hashed") }},
		{"slot without a hash", `[secrets.plain]`, func(s *Store) error { return s.RotateSecret("plain") },
			func(s *Store) string { return s.Secret("plain") }, nil},
	}
	slots := []Slot{{Name: "hashed", Bcrypt: true}, {Name: "plain"}}
	for _, enc := range []bool{false, true} {
		for _, tc := range tests {
			name := tc.name
			if enc {
				name += ", encrypted"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				noPrompt(t)
				inv := load(t, dir, "", "")
				if enc {
					sshKey(t, dir, "id_ed25519", "ed25519")
					inv = loadSecrets(t, dir, keyTable(dir))
				}
				save(t, openSlots(t, inv, slots...))
				before := plainText(t, inv)
				s := openSlots(t, inv, slots...)
				old := tc.current(s)
				others := map[string]string{"route": s.RoutePassword(), "app": s.Password("APP", "app"), "sys": s.Password("SYS", "sys"),
					"hashed": s.Secret("hashed"), "plain": s.Secret("plain"), "inline": s.Password("APP", "inline")}
				if err := tc.rotate(s); err != nil {
					t.Fatal(err)
				}
				pw := tc.current(s)
				if pw == old || len(pw) != GeneratedLength {
					t.Fatalf("password after rotation %d characters, changed %v", len(pw), pw != old)
				}
				if tc.hash != nil {
					h, err := tc.hash(s)
					if err != nil {
						t.Fatal(err)
					}
					checkHash(t, h, pw)
				}
				if !s.Changed() {
					t.Fatal("the store does not know it changed")
				}
				save(t, s)
				checkMode(t, inv)
				after := plainText(t, inv)
				outB, inB := entryLines(before, tc.header)
				outA, inA := entryLines(after, tc.header)
				if strings.Join(outA, "\n") != strings.Join(outB, "\n") {
					t.Errorf("lines outside %s changed:\nbefore:\n%s\nafter:\n%s", tc.header, before, after)
				}
				if len(inB) == 0 || strings.Join(inA, "\n") == strings.Join(inB, "\n") {
					t.Errorf("%s did not change:\n%s", tc.header, after)
				}
				if strings.Contains(after, old) {
					t.Error("the old password is still in the file")
				}
				// Read back: the new password, the others as they were.
				back := openSlots(t, inv, slots...)
				if back.Changed() || tc.current(back) != pw {
					t.Error("the rotated password did not survive a save and open")
				}
				for k, v := range map[string]string{"route": back.RoutePassword(), "app": back.Password("APP", "app"), "sys": back.Password("SYS", "sys"),
					"hashed": back.Secret("hashed"), "plain": back.Secret("plain"), "inline": back.Password("APP", "inline")} {
					if v != others[k] && others[k] != old {
						t.Errorf("%s's password changed too", k)
					}
				}
			})
		}
	}
}

// plainText is the secrets file's text, decrypted if need be.
func plainText(t *testing.T, inv *inventory.Inventory) string {
	t.Helper()
	raw, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := newSealer(inv).open(raw)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

// A password the file does not keep is not natsdeploy's to rotate: the
// refusal says where it comes from, and nothing changes.
func TestRotateRefusesPasswordsFromElsewhere(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TEST_APP_PW", "app-password-from-env-1")
	inv := load(t, dir, "route_password_env = \"TEST_APP_PW\"", "password_env = \"TEST_APP_PW\"")
	s := open(t, inv)
	save(t, s)
	before, _ := os.ReadFile(inv.SecretsFile)
	for _, tc := range []struct {
		name   string
		rotate func() error
		want   string
	}{
		{"env user", func() error { return s.RotateUser("APP", "app") }, `the password of user "app" of account "APP" comes from environment variable TEST_APP_PW`},
		{"inline user", func() error { return s.RotateUser("APP", "inline") }, `comes from the inventory (its password key)`},
		{"env route", s.RotateRoute, `the password of route user "route" comes from environment variable TEST_APP_PW`},
		{"slot never asked for", func() error { return s.RotateSecret("nope") }, "was not resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rotate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rotate: %v, want %q", err, tc.want)
			}
			var ue *UserError
			if tc.name != "slot never asked for" && !errors.As(err, &ue) {
				t.Errorf("%T is not a UserError", err)
			}
			if strings.Contains(err.Error(), "app-password-from-env-1") || strings.Contains(err.Error(), "an-inline-password") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
	if s.Changed() {
		t.Error("a refused rotation changed the store")
	}
	save(t, s)
	if after, _ := os.ReadFile(inv.SecretsFile); string(after) != string(before) {
		t.Error("the file changed")
	}
}
