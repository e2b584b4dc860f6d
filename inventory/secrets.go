package inventory

import (
	"errors"
	"fmt"
	"os"
	"unicode/utf8"

	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// PassphraseProblem is PasswordProblem for the secrets file's passphrase,
// or "". scrypt takes any length, so bcrypt's 72-byte limit does not apply.
func PassphraseProblem(p string) string {
	if len(p) > MaxPasswordLength {
		if !utf8.ValidString(p) {
			return "is not valid UTF-8 text"
		}
		return ""
	}
	return PasswordProblem(p)
}

// checkSecrets checks [secrets]. The keys of one way to encrypt are refused
// with the other, so a half-changed table cannot silently leave the file
// readable in a way nobody meant.
func (v *validator) checkSecrets() {
	s := &v.inv.Secrets
	if v.defined["secrets.encrypt"] && s.Encrypt != EncryptPassphrase && s.Encrypt != EncryptSSHKey {
		// The value is shown: it is a word from a short list, not a secret.
		v.add("secrets.encrypt", "%q is not a way to encrypt the secrets file; write encrypt = %q (a passphrase from passphrase_env or the terminal) or encrypt = %q (to SSH keys), or remove it to keep the file in plain text",
			s.Encrypt, EncryptPassphrase, EncryptSSHKey)
		return
	}
	only := func(key, mode string) {
		if v.defined[key] && s.Encrypt != mode {
			v.add(key, "is only used with encrypt = %q; remove it, or set encrypt = %q in [secrets]", mode, mode)
		}
	}
	only("secrets.passphrase_env", EncryptPassphrase)
	only("secrets.recipients", EncryptSSHKey)
	only("secrets.identity", EncryptSSHKey)

	switch s.Encrypt {
	case EncryptPassphrase:
		if !v.defined["secrets.passphrase_env"] {
			return
		}
		if !envNameRe.MatchString(s.PassphraseEnv) {
			v.add("secrets.passphrase_env", "%s", badEnvNameMsg)
			return
		}
		p, ok := os.LookupEnv(s.PassphraseEnv)
		switch {
		case !ok || p == "":
			v.add("secrets.passphrase_env", "environment variable %s (the secrets file's passphrase) is not set; export it before running natsdeploy, or remove passphrase_env to be asked on the terminal", s.PassphraseEnv)
		default:
			if msg := PassphraseProblem(p); msg != "" {
				v.add("secrets.passphrase_env", "the passphrase in environment variable %s %s; use at least %d characters", s.PassphraseEnv, msg, MinPasswordLength)
			}
		}
	case EncryptSSHKey:
		v.checkSecretsKeys(s)
	}
}

func (v *validator) checkSecretsKeys(s *SecretsSpec) {
	if !v.defined["secrets.identity"] {
		v.add("secrets.encrypt", "encrypt = %q needs identity, the SSH private key (ssh-ed25519 or ssh-rsa) that decrypts the file; write e.g. identity = \"~/.ssh/id_ed25519\"", EncryptSSHKey)
	}
	if v.defined["secrets.recipients"] && len(s.Recipients) == 0 {
		v.add("secrets.recipients", "is empty; name at least one public key, or remove it to encrypt to identity's own key")
	}
	for i, r := range s.Recipients {
		key := keyPath("secrets.recipients", i)
		if IsKeyLine(r) {
			if msg := recipientProblem(r); msg != "" {
				v.add(key, "%s", msg)
			}
			continue
		}
		if v.opts.SkipFileChecks {
			continue
		}
		lines, err := readKeyFile(r)
		if err != nil {
			v.add(key, "%v; name a file of SSH public keys (such as ~/.ssh/id_ed25519.pub) or write the key itself", err)
			continue
		}
		for _, l := range lines {
			if msg := recipientProblem(l); msg != "" {
				v.add(key, "in %s: %s", r, msg)
				break
			}
		}
	}
	if !v.defined["secrets.identity"] || v.opts.SkipFileChecks {
		return
	}
	if !v.checkPrivateKeyFile("secrets.identity", s.Identity) {
		return
	}
	if msg := identityProblem(s.Identity); msg != "" {
		v.add("secrets.identity", "%s", msg)
	}
}

// recipientProblem says why an authorized_keys line cannot be an age
// recipient, or "". Public keys are no secret: the line may be quoted.
func recipientProblem(line string) string {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return fmt.Sprintf("%q is not an SSH public key (%v); write a line as in an .pub file, e.g. \"ssh-ed25519 AAAA... you@host\"", line, err)
	}
	if t := pk.Type(); t != ssh.KeyAlgoED25519 && t != ssh.KeyAlgoRSA {
		return fmt.Sprintf("is a %s key; age encrypts only to ssh-ed25519 and ssh-rsa keys", t)
	}
	if _, err := agessh.ParseRecipient(line); err != nil {
		return fmt.Sprintf("cannot be used by age: %v", err)
	}
	return ""
}

// identityProblem says why the private key at path cannot decrypt an age
// file, or "". A key protected by a passphrase is fine: it is asked for
// when the file is read. The parser's words are not shown: they are about
// a private key.
func identityProblem(path string) string {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("identity file %s cannot be read (%v)", path, unwrapPathError(err))
	}
	k, err := ssh.ParseRawPrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		if missing.PublicKey == nil {
			// An old PEM key that is encrypted does not say its public
			// key; age needs it beside the key to know which file key it
			// may open.
			if _, err := os.Stat(path + ".pub"); err != nil {
				return fmt.Sprintf("identity file %s is protected by a passphrase and its public key is not in %s.pub; put it there, or convert the key with ssh-keygen -p -f %s", path, path, path)
			}
		}
		return ""
	case err != nil:
		return fmt.Sprintf("identity file %s is not an SSH private key that can be read; name an ssh-ed25519 or ssh-rsa private key", path)
	}
	if _, err := agessh.ParseIdentity(pem); err != nil {
		return fmt.Sprintf("identity file %s holds a %T key; age decrypts only with ssh-ed25519 and ssh-rsa keys", path, k)
	}
	return ""
}
