package remote

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Hop is one jump host on the way to a host, as OpenSSH's ProxyJump
// writes it: [user@]host[:port].
type Hop struct {
	User string // "" until resolved: ssh config's User for it, else the host's login user
	Host string
	Port int // 0 until resolved: ssh config's Port for it, else 22
}

func (h Hop) String() string {
	s := h.Host
	if h.Port != 0 {
		s = net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
	} else if strings.Contains(h.Host, ":") {
		s = "[" + h.Host + "]"
	}
	if h.User != "" {
		s = h.User + "@" + s
	}
	return s
}

// ParseJump reads a ProxyJump value: hops separated by commas, dialled in
// order. "none" means no jump host (OpenSSH's way to switch off a ProxyJump
// set by a wider Host block), and returns no hops.
func ParseJump(s string) ([]Hop, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty jump host; write [user@]host[:port], several separated by commas, or none")
	}
	if s == "none" {
		return nil, nil
	}
	var hops []Hop
	for part := range strings.SplitSeq(s, ",") {
		h, err := parseHop(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func parseHop(s string) (Hop, error) {
	var h Hop
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	if s == "" {
		return h, fmt.Errorf("empty jump host in the list; write [user@]host[:port] for each hop")
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		h.User, s = s[:i], s[i+1:]
		if h.User == "" {
			return h, fmt.Errorf("jump host %q has an empty user before @", orig)
		}
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return h, fmt.Errorf("jump host %q: missing ] after the IPv6 address", orig)
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if rest := s[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return h, fmt.Errorf("jump host %q: expected :port after ]", orig)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	if host == "" {
		return h, fmt.Errorf("jump host %q has no host name", orig)
	}
	if strings.ContainsAny(host, " \t/\\'\"") || strings.HasPrefix(host, "-") {
		return h, fmt.Errorf("jump host %q: %q is not a host name or address", orig, host)
	}
	if strings.ContainsAny(h.User, " \t:/\\'\"") || strings.HasPrefix(h.User, "-") {
		return h, fmt.Errorf("jump host %q: %q is not a login name", orig, h.User)
	}
	h.Host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return h, fmt.Errorf("jump host %q: port %q is not a number in 1-65535", orig, port)
		}
		h.Port = p
	}
	return h, nil
}

// hopConfig is how to reach hop i of cfg's jump chain: same keys, agent and
// known_hosts as the host itself, so a jump host is held to the same checks.
func hopConfig(cfg Config, i int) Config {
	h := cfg.Jump[i]
	return Config{
		Host:          h.String() + " (jump host)",
		Address:       h.Host,
		Port:          h.Port,
		User:          h.User,
		IdentityFiles: cfg.IdentityFiles,
		UseAgent:      cfg.UseAgent,
		KnownHosts:    cfg.KnownHosts,
		AcceptNew:     cfg.AcceptNew,
		Timeout:       cfg.Timeout,
	}
}

// jumpPool shares connections to jump hosts among the hosts dialled
// together: fifty hosts behind one bastion make one connection to it, not
// fifty (which would also trip its sshd's MaxStartups). An entry is keyed by
// the whole chain up to it, so two chains that merely end on the same host
// do not share.
type jumpPool struct {
	mu      sync.Mutex
	entries map[string]*jumpEntry
}

type jumpEntry struct {
	ready  chan struct{} // closed once client or err is set
	client *ssh.Client
	err    error
	refs   int
}

func newJumpPool() *jumpPool { return &jumpPool{entries: map[string]*jumpEntry{}} }

// chainKey names hops 0..i of cfg's chain and what checks them.
func chainKey(cfg Config, i int) string {
	var b strings.Builder
	b.WriteString(cfg.KnownHosts)
	for _, h := range cfg.Jump[:i+1] {
		b.WriteString("\x00")
		b.WriteString(h.String())
	}
	return b.String()
}

// get returns a connection to the last hop of cfg's chain, dialling the
// hops not connected yet, and a release to call when the connection
// through it is closed.
func (p *jumpPool) get(ctx context.Context, cfg Config) (*ssh.Client, func(), error) {
	var taken []string
	release := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		// Last hop first: it runs over the ones before it.
		for i := len(taken) - 1; i >= 0; i-- {
			e := p.entries[taken[i]]
			e.refs--
			if e.refs == 0 {
				if e.client != nil {
					e.client.Close()
				}
				delete(p.entries, taken[i])
			}
		}
	}
	var via *ssh.Client
	for i := range cfg.Jump {
		key := chainKey(cfg, i)
		p.mu.Lock()
		e, ok := p.entries[key]
		if !ok {
			e = &jumpEntry{ready: make(chan struct{})}
			p.entries[key] = e
		}
		e.refs++
		p.mu.Unlock()
		taken = append(taken, key)
		if !ok {
			e.client, e.err = connect(ctx, hopConfig(cfg, i), via)
			close(e.ready)
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			release()
			return nil, nil, ctx.Err()
		}
		if e.err != nil {
			release()
			return nil, nil, e.err
		}
		via = e.client
	}
	return via, release, nil
}
