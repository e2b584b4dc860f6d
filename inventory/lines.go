package inventory

import (
	"strconv"
	"strings"
)

// BurntSushi/toml keeps key positions private, so error messages would have
// no line numbers. locateKeys recovers them with a small scanner over the
// file text. It only needs to understand TOML well enough to find where keys
// start: the file has already been parsed successfully by the real decoder
// when this runs, so it never reports syntax errors, and on anything it does
// not understand it stops early and returns what it found (a missing line
// only makes a message less precise).
//
// Key paths are dotted with array indices as elements:
//
//	[[accounts]]            -> "accounts.2" (the third [[accounts]])
//	[[accounts.users]]      -> "accounts.2.users.0" (counted per account)
//	allow = ["a", "b"]      -> "accounts.2.users.0.allow", ".allow.0", ".allow.1"
//	jetstream = { max_mem = "1GB" } -> "accounts.2.jetstream.max_mem"
//
// Elements of multi-line arrays get the line they are written on.
func locateKeys(text string) map[string]int {
	l := &locator{s: text, line: 1, lines: map[string]int{}, arrays: map[string]int{}}
	l.document()
	return l.lines
}

type locator struct {
	s    string
	i    int
	line int
	// lines is the result: key path -> first line it appears on.
	lines map[string]int
	// arrays counts the [[tables]] seen so far per (indexed) array path, so
	// a nested [[a.b]] header attaches to the last [[a]].
	arrays map[string]int
}

func (l *locator) eof() bool { return l.i >= len(l.s) }

func (l *locator) peek(off int) byte {
	if l.i+off >= len(l.s) {
		return 0
	}
	return l.s[l.i+off]
}

func (l *locator) advance() {
	if l.i < len(l.s) {
		if l.s[l.i] == '\n' {
			l.line++
		}
		l.i++
	}
}

func (l *locator) record(path string, line int) {
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = line
	}
}

// skipBlank skips spaces and tabs (and stray CRs) on the current line.
func (l *locator) skipBlank() {
	for c := l.peek(0); c == ' ' || c == '\t' || c == '\r'; c = l.peek(0) {
		l.advance()
	}
}

// skipSpace skips blanks, newlines and comments, as allowed inside arrays.
func (l *locator) skipSpace() {
	for !l.eof() {
		switch l.peek(0) {
		case ' ', '\t', '\r', '\n':
			l.advance()
		case '#':
			l.skipLine()
		default:
			return
		}
	}
}

// skipLine skips to the newline (not past it).
func (l *locator) skipLine() {
	for !l.eof() && l.peek(0) != '\n' {
		l.advance()
	}
}

func (l *locator) document() {
	current := ""
	for !l.eof() {
		l.skipBlank()
		switch c := l.peek(0); {
		case c == '\n':
			l.advance()
		case c == '#':
			l.skipLine()
		case c == '[':
			line := l.line
			array := l.peek(1) == '['
			l.advance()
			if array {
				l.advance()
			}
			keys := l.key()
			if len(keys) == 0 {
				return
			}
			current = l.header(keys, array, line)
			l.skipLine()
		default:
			line := l.line
			start := l.i
			keys := l.key()
			l.skipBlank()
			if len(keys) == 0 || l.peek(0) != '=' || l.i == start {
				return
			}
			l.advance()
			l.skipBlank()
			path := keyPath(current, strings.Join(keys, "."))
			l.record(path, line)
			if !l.value(path) {
				return
			}
		}
	}
}

// header resolves a table header to its indexed path and makes it current.
func (l *locator) header(keys []string, array bool, line int) string {
	resolved := ""
	for j, k := range keys {
		resolved = keyPath(resolved, k)
		if j == len(keys)-1 {
			break
		}
		// [a.b] defines [a] too; a problem about a key of [a] that is not
		// written then points here rather than nowhere.
		l.record(resolved, line)
		if n, ok := l.arrays[resolved]; ok {
			resolved = keyPath(resolved, n-1)
		}
	}
	if !array {
		l.record(resolved, line)
		return resolved
	}
	n := l.arrays[resolved]
	l.arrays[resolved] = n + 1
	l.record(resolved, line)
	current := keyPath(resolved, n)
	l.record(current, line)
	return current
}

// key reads a possibly dotted, possibly quoted key.
func (l *locator) key() []string {
	var parts []string
	for {
		l.skipBlank()
		var part string
		switch c := l.peek(0); {
		case c == '"' || c == '\'':
			l.advance()
			var b strings.Builder
			for !l.eof() && l.peek(0) != c && l.peek(0) != '\n' {
				if c == '"' && l.peek(0) == '\\' {
					l.advance()
				}
				b.WriteByte(l.peek(0))
				l.advance()
			}
			if l.peek(0) != c {
				return nil
			}
			l.advance()
			part = b.String()
		case isBareKeyChar(c):
			start := l.i
			for isBareKeyChar(l.peek(0)) {
				l.advance()
			}
			part = l.s[start:l.i]
		default:
			return parts
		}
		parts = append(parts, part)
		l.skipBlank()
		if l.peek(0) != '.' {
			return parts
		}
		l.advance()
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value skips one value, recording the keys and elements inside inline
// tables and arrays. It reports false when it got lost.
func (l *locator) value(path string) bool {
	switch l.peek(0) {
	case '"', '\'':
		return l.str()
	case '[':
		l.advance()
		for idx := 0; ; idx++ {
			l.skipSpace()
			if l.peek(0) == ']' {
				l.advance()
				return true
			}
			if l.eof() {
				return false
			}
			elem := keyPath(path, idx)
			l.record(elem, l.line)
			if !l.value(elem) {
				return false
			}
			l.skipSpace()
			switch l.peek(0) {
			case ',':
				l.advance()
			case ']':
				l.advance()
				return true
			default:
				return false
			}
		}
	case '{':
		l.advance()
		for {
			l.skipSpace()
			if l.peek(0) == '}' {
				l.advance()
				return true
			}
			line := l.line
			keys := l.key()
			l.skipBlank()
			if len(keys) == 0 || l.peek(0) != '=' {
				return false
			}
			l.advance()
			l.skipBlank()
			sub := keyPath(path, strings.Join(keys, "."))
			l.record(sub, line)
			if !l.value(sub) {
				return false
			}
			l.skipSpace()
			switch l.peek(0) {
			case ',':
				l.advance()
			case '}':
				l.advance()
				return true
			default:
				return false
			}
		}
	default:
		// Numbers, booleans and dates: up to the next delimiter.
		start := l.i
		for !l.eof() && !strings.ContainsRune(",]}#\n", rune(l.peek(0))) {
			l.advance()
		}
		return l.i > start
	}
}

// str skips a basic, literal or multi-line string.
func (l *locator) str() bool {
	q := l.peek(0)
	if l.peek(1) == q && l.peek(2) == q {
		l.advance()
		l.advance()
		l.advance()
		for !l.eof() {
			if q == '"' && l.peek(0) == '\\' {
				l.advance()
				l.advance()
				continue
			}
			if l.peek(0) == q && l.peek(1) == q && l.peek(2) == q {
				// The string ends at the last quote of this run: TOML
				// allows up to two more before the closing three, as the
				// end of the content.
				for l.peek(0) == q {
					l.advance()
				}
				return true
			}
			l.advance()
		}
		return false
	}
	l.advance()
	for !l.eof() && l.peek(0) != '\n' {
		c := l.peek(0)
		if q == '"' && c == '\\' {
			l.advance()
			l.advance()
			continue
		}
		l.advance()
		if c == q {
			return true
		}
	}
	return false
}

// Line returns the line keyPath was written on ("hosts.1.address",
// "accounts.2.users.0.allow.1", "nats.client_port"). A key that is not in the
// file (a default, or a missing required key) gets the line of the nearest
// enclosing table that is, so "hosts.1.address" points at the second
// [[hosts]] header when the address is missing. 0 when nothing is known.
func (inv *Inventory) Line(keyPath string) int {
	if inv == nil || inv.lines == nil {
		return 0
	}
	for k := keyPath; k != ""; {
		if n, ok := inv.lines[k]; ok {
			return n
		}
		dot := strings.LastIndexByte(k, '.')
		if dot < 0 {
			break
		}
		k = k[:dot]
	}
	return 0
}

// Pos returns "file:line" for keyPath (see Line), or just the file when the
// line is unknown, for messages about a part of the inventory.
func (inv *Inventory) Pos(keyPath string) string {
	if n := inv.Line(keyPath); n > 0 {
		return inv.Path + ":" + strconv.Itoa(n)
	}
	return inv.Path
}
