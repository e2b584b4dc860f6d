package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// testPassphrase must never appear in any error or output.
const testPassphrase = "correct horse battery staple 42"

// sshKey writes a new private key of kind ("ed25519" or "rsa") and its .pub
// into dir, and returns the private key's path and the public key line.
func sshKey(t *testing.T, dir, name, kind string) (string, string) {
	t.Helper()
	var priv any
	switch kind {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = k
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv = k
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := os.WriteFile(p+".pub", []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, line
}

// loadSecrets is load with a [secrets] table.
func loadSecrets(t *testing.T, dir, table string) *inventory.Inventory {
	t.Helper()
	inv := load(t, dir, "", "")
	text, err := os.ReadFile(inv.Path)
	if err != nil {
		t.Fatal(err)
	}
	// [secrets] must come before the first table to be top-level; the
	// inventory starts with [nats].
	if err := os.WriteFile(inv.Path, []byte("[secrets]\n"+table+"\n\n"+string(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err = inventory.LoadWithOptions(inv.Path, inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// answers makes Prompt answer from a list, and fails the test if it asks
// more often.
func answers(t *testing.T, list ...string) *int {
	t.Helper()
	asked := new(int)
	prev := Prompt
	t.Cleanup(func() { Prompt = prev })
	Prompt = func(string) (string, error) {
		if *asked >= len(list) {
			t.Errorf("asked for a passphrase %d times, want at most %d", *asked+1, len(list))
			return "", ErrNoTerminal
		}
		*asked++
		return list[*asked-1], nil
	}
	return asked
}

// noPrompt fails the test if a passphrase is asked on the terminal.
func noPrompt(t *testing.T) { answers(t) }

func TestEncryptedRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // the [secrets] table
		// prompts are the terminal's answers: for the first Save (asked
		// twice, the file being new), then for the second Open.
		prompts []string
		asked   int
	}{
		{"passphrase from the environment", func(t *testing.T, dir string) string {
			t.Setenv("TEST_SECRETS_PASS", testPassphrase)
			return "encrypt = \"passphrase\"\npassphrase_env = \"TEST_SECRETS_PASS\""
		}, nil, 0},
		{"passphrase from the terminal", func(t *testing.T, dir string) string {
			return `encrypt = "passphrase"`
		}, []string{testPassphrase, testPassphrase, testPassphrase}, 3},
		{"ssh-ed25519, recipients defaulted", func(t *testing.T, dir string) string {
			id, _ := sshKey(t, dir, "id_ed25519", "ed25519")
			return "encrypt = \"ssh-key\"\nidentity = \"" + id + "\""
		}, nil, 0},
		{"ssh-ed25519 and another key as recipients", func(t *testing.T, dir string) string {
			id, line := sshKey(t, dir, "id_ed25519", "ed25519")
			other, _ := sshKey(t, dir, "other", "ed25519")
			return "encrypt = \"ssh-key\"\nidentity = \"" + id + "\"\nrecipients = [\"" + line + "\", \"" + other + ".pub\"]"
		}, nil, 0},
		{"ssh-rsa", func(t *testing.T, dir string) string {
			id, _ := sshKey(t, dir, "id_rsa", "rsa")
			return "encrypt = \"ssh-key\"\nidentity = \"" + id + "\""
		}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			asked := answers(t, tc.prompts...)
			inv := loadSecrets(t, dir, tc.setup(t, dir))
			s := open(t, inv)
			save(t, s)
			checkMode(t, inv)
			raw, err := os.ReadFile(inv.SecretsFile)
			if err != nil {
				t.Fatal(err)
			}
			if !IsEncrypted(raw) || !bytes.HasPrefix(raw, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
				t.Fatalf("the file is not an armored age file:\n%s", raw)
			}
			for _, pw := range []string{s.RoutePassword(), s.Password("APP", "app"), s.Password("SYS", "sys"), "bcrypt", "$2a$"} {
				if bytes.Contains(raw, []byte(pw)) {
					t.Fatalf("the encrypted file shows %q", pw)
				}
			}
			again := open(t, inv)
			if again.Changed() {
				t.Error("the file read back differs from what was saved")
			}
			if again.RoutePassword() != s.RoutePassword() || again.Password("APP", "app") != s.Password("APP", "app") {
				t.Error("passwords changed across an encrypted save and open")
			}
			if h1, h2 := hash(t, s, "APP", "app"), hash(t, again, "APP", "app"); h1 != h2 {
				t.Error("hash not reused after the round trip")
			}
			// Nothing changed, so nothing is written (or asked).
			save(t, again)
			if after, _ := os.ReadFile(inv.SecretsFile); !bytes.Equal(after, raw) {
				t.Error("a save with nothing changed rewrote the file")
			}
			if *asked != tc.asked {
				t.Errorf("asked for the passphrase %d times, want %d", *asked, tc.asked)
			}
		})
	}
}

// Each bad file or key is refused by a UserError that says what is wrong,
// shows no secret, and leaves the file as it was.
func TestEncryptedFileRefused(t *testing.T) {
	type setup struct {
		table string // [secrets] to open with
		file  []byte // the secrets file's content
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) setup
		want  string
	}{
		{"wrong passphrase", func(t *testing.T, dir string) setup {
			f := sealedWithPass(t, dir, testPassphrase)
			t.Setenv("TEST_SECRETS_PASS", "another passphrase, wrong")
			return setup{"encrypt = \"passphrase\"\npassphrase_env = \"TEST_SECRETS_PASS\"", f}
		}, "cannot be decrypted with the passphrase in environment variable TEST_SECRETS_PASS: wrong passphrase"},
		{"wrong passphrase typed", func(t *testing.T, dir string) setup {
			f := sealedWithPass(t, dir, testPassphrase)
			answers(t, "typed wrong, sadly")
			return setup{`encrypt = "passphrase"`, f}
		}, "cannot be decrypted with the passphrase typed: wrong passphrase"},
		{"wrong key", func(t *testing.T, dir string) setup {
			f := sealedWithKey(t, dir)
			other, _ := sshKey(t, dir, "other", "ed25519")
			return setup{"encrypt = \"ssh-key\"\nidentity = \"" + other + "\"", f}
		}, "cannot be decrypted with identity " + "%DIR%/other: it was encrypted to other keys"},
		{"a passphrase file opened with a key", func(t *testing.T, dir string) setup {
			f := sealedWithPass(t, dir, testPassphrase)
			id, _ := sshKey(t, dir, "id", "ed25519")
			return setup{"encrypt = \"ssh-key\"\nidentity = \"" + id + "\"", f}
		}, "was encrypted with a passphrase, not to SSH keys"},
		{"a key file opened with a passphrase", func(t *testing.T, dir string) setup {
			f := sealedWithKey(t, dir)
			t.Setenv("TEST_SECRETS_PASS", testPassphrase)
			return setup{"encrypt = \"passphrase\"\npassphrase_env = \"TEST_SECRETS_PASS\"", f}
		}, "was encrypted to SSH keys, not with a passphrase"},
		{"truncated", func(t *testing.T, dir string) setup {
			f := sealedWithKey(t, dir)
			// Cut inside the payload, keeping the header whole.
			lines := strings.Split(string(f), "\n")
			return setup{keyTable(dir), []byte(strings.Join(lines[:len(lines)-3], "\n") + "\n")}
		}, "is damaged (truncated or altered"},
		{"payload altered", func(t *testing.T, dir string) setup {
			f := sealedWithKey(t, dir)
			raw := dearmor(t, f)
			raw[len(raw)-5] ^= 0x40
			return setup{keyTable(dir), raw}
		}, "is damaged (truncated or altered"},
		{"header garbled", func(t *testing.T, dir string) setup {
			sealedWithKey(t, dir)
			return setup{keyTable(dir), []byte("age-encryption.org/v1\n-> X25519 nonsense\n--- short\n")}
		}, "is damaged: its age header cannot be read"},
		{"plain text where encrypted is expected", func(t *testing.T, dir string) setup {
			sealedWithKey(t, dir)
			return setup{keyTable(dir), []byte("[route]\npassword = \"" + testPassphrase + "\"\n")}
		}, "is in plain text, but the inventory says encrypt = \"ssh-key\"; run `natsdeploy secrets encrypt %DIR%/test.toml`"},
		{"encrypted where plain text is expected", func(t *testing.T, dir string) setup {
			return setup{"", sealedWithKey(t, dir)}
		}, "is encrypted (age), but the inventory has no [secrets] encrypt"},
		{"no terminal for the passphrase", func(t *testing.T, dir string) setup {
			f := sealedWithPass(t, dir, testPassphrase)
			prev := Prompt
			t.Cleanup(func() { Prompt = prev })
			Prompt = func(string) (string, error) { return "", ErrNoTerminal }
			return setup{`encrypt = "passphrase"`, f}
		}, "there is no terminal to ask for it on; set passphrase_env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := tc.setup(t, dir)
			inv := loadSecrets(t, dir, st.table)
			if st.table == "" {
				inv = load(t, dir, "", "")
			}
			if err := os.WriteFile(inv.SecretsFile, st.file, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(inv)
			var ue *UserError
			if !errors.As(err, &ue) {
				t.Fatalf("Open: %v (%T), want a UserError", err, err)
			}
			want := strings.ReplaceAll(tc.want, "%DIR%", dir)
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), inv.SecretsFile) {
				t.Errorf("error %q\nwant it to name the file and say %q", err, want)
			}
			if strings.Contains(err.Error(), testPassphrase) || strings.Contains(err.Error(), "wrong, sadly") {
				t.Errorf("the error shows a passphrase: %v", err)
			}
			if after, _ := os.ReadFile(inv.SecretsFile); !bytes.Equal(after, st.file) {
				t.Error("the file was changed")
			}
		})
	}
}

func keyTable(dir string) string {
	return "encrypt = \"ssh-key\"\nidentity = \"" + filepath.Join(dir, "id_ed25519") + "\""
}

// sealedWithKey returns a secrets file encrypted to a new key,
// dir/id_ed25519.
func sealedWithKey(t *testing.T, dir string) []byte {
	t.Helper()
	sshKey(t, dir, "id_ed25519", "ed25519")
	return sealed(t, dir, keyTable(dir))
}

func sealedWithPass(t *testing.T, dir, pass string) []byte {
	t.Helper()
	t.Setenv("TEST_SEAL_PASS", pass)
	return sealed(t, dir, "encrypt = \"passphrase\"\npassphrase_env = \"TEST_SEAL_PASS\"")
}

// sealed makes an encrypted secrets file in a folder of its own and
// returns its bytes.
func sealed(t *testing.T, dir, table string) []byte {
	t.Helper()
	sub := filepath.Join(dir, "seal")
	os.Mkdir(sub, 0o700)
	inv := loadSecrets(t, sub, table)
	save(t, open(t, inv))
	b, err := os.ReadFile(inv.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dearmor(t *testing.T, armored []byte) []byte {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(armored)), "\n")
	var b64 strings.Builder
	for _, l := range lines[1 : len(lines)-1] {
		b64.WriteString(l)
	}
	raw, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A new file's passphrase typed on the terminal is asked twice; two
// different answers, or a weak one, write nothing.
func TestNewFilePassphraseConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		want    string
	}{
		{"mismatch", []string{testPassphrase, testPassphrase + "x"}, "the two passphrases typed differ"},
		{"weak", []string{"short"}, "the passphrase typed is shorter than 12 characters"},
		{"empty", []string{""}, "no passphrase was typed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			answers(t, tc.answers...)
			inv := loadSecrets(t, dir, `encrypt = "passphrase"`)
			s := open(t, inv)
			err := s.Save()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Save: %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testPassphrase) {
				t.Errorf("the error shows the passphrase: %v", err)
			}
			if _, err := os.Stat(inv.SecretsFile); !os.IsNotExist(err) {
				t.Errorf("a file was written: %v", err)
			}
		})
	}
}

// Recipients that leave out the identity's own key would write a file
// nobody here can read back: refused, nothing written.
func TestRecipientsMustIncludeIdentity(t *testing.T) {
	dir := t.TempDir()
	noPrompt(t)
	id, _ := sshKey(t, dir, "id_ed25519", "ed25519")
	_, other := sshKey(t, dir, "other", "ed25519")
	inv := loadSecrets(t, dir, "encrypt = \"ssh-key\"\nidentity = \""+id+"\"\nrecipients = [\""+other+"\"]")
	err := open(t, inv).Save()
	if err == nil || !strings.Contains(err.Error(), "recipients do not include the public key of identity "+id) {
		t.Fatalf("Save: %v", err)
	}
	if _, err := os.Stat(inv.SecretsFile); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}
}

func TestEncryptConvertsPlainFile(t *testing.T) {
	dir := t.TempDir()
	noPrompt(t)
	plain := load(t, dir, "", "")
	s := open(t, plain)
	save(t, s)
	before, err := os.ReadFile(plain.SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Without [secrets] encrypt there is nothing to encrypt with.
	if _, err := Encrypt(plain); err == nil || !strings.Contains(err.Error(), "no [secrets] encrypt") {
		t.Fatalf("Encrypt without [secrets]: %v", err)
	}
	sshKey(t, dir, "id_ed25519", "ed25519")
	inv := loadSecrets(t, dir, keyTable(dir))
	done, err := Encrypt(inv)
	if err != nil || !done {
		t.Fatalf("Encrypt: %v %v", done, err)
	}
	checkMode(t, inv)
	raw, _ := os.ReadFile(inv.SecretsFile)
	if !IsEncrypted(raw) || bytes.Contains(raw, []byte(s.RoutePassword())) {
		t.Fatal("not encrypted")
	}
	back, err := newSealer(inv).open(raw)
	if err != nil || !bytes.Equal(back, before) {
		t.Fatalf("the encrypted file does not hold the plain one's bytes: %v", err)
	}
	again := open(t, inv)
	if again.Changed() || again.RoutePassword() != s.RoutePassword() {
		t.Error("passwords differ after encrypting")
	}
	// Encrypted already: nothing to do, nothing written.
	done, err = Encrypt(inv)
	if err != nil || done {
		t.Fatalf("second Encrypt: %v %v, want false and no error", done, err)
	}
	if after, _ := os.ReadFile(inv.SecretsFile); !bytes.Equal(after, raw) {
		t.Error("the second Encrypt rewrote the file")
	}
}

// A plain file that is not a valid secrets file is not encrypted: its
// problem is said, and it stays as it was.
func TestEncryptRefusesBrokenPlainFile(t *testing.T) {
	dir := t.TempDir()
	sshKey(t, dir, "id_ed25519", "ed25519")
	inv := loadSecrets(t, dir, keyTable(dir))
	bad := []byte("[route]\npassword = \"" + testPassphrase)
	if err := os.WriteFile(inv.SecretsFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Encrypt(inv)
	if err == nil || !strings.Contains(err.Error(), "not valid TOML") || strings.Contains(err.Error(), testPassphrase) {
		t.Fatalf("Encrypt: %v", err)
	}
	if after, _ := os.ReadFile(inv.SecretsFile); !bytes.Equal(after, bad) {
		t.Error("the file was changed")
	}
}
