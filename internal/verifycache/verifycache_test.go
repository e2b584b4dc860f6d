package verifycache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "verified", "lab.json")
	open := func(reuse bool) *Store { return &Store{Path: path, Reuse: reuse, Now: clock} }

	s := open(true)
	if _, ok := s.Load("k"); ok {
		t.Fatal("an empty store answered")
	}
	s.Put("k", Proof{At: now, Seen: "fine"})
	s.Put("old", Proof{At: now.Add(-DefaultMaxAge - time.Second), Seen: "stale"})
	s.Put("edge", Proof{At: now.Add(-DefaultMaxAge), Seen: "just in time"})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}

	tests := []struct {
		name   string
		store  *Store
		key    string
		after  time.Duration
		want   bool
		seenIs string
	}{
		{"kept across stores", open(true), "k", 0, true, "fine"},
		{"a store that only records", open(false), "k", 0, false, ""},
		{"unknown key", open(true), "other", 0, false, ""},
		{"pruned on save", open(true), "old", 0, false, ""},
		{"kept on save at exactly the age", open(true), "edge", 0, true, "just in time"},
		{"just within the age", open(true), "k", DefaultMaxAge, true, "fine"},
		{"past the age", open(true), "k", DefaultMaxAge + time.Second, false, ""},
		{"from the future", open(true), "k", -time.Second, false, ""},
		{"a shorter MaxAge", &Store{Path: path, Reuse: true, Now: clock, MaxAge: time.Minute}, "k", 2 * time.Minute, false, ""},
		{"no store", nil, "k", 0, false, ""},
	}
	at := now
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = at.Add(tc.after)
			defer func() { now = at }()
			p, ok := tc.store.Load(tc.key)
			if ok != tc.want || p.Seen != tc.seenIs {
				t.Errorf("Load(%q) = %+v, %v; want %v %q", tc.key, p, ok, tc.want, tc.seenIs)
			}
		})
	}
}

// A cache that cannot be read is an empty one, and a store with nothing
// new writes nothing.
func TestStoreUnreadableAndUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Store{Path: path, Reuse: true}
	if _, ok := s.Load("k"); ok {
		t.Error("a corrupt cache answered")
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Errorf("a store with nothing put rewrote the file: %q", b)
	}
	var nilStore *Store
	nilStore.Put("k", Proof{})
	if err := nilStore.Save(); err != nil {
		t.Errorf("nil store: %v", err)
	}
}

func TestFor(t *testing.T) {
	dir := t.TempDir()
	a, _ := For(dir, "a/lab.toml", true)
	b, _ := For(dir, "b/lab.toml", true)
	a2, _ := For(dir, "./a/../a/lab.toml", false)
	if a.Path == b.Path {
		t.Errorf("two inventories share %s", a.Path)
	}
	if a.Path != a2.Path {
		t.Errorf("one inventory, two paths: %s %s", a.Path, a2.Path)
	}
	if filepath.Dir(a.Path) != filepath.Join(dir, "verified") || !a.Reuse || a2.Reuse {
		t.Errorf("store %+v", a)
	}
}

func TestHash(t *testing.T) {
	if Hash("ab", "c") == Hash("a", "bc") {
		t.Error("parts run together")
	}
	a1, a2 := Hash("a"), Hash(string([]byte{'a'}))
	if a1 != a2 || a1 == Hash("b") || len(Hash()) != 64 {
		t.Error("not a sha256 of its parts")
	}
}
