package nats

// Plan fixtures, pyinfra style: facts in, plan and commands out. Each folder
// under testdata/plan is one case; testdata/plan/README.md describes the
// files. Everything a case says is in its data files; this file is the only
// place that knows the engine's Go API (see runEngine), so the fixtures can
// prove that a refactor of the engine changes nothing a host would see.

import (
	"bytes"
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
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/facts"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/inventory"
)

var planFixtures = filepath.Join("testdata", "plan")

// fakeBinaryContent is the artifact every case deploys; its sha256 is what
// the cases' facts name for an up-to-date /usr/local/bin/nats-server.
const fakeBinaryContent = "fake nats-server 2.14.9 for plan fixtures; never executed\n"

// TestPlanFixtures runs every case. With -update it rewrites facts.txt of
// cases that have a facts.gen, then every expected file.
func TestPlanFixtures(t *testing.T) {
	entries, err := os.ReadDir(planFixtures)
	if err != nil {
		t.Fatal(err)
	}
	bin := fakeBinary(t)
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(planFixtures, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			inv, host := caseHost(t, dir)
			d, err := renderHost(inv, host, bin)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if gen, err := os.ReadFile(filepath.Join(dir, "facts.gen")); err == nil {
					out, err := editFacts(convergedFacts(d), string(gen))
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
			r := runEngine(t, d, factsText)
			expect(t, dir, "plan.txt", r.plan, true)
			expect(t, dir, "commands.txt", r.commands, true)
			expect(t, dir, "reloadpart.txt", r.reloadPart, r.split)
			expect(t, dir, "reloadpart-commands.txt", r.reloadCommands, r.split)
		})
	}
	if n == 0 {
		t.Fatal("no cases in " + planFixtures)
	}
}

// engineResult is what a case checks, as text.
type engineResult struct {
	plan, commands             string
	split                      bool // ReloadPart reported ok
	reloadPart, reloadCommands string
}

// runEngine is the one place that calls the engine: parse facts, compute
// the plan, and carry it out with Stage then Commit, as deploy does for a
// host whose plan is not empty (an empty plan sends nothing).
func runEngine(t *testing.T, d desired.Host, factsText []byte) engineResult {
	t.Helper()
	f, err := facts.Parse(factsText)
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Compute(d, f)
	r := engineResult{plan: lines(p.Lines()), commands: carryOut(t, d, f, p)}
	if part, ok := p.ReloadPart(); ok {
		r.split = true
		r.reloadPart = lines(part.Lines())
		r.reloadCommands = carryOut(t, d, f, part)
	}
	return r
}

func carryOut(t *testing.T, d desired.Host, f facts.Host, p plan.Host) string {
	t.Helper()
	if p.Empty() {
		return ""
	}
	ctx := context.Background()
	c := &recordingConn{}
	target := apply.Target{Name: d.Name, Conn: c, Plan: p, Desired: d, Facts: f}
	c.log = append(c.log, "# stage")
	if err := apply.Stage(ctx, target); err != nil {
		t.Fatalf("stage: %v", err)
	}
	c.log = append(c.log, "# commit")
	if err := apply.Commit(ctx, target); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return lines(c.log)
}

// recordingConn records what apply sends to a host: "exec CMD" (further
// lines of a multi-line command indented to line up) and "upload DST MODE
// OWNER:GROUP sha256=HEX". Every command succeeds with no output.
type recordingConn struct{ log []string }

func (c *recordingConn) Exec(_ context.Context, cmd string) (string, error) {
	c.log = append(c.log, "exec "+strings.ReplaceAll(cmd, "\n", "\n     "))
	return "", nil
}

func (c *recordingConn) Upload(_ context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	c.log = append(c.log, fmt.Sprintf("upload %s %04o %s:%s sha256=%s", dst, mode.Perm(), owner, group, hex.EncodeToString(h.Sum(nil))))
	return nil
}

func (c *recordingConn) HTTPClient() *http.Client {
	return &http.Client{Transport: failingTransport{}}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("plan fixtures have no network")
}

// fakeBinary writes the artifact; nothing executes it.
func fakeBinary(t *testing.T) Artifact {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nats-server")
	if err := os.WriteFile(p, []byte(fakeBinaryContent), 0o755); err != nil {
		t.Fatal(err)
	}
	return Artifact{Path: p, SHA256: sum([]byte(fakeBinaryContent)), Version: "2.14.9"}
}

// caseHost loads the case's inventory.toml, or the shared one, and picks
// the host its host file names (default nats-1).
func caseHost(t *testing.T, dir string) (*inventory.Inventory, inventory.Host) {
	t.Helper()
	invPath := filepath.Join(dir, "inventory.toml")
	if _, err := os.Stat(invPath); err != nil {
		invPath = filepath.Join(planFixtures, "inventory.toml")
	}
	inv, err := inventory.LoadWithOptions(invPath, inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	name := "nats-1"
	if b, err := os.ReadFile(filepath.Join(dir, "host")); err == nil {
		name = strings.TrimSpace(string(b))
	}
	for _, h := range inv.Hosts {
		if h.Name == name {
			return inv, h
		}
	}
	t.Fatalf("no host %q in %s", name, invPath)
	return nil, inventory.Host{}
}

// convergedFacts is what the facts script prints on a host that is exactly
// as d says, in the script's order: users, files, dirs, units.
func convergedFacts(d desired.Host) string {
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

// editFacts applies a facts.gen script to facts: "del KIND [KEY]" drops
// the records of that kind (and key), "set RECORD" replaces the record of
// the same kind and key or appends it, "stat file MODE OWNER GROUP PATH"
// changes only the mode and owner of a file's record (its sha256 stays);
// # starts a comment. The key is the last field: path, user, unit or
// service.
func editFacts(factsText, script string) (string, error) {
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
// file must not exist. -update writes (or removes) it instead.
func expect(t *testing.T, dir, name, got string, want bool) {
	t.Helper()
	p := filepath.Join(dir, name)
	if *update {
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
		t.Errorf("%s exists, but the engine gave nothing for it (run with -update if intended)", p)
	case want && err != nil:
		t.Errorf("%v (run go test ./roles/nats -run TestPlanFixtures -update to create it); got:\n%s", err, got)
	case want && string(b) != got:
		t.Errorf("%s differs (run with -update if intended)\n--- want\n%s--- got\n%s", p, b, got)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every host of the shared inventory, with the facts of a host that is as
// desired, needs nothing: the idempotency of the whole cluster, not only of
// the host the converged case pins.
func TestPlanConvergedEveryHost(t *testing.T) {
	inv, _ := caseHost(t, planFixtures)
	bin := fakeBinary(t)
	for _, h := range inv.Hosts {
		d, err := renderHost(inv, h, bin)
		if err != nil {
			t.Fatal(err)
		}
		r := runEngine(t, d, []byte(convergedFacts(d)))
		if r.plan != "" || r.commands != "" || r.split {
			t.Errorf("%s: converged host has a plan:\n%s%s", h.Name, r.plan, r.commands)
		}
	}
}

// The shared inventory is fixture() in TOML, so the cases and the goldens
// describe the same cluster.
func TestPlanInventoryIsFixture(t *testing.T) {
	inv, _ := caseHost(t, planFixtures)
	for i := range inv.Hosts {
		got, want := mustRender(t, inv, i).byName(), mustRender(t, fixture(), i).byName()
		for name := range want {
			if !bytes.Equal(got[name], want[name]) {
				t.Errorf("%s of %s: testdata/plan/inventory.toml and fixture() render differently", name, inv.Hosts[i].Name)
			}
		}
	}
}

// renderHost is the host's desired state as the engine sees it: the role's
// part, merged (alone here) the way deploy merges every role on a host.
func renderHost(inv *inventory.Inventory, h inventory.Host, bin Artifact) (desired.Host, error) {
	d, err := Desired(inv, h, secrets, bin)
	if err != nil {
		return d, err
	}
	return desired.Merge(h.Name, desired.Part{Role: Role{}.Name(), Host: d})
}
