package vmlab

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MultipassInfoArgs is the command that reports the VMs' addresses; names
// are given explicitly because `multipass info` with none means "all" only
// from Multipass 1.14 on (before it, --all was required).
func MultipassInfoArgs(names []string) []string {
	return append([]string{"info", "--format", "json"}, names...)
}

// multipassInfo is the part of `multipass info --format json` read here.
type multipassInfo struct {
	Errors []any `json:"errors"`
	Info   map[string]struct {
		State string   `json:"state"`
		IPv4  []string `json:"ipv4"`
	} `json:"info"`
}

// ParseMultipassInfo returns each wanted VM's address: the first IPv4
// address Multipass lists, which is the one on its own network (an address
// a VM adds later, say a Docker bridge, comes after it). Every wanted VM
// must be running with an address.
func ParseMultipassInfo(data []byte, names []string) (map[string]string, error) {
	var mi multipassInfo
	if err := json.Unmarshal(data, &mi); err != nil {
		return nil, fmt.Errorf("multipass info: not the JSON expected: %v", err)
	}
	addrs := map[string]string{}
	var problems []string
	for _, n := range names {
		vm, ok := mi.Info[n]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: no such VM (launch it as the README says)", n))
		case vm.State != "Running":
			problems = append(problems, fmt.Sprintf("%s: %s, not Running (multipass start %s)", n, vm.State, n))
		case len(vm.IPv4) == 0:
			problems = append(problems, fmt.Sprintf("%s: running but has no IPv4 address yet; wait for it to finish booting", n))
		case net.ParseIP(vm.IPv4[0]) == nil || net.ParseIP(vm.IPv4[0]).To4() == nil:
			problems = append(problems, fmt.Sprintf("%s: %q is not an IPv4 address", n, vm.IPv4[0]))
		default:
			addrs[n] = vm.IPv4[0]
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("multipass info:\n  %s", strings.Join(problems, "\n  "))
	}
	return addrs, nil
}

var (
	tableRe   = regexp.MustCompile(`^\s*\[`)
	hostsRe   = regexp.MustCompile(`^\s*\[\[\s*hosts\s*\]\]\s*(#.*)?$`)
	nameRe    = regexp.MustCompile(`^\s*name\s*=\s*"([^"]*)"`)
	addressRe = regexp.MustCompile(`^(\s*address\s*=\s*)"[^"]*"(\s*(#.*)?)$`)
)

// SetAddresses rewrites the address line of each [[hosts]] table whose name
// is in addrs and leaves every other line, comments included, as it was.
// The placeholder comment goes with the placeholder. Every name in addrs
// must have an address line to rewrite.
func SetAddresses(text string, addrs map[string]string) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	type host struct{ name, addrLine int }
	var hosts []host
	cur := -1
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\n")
		switch {
		case hostsRe.MatchString(l):
			hosts = append(hosts, host{name: -1, addrLine: -1})
			cur = len(hosts) - 1
		case tableRe.MatchString(l):
			cur = -1
		case cur >= 0 && nameRe.MatchString(l) && hosts[cur].name < 0:
			hosts[cur].name = i
		case cur >= 0 && addressRe.MatchString(l) && hosts[cur].addrLine < 0:
			hosts[cur].addrLine = i
		}
	}
	done := map[string]bool{}
	for _, h := range hosts {
		if h.name < 0 || h.addrLine < 0 {
			continue
		}
		name := nameRe.FindStringSubmatch(lines[h.name])[1]
		a, ok := addrs[name]
		if !ok {
			continue
		}
		l := lines[h.addrLine]
		nl := ""
		if strings.HasSuffix(l, "\n") {
			nl, l = "\n", strings.TrimSuffix(l, "\n")
		}
		m := addressRe.FindStringSubmatch(l)
		rest := m[2]
		if strings.Contains(rest, "placeholder") {
			rest = ""
		}
		lines[h.addrLine] = m[1] + strconv.Quote(a) + rest + nl
		done[name] = true
	}
	var missing []string
	for n := range addrs {
		if !done[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("no [[hosts]] table with a one-line address for %s", strings.Join(missing, ", "))
	}
	return strings.Join(lines, ""), nil
}

// SetKnownHosts puts each VM's address beside its name on its known_hosts
// line (the key stays: it was generated before the VM booted), replacing
// an address written earlier. Every name in addrs must have a line.
func SetKnownHosts(text string, addrs map[string]string) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	done := map[string]bool{}
	for i, l := range lines {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		hostsField, key, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(hostsField, ",")
		a, want := addrs[name]
		if !want {
			continue
		}
		lines[i] = name + "," + a + " " + key
		done[name] = true
	}
	var missing []string
	for n := range addrs {
		if !done[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("known_hosts has no key for %s; it is written with the lab's files, so this is not the lab's known_hosts", strings.Join(missing, ", "))
	}
	return strings.Join(lines, ""), nil
}

// HostNames returns the names of the inventory text's [[hosts]] tables in
// order, as SetAddresses finds them.
func HostNames(text string) []string {
	var names []string
	in, named := false, false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case hostsRe.MatchString(l):
			in, named = true, false
		case tableRe.MatchString(l):
			in = false
		case in && !named && nameRe.MatchString(l):
			names = append(names, nameRe.FindStringSubmatch(l)[1])
			named = true
		}
	}
	return names
}
