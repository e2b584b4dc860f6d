//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// withoutMonitoring drops the [monitoring] section and everything after it
// (lab.toml ends with it): the NATS cluster alone.
func withoutMonitoring(s string) string {
	if i := strings.Index(s, "\n[monitoring]"); i >= 0 {
		return s[:i+1]
	}
	return s
}

// BenchmarkNoopApply measures what an operator waits for when nothing has
// changed: validate, connect to 3 hosts, lock, facts, plan, unlock; for
// the NATS cluster alone and for the whole stack the lab enables (one
// facts command per host either way). Compare the two with
// `make bench`: the whole stack must stay within 1.3x of NATS alone.
func BenchmarkNoopApply(b *testing.B) {
	b.Run("nats", func(b *testing.B) { benchNoop(b, writeInventory(b, "bench-nats", withoutMonitoring)) })
	b.Run("stack", func(b *testing.B) { benchNoop(b, writeInventory(b, "bench")) })
}

func benchNoop(b *testing.B, inv string) {
	if out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput(); err != nil {
		b.Fatalf("first apply: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "nothing to do") {
			b.Fatalf("no-op apply: %v\n%s", err, out)
		}
	}
}

// BenchmarkVerify measures the full post-deploy verifier on the lab.
func BenchmarkVerify(b *testing.B) {
	inv := writeInventory(b, "bench")
	if out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput(); err != nil {
		b.Fatalf("apply: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command(binary, "verify", inv).CombinedOutput(); err != nil {
			b.Fatalf("verify: %v\n%s", err, out)
		}
	}
}
