package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/verifycache"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// A proof's key changes with anything the proven checks depend on, does
// not depend on the order the nodes were recorded in, and is "" (no
// proofs used or kept) unless every node was seen running its deployed
// config.
func TestProofBase(t *testing.T) {
	inv := testInventory("2.14.9", 4222, 6222, 8222)
	store := &verifycache.Store{Path: filepath.Join(t.TempDir(), "p.json"), Reuse: true}
	base := func(edit func(v *verifier)) string {
		v := newVerifier(Options{Inventory: inv, Proofs: store})
		for _, h := range inv.Hosts {
			v.noteLoaded(h.Name, "sha256:"+h.Name, "2.14.9")
		}
		if edit != nil {
			edit(v)
		}
		return v.proofBase()
	}
	want := base(nil)
	if want == "" {
		t.Fatal("every node recorded, yet no base")
	}
	tests := []struct {
		name string
		edit func(v *verifier)
		same bool
	}{
		{"recorded again, in another order", func(v *verifier) {
			for i := len(inv.Hosts) - 1; i >= 0; i-- {
				v.noteLoaded(inv.Hosts[i].Name, "sha256:"+inv.Hosts[i].Name, "2.14.9")
			}
		}, true},
		{"one node's digest differs", func(v *verifier) { v.noteLoaded(inv.Hosts[1].Name, "sha256:other", "2.14.9") }, false},
		{"one node's version differs", func(v *verifier) { v.noteLoaded(inv.Hosts[2].Name, "sha256:"+inv.Hosts[2].Name, "2.14.8") }, false},
		{"a node not recorded", func(v *verifier) { delete(v.loaded, inv.Hosts[0].Name) }, false},
		{"an account's permissions differ", func(v *verifier) {
			i2 := *inv
			i2.Accounts = append([]inventory.Account(nil), inv.Accounts...)
			i2.Accounts[0].Name += "X"
			v.inv = &i2
		}, false},
		{"no store", func(v *verifier) { v.opts.Proofs = nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := base(tc.edit)
			if (got == want) != tc.same {
				t.Errorf("base %q, first %q: want same=%v", got, want, tc.same)
			}
		})
	}
	v := newVerifier(Options{Inventory: inv, Proofs: store})
	v.noteLoaded(inv.Hosts[0].Name, "sha256:x", "2.14.9")
	if b := v.proofBase(); b != "" {
		t.Errorf("one node of %d recorded, yet base %q", len(inv.Hosts), b)
	}
}

// proven answers a check from a proof only under the same base and
// check; it keeps only a single passing row; other checks always run.
func TestProven(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := &verifycache.Store{Path: filepath.Join(t.TempDir(), "p.json"), Reuse: true, Now: clock}
	v := newVerifier(Options{Inventory: testInventory("2.14.9", 4222, 6222, 8222), Proofs: store, Now: clock})
	ran := 0
	mk := func(check string, out ...Result) job {
		return job{check, "A/u", func(context.Context) []Result { ran++; return out }}
	}
	ok := pass("permissions", "A/u", "on 3 nodes: fine")
	run := func(base string, j job) []Result {
		return runJob(context.Background(), v.proven(base, j), time.Second)
	}

	if r := run("b1", mk("permissions", ok)); ran != 1 || r[0].Reused {
		t.Fatalf("first run: ran %d, %+v", ran, r)
	}
	now = now.Add(90 * time.Second)
	r := run("b1", mk("permissions", ok))
	if ran != 1 || len(r) != 1 || !r[0].OK || !r[0].Reused {
		t.Fatalf("same base: ran %d times, want the proof: %+v", ran, r)
	}
	if !strings.HasPrefix(r[0].Seen, "on 3 nodes: fine (proven 1m30s ago") {
		t.Errorf("reused row says %q", r[0].Seen)
	}
	if r := run("b2", mk("permissions", ok)); ran != 2 || r[0].Reused {
		t.Errorf("another base: ran %d, %+v", ran, r)
	}
	if r := run("b1", mk("isolation", pass("isolation", "A/u", "x"))); ran != 3 || r[0].Reused {
		t.Errorf("another check under the same base: ran %d, %+v", ran, r)
	}
	if r := run("", mk("permissions", ok)); ran != 4 || r[0].Reused {
		t.Errorf("no base: ran %d, %+v", ran, r)
	}
	if r := run("b1", mk("cluster/stream", ok)); ran != 5 || r[0].Reused {
		t.Errorf("a live check: ran %d, %+v", ran, r)
	}

	// Failures, skips and several rows are not kept.
	for i, out := range [][]Result{
		{fail("permissions", "A/u", "refused", "accepted")},
		{skip("permissions", "A/u", "could not check")},
		{ok, ok},
	} {
		base := "f" + string(rune('0'+i))
		run(base, mk("permissions", out...))
		before := ran
		if r := run(base, mk("permissions", ok)); ran != before+1 || r[0].Reused {
			t.Errorf("%+v was kept as a proof", out)
		}
	}

	// Past MaxAge a proof is not used.
	now = now.Add(verifycache.DefaultMaxAge - 89*time.Second)
	before := ran
	if r := run("b1", mk("permissions", ok)); ran != before+1 || r[0].Reused {
		t.Errorf("a day-old proof was used: %+v", r)
	}
}

// Against real servers: a second run takes the proven checks from the
// first without logging in (wrong passwords would fail them otherwise);
// once a node runs another config, they are checked again, and a failing
// check leaves no proof behind.
func TestProofsOnACluster(t *testing.T) {
	c := startCluster(t)
	store := &verifycache.Store{Path: filepath.Join(t.TempDir(), "proofs.json"), Reuse: true}
	opts := c.options()
	opts.Proofs = store
	first := runVerify(t, opts)
	onlyFailures(t, first)
	if n := first.Reused(); n != 0 {
		t.Fatalf("first run reused %d rows", n)
	}

	wrong := opts
	wrong.Passwords = mapPasswords{}
	second := runVerify(t, wrong)
	reused := 0
	for _, r := range second.Results {
		if provenChecks[r.Check] {
			if !r.OK || !r.Reused {
				t.Errorf("%s %s not taken from its proof: %s %s", r.Check, r.Target, r.Status(), r.Detail())
			}
			reused++
		} else if r.Reused {
			t.Errorf("%s %s is not a proven check, yet reused", r.Check, r.Target)
		}
	}
	if reused == 0 || reused != second.Reused() {
		t.Errorf("%d proven rows, Reused() = %d", reused, second.Reused())
	}
	// The live checks did log in, and failed with the wrong passwords.
	wantFailure(t, second, "cluster/stream", "ADMIN/admin", "no password known")

	// n2 now lets dev-user publish one token deeper; the digests are read
	// again, so node/digest passes and only the proofs' key tells.
	c.edit(c.nodes[1], `publish: { allow: ["dev.*", "logs.dev.*"`, `publish: { allow: ["dev.>", "logs.dev.*"`)
	opts = c.options()
	opts.Proofs = store
	for i := range 2 {
		rep := runVerify(t, opts)
		wantFailure(t, rep, "permissions", "DEV/dev-user", "refused on n2, saw accepted")
		onlyFailures(t, rep, "permissions DEV/dev-user")
		for _, r := range rep.Results {
			if r.Reused && (i == 0 || r.Target == "DEV/dev-user") {
				t.Errorf("run %d after the edit: %s %s reused", i+1, r.Check, r.Target)
			}
		}
		if i == 1 && rep.Reused() == 0 {
			t.Error("the passing rows of the first run after the edit were not kept")
		}
	}
}

// A proof names the build that made it by the executable's size and
// time, so a rebuilt natsdeploy does not trust an older one's proofs
// (a test binary carries no VCS revision to go by).
func TestBuildNamesTheExecutable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	st, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano()); !strings.Contains(build(), want) {
		t.Errorf("build() = %q, want it to hold %q", build(), want)
	}
}

// How long ago a proof was made, as its row says it: to the second, and a
// proof under half a second old is "under a second", not "0s".
func TestSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	v := &verifier{opts: Options{Now: func() time.Time { return now }}}
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "under a second"},
		{400 * time.Millisecond, "under a second"},
		{time.Second, "1s"},
		{3 * time.Minute, "3m0s"},
	} {
		if got := v.since(now.Add(-tc.ago)); got != tc.want {
			t.Errorf("since(%s ago) = %q, want %q", tc.ago, got, tc.want)
		}
	}
}
