// Package files embeds the templates and static assets roles render onto
// hosts, so the natsdeploy binary is self-contained and a given build always
// renders the same bytes.
package files

import "embed"

// FS holds every template under its path relative to this folder, e.g.
// "nats/nats-server.conf.tmpl".
//
//go:embed nats/*.tmpl
var FS embed.FS
