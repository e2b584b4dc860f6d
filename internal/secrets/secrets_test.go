package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/inventory"
)

const inv1 = `[nats]
version = "2.14.9"
%ROUTE%

[[hosts]]
name = "n1"
address = "10.0.0.1"

[[accounts]]
name = "SYS"
system = true
  [[accounts.users]]
  name = "sys"
  allow = ["$SYS.>"]

[[accounts]]
name = "APP"
  [[accounts.users]]
  name = "app"
  allow = ["app.>"]
  %APP%

  [[accounts.users]]
  name = "inline"
  allow = ["x.>"]
  password = "an-inline-password"
`

// load writes an inventory into dir (route and app are extra lines for the
// route settings and the "app" user) and loads it.
func load(t *testing.T, dir, route, app string) *inventory.Inventory {
	t.Helper()
	text := strings.NewReplacer("%ROUTE%", route, "%APP%", app).Replace(inv1)
	path := filepath.Join(dir, "test.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadWithOptions(path, inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func open(t *testing.T, inv *inventory.Inventory) *Store {
	t.Helper()
	s, err := Open(inv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func save(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
}

func hash(t *testing.T, s *Store, account, user string) string {
	t.Helper()
	h, err := s.BcryptHash(account, user)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMain(m *testing.M) {
	// Every test but TestRealCost hashes at bcrypt's minimum cost.
	hashCost = bcrypt.MinCost
	// and encrypts with a passphrase at a small fraction of age's cost.
	scryptWorkFactor = 10
	os.Exit(m.Run())
}

func checkHash(t *testing.T, h, pw string) {
	t.Helper()
	if want := fmt.Sprintf("$2a$%02d$", hashCost); !strings.HasPrefix(h, want) {
		t.Errorf("hash %q does not start with %s", h, want)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)); err != nil {
		t.Errorf("hash does not match the password: %v", err)
	}
}

func TestGeneratedPasswordsPersist(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	s := open(t, inv)
	if !s.Changed() {
		t.Fatal("a new store with generated passwords must be saved")
	}
	pw := s.Password("APP", "app")
	if len(pw) != GeneratedLength || strings.Trim(pw, Alphabet) != "" {
		t.Fatalf("generated password has length %d or characters outside the alphabet", len(pw))
	}
	if s.Password("SYS", "sys") == pw || s.RoutePassword() == pw || s.RoutePassword() == "" {
		t.Fatal("generated passwords must be distinct and set")
	}
	checkHash(t, hash(t, s, "APP", "app"), pw)
	rh, err := s.RouteBcryptHash()
	if err != nil {
		t.Fatal(err)
	}
	checkHash(t, rh, s.RoutePassword())
	save(t, s)

	fi, err := os.Stat(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode = %04o, want 0600", fi.Mode().Perm())
	}
	if inv.SecretsFile != filepath.Join(dir, "test.secrets.toml") {
		t.Fatalf("secrets file = %s", inv.SecretsFile)
	}

	s2 := open(t, inv)
	if s2.Changed() {
		t.Fatal("reopening an up-to-date file must change nothing")
	}
	if s2.Password("APP", "app") != pw || s2.RoutePassword() != s.RoutePassword() {
		t.Fatal("generated passwords changed across Open")
	}
	if hash(t, s2, "APP", "app") != hash(t, s, "APP", "app") {
		t.Fatal("hash changed across Open although the password did not")
	}
	save(t, s2)
	fi2, err := os.Stat(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, fi2) || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Fatal("Save rewrote an unchanged file")
	}
	// No stray temporary files.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the inventory and the secrets file", len(entries))
	}
}

func TestEnvPasswordIsHashedNotStored(t *testing.T) {
	dir := t.TempDir()
	const pw1, pw2 = "env-password-number-one", "env-password-number-two"
	const routePW = "route-password-from-env"
	t.Setenv("TEST_APP_PW", pw1)
	t.Setenv("TEST_ROUTE_PW", routePW)
	inv := load(t, dir, `route_password_env = "TEST_ROUTE_PW"`, `password_env = "TEST_APP_PW"`)

	s := open(t, inv)
	if s.Password("APP", "app") != pw1 || s.RoutePassword() != routePW {
		t.Fatal("environment passwords not used")
	}
	h1 := hash(t, s, "APP", "app")
	checkHash(t, h1, pw1)
	save(t, s)
	raw, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{pw1, routePW, "an-inline-password"} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("a password from the environment or the inventory was written to the secrets file")
		}
	}
	if !strings.Contains(string(raw), h1) {
		t.Fatal("the hash of the environment password is not kept")
	}

	// Same password: the same hash, nothing to save.
	s = open(t, inv)
	if hash(t, s, "APP", "app") != h1 || s.Changed() {
		t.Fatal("hash not reused for an unchanged password")
	}

	// Changed password: a new hash that matches it.
	t.Setenv("TEST_APP_PW", pw2)
	s = open(t, inv)
	h2 := hash(t, s, "APP", "app")
	if h2 == h1 || !s.Changed() {
		t.Fatal("a changed password must get a new hash")
	}
	checkHash(t, h2, pw2)
	if hash(t, s, "SYS", "sys") == "" {
		t.Fatal("other users lost their hashes")
	}
}

func TestInlinePassword(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	s := open(t, inv)
	if s.Password("APP", "inline") != "an-inline-password" {
		t.Fatal("inline password not used")
	}
	checkHash(t, hash(t, s, "APP", "inline"), "an-inline-password")
}

func TestSwitchingSourcesAndRemovingUsers(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	s := open(t, inv)
	generated := s.Password("APP", "app")
	save(t, s)

	// The app user now takes its password from the environment: the
	// generated one is no longer kept.
	t.Setenv("TEST_APP_PW", "from-the-environment")
	inv = load(t, dir, "", `password_env = "TEST_APP_PW"`)
	s = open(t, inv)
	save(t, s)
	raw, _ := os.ReadFile(inv.SecretsFile)
	if strings.Contains(string(raw), generated) {
		t.Fatal("a generated password that is no longer used is still in the file")
	}

	// A user removed from the inventory disappears from the file.
	inv.Accounts[1].Users = inv.Accounts[1].Users[:1]
	s = open(t, inv)
	if !s.Changed() {
		t.Fatal("removing a user must update the file")
	}
	save(t, s)
	raw, _ = os.ReadFile(inv.SecretsFile)
	if strings.Contains(string(raw), "inline") {
		t.Fatal("a removed user is still in the secrets file")
	}
	if _, err := s.BcryptHash("APP", "inline"); err == nil {
		t.Fatal("BcryptHash of an unknown user must fail")
	}
}

func TestFileModeEnforced(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	save(t, open(t, inv))
	if err := os.Chmod(inv.SecretsFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(inv)
	if err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+inv.SecretsFile+"`") {
		t.Fatalf("want a chmod 600 error, got %v", err)
	}
	if err := os.Chmod(inv.SecretsFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(inv); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptUserErrorShowsNoSecret(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	const secret = "TopSecretValue123"
	if err := os.WriteFile(inv.SecretsFile, []byte("[route]\npassword = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(inv)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), inv.SecretsFile+":2") {
		t.Fatalf("error must give file:line and no value: %v", err)
	}
}

func TestUnsetEnvAtOpen(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TEST_APP_PW", "long-enough-password")
	inv := load(t, dir, "", `password_env = "TEST_APP_PW"`)
	os.Unsetenv("TEST_APP_PW")
	_, err := Open(inv)
	if err == nil || !strings.Contains(err.Error(), "environment variable TEST_APP_PW is not set") {
		t.Fatalf("want an unset variable error, got %v", err)
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		pw, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != GeneratedLength || strings.Trim(pw, Alphabet) != "" || seen[pw] {
			t.Fatalf("bad or repeated password of length %d", len(pw))
		}
		seen[pw] = true
	}
	if strings.ContainsAny(Alphabet, "0O1lI") {
		t.Fatal("alphabet has look-alike characters")
	}
}

// A generated password edited by hand in the file is used, with a new hash
// (its check no longer matches); a damaged check alone keeps the hash, which
// bcrypt still confirms.
func TestGeneratedPasswordEditedByHand(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	s := open(t, inv)
	save(t, s)
	old := s.Password("APP", "app")
	oldHash := hash(t, s, "APP", "app")
	raw, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}

	const chosen = "a-password-chosen-by-hand"
	edited := strings.Replace(string(raw), old, chosen, 1)
	if err := os.WriteFile(inv.SecretsFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, inv)
	if s.Password("APP", "app") != chosen || !s.Changed() {
		t.Fatal("the edited password is not used")
	}
	checkHash(t, hash(t, s, "APP", "app"), chosen)

	// Back to the original file, with only the app user's check damaged.
	lines := strings.Split(string(raw), "\n")
	for i, l := range lines {
		if strings.Contains(l, old) {
			if !strings.HasPrefix(lines[i+2], "check = ") {
				t.Fatalf("unexpected layout:\n%s", raw)
			}
			lines[i+2] = `check = "0000"`
		}
	}
	if err := os.WriteFile(inv.SecretsFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, inv)
	if hash(t, s, "APP", "app") != oldHash || s.Password("APP", "app") != old {
		t.Fatal("a hash bcrypt confirms must be kept")
	}
	if !s.Changed() {
		t.Fatal("the damaged check must be rewritten")
	}
}

// TestRealCost checks the cost configs really get: 11, as `nats server
// passwd` writes, with the $2a$ prefix; and that a hash of another cost is
// replaced, so lowering or raising the cost takes effect.
func TestRealCost(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	inv.Accounts = inv.Accounts[:1] // one user and the route: two hashes
	s := open(t, inv)
	save(t, s)
	cheap := hash(t, s, "SYS", "sys")

	hashCost = BcryptCost
	t.Cleanup(func() { hashCost = bcrypt.MinCost })
	s = open(t, inv)
	h := hash(t, s, "SYS", "sys")
	if h == cheap || !strings.HasPrefix(h, "$2a$11$") {
		t.Fatalf("hash %q: want a new $2a$11$ hash", h)
	}
	checkHash(t, h, s.Password("SYS", "sys"))
}

func openSlots(t *testing.T, inv *inventory.Inventory, slots ...Slot) *Store {
	t.Helper()
	s, err := Open(inv, slots...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileText(t *testing.T, inv *inventory.Inventory) string {
	t.Helper()
	raw, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func checkMode(t *testing.T, inv *inventory.Inventory) {
	t.Helper()
	fi, err := os.Stat(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode = %04o, want 0600", fi.Mode().Perm())
	}
}

func TestSlotNames(t *testing.T) {
	inv := load(t, t.TempDir(), "", "")
	for _, tc := range []struct {
		slots   []Slot
		wantErr string // "" = accepted
	}{
		{[]Slot{{Name: "grafana-admin"}}, ""},
		{[]Slot{{Name: "surveyor_sys", Bcrypt: true}}, ""},
		{[]Slot{{Name: "g2"}, {Name: "g2"}}, ""}, // the same request twice
		{[]Slot{{Name: ""}}, `secret name ""`},
		{[]Slot{{Name: "Grafana"}}, `secret name "Grafana"`},
		{[]Slot{{Name: "1x"}}, `secret name "1x"`},
		{[]Slot{{Name: "a.b"}}, `secret name "a.b"`},
		{[]Slot{{Name: "a b"}}, `secret name "a b"`},
		{[]Slot{{Name: "x", Env: "NOT-A-VAR"}}, `secret "x": "NOT-A-VAR" is not an environment variable name`},
		{[]Slot{{Name: "x"}, {Name: "x", Bcrypt: true}}, `secret "x" is requested twice, differently`},
	} {
		_, err := Open(inv, tc.slots...)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tc.slots, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want one containing %q", tc.slots, err, tc.wantErr)
		}
	}
}

// A slot with no Env is generated once, kept in the file (with a bcrypt hash
// when asked for) and the same on every later Open.
func TestSlotGeneratedAndStable(t *testing.T) {
	for _, tc := range []struct {
		name string
		slot Slot
	}{
		{"plain", Slot{Name: "grafana-secret-key"}},
		{"with bcrypt", Slot{Name: "surveyor", Bcrypt: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := load(t, t.TempDir(), "", "")
			s := openSlots(t, inv, tc.slot)
			v := s.Secret(tc.slot.Name)
			if len(v) != GeneratedLength || strings.Trim(v, Alphabet) != "" {
				t.Fatalf("generated secret has length %d or characters outside the alphabet", len(v))
			}
			if !s.Changed() {
				t.Fatal("a generated secret must be saved")
			}
			h, herr := s.SecretBcrypt(tc.slot.Name)
			if tc.slot.Bcrypt {
				if herr != nil {
					t.Fatal(herr)
				}
				checkHash(t, h, v)
			} else if herr == nil {
				t.Fatal("SecretBcrypt of a slot without Bcrypt must fail")
			}
			save(t, s)
			checkMode(t, inv)
			if !strings.Contains(fileText(t, inv), "[secrets."+tc.slot.Name+"]") {
				t.Fatalf("no [secrets.%s] table in the file", tc.slot.Name)
			}

			s2 := openSlots(t, inv, tc.slot)
			if s2.Secret(tc.slot.Name) != v || s2.Changed() {
				t.Fatal("the secret changed across Open/Save/Open")
			}
			if tc.slot.Bcrypt {
				if h2, _ := s2.SecretBcrypt(tc.slot.Name); h2 != h {
					t.Fatal("the bcrypt hash changed across reopen although the secret did not")
				}
			}
			save(t, s2)
			checkMode(t, inv)
		})
	}
}

// A slot's Env wins over what the file holds, and its value is never
// written to the file; only its hash is, when asked for.
func TestSlotFromEnv(t *testing.T) {
	const fromEnv = "grafana-admin-from-env"
	for _, tc := range []struct {
		name       string
		bcrypt     bool
		wantInFile bool // a [secrets.NAME] table stays in the file
	}{
		{"plain", false, false},
		{"with bcrypt", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := load(t, t.TempDir(), "", "")
			generated := openSlots(t, inv, Slot{Name: "admin", Bcrypt: tc.bcrypt})
			save(t, generated)

			t.Setenv("TEST_SLOT_PW", fromEnv)
			slot := Slot{Name: "admin", Env: "TEST_SLOT_PW", Bcrypt: tc.bcrypt}
			s := openSlots(t, inv, slot)
			if s.Secret("admin") != fromEnv {
				t.Fatal("the environment variable does not override the file")
			}
			save(t, s)
			text := fileText(t, inv)
			if strings.Contains(text, fromEnv) || strings.Contains(text, generated.Secret("admin")) {
				t.Fatal("the file holds the environment's value, or the generated one it replaced")
			}
			if got := strings.Contains(text, "[secrets.admin]"); got != tc.wantInFile {
				t.Fatalf("[secrets.admin] in the file: %v, want %v", got, tc.wantInFile)
			}
			if tc.bcrypt {
				h, err := s.SecretBcrypt("admin")
				if err != nil {
					t.Fatal(err)
				}
				checkHash(t, h, fromEnv)
				s2 := openSlots(t, inv, slot)
				if h2, _ := s2.SecretBcrypt("admin"); h2 != h || s2.Changed() {
					t.Fatal("the hash of an unchanged environment value must be reused")
				}
			}
		})
	}
}

func TestSlotEnvUnset(t *testing.T) {
	inv := load(t, t.TempDir(), "", "")
	s := openSlots(t, inv, Slot{Name: "admin"})
	save(t, s)
	stored := s.Secret("admin")

	for _, val := range []string{"unset", ""} {
		if val == "unset" {
			os.Unsetenv("TEST_SLOT_UNSET")
		} else {
			t.Setenv("TEST_SLOT_UNSET", val)
		}
		_, err := Open(inv, Slot{Name: "admin", Env: "TEST_SLOT_UNSET"})
		if err == nil || !strings.Contains(err.Error(), `secret "admin": environment variable TEST_SLOT_UNSET is not set`) {
			t.Fatalf("want an error naming the variable, got %v", err)
		}
		if strings.Contains(err.Error(), stored) {
			t.Fatal("the error shows the stored secret")
		}
	}
}

// A command that does not ask for a slot must not lose it: the next one
// that does finds the same secret.
func TestUnrequestedSlotsKept(t *testing.T) {
	inv := load(t, t.TempDir(), "", "")
	s := openSlots(t, inv, Slot{Name: "grafana-admin", Bcrypt: true}, Slot{Name: "grafana-secret-key"})
	save(t, s)
	admin, key := s.Secret("grafana-admin"), s.Secret("grafana-secret-key")
	adminHash, _ := s.SecretBcrypt("grafana-admin")

	s = openSlots(t, inv)
	if s.Changed() {
		t.Fatal("opening without slots must not drop the stored ones")
	}
	if s.Secret("grafana-admin") != "" {
		t.Fatal("Secret of a slot not requested must be empty")
	}
	if _, err := s.SecretBcrypt("grafana-admin"); err == nil {
		t.Fatal("SecretBcrypt of a slot not requested must fail")
	}
	// A user change rewrites the file; the slots must survive that too.
	inv.Accounts[1].Users = inv.Accounts[1].Users[:1]
	s = openSlots(t, inv, Slot{Name: "grafana-secret-key"})
	if !s.Changed() {
		t.Fatal("removing a user must update the file")
	}
	save(t, s)
	checkMode(t, inv)

	s = openSlots(t, inv, Slot{Name: "grafana-admin", Bcrypt: true}, Slot{Name: "grafana-secret-key"})
	h, _ := s.SecretBcrypt("grafana-admin")
	if s.Secret("grafana-admin") != admin || s.Secret("grafana-secret-key") != key || h != adminHash {
		t.Fatal("an unrequested slot was lost or changed")
	}
	if s.Changed() {
		t.Fatal("nothing changed, yet the store wants to save")
	}
}

// An inventory without slots writes no [secrets] table, so existing files
// stay byte for byte what they were.
func TestNoSlotsNoTable(t *testing.T) {
	inv := load(t, t.TempDir(), "", "")
	save(t, open(t, inv))
	if strings.Contains(fileText(t, inv), "[secrets") {
		t.Fatal("the file has a [secrets] table without any slot")
	}
}

// A weak password typed into the secrets file by hand is refused like one
// in the inventory, with the file's line and the entry, never the value.
func TestWeakPasswordEditedIntoFile(t *testing.T) {
	dir := t.TempDir()
	inv := load(t, dir, "", "")
	s := open(t, inv)
	save(t, s)
	raw, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	gen := s.Password("APP", "app")
	lineNo := 0
	for i, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, gen) {
			lineNo = i + 1
		}
	}
	for _, tc := range []struct{ name, pw, want string }{
		{"one character repeated", "zzzzzzzzzzzzzzzz", "has fewer than 4 different characters"},
		{"a common one", "password1234", "is one of the most common passwords"},
		{"six characters in twelve bytes", "ääääää", "is shorter than 12 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := strings.Replace(string(raw), gen, tc.pw, 1)
			if err := os.WriteFile(inv.SecretsFile, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(inv)
			want := fmt.Sprintf("%s:%d: [accounts.APP.app] password %s", inv.SecretsFile, lineNo, tc.want)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), tc.pw) {
				t.Fatalf("got %v\nwant it to contain %q and not the password", err, want)
			}
		})
	}
}

// CheckFile is what the CLI runs before connecting: a missing file is
// fine, a readable-by-others or non-regular one is not.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.toml")
	if err := CheckFile(p); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(p); err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+p+"`") {
		t.Fatalf("mode 0644: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(p); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
	if err := CheckFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory: %v", err)
	}
}
