// Package secrets resolves every password of an inventory and keeps the
// local secrets file: generated passwords, and the bcrypt hash of every
// password (generated, from the environment or from the inventory).
//
// Hosts only ever get the hashes. A bcrypt hash is salted, so hashing the
// same password again gives a different string; rendered configs would then
// change on every run and every apply would reload every node. The store
// therefore keeps each hash and reuses it for as long as it still matches
// the password, so a config changes only when a password does.
//
// Besides the inventory's users, callers ask for named secrets (Slot): a
// Grafana admin password, a secret key, any password a role needs that the
// inventory does not name. They are resolved the same way and kept in the
// same file.
//
// Nothing here prints or logs a password; errors name keys and variables,
// never values.
package secrets

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/internal/atomicfile"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// BcryptCost is what `nats server passwd` uses; nats-server accepts any.
const BcryptCost = 11

// hashCost is BcryptCost except in this package's tests, which lower it so
// the suite stays fast (cost 11 is ~0.1s a hash, far more under -race).
var hashCost = BcryptCost

// GeneratedLength and Alphabet describe generated passwords: 32 characters
// from an alphabet without look-alikes (0/O, 1/l/I), about 187 bits, and
// nothing that needs quoting in a URL, a shell or a config file.
const (
	GeneratedLength = 32
	Alphabet        = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
)

// fileData is the secrets file. User entries are keyed by account, then
// user; slots by name. Password is only stored when it was generated here;
// for inventory and environment passwords the file holds the hash alone.
type fileData struct {
	Route    entry                       `toml:"route"`
	Accounts map[string]map[string]entry `toml:"accounts"`
	Secrets  map[string]entry            `toml:"secrets,omitempty"`
}

// Slot names a secret a caller needs beyond the inventory's users and route.
type Slot struct {
	// Name keys the secret in the file ([secrets.NAME]) and in Secret.
	Name string
	// Env, if set, names the environment variable that provides the
	// secret; it must then be set. Otherwise the secret is generated once
	// and kept in the file.
	Env string
	// Bcrypt also keeps a bcrypt hash, stable while the secret is, for
	// SecretBcrypt.
	Bcrypt bool
}

var (
	slotNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	envNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// checkSlots refuses bad names, and two different requests for one name:
// callers that share a secret must agree on where it comes from.
func checkSlots(slots []Slot) ([]Slot, error) {
	seen := map[string]Slot{}
	var out []Slot
	for _, sl := range slots {
		if !slotNameRe.MatchString(sl.Name) {
			return nil, fmt.Errorf("secret name %q: use lower-case letters, digits, '_' and '-', starting with a letter", sl.Name)
		}
		if sl.Env != "" && !envNameRe.MatchString(sl.Env) {
			return nil, fmt.Errorf("secret %q: %q is not an environment variable name", sl.Name, sl.Env)
		}
		if prev, dup := seen[sl.Name]; dup {
			if prev != sl {
				return nil, fmt.Errorf("secret %q is requested twice, differently (%+v and %+v)", sl.Name, prev, sl)
			}
			continue
		}
		seen[sl.Name] = sl
		out = append(out, sl)
	}
	return out, nil
}

type entry struct {
	Password string `toml:"password,omitempty"`
	Bcrypt   string `toml:"bcrypt,omitempty"`
	// Check binds a generated password to its hash (see fingerprint), so
	// the hash can be reused without a bcrypt comparison.
	Check string `toml:"check,omitempty"`
}

// fingerprint lets Open reuse the hash of a generated password without
// bcrypt.CompareHashAndPassword, which costs as much as hashing (~0.1s at
// cost 11); with a dozen users that alone would take most of a no-op apply's
// second. It is only used for generated passwords, whose plaintext sits in
// the same file anyway, so this fast hash gives nothing away. Passwords from
// the inventory or the environment are never stored in any fast-hashed
// form: their hashes are confirmed with bcrypt on every Open.
func fingerprint(pw, hash string) string {
	sum := sha256.Sum256([]byte("natsdeploy-secret-v1\x00" + pw + "\x00" + hash))
	return hex.EncodeToString(sum[:])
}

// Store holds the resolved passwords and hashes of one inventory. It is
// safe for concurrent use.
type Store struct {
	path string
	// seal encrypts the file on Save when the inventory says so; existed
	// says the file was there when opened (a new one's passphrase is asked
	// twice).
	seal    *sealer
	existed bool

	mu      sync.Mutex
	data    fileData // what the file should hold
	changed bool     // data differs from the file

	// passwords holds every resolved password, keyed by userKey; the route
	// user's under routeKey, slots' under slotKey.
	passwords map[string]string
	// slots are the requested slots by name.
	slots map[string]Slot
	// origins say, by the same keys as passwords, where each came from,
	// which decides whether it can be rotated here.
	origins map[string]origin
}

// origin is where a resolved password came from.
type origin struct {
	desc   string // `password of user "x" of account "Y"`
	from   string // "" when generated and kept in the file
	noHash bool   // a slot without Bcrypt
}

const routeKey = "\x00route"

func userKey(account, user string) string { return account + "\x00" + user }

func slotKey(name string) string { return "\x00secret\x00" + name }

// Open reads inv.SecretsFile (if it exists) and resolves every password:
// the inventory's own, else the environment variable it names, else the
// one generated earlier and kept in the file, else a new generated one. It
// hashes what has no valid hash yet. The file itself is only written by
// Save: call it before anything derived from the store reaches a host, so a
// generated password is never deployed without being kept.
//
// slots are the named secrets the caller needs besides the users' and the
// route's (see Slot); each is resolved the same way, from its Env, else the
// file, else generated.
func Open(inv *inventory.Inventory, slots ...Slot) (*Store, error) {
	slots, err := checkSlots(slots)
	if err != nil {
		return nil, err
	}
	seal := newSealer(inv)
	old, existed, err := read(inv.SecretsFile, seal)
	if err != nil {
		return nil, err
	}
	s := &Store{
		path:      inv.SecretsFile,
		seal:      seal,
		existed:   existed,
		passwords: map[string]string{},
		slots:     map[string]Slot{},
		origins:   map[string]origin{},
		data:      fileData{Accounts: map[string]map[string]entry{}, Secrets: map[string]entry{}},
	}

	// Each job resolves one password into an entry; the bcrypt work, the
	// slow part (~50ms per hash at cost 11), runs in parallel afterwards.
	type job struct {
		key    string
		desc   string // for errors: `password of user "x" of account "Y"`
		prev   entry
		pw     string
		keep   bool   // store the password itself (it was generated)
		from   string // where a password not kept comes from, for messages
		noHash bool   // a slot without Bcrypt
		out    *entry
	}
	var jobs []*job
	// envHint says what to do about an unset variable.
	resolve := func(key, desc, inline, env, envHint string, prev entry) (*job, error) {
		j := &job{key: key, desc: desc, prev: prev}
		switch {
		case inline != "":
			j.pw, j.from = inline, "the inventory (its password key)"
		case env != "":
			j.pw, j.from = os.Getenv(env), "environment variable "+env

			if j.pw == "" {
				return nil, fmt.Errorf("%s: environment variable %s is not set; %s", desc, env, envHint)
			}
		case prev.Password != "":
			j.pw, j.keep = prev.Password, true
		default:
			pw, err := Generate()
			if err != nil {
				return nil, fmt.Errorf("generating the %s: %w", desc, err)
			}
			j.pw, j.keep = pw, true
		}
		jobs = append(jobs, j)
		return j, nil
	}
	const userEnvHint = "export it, or remove password_env to have a password generated"

	n := inv.NATS
	rj, err := resolve(routeKey, fmt.Sprintf("password of route user %q", n.RouteUser), "", n.RoutePasswordEnv, userEnvHint, old.Route)
	if err != nil {
		return nil, err
	}
	rj.out = &s.data.Route

	outs := map[string]*entry{}
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			prev := old.Accounts[a.Name][u.Name]
			j, err := resolve(userKey(a.Name, u.Name), fmt.Sprintf("password of user %q of account %q", u.Name, a.Name), u.Password, u.PasswordEnv, userEnvHint, prev)
			if err != nil {
				return nil, err
			}
			j.out = &entry{}
			outs[j.key] = j.out
		}
	}
	for _, sl := range slots {
		j, err := resolve(slotKey(sl.Name), fmt.Sprintf("secret %q", sl.Name), "", sl.Env, "export it before running natsdeploy", old.Secrets[sl.Name])
		if err != nil {
			return nil, err
		}
		j.noHash = !sl.Bcrypt
		j.out = &entry{}
		outs[j.key] = j.out
		s.slots[sl.Name] = sl
	}

	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if j.noHash {
				*j.out = entry{}
				if j.keep {
					j.out.Password = j.pw
				}
				return
			}
			if j.keep && j.prev.Password == j.pw && j.prev.Check == fingerprint(j.pw, j.prev.Bcrypt) && hasCost(j.prev.Bcrypt) {
				*j.out = j.prev
				return
			}
			h, err := hashFor(j.pw, j.prev.Bcrypt)
			if err != nil {
				errs[i] = fmt.Errorf("hashing the %s: %w", j.desc, err)
				return
			}
			*j.out = entry{Bcrypt: h}
			if j.keep {
				j.out.Password = j.pw
				j.out.Check = fingerprint(j.pw, h)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	for _, j := range jobs {
		s.passwords[j.key] = j.pw
		s.origins[j.key] = origin{desc: j.desc, from: j.from, noHash: j.noHash}
	}
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			if s.data.Accounts[a.Name] == nil {
				s.data.Accounts[a.Name] = map[string]entry{}
			}
			s.data.Accounts[a.Name][u.Name] = *outs[userKey(a.Name, u.Name)]
		}
	}
	// Entries of users no longer in the inventory are dropped, and so is a
	// generated password once the inventory names another source: a file
	// of secrets nobody uses is only a liability.
	//
	// Slots are different: not every command asks for every slot (one that
	// only talks to NATS does not ask for Grafana's), so a slot not asked
	// for this time is kept as it is. A requested slot's entry follows its
	// source, like a user's; one from Env without Bcrypt has nothing to keep.
	for name, e := range old.Secrets {
		if _, requested := s.slots[name]; !requested {
			s.data.Secrets[name] = e
		}
	}
	for _, sl := range slots {
		if e := *outs[slotKey(sl.Name)]; e != (entry{}) {
			s.data.Secrets[sl.Name] = e
		}
	}
	s.changed = !reflect.DeepEqual(normalize(old), normalize(s.data))
	return s, nil
}

// normalize makes an empty map and a missing one compare equal.
func normalize(d fileData) fileData {
	if len(d.Accounts) == 0 {
		d.Accounts = nil
	}
	if len(d.Secrets) == 0 {
		d.Secrets = nil
	}
	return d
}

// hashFor returns prev when it is a $2a$ bcrypt hash of pw at hashCost, else a new
// hash. Reusing it keeps rendered configs byte-stable across runs.
func hashFor(pw, prev string) (string, error) {
	if hasCost(prev) && bcrypt.CompareHashAndPassword([]byte(prev), []byte(pw)) == nil {
		return prev, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), hashCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// hasCost reports whether h is a $2a$ bcrypt hash of the cost in use, so a
// change of cost takes effect on the next run.
func hasCost(h string) bool {
	if !strings.HasPrefix(h, "$2a$") {
		return false
	}
	cost, err := bcrypt.Cost([]byte(h))
	return err == nil && cost == hashCost
}

// Generate returns a new random password: GeneratedLength characters of
// Alphabet, from crypto/rand.
func Generate() (string, error) {
	// Rejection sampling: bytes >= the largest multiple of len(Alphabet)
	// below 256 are dropped, so every character is equally likely.
	limit := 256 - 256%len(Alphabet)
	out := make([]byte, 0, GeneratedLength)
	buf := make([]byte, 2*GeneratedLength)
	for len(out) < GeneratedLength {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < GeneratedLength {
				out = append(out, Alphabet[int(b)%len(Alphabet)])
			}
		}
	}
	return string(out), nil
}

// CheckFile refuses a secrets file that is there but cannot be used as
// one: not a regular file, or readable by other users. Nothing is read
// from it, so callers can run it while checking their input, before any
// connection, and report it as the usage problem it is. A file that does
// not exist yet is fine: it is created on the first apply.
func CheckFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secrets file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("secrets file %s is not a regular file; move it away or set secrets_file in the inventory", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("secrets file %s has mode %04o, so other users can read it; run `chmod 600 %s` (and consider changing the passwords in it)", path, perm, path)
	}
	if fi.Size() > maxFileSize {
		return fmt.Errorf("secrets file %s is %d bytes, far more than a secrets file holds; check secrets_file in the inventory", path, fi.Size())
	}
	return nil
}

// maxFileSize bounds what read loads: a secrets file holds a few hundred
// bytes per user.
const maxFileSize = 4 << 20

// read loads the secrets file, or an empty one if it does not exist, and
// reports whether it exists. It refuses a file others can read: it holds
// passwords. An encrypted file is decrypted in memory by seal.
func read(path string, seal *sealer) (fileData, bool, error) {
	var d fileData
	if err := CheckFile(path); err != nil {
		return d, false, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return d, false, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return d, true, fmt.Errorf("secrets file: %w", err)
	}
	if raw, err = seal.open(raw); err != nil {
		return d, true, err
	}
	d, err = parse(path, raw)
	return d, true, err
}

// parse decodes the plain text of the secrets file and checks it.
func parse(path string, raw []byte) (fileData, error) {
	var d fileData
	if _, err := toml.Decode(string(raw), &d); err != nil {
		// The parser's message may quote the text near the error, which
		// could be a password: give the line only.
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return d, userErrorf("secrets file %s:%d: not valid TOML; fix that line, or delete the file to have generated passwords made anew", path, pe.Position.Line)
		}
		return d, userErrorf("secrets file %s: not in the expected layout; fix it, or delete it to have generated passwords made anew", path)
	}
	if err := checkStored(path, string(raw), d); err != nil {
		return d, err
	}
	return d, nil
}

// checkStored applies the inventory's password rules to the passwords the
// file keeps: they were generated, but the file is meant to be edited by
// hand ("delete an entry to have it generated anew"), and a weak one typed
// there would otherwise be deployed without a word.
func checkStored(path, raw string, d fileData) error {
	check := func(header []string, e entry) error {
		if e.Password == "" {
			return nil
		}
		if msg := inventory.PasswordProblem(e.Password); msg != "" {
			at := path
			if n := passwordLine(raw, header); n > 0 {
				at = fmt.Sprintf("%s:%d", path, n)
			}
			return userErrorf("secrets file %s: [%s] password %s; delete the password line (and its bcrypt and check lines) to have one generated, or write a stronger one",
				at, strings.Join(header, "."), msg)
		}
		return nil
	}
	if err := check([]string{"route"}, d.Route); err != nil {
		return err
	}
	for _, a := range sortedKeys(d.Accounts) {
		for _, u := range sortedKeys(d.Accounts[a]) {
			if err := check([]string{"accounts", a, u}, d.Accounts[a][u]); err != nil {
				return err
			}
		}
	}
	for _, n := range sortedKeys(d.Secrets) {
		if err := check([]string{"secrets", n}, d.Secrets[n]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// passwordLine finds the line of the password key in the [header] table,
// as the encoder writes it (one table per entry, quoted keys where
// needed); 0 when it cannot tell.
func passwordLine(raw string, header []string) int {
	in := false
	for i, line := range strings.Split(raw, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			parts := strings.Split(strings.Trim(l, "[]"), ".")
			for j := range parts {
				parts[j] = strings.Trim(strings.TrimSpace(parts[j]), `"'`)
			}
			in = slices.Equal(parts, header)
			continue
		}
		if k, _, ok := strings.Cut(l, "="); in && ok && strings.TrimSpace(k) == "password" {
			return i + 1
		}
	}
	return 0
}

// Values returns every password and bcrypt hash the store holds, for
// scrubbing them out of anything shown (progress events, summaries): a
// message that quotes a command's output must still not carry one.
func (s *Store) Values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, pw := range s.passwords {
		out = append(out, pw)
	}
	add := func(e entry) { out = append(out, e.Password, e.Bcrypt) }
	add(s.data.Route)
	for _, users := range s.data.Accounts {
		for _, e := range users {
			add(e)
		}
	}
	for _, e := range s.data.Secrets {
		add(e)
	}
	return out
}

// Password returns the password of user in account, or "" if the inventory
// has no such user.
func (s *Store) Password(account, user string) string {
	return s.passwords[userKey(account, user)]
}

// RoutePassword returns the password of the cluster route user.
func (s *Store) RoutePassword() string { return s.passwords[routeKey] }

// BcryptHash returns the bcrypt hash ($2a$11$...) of the user's password,
// the same string on every run while the password stays the same.
func (s *Store) BcryptHash(account, user string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data.Accounts[account][user]
	if !ok {
		return "", fmt.Errorf("no password for user %q of account %q: it is not in the inventory", user, account)
	}
	return e.Bcrypt, nil
}

// RouteBcryptHash returns the bcrypt hash of the route user's password.
func (s *Store) RouteBcryptHash() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data.Route.Bcrypt == "" {
		return "", errors.New("no hash for the route user")
	}
	return s.data.Route.Bcrypt, nil
}

// Secret returns the value of the named slot, or "" if Open was not asked
// for it.
func (s *Store) Secret(name string) string {
	return s.passwords[slotKey(name)]
}

// SecretBcrypt returns the bcrypt hash ($2a$11$...) of the named slot, the
// same string on every run while the secret stays the same. The slot must
// have been requested with Bcrypt.
func (s *Store) SecretBcrypt(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.slots[name]
	switch {
	case !ok:
		return "", fmt.Errorf("no secret %q: it was not requested when the secrets were opened", name)
	case !sl.Bcrypt:
		return "", fmt.Errorf("secret %q has no bcrypt hash: it was requested without Bcrypt", name)
	}
	return s.data.Secrets[name].Bcrypt, nil
}

// Path is the secrets file.
func (s *Store) Path() string { return s.path }

// Changed reports whether Save has something to write.
func (s *Store) Changed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

const header = `# natsdeploy secrets: generated passwords and the bcrypt hashes of all
# passwords. Keep this file private (mode 0600) and out of version control.
# A hash is reused while it matches its password, so configs stay the same.
# Delete an entry to have its password generated (or hashed) anew.

`

// Save writes the secrets file if anything changed since it was read:
// atomically (a temporary file in the same folder, synced, then renamed),
// created with mode 0600 so no one else can read it at any moment.
func (s *Store) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.changed {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(s.data); err != nil {
		return fmt.Errorf("encoding secrets file: %w", err)
	}
	data := buf.Bytes()
	if s.seal.on() {
		var err error
		if data, err = s.seal.seal(data, !s.existed); err != nil {
			return err
		}
	}
	if err := writeAtomic(s.path, data); err != nil {
		return fmt.Errorf("writing secrets file: %w", err)
	}
	s.changed, s.existed = false, true
	return nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}
