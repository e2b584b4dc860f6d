package plan

import "testing"

func BenchmarkComputeConverged(b *testing.B) {
	d, f := want(), converged()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if p := Compute(d, f); !p.Empty() {
			b.Fatal("converged host has a plan")
		}
	}
}
