// Package diff prints a short line diff of a managed file for `plan`, with
// secrets masked so a plan can be pasted into a ticket.
package diff

import (
	"fmt"
	"regexp"
	"strings"
)

// maxLines bounds the quadratic LCS table; config files are far smaller.
const maxLines = 3000

var (
	bcryptRe    = regexp.MustCompile(`\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}`)
	urlSecretRe = regexp.MustCompile(`(://[^:/@\s]+:)[^@\s]+@`)
)

// Redact masks bcrypt hashes and passwords inside URLs.
func Redact(s string) string {
	s = bcryptRe.ReplaceAllString(s, "<bcrypt hash>")
	return urlSecretRe.ReplaceAllString(s, "${1}<redacted>@")
}

// Unified returns the changed lines of old -> new with ctx lines of context,
// "-" and "+" prefixed, hunks separated by "@@". Both sides are redacted.
func Unified(old, new string, ctx int) string {
	a := splitLines(Redact(old))
	b := splitLines(Redact(new))
	if len(a) > maxLines || len(b) > maxLines {
		return fmt.Sprintf("(%d -> %d lines, too large to diff)\n", len(a), len(b))
	}
	ops := script(a, b)
	// Mark which ops are shown: changes and ctx lines around them.
	show := make([]bool, len(ops))
	for i, op := range ops {
		if op.kind != ' ' {
			for j := max(0, i-ctx); j <= min(len(ops)-1, i+ctx); j++ {
				show[j] = true
			}
		}
	}
	var out strings.Builder
	gap := true
	for i, op := range ops {
		if !show[i] {
			gap = true
			continue
		}
		if gap {
			fmt.Fprintf(&out, "@@ line %d @@\n", op.line)
			gap = false
		}
		fmt.Fprintf(&out, "%c %s\n", op.kind, op.text)
	}
	return out.String()
}

type op struct {
	kind byte // ' ', '-', '+'
	text string
	line int // line in new (or old for '-') file, 1-based
}

// script is the classic LCS edit script: small files, clear code.
func script(a, b []string) []op {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], j + 1})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i + 1})
			i++
		default:
			ops = append(ops, op{'+', b[j], j + 1})
			j++
		}
	}
	return ops
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
