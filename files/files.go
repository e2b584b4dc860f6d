// Package files embeds the templates and static assets roles render onto
// hosts, so the natsdeploy binary is self-contained and a given build always
// renders the same bytes.
package files

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"path"
	"text/template"
)

// FS holds every template and asset under its path relative to this folder,
// e.g. "nats/nats-server.conf.tmpl" or "prometheus/rules/nats.rules.yml".
// Rule unit tests (*.rules.test.yml) stay out: hosts never need them.
//
//go:embed nats/*.tmpl exporter/*.tmpl surveyor/*.tmpl prometheus/*.tmpl prometheus/rules/*.rules.yml grafana/*.tmpl grafana/*.sh
var FS embed.FS

// Render executes the template name from FS with data. A missing key is an
// error, so a renamed field never renders as "<no value>" on a host.
func Render(name string, data any, funcs template.FuncMap) ([]byte, error) {
	t, err := template.New(path.Base(name)).Funcs(funcs).Option("missingkey=error").ParseFS(FS, name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// SHA256 is the hex sha256 of rendered content, as the facts report it.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
