package remote

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyProblem says why a host key was refused.
type HostKeyProblem int

const (
	// HostKeyUnknown: the host has no key in known_hosts and AcceptNew is
	// off.
	HostKeyUnknown HostKeyProblem = iota + 1
	// HostKeyChanged: known_hosts has a key of the same type for the host,
	// and the host presented another one.
	HostKeyChanged
	// HostKeyOtherType: known_hosts has keys for the host, but none of the
	// type it presented, although we asked for the known types first. The
	// host no longer has the recorded key: treated like a change.
	HostKeyOtherType
	// HostKeyRevoked: the key is marked @revoked in known_hosts.
	HostKeyRevoked
)

// HostKeyError is returned by Dial when a host key is refused. Its message
// says what happened and what to do about it.
type HostKeyError struct {
	Host       string // inventory name
	Address    string // host:port
	KnownHosts string // the file checked
	Problem    HostKeyProblem
	Key        ssh.PublicKey         // the key the host presented
	Known      []knownhosts.KnownKey // keys on record for the host
}

func (e *HostKeyError) Error() string {
	fp := ssh.FingerprintSHA256(e.Key)
	name := knownhosts.Normalize(e.Address)
	remove := fmt.Sprintf("if the host was rebuilt, remove its line from %s (ssh-keygen -R '%s' -f %s), check the new fingerprint and add it again",
		e.KnownHosts, name, e.KnownHosts)
	switch e.Problem {
	case HostKeyUnknown:
		host, port, _ := net.SplitHostPort(e.Address)
		return fmt.Sprintf("host %s: unknown host key: %s is not in %s (it presented %s %s); "+
			"add it with ssh-keyscan after checking the fingerprint %s (ssh-keyscan -p %s -t %s %s >> %s), "+
			"or set accept_new_host_keys = true",
			e.Host, e.Address, e.KnownHosts, e.Key.Type(), fp,
			fp, port, keyscanType(e.Key.Type()), host, e.KnownHosts)
	case HostKeyChanged:
		var was []string
		for _, k := range e.Known {
			if k.Key.Type() == e.Key.Type() {
				was = append(was, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
			}
		}
		return fmt.Sprintf("host %s: REFUSED: host key for %s changed; was %s, now %s (%s); "+
			"someone may be intercepting the connection; %s",
			e.Host, e.Address, strings.Join(was, ", "), fp, e.Key.Type(), remove)
	case HostKeyOtherType:
		var was []string
		for _, k := range e.Known {
			was = append(was, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		return fmt.Sprintf("host %s: REFUSED: host key for %s changed; known_hosts has %s, but the host no longer offers a key of that type and presented %s %s; %s",
			e.Host, e.Address, strings.Join(was, ", "), e.Key.Type(), fp, remove)
	case HostKeyRevoked:
		return fmt.Sprintf("host %s: REFUSED: host key %s %s of %s is marked @revoked in %s",
			e.Host, e.Key.Type(), fp, e.Address, e.KnownHosts)
	}
	return fmt.Sprintf("host %s: host key %s of %s refused", e.Host, fp, e.Address)
}

// keyscanType is the name ssh-keyscan -t takes for a key type.
func keyscanType(t string) string {
	switch {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	}
	return t
}

// hostKeyChecker verifies a host's key against known_hosts, and appends
// new keys when AcceptNew is set.
type hostKeyChecker struct {
	cfg   Config
	known []knownhosts.KnownKey // keys on record for this host when Dial began

	mu      sync.Mutex
	lastErr error
}

// probeKey is a key that is in no known_hosts file. Checking it against the
// file makes knownhosts return every key on record for a host (KeyError.Want).
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

func newHostKeyChecker(cfg Config) (*hostKeyChecker, error) {
	h := &hostKeyChecker{cfg: cfg}
	cb, err := h.load()
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := cb(cfg.addr(), probeAddr(cfg), probeKey()); errors.As(err, &ke) {
		h.known = ke.Want
	}
	return h, nil
}

// probeAddr is the remote address given to the knownhosts callback outside
// a handshake; knownhosts prefers the dialled name anyway.
func probeAddr(cfg Config) net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.Port}
}

// load reads the known_hosts file afresh. A missing file is an empty one:
// with AcceptNew it will be created, without it the host is "unknown", and
// that message says what to do.
func (h *hostKeyChecker) load() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(h.cfg.KnownHosts)
	if errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: read known_hosts: %w", h.cfg.Host, err)
	}
	return cb, nil
}

// algorithms puts the types of the keys on record first, the way OpenSSH
// does. Without this the server may present, say, its RSA key while
// known_hosts has its ed25519 key, and knownhosts reports that exactly like
// a changed key (a KeyError with Want set). Other algorithms stay allowed
// after them so that a host whose recorded key type is gone gets a precise
// "changed" error rather than "no common algorithm".
func (h *hostKeyChecker) algorithms() []string {
	var algos []string
	for _, k := range h.known {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	if len(algos) == 0 {
		return nil // library default
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		// SHA-1 "ssh-rsa" signatures are off in OpenSSH since 8.8.
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01}
	}
	return []string{t}
}

func (h *hostKeyChecker) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

// callback is the ssh.HostKeyCallback. It keeps its error so that Dial can
// return it as is instead of the handshake's "ssh: handshake failed: ...".
func (h *hostKeyChecker) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.check(hostname, remote, key)
	h.mu.Lock()
	h.lastErr = err
	h.mu.Unlock()
	return err
}

func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := h.load()
	if err != nil {
		return err
	}
	err = h.classify(cb(hostname, remote, key), key)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Problem != HostKeyUnknown || !h.cfg.AcceptNew {
		return err
	}
	return h.appendKey(hostname, remote, key)
}

// classify turns knownhosts' errors into HostKeyErrors.
func (h *hostKeyChecker) classify(err error, key ssh.PublicKey) error {
	if err == nil {
		return nil
	}
	e := &HostKeyError{Host: h.cfg.Host, Address: h.cfg.addr(), KnownHosts: h.cfg.KnownHosts, Key: key}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		e.Problem = HostKeyRevoked
	case errors.As(err, &ke) && len(ke.Want) == 0:
		e.Problem = HostKeyUnknown
	case errors.As(err, &ke):
		e.Known = ke.Want
		e.Problem = HostKeyOtherType
		for _, k := range ke.Want {
			if k.Key.Type() == key.Type() {
				e.Problem = HostKeyChanged
			}
		}
	default:
		// A certificate signed by an unknown or wrong authority, or an
		// unparsable key: say so plainly.
		return fmt.Errorf("host %s: host key of %s refused: %w", h.cfg.Host, h.cfg.addr(), err)
	}
	return e
}

// knownHostsMu serialises appends to known_hosts files: DialAll dials in
// parallel, and all hosts usually share one file.
var knownHostsMu sync.Mutex

// appendKey records a new host key (AcceptNew). Under the lock it reads the
// file again, so that two dials of the same host cannot both append, and a
// key written meanwhile is checked rather than trusted blindly.
func (h *hostKeyChecker) appendKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	cb, err := h.load()
	if err != nil {
		return err
	}
	err = h.classify(cb(hostname, remote, key), key)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Problem != HostKeyUnknown {
		return err
	}

	file := h.cfg.KnownHosts
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("host %s: record new host key: %w", h.cfg.Host, err)
	}
	// The line names the host the way it was dialled, "addr" or
	// "[addr]:port", as OpenSSH writes it.
	line := knownhosts.Line([]string{knownhosts.Normalize(h.cfg.addr())}, key) + "\n"
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("host %s: record new host key: %w", h.cfg.Host, err)
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		line = "\n" + line
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("host %s: record new host key: %w", h.cfg.Host, err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("host %s: record new host key in %s: %w", h.cfg.Host, file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("host %s: record new host key in %s: %w", h.cfg.Host, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("host %s: record new host key in %s: %w", h.cfg.Host, file, err)
	}
	return nil
}
