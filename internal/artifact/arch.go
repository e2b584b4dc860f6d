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

// Spelled is a release version and a host's architecture, as a project's
// release file names spell them.
type Spelled struct {
	Version string // without the leading "v"
	Tag     string // "v" + Version
	GoArch  string // Go naming, for the extraction folder
	Arch    string // the project's own spelling, for the asset name
}

// Spell resolves version and machine (`uname -m` or Go naming) for a
// project whose release names spell architectures their own way (spell
// returns "" for one it does not publish). table names the inventory table
// whose `enabled = false` turns the project off, for the error.
func Spell(project, version, machine string, spell func(goarch string) string, table string) (Spelled, error) {
	v := strings.TrimPrefix(version, "v")
	s := Spelled{Version: v, Tag: "v" + v}
	goarch, err := GoArch(machine)
	if err != nil {
		return s, fmt.Errorf("%s %s: %w", project, s.Tag, err)
	}
	s.GoArch, s.Arch = goarch, spell(goarch)
	if s.Arch == "" {
		return s, fmt.Errorf("%s %s: no Linux release for %s; set [%s] enabled = false for this inventory", project, s.Tag, goarch, table)
	}
	return s, nil
}
