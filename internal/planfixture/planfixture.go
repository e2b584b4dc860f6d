// Package planfixture runs plan fixtures, pyinfra style: facts in, plan
// and commands out. A role keeps its cases as folders under
// testdata/plan, one folder a case; roles/nats/testdata/plan/README.md
// describes the files of a case (facts.txt, facts.gen, plan.txt,
// commands.txt, reloadpart*.txt).
//
// This package is the only place that knows the engine's Go API (see
// Engine), so the fixtures prove that a refactor of the engine changes
// nothing a host would see. A role's test only says how a case's host is
// rendered. It is a normal package used only by tests, like
// internal/testbin.
package planfixture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Run runs every case folder below root (testdata/plan) as a subtest:
// render gives the case's desired host (dir is the case's folder), Case
// checks it. With update it rewrites the expected files instead. A root
// without any case fails.
func Run(t *testing.T, root string, update bool, render func(t *testing.T, dir string) desired.Host) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(root, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			Case(t, dir, render(t, dir), update)
		})
	}
	if n == 0 {
		t.Fatal("no cases in " + root)
	}
}

// Case checks one case folder against d, the host's desired state. With
// update it first rewrites facts.txt from facts.gen (when there is one),
// then every expected file.
func Case(t *testing.T, dir string, d desired.Host, update bool) {
	t.Helper()
	if update {
		if gen, err := os.ReadFile(filepath.Join(dir, "facts.gen")); err == nil {
			out, err := EditFacts(ConvergedFacts(d), string(gen))
			if err != nil {
				t.Fatalf("facts.gen: %v", err)
			}
			writeFile(t, filepath.Join(dir, "facts.txt"), out)
		}
	}
	factsText, err := os.ReadFile(filepath.Join(dir, "facts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	r := Engine(t, d, factsText)
	expect(t, update, dir, "plan.txt", r.Plan, true)
	expect(t, update, dir, "commands.txt", r.Commands, true)
	expect(t, update, dir, "reloadpart.txt", r.ReloadPart, r.Split)
	expect(t, update, dir, "reloadpart-commands.txt", r.ReloadCommands, r.Split)
}

// Result is what a case checks, as text: one line per plan action or
// command, each ending in a newline; "" for none.
type Result struct {
	Plan, Commands string
	// Split: the plan owes a restart and has changes a reload can carry;
	// ReloadPart and ReloadCommands are that part and its commands.
	Split                      bool
	ReloadPart, ReloadCommands string
}

// Engine is the one place that calls the engine: parse facts, compute the
// plan, and carry it out with Stage then Commit, as deploy does for a host
// whose plan is not empty (an empty plan sends nothing).
func Engine(t testing.TB, d desired.Host, factsText []byte) Result {
	t.Helper()
	f, err := facts.Parse(factsText)
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Compute(d, f)
	r := Result{Plan: lines(p.Lines()), Commands: carryOut(t, d, f, p)}
	if part, ok := p.ReloadPart(); ok {
		r.Split = true
		r.ReloadPart = lines(part.Lines())
		r.ReloadCommands = carryOut(t, d, f, part)
	}
	return r
}

// Converged fails t unless the facts of a host exactly as d says give an
// empty plan: the idempotency of a host no case folder pins.
func Converged(t testing.TB, d desired.Host) {
	t.Helper()
	r := Engine(t, d, []byte(ConvergedFacts(d)))
	if r.Plan != "" || r.Commands != "" || r.Split {
		t.Errorf("%s: converged host has a plan:\n%s%s", d.Name, r.Plan, r.Commands)
	}
}

func carryOut(t testing.TB, d desired.Host, f facts.Host, p plan.Host) string {
	t.Helper()
	if p.Empty() {
		return ""
	}
	ctx := context.Background()
	c := &Conn{}
	target := apply.Target{Name: d.Name, Conn: c, Plan: p, Desired: d, Facts: f}
	c.Log = append(c.Log, "# stage")
	if err := apply.Stage(ctx, target); err != nil {
		t.Fatalf("stage: %v", err)
	}
	c.Log = append(c.Log, "# commit")
	if err := apply.Commit(ctx, target); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return lines(c.sorted())
}

// Conn records what apply sends to a host: "exec CMD" (further lines of a
// multi-line command indented to line up) and "upload DST MODE
// OWNER:GROUP sha256=HEX". Every command succeeds with no output; HTTP
// requests fail, since fixtures have no network.
type Conn struct {
	mu  sync.Mutex // apply uploads several files to a host at once
	Log []string
}

// sorted is Log with each run of uploads in path order: uploads to one
// host overlap, so the order among them is not apply's to keep.
func (c *Conn) sorted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.Log)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "upload ") {
			j++
		}
		slices.Sort(out[i:j])
		i = max(j, i+1)
	}
	return out
}

// Exec records cmd.
func (c *Conn) Exec(_ context.Context, cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Log = append(c.Log, "exec "+strings.ReplaceAll(cmd, "\n", "\n     "))
	return "", nil
}

// Upload records the upload with the sha256 of what r gives.
func (c *Conn) Upload(_ context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Log = append(c.Log, fmt.Sprintf("upload %s %04o %s:%s sha256=%s", dst, mode.Perm(), owner, group, hex.EncodeToString(h.Sum(nil))))
	return nil
}

// HTTPClient returns a client whose every request fails.
func (c *Conn) HTTPClient() *http.Client {
	return &http.Client{Transport: failingTransport{}}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("plan fixtures have no network")
}

// ConvergedFacts is what the facts script prints on a host that is exactly
// as d says, in the script's order: users, files, dirs, units.
func ConvergedFacts(d desired.Host) string {
	out := []string{"os debian 12", "arch x86_64", "systemd 252"}
	for _, u := range d.Users {
		out = append(out, "user "+u.Name)
	}
	for _, f := range d.Files {
		out = append(out, fmt.Sprintf("file %o %s %s %s %s", f.Mode.Perm(), f.Owner, f.Group, f.SHA256, f.Path))
	}
	for _, dir := range d.Dirs {
		out = append(out, fmt.Sprintf("dir %o %s %s %s", dir.Mode.Perm(), dir.Owner, dir.Group, dir.Path))
	}
	for i, u := range d.Units {
		out = append(out, fmt.Sprintf("unit enabled active %d %s", 1201+i, u.Name))
	}
	return lines(out)
}

// EditFacts applies a facts.gen script to facts: "del KIND [KEY]" drops
// the records of that kind (and key), "set RECORD" replaces the record of
// the same kind and key or appends it, "stat file MODE OWNER GROUP PATH"
// changes only the mode and owner of a file's record (its sha256 stays);
// # starts a comment. The key is the last field: path, user, unit or
// service.
func EditFacts(factsText, script string) (string, error) {
	recs := strings.Split(strings.TrimSuffix(factsText, "\n"), "\n")
	for n, line := range strings.Split(script, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		switch op {
		case "del":
			kind, key, hasKey := strings.Cut(arg, " ")
			var keep []string
			for _, r := range recs {
				k, rk := recordKey(r)
				if k != kind || (hasKey && rk != key) {
					keep = append(keep, r)
				}
			}
			recs = keep
		case "set":
			kind, key := recordKey(arg)
			found := false
			for i, r := range recs {
				if k, rk := recordKey(r); k == kind && rk == key {
					recs[i], found = arg, true
				}
			}
			if !found {
				recs = append(recs, arg)
			}
		case "stat":
			f := strings.SplitN(arg, " ", 5)
			if len(f) != 5 || f[0] != "file" {
				return "", fmt.Errorf("line %d: want stat file MODE OWNER GROUP PATH", n+1)
			}
			found := false
			for i, r := range recs {
				if k, rk := recordKey(r); k == "file" && rk == f[4] {
					old := strings.SplitN(r, " ", 6)
					recs[i], found = strings.Join(append(f[:4:4], old[4], f[4]), " "), true
				}
			}
			if !found {
				return "", fmt.Errorf("line %d: no file record for %s", n+1, f[4])
			}
		default:
			return "", fmt.Errorf("line %d: unknown operation %q", n+1, op)
		}
	}
	return lines(recs), nil
}

// recordKey returns a facts record's kind and what it is about.
func recordKey(rec string) (kind, key string) {
	kind, rest, _ := strings.Cut(rec, " ")
	fields := map[string]int{"file": 5, "dir": 4, "unit": 4, "pending": 2, "user": 1}[kind]
	if fields == 0 {
		return kind, ""
	}
	parts := strings.SplitN(rest, " ", fields)
	return kind, parts[len(parts)-1]
}

func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// expect compares got with the case's file name; want=false means the
// file must not exist. update writes (or removes) it instead.
func expect(t *testing.T, update bool, dir, name, got string, want bool) {
	t.Helper()
	p := filepath.Join(dir, name)
	if update {
		if want {
			writeFile(t, p, got)
		} else if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(p)
	switch {
	case !want && err == nil:
		t.Errorf("%s exists, but the engine gave nothing for it (run the test with -update if intended)", p)
	case want && err != nil:
		t.Errorf("%v (run the test with -update to create it); got:\n%s", err, got)
	case want && string(b) != got:
		t.Errorf("%s differs (run the test with -update if intended)\n--- want\n%s--- got\n%s", p, b, got)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// LoadInventory loads an inventory file without checking the files it
// names (identities, artifact_dir), then lets edit change it (turn a role
// on). edit may be nil.
func LoadInventory(t testing.TB, path string, edit func(*inventory.Inventory)) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions(path, inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(inv)
	}
	return inv
}

// Host returns the inventory host called name.
func Host(t testing.TB, inv *inventory.Inventory, name string) inventory.Host {
	t.Helper()
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %q in the inventory", name)
	return inventory.Host{}
}

// StandIn writes a stand-in for a release artifact into a temporary
// folder: a small file of known content, so its sha256 (and every fixture
// that names it) is fixed. Nothing executes it.
func StandIn(t testing.TB, name, version, content string) artifact.Binary {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return artifact.Binary{Path: p, SHA256: hex.EncodeToString(sum[:]), Version: version}
}

// Secrets opens a real store for inv with the given slots, each set to the
// fixed value values names, so nothing rendered from a slot is random: a
// slot with an Env gets its variable set for the test (t.Setenv), any
// other is written to a secrets file in a temporary folder before Open,
// as if generated by an earlier run. A slot without a value fails t.
// inv.SecretsFile is pointed at that file. The inventory's own users keep
// generated passwords: only the nats role renders them (as bcrypt hashes,
// salted at random), so a fixture of another role must not depend on them.
func Secrets(t *testing.T, inv *inventory.Inventory, slots []secrets.Slot, values map[string]string) *secrets.Store {
	t.Helper()
	var file strings.Builder
	names := make([]string, 0, len(slots))
	bySlot := map[string]secrets.Slot{}
	for _, sl := range slots {
		names = append(names, sl.Name)
		bySlot[sl.Name] = sl
	}
	sort.Strings(names)
	for _, name := range names {
		v, ok := values[name]
		if !ok || v == "" {
			t.Fatalf("no fixed value for secret %q", name)
		}
		if env := bySlot[name].Env; env != "" {
			t.Setenv(env, v)
			continue
		}
		fmt.Fprintf(&file, "[secrets.%q]\npassword = %q\n", name, v)
	}
	inv.SecretsFile = filepath.Join(t.TempDir(), "secrets.toml")
	if err := os.WriteFile(inv.SecretsFile, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := secrets.Open(inv, slots...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if got := s.Secret(name); got != values[name] {
			t.Fatalf("secret %q: the store did not take the fixed value", name)
		}
	}
	return s
}

// Desired is the host's desired state as the engine sees it: the role's
// part, merged (alone here) the way deploy merges every role on a host.
func Desired(t testing.TB, r role.Role, in role.Input) desired.Host {
	t.Helper()
	d, err := r.Desired(in)
	if err != nil {
		t.Fatal(err)
	}
	m, err := desired.Merge(in.Host.Name, desired.Part{Role: r.Name(), Host: d})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Arch is the architecture the fixtures' hosts report (facts "arch").
const Arch = "x86_64"

// StandIns writes a stand-in (see StandIn) for every release artifact r
// needs on an Arch host, keyed by Release.ID() as role.Input.Artifacts
// is. Each one's content is "stand-in ID VERSION for plan fixtures; never
// executed", so its sha256 only moves with the version the inventory
// asks for.
func StandIns(t testing.TB, r role.Role, inv *inventory.Inventory) map[string]artifact.Binary {
	t.Helper()
	rels, err := r.Artifacts(inv, Arch)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]artifact.Binary{}
	for _, rel := range rels {
		id := rel.ID()
		out[id] = StandIn(t, id, rel.Version, fmt.Sprintf("stand-in %s %s for plan fixtures; never executed\n", id, rel.Version))
	}
	return out
}

// Input is what deploy would hand r to render the inventory host called
// host: stand-ins for its artifacts (StandIns), and, when r asks for
// secret slots, a real secrets store holding them, each set to the fixed
// value values names (see Secrets). A role that asks for none reads no
// secret, so it gets no store: opening one hashes every inventory user's
// password, about a second of bcrypt.
func Input(t *testing.T, r role.Role, inv *inventory.Inventory, host string, values map[string]string) role.Input {
	t.Helper()
	in := role.Input{Inv: inv, Host: Host(t, inv, host), Artifacts: StandIns(t, r, inv)}
	if slots := r.Secrets(inv); len(slots) > 0 {
		in.Secrets = Secrets(t, inv, slots, values)
	} else if len(values) > 0 {
		t.Fatalf("role %s asks for no secret, but the test gives values", r.Name())
	}
	return in
}

// NoSecret fails t if any file below root (the cases) holds one of values:
// a secret may reach a host only inside an uploaded file, never in a
// command, a plan line or a fact.
func NoSecret(t testing.TB, root string, values map[string]string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for name, v := range values {
			if v != "" && strings.Contains(string(b), v) {
				t.Errorf("%s holds the value of secret %q", p, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
