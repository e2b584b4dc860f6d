package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// SSHConfig is an OpenSSH client config file (~/.ssh/config), read for
// what the inventory leaves unsaid, so that a host reachable with plain
// `ssh ADDRESS` is reachable by natsdeploy too.
type SSHConfig struct {
	path string
	c    *ssh_config.Config // nil: no file
}

// LoadSSHConfig reads an ssh config file. A missing file is an empty one:
// most control machines have none and need none.
func LoadSSHConfig(path string) (*SSHConfig, error) {
	b, err := os.ReadFile(expandHome(path))
	if errors.Is(err, fs.ErrNotExist) {
		return &SSHConfig{path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w; fix its mode or set use_ssh_config = false in [ssh]", path, err)
	}
	c, err := ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %v; fix the file or set use_ssh_config = false in [ssh]", path, err)
	}
	return &SSHConfig{path: path, c: c}, nil
}

// Given says which settings the inventory gave for a host. Those win over
// the ssh config, as command-line options win over it for ssh.
type Given struct {
	User, Port, IdentityFiles, Jump bool
}

// Apply fills in from the ssh config what the inventory did not give for
// cfg. The Host blocks are matched against cfg.Address, the name a user
// would type after ssh; HostName then replaces the address dialled and
// looked up in known_hosts, as with OpenSSH. Each jump host is looked up
// too, for its HostName, User and Port (not for a ProxyJump of its own).
// Only the first value of each keyword counts, as with OpenSSH.
func (s *SSHConfig) Apply(cfg Config, given Given) (Config, error) {
	if s == nil || s.c == nil {
		return cfg, nil
	}
	alias := cfg.Address
	hostName, user, port, err := s.lookup(cfg.Host, alias)
	if err != nil {
		return cfg, err
	}
	if hostName != "" {
		cfg.Address = hostName
	}
	if !given.User && user != "" {
		cfg.User = user
	}
	if !given.Port && port != 0 {
		cfg.Port = port
	}
	if !given.IdentityFiles {
		files, err := s.c.GetAll(alias, "IdentityFile")
		if err != nil {
			return cfg, s.errorf(cfg.Host, alias, "IdentityFile: %v", err)
		}
		for _, f := range files {
			f = expandTokens(f, alias, cfg.Address)
			// Like OpenSSH, skip a key that is not there: a "Host *" block
			// often names keys that exist on some machines only.
			if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			cfg.IdentityFiles = append(cfg.IdentityFiles, f)
		}
	}
	if !given.Jump {
		pj, err := s.c.Get(alias, "ProxyJump")
		if err != nil {
			return cfg, s.errorf(cfg.Host, alias, "ProxyJump: %v", err)
		}
		if pj != "" {
			hops, err := ParseJump(pj)
			if err != nil {
				return cfg, s.errorf(cfg.Host, alias, "ProxyJump: %v", err)
			}
			cfg.Jump = hops
		} else if pc, _ := s.c.Get(alias, "ProxyCommand"); pc != "" && pc != "none" {
			// Connecting directly instead would fail far from the cause,
			// or worse, reach something else.
			return cfg, s.errorf(cfg.Host, alias, "ProxyCommand is set and natsdeploy does not run commands to connect; use ProxyJump, or set jump in the inventory")
		}
	}
	cfg.Jump = slices.Clone(cfg.Jump)
	for i, h := range cfg.Jump {
		hn, u, p, err := s.lookup(cfg.Host, h.Host)
		if err != nil {
			return cfg, err
		}
		if hn != "" {
			cfg.Jump[i].Host = hn
		}
		if h.User == "" {
			cfg.Jump[i].User = u
		}
		if h.Port == 0 {
			cfg.Jump[i].Port = p
		}
	}
	return cfg, nil
}

func (s *SSHConfig) lookup(host, alias string) (hostName, user string, port int, err error) {
	get := func(key string) (string, error) {
		v, err := s.c.Get(alias, key)
		if err != nil {
			return "", s.errorf(host, alias, "%s: %v", key, err)
		}
		return v, nil
	}
	if hostName, err = get("HostName"); err != nil {
		return
	}
	hostName = expandTokens(hostName, alias, alias)
	if user, err = get("User"); err != nil {
		return
	}
	p, err := get("Port")
	if err != nil || p == "" {
		return
	}
	port, perr := strconv.Atoi(p)
	if perr != nil || port < 1 || port > 65535 {
		return "", "", 0, s.errorf(host, alias, "Port %q is not a number in 1-65535", p)
	}
	return hostName, user, port, nil
}

func (s *SSHConfig) errorf(host, alias, format string, args ...any) error {
	return fmt.Errorf("host %s: ssh config %s, for %s: %s; fix the file, set the value in the inventory, or set use_ssh_config = false in [ssh]",
		host, s.path, alias, fmt.Sprintf(format, args...))
}

// expandTokens does OpenSSH's %h (the host name) and %% in HostName and
// IdentityFile values, the two that users write in practice, and ~/.
func expandTokens(v, alias, hostName string) string {
	if !strings.Contains(v, "%") {
		return expandHome(v)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 'h':
			b.WriteString(hostName)
		case 'n':
			b.WriteString(alias)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return expandHome(b.String())
}
