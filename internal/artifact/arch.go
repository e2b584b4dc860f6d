package artifact

import (
	"fmt"
	"strings"
)

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
