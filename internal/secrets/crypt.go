package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// UserError is a problem the user must fix with the secrets file, the key
// to it, or what was asked of it (a wrong passphrase, a damaged file, a
// plain-text file where an encrypted one is expected, a rotation of a
// password the file does not keep). It is found before any host is
// contacted, and nothing has been written when it is returned: callers
// report it as bad input.
type UserError struct{ msg string }

func (e *UserError) Error() string { return e.msg }

func userErrorf(format string, args ...any) error {
	return &UserError{msg: fmt.Sprintf(format, args...)}
}

// Prompt asks for a passphrase on the controlling terminal, without echo.
// It is a variable so tests can answer it; ok false means there is no
// terminal to ask on.
var Prompt = promptTTY

// ErrNoTerminal is what Prompt returns when there is no terminal to ask on.
var ErrNoTerminal = errors.New("no terminal to ask on")

func promptTTY(prompt string) (string, error) {
	// /dev/tty, not stdin: stdin may be a pipe, and the passphrase must
	// come from the person at the terminal, never from argv or a file.
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", ErrNoTerminal
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("reading the passphrase from the terminal: %w", err)
	}
	return string(b), nil
}

// scryptWorkFactor is age's default (about a second per encryption or
// decryption); this package's tests lower it.
var scryptWorkFactor = 18

// sealer encrypts and decrypts the secrets file as the inventory's
// [secrets] table says. The passphrase and the identity are resolved at
// most once per run, on first use: plan on an inventory whose file does
// not exist yet never needs them.
type sealer struct {
	spec inventory.SecretsSpec
	path string
	inv  string // the inventory, for the commands messages suggest

	mu   sync.Mutex
	pass string
	id   age.Identity
	pub  ssh.PublicKey
}

func newSealer(inv *inventory.Inventory) *sealer {
	return &sealer{spec: inv.Secrets, path: inv.SecretsFile, inv: inv.Path}
}

func (c *sealer) on() bool { return c != nil && c.spec.Encrypt != "" }

// IsEncrypted reports whether data is an age file, armored or not.
func IsEncrypted(data []byte) bool {
	return bytes.HasPrefix(data, []byte("age-encryption.org/")) ||
		bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header))
}

// open returns the plain text of the file's raw bytes.
func (c *sealer) open(raw []byte) ([]byte, error) {
	enc := IsEncrypted(raw)
	switch {
	case !c.on() && !enc:
		return raw, nil
	case !c.on():
		return nil, userErrorf("secrets file %s is encrypted (age), but the inventory has no [secrets] encrypt; add the [secrets] table it was encrypted with (encrypt = %q with passphrase_env, or encrypt = %q with identity)",
			c.path, inventory.EncryptPassphrase, inventory.EncryptSSHKey)
	case !enc:
		return nil, userErrorf("secrets file %s is in plain text, but the inventory says encrypt = %q; run `natsdeploy secrets encrypt %s` to encrypt it, or remove encrypt from [secrets] to keep it in plain text",
			c.path, c.spec.Encrypt, c.inv)
	}
	id, err := c.identity(false)
	if err != nil {
		return nil, err
	}
	var src io.Reader = bytes.NewReader(raw)
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/")) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, id)
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch):
		return nil, c.noMatch(nomatch.StanzaTypes)
	case err != nil && !errors.Is(err, age.ErrIncorrectIdentity) && strings.Contains(err.Error(), "header"):
		return nil, userErrorf("secrets file %s is damaged: its age header cannot be read (%v); restore it from a backup", c.path, err)
	case err != nil:
		// An identity that failed for another reason than not matching:
		// an SSH key whose own passphrase was wrong, say.
		return nil, userErrorf("secrets file %s cannot be decrypted: %v", c.path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, userErrorf("secrets file %s is damaged (truncated or altered after it was written: %v); restore it from a backup, or delete it to have every generated password made anew", c.path, err)
	}
	if len(plain) > maxFileSize {
		return nil, userErrorf("secrets file %s decrypts to more than %d MiB, far more than a secrets file holds", c.path, maxFileSize>>20)
	}
	return plain, nil
}

// noMatch explains an age file the identity cannot open, telling the
// two ways apart by the file's recipient stanzas (public information).
func (c *sealer) noMatch(stanzas []string) error {
	byPass := slices.Contains(stanzas, "scrypt")
	switch c.spec.Encrypt {
	case inventory.EncryptPassphrase:
		if !byPass {
			return userErrorf("secrets file %s was encrypted to SSH keys, not with a passphrase; set encrypt = %q and identity in [secrets]", c.path, inventory.EncryptSSHKey)
		}
		src := "the passphrase typed"
		if c.spec.PassphraseEnv != "" {
			src = "the passphrase in environment variable " + c.spec.PassphraseEnv
		}
		return userErrorf("secrets file %s cannot be decrypted with %s: wrong passphrase", c.path, src)
	default:
		if byPass {
			return userErrorf("secrets file %s was encrypted with a passphrase, not to SSH keys; set encrypt = %q in [secrets]", c.path, inventory.EncryptPassphrase)
		}
		return userErrorf("secrets file %s cannot be decrypted with identity %s: it was encrypted to other keys; name a private key whose public key it was encrypted to", c.path, c.spec.Identity)
	}
}

// seal encrypts plain. fresh says the file does not exist yet, so a
// passphrase typed now is asked twice: a typo would lock it out for good.
func (c *sealer) seal(plain []byte, fresh bool) ([]byte, error) {
	var rs []age.Recipient
	switch c.spec.Encrypt {
	case inventory.EncryptPassphrase:
		if _, err := c.identity(fresh); err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(c.pass)
		if err != nil {
			return nil, userErrorf("secrets file %s: %v", c.path, err)
		}
		r.SetWorkFactor(scryptWorkFactor)
		rs = []age.Recipient{r}
	case inventory.EncryptSSHKey:
		var err error
		if rs, err = c.recipients(); err != nil {
			return nil, err
		}
	default:
		return plain, nil
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rs...)
	if err != nil {
		return nil, fmt.Errorf("encrypting secrets file %s: %w", c.path, err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("encrypting secrets file %s: %w", c.path, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypting secrets file %s: %w", c.path, err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("encrypting secrets file %s: %w", c.path, err)
	}
	return buf.Bytes(), nil
}

// identity resolves what decrypts the file: the passphrase (from the
// variable the inventory names, else the terminal) or the SSH key.
func (c *sealer) identity(confirm bool) (age.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil {
		return c.id, nil
	}
	switch c.spec.Encrypt {
	case inventory.EncryptPassphrase:
		p, err := c.passphrase(confirm)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(p)
		if err != nil {
			return nil, userErrorf("secrets file %s: %v", c.path, err)
		}
		c.pass, c.id = p, id
	case inventory.EncryptSSHKey:
		id, pub, err := loadSSHIdentity(c.spec.Identity)
		if err != nil {
			return nil, err
		}
		c.id, c.pub = id, pub
	default:
		return nil, fmt.Errorf("secrets file %s: no encryption configured", c.path)
	}
	return c.id, nil
}

func (c *sealer) passphrase(confirm bool) (string, error) {
	if env := c.spec.PassphraseEnv; env != "" {
		p := os.Getenv(env)
		if p == "" {
			return "", userErrorf("secrets file %s: environment variable %s (its passphrase) is not set; export it, or remove passphrase_env to be asked on the terminal", c.path, env)
		}
		return p, nil
	}
	p, err := Prompt(fmt.Sprintf("Passphrase for secrets file %s: ", c.path))
	if errors.Is(err, ErrNoTerminal) {
		return "", userErrorf("secrets file %s is encrypted with a passphrase and there is no terminal to ask for it on; set passphrase_env in [secrets] to the name of a variable holding it", c.path)
	}
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", userErrorf("secrets file %s: no passphrase was typed", c.path)
	}
	if !confirm {
		return p, nil
	}
	if msg := inventory.PassphraseProblem(p); msg != "" {
		return "", userErrorf("secrets file %s: the passphrase typed %s; choose a longer one (at least %d characters)", c.path, msg, inventory.MinPasswordLength)
	}
	again, err := Prompt("The same passphrase again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", userErrorf("secrets file %s: the two passphrases typed differ; nothing was written", c.path)
	}
	return p, nil
}

// loadSSHIdentity reads an ssh-ed25519 or ssh-rsa private key. One
// protected by a passphrase has it asked on the terminal, and only when a
// file encrypted to it is opened.
func loadSSHIdentity(path string) (age.Identity, ssh.PublicKey, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, userErrorf("secrets identity %s cannot be read: %v", path, unwrapPathErr(err))
	}
	id, err := agessh.ParseIdentity(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		pub := missing.PublicKey
		if pub == nil {
			b, err := os.ReadFile(path + ".pub")
			if err != nil {
				return nil, nil, userErrorf("secrets identity %s is protected by a passphrase and its public key is not in %s.pub", path, path)
			}
			if pub, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
				return nil, nil, userErrorf("secrets identity %s: %s.pub is not a public key: %v", path, path, err)
			}
		}
		eid, err := agessh.NewEncryptedSSHIdentity(pub, pem, func() ([]byte, error) {
			p, err := Prompt(fmt.Sprintf("Passphrase for SSH key %s: ", path))
			return []byte(p), err
		})
		if err != nil {
			return nil, nil, userErrorf("secrets identity %s: %v", path, err)
		}
		return eid, pub, nil
	case err != nil:
		// The parser's words are not shown: they are about a private key.
		return nil, nil, userErrorf("secrets identity %s is not an ssh-ed25519 or ssh-rsa private key that can be read", path)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, nil, userErrorf("secrets identity %s is not an ssh-ed25519 or ssh-rsa private key that can be read", path)
	}
	return id, signer.PublicKey(), nil
}

// recipients are the keys the file is encrypted to. The identity's own
// key must be one of them, or the file written could not be read back.
func (c *sealer) recipients() ([]age.Recipient, error) {
	if _, err := c.identity(false); err != nil {
		return nil, err
	}
	lines, err := c.spec.RecipientLines()
	if err != nil {
		return nil, userErrorf("[secrets] recipients: %v", err)
	}
	if len(lines) == 0 {
		lines = []string{string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(c.pub)))}
	}
	var rs []age.Recipient
	own := false
	for _, l := range lines {
		r, err := agessh.ParseRecipient(l)
		if err != nil {
			return nil, userErrorf("[secrets] recipients: %v", err)
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return nil, userErrorf("[secrets] recipients: %q is not an SSH public key: %v", l, err)
		}
		own = own || bytes.Equal(pk.Marshal(), c.pub.Marshal())
		rs = append(rs, r)
	}
	if !own {
		return nil, userErrorf("[secrets] recipients do not include the public key of identity %s, so the secrets file written could not be read back with it; add %s.pub (or its line) to recipients",
			c.spec.Identity, c.spec.Identity)
	}
	return rs, nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
