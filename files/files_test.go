package files

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// Every template is embedded and parses, so a typo fails here and not in
// the middle of an apply. Both sides are walked rather than listed, so a new
// template (or a new role folder the go:embed pattern does not cover yet) is
// checked without anyone remembering to add it here.
func TestTemplatesParse(t *testing.T) {
	// Roles add their own functions; stubs are enough to parse.
	funcs := template.FuncMap{"q": func(string) string { return "" }, "list": func([]string) string { return "" }}
	embedded := map[string]bool{}
	err := fs.WalkDir(FS, ".", func(n string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(n, ".tmpl") {
			return err
		}
		embedded[n] = true
		if _, err := template.New(n).Funcs(funcs).ParseFS(FS, n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) == 0 {
		t.Fatal("no template is embedded")
	}

	onDisk := 0
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tmpl") {
			return err
		}
		onDisk++
		if n := filepath.ToSlash(p); !embedded[n] {
			t.Errorf("%s is not embedded: widen the go:embed pattern in files.go", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onDisk != len(embedded) {
		t.Errorf("%d templates on disk, %d embedded", onDisk, len(embedded))
	}
}
