package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Check reports instead of
// failing the test running it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string // the golden file's content; "" for none
		got      string
		update   bool
		wantErr  []string // all in the one error; nil for none
		wantFile string   // the file's content after Check
	}{
		{name: "match", file: "a\nb\n", got: "a\nb\n", wantFile: "a\nb\n"},
		{name: "mismatch", file: "a\nb\nc\n", got: "a\nB\nc\n",
			wantErr:  []string{"x.golden differs", "line 2", "\n- b\n+ B\n", "run go test ./internal/golden -update to accept"},
			wantFile: "a\nb\nc\n"},
		{name: "missing newline", file: "a\n", got: "a",
			wantErr:  []string{"x.golden differs", "- a\n+ a (no newline at end)\n"},
			wantFile: "a\n"},
		{name: "missing file", got: "a\n",
			wantErr: []string{"x.golden", "run go test ./internal/golden -update"}},
		{name: "update rewrites", file: "old\n", got: "new\n", update: true, wantFile: "new\n"},
		{name: "update creates", got: "new\n", update: true, wantFile: "new\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "x.golden")
			if tc.file != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// As go test -update sets it.
			defer func(old bool) { *update = old }(*update)
			*update = tc.update
			r := &recorder{}
			Check(r, path, []byte(tc.got))
			switch {
			case tc.wantErr == nil && len(r.errs) > 0:
				t.Errorf("unexpected failure: %q", r.errs)
			case tc.wantErr != nil && len(r.errs) != 1:
				t.Errorf("got %d failures %q, want 1", len(r.errs), r.errs)
			case tc.wantErr != nil:
				for _, s := range tc.wantErr {
					if !strings.Contains(r.errs[0], s) {
						t.Errorf("failure lacks %q:\n%s", s, r.errs[0])
					}
				}
			}
			b, err := os.ReadFile(path)
			switch {
			case tc.wantFile == "" && err == nil:
				t.Errorf("Check created %s", path)
			case tc.wantFile != "" && string(b) != tc.wantFile:
				t.Errorf("file = %q (%v), want %q", b, err, tc.wantFile)
			}
		})
	}
}

func TestDiffIsShort(t *testing.T) {
	var want, got strings.Builder
	for i := range 100 {
		fmt.Fprintf(&want, "w%d\n", i)
		fmt.Fprintf(&got, "g%d\n", i)
	}
	d := diff([]byte(want.String()), []byte(got.String()))
	if n := strings.Count(d, "\n"); n > 2*maxDiffLines+3 {
		t.Errorf("diff has %d lines:\n%s", n, d)
	}
	if !strings.Contains(d, "- ... (80 more lines)") || !strings.Contains(d, "+ ... (80 more lines)") {
		t.Errorf("diff does not say what it left out:\n%s", d)
	}
}
