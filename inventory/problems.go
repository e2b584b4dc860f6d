package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with an inventory, tied to where it is written.
type Problem struct {
	File string // the inventory file as given to Load
	Line int    // 1-based; 0 when the problem has no line (e.g. a missing section)
	// Key is the dotted key path the problem is about, with array indices as
	// path elements: "accounts.2.users.0.allow". Empty for syntax errors.
	Key string
	// Msg says what is wrong and, after "; ", what to do about it.
	Msg string
}

// String formats the problem as "file:line: key: message", with the key in
// the bracket form a reader knows from TOML ("accounts[2].users[0].allow").
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(DisplayKey(p.Key))
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is the error Load returns for an inventory that cannot be used:
// every problem found, not only the first, so one edit can fix them all.
type Problems struct {
	List []Problem
}

// Error prints one problem per line.
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, pr := range p.List {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by line, keeping the order they were found in
// within a line. Problems without a line (about the file as a whole) go
// first.
func (p *Problems) sort() {
	sort.SliceStable(p.List, func(i, j int) bool { return p.List[i].Line < p.List[j].Line })
}

// DisplayKey turns a key path such as "accounts.2.users.0.allow" into the
// form a reader of the TOML file recognises: "accounts[2].users[0].allow".
func DisplayKey(key string) string {
	if key == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(key, ".") {
		if isIndex(part) && i > 0 {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// keyPath joins key path elements with dots; ints become indices.
func keyPath(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		s := fmt.Sprint(p)
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
