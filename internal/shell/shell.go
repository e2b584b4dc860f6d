// Package shell builds POSIX shell command lines. Every value that reaches a
// remote shell goes through Quote, so a path or name can never become code.
package shell

import "strings"

// Quote returns s as one shell word that the shell reads back as s. Words
// made only of safe bytes stay bare, so command lines in errors stay
// readable; '~' (tilde expansion) and '=' (zsh's equals expansion) are not
// safe.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each word and joins them with spaces.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
