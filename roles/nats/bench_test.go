package nats

import (
	"path/filepath"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// BenchmarkDesiredLab renders the whole desired state of one lab host: the
// work every plan and apply does per host before any network traffic.
func BenchmarkDesiredLab(b *testing.B) {
	inv, err := inventory.LoadWithOptions(filepath.Join("..", "..", "inventory", "lab.toml"), inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Desired(inv, inv.Hosts[0], secrets, testBinary); err != nil {
			b.Fatal(err)
		}
	}
}
