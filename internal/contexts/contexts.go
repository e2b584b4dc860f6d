// Package contexts writes a natscli context file for every user of the
// inventory, so that `nats --context <name> ...` works right after a
// deploy. The files hold passwords: they are written 0600 in a 0700
// directory, and replaced atomically so a reader never sees half a file.
package contexts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/atomicfile"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Passwords gives the plaintext password of a user; *secrets.Store
// satisfies it. An empty string means the password is unknown.
type Passwords interface {
	Password(account, user string) string
}

// natsContext is natscli's context file (jsm.go natscontext settings), with
// the fields natsdeploy can fill. natscli reads unknown or missing keys as
// empty, and writes the same key names.
type natsContext struct {
	Description   string `json:"description"`
	URL           string `json:"url"`
	Token         string `json:"token"`
	User          string `json:"user"`
	Password      string `json:"password"`
	Creds         string `json:"creds"`
	NKey          string `json:"nkey"`
	Cert          string `json:"cert"`
	Key           string `json:"key"`
	CA            string `json:"ca"`
	NSC           string `json:"nsc"`
	JSDomain      string `json:"jetstream_domain"`
	JSAPIPrefix   string `json:"jetstream_api_prefix"`
	JSEventPrefix string `json:"jetstream_event_prefix"`
	InboxPrefix   string `json:"inbox_prefix"`
}

// DefaultDir is where natscli looks for contexts:
// $XDG_CONFIG_HOME/nats/context, else ~/.config/nats/context.
func DefaultDir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "nats", "context"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("natscli context directory: %w", err)
	}
	return filepath.Join(home, ".config", "nats", "context"), nil
}

// Name is the context name of a user: "<inventory file name>-<user>",
// e.g. "lab-dev-user" for inventory/lab.toml. NATS user names are unique
// across accounts, so the name is unique within one inventory. Characters
// natscli or a file system would trip over become "_".
func Name(inv *inventory.Inventory, user string) string {
	base := "natsdeploy"
	if inv.Path != "" {
		base = strings.TrimSuffix(filepath.Base(inv.Path), filepath.Ext(inv.Path))
	}
	return sanitize(base + "-" + user)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			// Includes "." (natscli refuses "..") and path separators.
			b.WriteRune('_')
		}
	}
	return b.String()
}

// ServerURLs is the comma-separated client URL list of every host, the
// form natscli's "url" takes.
func ServerURLs(inv *inventory.Inventory) string {
	urls := make([]string, 0, len(inv.NATSHosts()))
	for _, h := range inv.NATSHosts() {
		urls = append(urls, fmt.Sprintf("nats://%s:%d", h.Address, inv.NATS.ClientPort))
	}
	return strings.Join(urls, ",")
}

// Write writes dir/<name>.json for every user of every account and
// returns the context names in inventory order. It checks that every
// password is known before writing anything. An empty dir means
// DefaultDir().
func Write(inv *inventory.Inventory, passwords Passwords, dir string) ([]string, error) {
	return WriteTLS(inv, passwords, dir, nil)
}

// WriteTLS is Write for a cluster whose clients need TLS: ca (the CA
// bundle, PEM) is written beside the contexts and each context names it,
// so natscli verifies the servers against it.
func WriteTLS(inv *inventory.Inventory, passwords Passwords, dir string, ca []byte) ([]string, error) {
	if inv == nil || passwords == nil {
		return nil, errors.New("write contexts: inventory and passwords are required")
	}
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}

	type entry struct {
		name string
		ctx  natsContext
	}
	var entries []entry
	var missing []string
	seen := map[string]string{}
	url := ServerURLs(inv)
	where := inv.Path
	if where == "" {
		where = "the inventory"
	}
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			pw := passwords.Password(a.Name, u.Name)
			if pw == "" {
				missing = append(missing, a.Name+"/"+u.Name)
				continue
			}
			name := Name(inv, u.Name)
			if other, dup := seen[name]; dup {
				return nil, fmt.Errorf("write contexts: users %s and %s/%s would share the context name %q", other, a.Name, u.Name, name)
			}
			seen[name] = a.Name + "/" + u.Name
			entries = append(entries, entry{name, natsContext{
				Description: fmt.Sprintf("natsdeploy: user %s of account %s (%s)", u.Name, a.Name, where),
				URL:         url,
				User:        u.Name,
				Password:    pw,
				CA:          caPath(inv, dir, ca),
			}})
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("write contexts: no password known for %s (run apply first, or set the password in the inventory or its environment variable)", strings.Join(missing, ", "))
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("write contexts: %w", err)
	}
	// The directory may predate us with a looser mode; it holds passwords.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("write contexts: %w", err)
	}
	if len(ca) > 0 {
		if err := atomicfile.Write(caPath(inv, dir, ca), ca, 0o644); err != nil {
			return nil, fmt.Errorf("write contexts: CA: %w", err)
		}
	}
	var names []string
	for _, e := range entries {
		b, err := json.MarshalIndent(e.ctx, "", "  ")
		if err != nil {
			return names, fmt.Errorf("write context %s: %w", e.name, err)
		}
		if err := atomicfile.Write(filepath.Join(dir, e.name+".json"), append(b, '\n'), 0o600); err != nil {
			return names, fmt.Errorf("write context %s: %w", e.name, err)
		}
		names = append(names, e.name)
	}
	return names, nil
}

// caPath is where WriteTLS keeps the CA bundle; "" without one.
func caPath(inv *inventory.Inventory, dir string, ca []byte) string {
	if len(ca) == 0 {
		return ""
	}
	return filepath.Join(dir, Name(inv, "ca")+".pem")
}
