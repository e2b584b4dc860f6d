package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// RotateUser replaces the generated password of user in account with a new
// one, and its hash; every other entry stays as it is. Like anything
// generated, it reaches the file only on Save, which the caller must run
// before the new hash goes to any host.
func (s *Store) RotateUser(account, user string) error {
	return s.rotate(userKey(account, user), func(e entry) {
		s.data.Accounts[account][user] = e
	})
}

// RotateRoute replaces the route user's generated password.
func (s *Store) RotateRoute() error {
	return s.rotate(routeKey, func(e entry) { s.data.Route = e })
}

// RotateSecret replaces the generated value of the named slot, which Open
// must have been asked for.
func (s *Store) RotateSecret(name string) error {
	return s.rotate(slotKey(name), func(e entry) { s.data.Secrets[name] = e })
}

func (s *Store) rotate(key string, set func(entry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.origins[key]
	if !ok {
		return errors.New("nothing to rotate: the secret was not resolved when the secrets were opened")
	}
	if o.from != "" {
		// Only what natsdeploy generated is natsdeploy's to replace.
		return userErrorf("the %s comes from %s, not from the secrets file; change it there and run apply", o.desc, o.from)
	}
	old := s.passwords[key]
	pw := old
	for pw == old {
		var err error
		if pw, err = Generate(); err != nil {
			return fmt.Errorf("generating a new %s: %w", o.desc, err)
		}
	}
	e := entry{Password: pw}
	if !o.noHash {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), hashCost)
		if err != nil {
			return fmt.Errorf("hashing the new %s: %w", o.desc, err)
		}
		e.Bcrypt, e.Check = string(h), fingerprint(pw, string(h))
	}
	set(e)
	s.passwords[key] = pw
	s.changed = true
	return nil
}

// Encrypt rewrites inv's plain-text secrets file encrypted, as its
// [secrets] table says, with the same content. It reports false when the
// file is encrypted already, and then changes nothing. The encrypted file
// is read back before it replaces the plain one, so a key or passphrase
// that could not open it never costs the passwords.
func Encrypt(inv *inventory.Inventory) (bool, error) {
	c := newSealer(inv)
	path := inv.SecretsFile
	if !c.on() {
		return false, userErrorf("the inventory has no [secrets] encrypt; add encrypt = %q (with passphrase_env, or to be asked on the terminal) or encrypt = %q (with identity) first",
			inventory.EncryptPassphrase, inventory.EncryptSSHKey)
	}
	if err := CheckFile(path); err != nil {
		return false, userErrorf("%v", err)
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, userErrorf("there is no secrets file %s yet; the first apply creates it encrypted", path)
	}
	if err != nil {
		return false, fmt.Errorf("secrets file: %w", err)
	}
	if IsEncrypted(raw) {
		return false, nil
	}
	if _, err := parse(path, raw); err != nil {
		return false, err
	}
	sealed, err := c.seal(raw, true)
	if err != nil {
		return false, err
	}
	back, err := c.open(sealed)
	if err != nil || string(back) != string(raw) {
		return false, fmt.Errorf("secrets file %s: the encrypted copy does not read back as the original (%v); the plain-text file is left as it was", path, err)
	}
	if err := writeAtomic(path, sealed); err != nil {
		return false, fmt.Errorf("writing secrets file: %w", err)
	}
	return true, nil
}
