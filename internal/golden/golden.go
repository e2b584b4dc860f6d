// Package golden compares a test's output with a golden file, or rewrites
// the file when the test runs with -update.
//
// It exists so that every golden test shares one -update flag and one
// message: before it, each package's tests declared their own flag and
// wrote their own compare-or-rewrite code, each failing with different
// words. A normal package (not a _test file) so tests of any package can
// import it; import it from tests only, since importing it registers
// -update on the binary's flag set.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// Update reports whether the test runs with -update, for code that keeps
// golden files of its own (internal/planfixture's cases).
func Update() bool { return *update }

// maxDiffLines caps how many lines of each side a mismatch shows.
const maxDiffLines = 20

// Check compares got with the file at path. With -update it writes got to
// path instead (creating its directory). A missing file or a difference
// fails t with the file's name, the lines that differ and the command
// that accepts the new output. It fails with Errorf, not Fatalf, so a
// test that checks several files reports every one that differs.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Errorf("golden: %v", err)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Errorf("golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("golden file %s: %v\nrun %s to accept the current output", path, err, command())
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden file %s differs from the output:\n%srun %s to accept the current output", path, diff(want, got), command())
	}
}

// diff is a short line-based diff of want and got: the first differing
// line's number, then the lines between the common start and the common
// end, "-" for want and "+" for got, at most maxDiffLines of each.
func diff(want, got []byte) string {
	w, g := lines(want), lines(got)
	pre := 0
	for pre < len(w) && pre < len(g) && w[pre] == g[pre] {
		pre++
	}
	suf := 0
	for suf < len(w)-pre && suf < len(g)-pre && w[len(w)-1-suf] == g[len(g)-1-suf] {
		suf++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d\n", pre+1)
	side := func(sign string, ls []string) {
		for i, l := range ls {
			if i == maxDiffLines {
				fmt.Fprintf(&b, "%s ... (%d more lines)\n", sign, len(ls)-i)
				break
			}
			fmt.Fprintf(&b, "%s %s\n", sign, l)
		}
	}
	side("-", w[pre:len(w)-suf])
	side("+", g[pre:len(g)-suf])
	return b.String()
}

// lines splits b into lines; a missing final newline shows as a line of
// its own so that it is not lost in the diff.
func lines(b []byte) []string {
	s := string(b)
	if s == "" {
		return nil
	}
	ls := strings.SplitAfter(s, "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		if strings.HasSuffix(l, "\n") {
			out[i] = strings.TrimSuffix(l, "\n")
		} else {
			out[i] = l + " (no newline at end)"
		}
	}
	return out
}

// command is the go test command that rewrites the golden files of the
// package under test: a test runs in its package's folder, named relative
// to the module root (the nearest folder up with a go.mod).
func command() string {
	wd, err := os.Getwd()
	if err != nil {
		return "go test -update"
	}
	for root := wd; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, wd)
			if err != nil {
				break
			}
			if rel == "." {
				return "go test . -update"
			}
			return "go test ./" + filepath.ToSlash(rel) + " -update"
		}
		up := filepath.Dir(root)
		if up == root {
			break
		}
		root = up
	}
	return "go test -update"
}
