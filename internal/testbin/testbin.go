// Package testbin finds the real binaries tests run against (nats-server,
// natscli). A test never fakes one: without the binary it is skipped, and
// where the Makefile names it (make unit sets NATS_SERVER_BIN and
// NATSCLI_BIN) a missing file fails the test instead, so CI cannot pass by
// skipping.
package testbin

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns the binary named by $env, else name from $PATH.
func Find(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Skipf("%s not found: set %s or put it on PATH (make unit does)", name, env)
	return ""
}

// NATSServer finds nats-server.
func NATSServer(t testing.TB) string { return Find(t, "NATS_SERVER_BIN", "nats-server") }

// NATSCLI finds natscli's nats.
func NATSCLI(t testing.TB) string { return Find(t, "NATSCLI_BIN", "nats") }
