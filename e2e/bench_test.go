//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// BenchmarkNoopApply measures what an operator waits for when nothing has
// changed: validate, connect to 3 hosts, lock, facts, plan, unlock. The
// brief asks for about a second on the lab.
func BenchmarkNoopApply(b *testing.B) {
	inv := writeInventory(b, "bench")
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
