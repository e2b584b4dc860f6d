// Package verifycache keeps what earlier verifier runs proved, keyed by
// everything the proof depends on, in a file on the control machine.
//
// Some checks (a user's permissions, account isolation) prove what a
// server does with the config it has loaded. Their outcome is fixed by
// that config, the server's version and what the inventory expects, and
// each one costs the servers a bcrypt comparison per login. A key that
// hashes all of those lets a later run take the earlier outcome instead
// of logging in again; anything that changes one of them changes the key.
//
// The file is a cache: losing it, or an entry, costs only the time of the
// full check. Nothing secret goes into it: keys are hashes and values are
// the passing rows' own text.
package verifycache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/atomicfile"
)

// Proof is one passing outcome: when it was proven and what was seen.
type Proof struct {
	At   time.Time `json:"at"`
	Seen string    `json:"seen"`
}

// Store is the cache of one inventory. Reuse says whether Load answers:
// a store that only records (Reuse false) serves a run that must check
// everything itself but leaves its proofs for later runs.
type Store struct {
	Path   string
	Reuse  bool
	MaxAge time.Duration // entries older than this are neither used nor kept
	// Now is the clock proofs are aged by. Default time.Now.
	Now func() time.Time

	mu     sync.Mutex
	loaded bool
	m      map[string]Proof
	dirty  bool
}

// DefaultMaxAge bounds how long a proof is trusted, so a long-lived
// cluster is still fully checked at least once a day by apply alone.
const DefaultMaxAge = 24 * time.Hour

// For returns the store of the inventory at inventoryPath, under dir
// (the natsdeploy cache directory).
func For(dir, inventoryPath string, reuse bool) (*Store, error) {
	abs, err := filepath.Abs(inventoryPath)
	if err != nil {
		return nil, fmt.Errorf("verify cache for %s: %w", inventoryPath, err)
	}
	name := filepath.Base(abs)
	return &Store{Path: filepath.Join(dir, "verified", fmt.Sprintf("%s-%s.json", name, Hash(abs)[:12])), Reuse: reuse}, nil
}

func (s *Store) clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) maxAge() time.Duration {
	if s.MaxAge > 0 {
		return s.MaxAge
	}
	return DefaultMaxAge
}

// load reads the file once. A missing or unreadable file is an empty
// cache: the worst it costs is a full check.
func (s *Store) load() {
	if s.loaded {
		return
	}
	s.loaded = true
	s.m = map[string]Proof{}
	b, err := os.ReadFile(s.Path)
	if err != nil {
		return
	}
	var m map[string]Proof
	if json.Unmarshal(b, &m) == nil {
		s.m = m
	}
}

// Load returns the proof kept under key, if the store reuses proofs and
// the proof is younger than MaxAge.
func (s *Store) Load(key string) (Proof, bool) {
	if s == nil || !s.Reuse {
		return Proof{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	p, ok := s.m[key]
	if !ok {
		return Proof{}, false
	}
	age := s.clock().Sub(p.At)
	if age < 0 || age > s.maxAge() {
		return Proof{}, false
	}
	return p, true
}

// Put keeps p under key until Save.
func (s *Store) Put(key string, p Proof) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	s.m[key] = p
	s.dirty = true
}

// Save writes the proofs put since the file was read, dropping those past
// MaxAge so the file does not grow with every config the cluster has had.
func (s *Store) Save() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	now := s.clock()
	for k, p := range s.m {
		if now.Sub(p.At) > s.maxAge() {
			delete(s.m, k)
		}
	}
	b, err := json.MarshalIndent(s.m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode verify cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("verify cache %s: %w", s.Path, err)
	}
	if err := atomicfile.Write(s.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("verify cache %s: %w", s.Path, err)
	}
	s.dirty = false
	return nil
}

// Hash is the hex SHA-256 of parts, each prefixed with its length so that
// no two different lists of parts hash alike ("ab","c" and "a","bc").
func Hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
