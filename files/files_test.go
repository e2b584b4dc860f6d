package files

import (
	"io/fs"
	"testing"
	"text/template"
)

// Every template is embedded and parses, so a typo fails here and not in
// the middle of an apply.
func TestTemplatesParse(t *testing.T) {
	names, err := fs.Glob(FS, "*/*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"nats/nats-server.conf.tmpl":        false,
		"nats/accounts.conf.tmpl":           false,
		"nats/logging.conf.tmpl":            false,
		"nats/nats-server.service.tmpl":     false,
		"nats/nats-server-log.service.tmpl": false,
	}
	// Roles add their own functions; stubs are enough to parse.
	funcs := template.FuncMap{"q": func(string) string { return "" }, "list": func([]string) string { return "" }}
	for _, n := range names {
		if _, err := template.New(n).Funcs(funcs).ParseFS(FS, n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		want[n] = true
	}
	for n, found := range want {
		if !found {
			t.Errorf("%s is not embedded", n)
		}
	}
}
