package artifact

import (
	"context"
	"fmt"
	"strings"
)

// NATSServerURL is where nats-server releases are published; a release's
// files are at NATSServerURL/vX.Y.Z/NAME.
const NATSServerURL = "https://github.com/nats-io/nats-server/releases/download"

// NATSServer returns the verified nats-server binary of version (with or
// without a leading "v") for linux/arch (Go naming, or `uname -m` output).
//
// Layout under dir, the same as below the release URL:
//
//	nats-server/vX.Y.Z/nats-server-vX.Y.Z-linux-ARCH.tar.gz
//	nats-server/vX.Y.Z/SHA256SUMS
//	nats-server/vX.Y.Z/linux-ARCH/nats-server          (extracted here)
//	nats-server/vX.Y.Z/linux-ARCH/nats-server.sha256   (what was extracted, from what)
//
// downloadURL "" means offline: the files must already be in dir.
func NATSServer(ctx context.Context, dir, downloadURL, version, arch string) (Binary, error) {
	v := strings.TrimPrefix(version, "v")
	if v == "" {
		return Binary{}, fmt.Errorf("nats-server: no version given")
	}
	a, err := GoArch(arch)
	if err != nil {
		return Binary{}, fmt.Errorf("nats-server v%s: %w", v, err)
	}
	tag := "v" + v
	base := fmt.Sprintf("nats-server-%s-linux-%s", tag, a)
	return Get(ctx, Release{
		Dir:     dir,
		BaseURL: downloadURL,
		Name:    "nats-server",
		Tag:     tag,
		Version: v,
		Asset:   base + ".tar.gz",
		Sums:    "SHA256SUMS",
		Member:  base + "/nats-server",
		Target:  "linux-" + a,
		Hint:    "https://github.com/nats-io/nats-server/releases/tag/" + tag,
		Setting: "nats.download_url",
	})
}

// GoArch maps a host's `uname -m` (or an already-Go-style name) to the
// architecture suffix release assets use.
func GoArch(machine string) (string, error) {
	switch m := strings.TrimSpace(machine); m {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	case "armv7l", "arm7":
		return "arm7", nil
	case "armv6l", "arm6":
		return "arm6", nil
	case "i386", "i686", "386":
		return "386", nil
	case "s390x", "ppc64le", "riscv64":
		return m, nil
	default:
		return "", fmt.Errorf("unsupported machine architecture %q (uname -m)", machine)
	}
}
