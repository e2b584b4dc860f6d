package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// base is a small valid inventory; each case below breaks it one way.
const base = `[ssh]
user = "deploy"

[nats]
version = "2.14.9"

[[hosts]]
name = "n1"
address = "10.0.0.1"

[[hosts]]
name = "n2"
address = "10.0.0.2"

[[hosts]]
name = "n3"
address = "10.0.0.3"

[[accounts]]
name = "SYS"
system = true
  [[accounts.users]]
  name = "sys"
  allow = ["$SYS.>"]
  request_reply = true

[[accounts]]
name = "APP"
jetstream = { max_mem = "1GB", max_file = "4GB", max_streams = 10, max_consumers = 100 }
  [[accounts.users]]
  name = "app"
  allow = ["app.>", "logs.app.*"]
  jetstream = true
`

// threeHosts is the [[hosts]] part of base, for cases that change it.
const threeHosts = `[[hosts]]
name = "n1"
address = "10.0.0.1"

[[hosts]]
name = "n2"
address = "10.0.0.2"

[[hosts]]
name = "n3"
address = "10.0.0.3"
`

// monitoringHost runs no NATS node; cases add it after threeHosts.
const monitoringHost = `
[[hosts]]
name = "mon"
address = "10.0.0.9"
nats = false
`

// baseEnd is the last line of base; cases append sections after it.
const baseEnd = "  jetstream = true\n"

// mon appends a [monitoring] section with the given body (and any
// sub-tables) to base.
func mon(body string) []string {
	return []string{baseEnd, baseEnd + "\n[monitoring]\n" + body + "\n"}
}

// onMonHost puts the monitoring stack on the dedicated host "mon".
func onMonHost(body string) []string {
	return append([]string{threeHosts, threeHosts + monitoringHost}, mon("host = \"mon\"\n"+body)...)
}

const appUser = `  name = "app"
  allow = ["app.>", "logs.app.*"]
`

func parseTest(t *testing.T, text string, opts LoadOptions) (*Inventory, error) {
	t.Helper()
	return Parse("t.toml", []byte(text), opts)
}

func TestBaseIsValid(t *testing.T) {
	inv, err := parseTest(t, base, LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatalf("base inventory: %v", err)
	}
	if inv.SystemAccount() == nil || inv.SystemAccount().Name != "SYS" {
		t.Fatalf("SystemAccount() = %v", inv.SystemAccount())
	}
}

func TestValidation(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("NATSDEPLOY_TEST_SUDO", "pw")
	// The file checks read ~/.ssh/config; the tester's own must not count.
	t.Setenv("HOME", t.TempDir())
	sshConfig := filepath.Join(tmp, "ssh_config")
	badSSHConfig := filepath.Join(tmp, "bad_ssh_config")
	if err := os.WriteFile(sshConfig, []byte("Host bastion\n  User ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badSSHConfig, []byte("Host n1\n  Match exec true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(tmp, "id_ed25519")
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(tmp, "known_hosts")
	if err := os.WriteFile(knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "nats-server", "v2.14.9"), 0o755); err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(tmp, "id_open")
	if err := os.WriteFile(openKey, []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifoKey := filepath.Join(tmp, "id_fifo")
	if err := syscall.Mkfifo(fifoKey, 0o600); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(tmp, "alerts", "my.rules.yml")
	otherRules := filepath.Join(tmp, "other", "my.rules.yml")
	yamlRules := filepath.Join(tmp, "other", "b.yaml")
	bigRules := filepath.Join(tmp, "big.yml")
	for _, f := range []struct {
		path string
		size int
	}{{rules, 10}, {otherRules, 10}, {yamlRules, 10}, {bigRules, MaxRuleFileSize}, {bigRules + "x.yml", MaxRuleFileSize + 1}} {
		os.MkdirAll(filepath.Dir(f.path), 0o755)
		if err := os.WriteFile(f.path, bytes.Repeat([]byte("#"), f.size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// trustHosts spares the cases that check files a known_hosts file.
	trustHosts := []string{`user = "deploy"`, "user = \"deploy\"\naccept_new_host_keys = true"}
	rulesDir := filepath.Join(tmp, "dir.yml")
	os.Mkdir(rulesDir, 0o755)
	// ruleFiles sets [monitoring.prometheus] rule_files, one entry a line.
	ruleFiles := func(paths ...string) []string {
		body := "host = \"n1\"\n[monitoring.prometheus]\nrule_files = [\n"
		for _, p := range paths {
			body += fmt.Sprintf("  %q,\n", p)
		}
		return mon(body + "]")
	}
	t.Setenv("TEST_SHORT_PW", "short")
	t.Setenv("TEST_SEED_PW", "cluster_pass_123")
	t.Setenv("TEST_GRAFANA_SEED_PW", "admin123")
	t.Setenv("TEST_GRAFANA_PW", "a-long-grafana-password")
	os.Unsetenv("TEST_UNSET_PW")
	t.Setenv("TEST_REPEAT_PW", "aaaaaaaaaaaa")
	t.Setenv("TEST_COMMON_PW", "Password1234")
	t.Setenv("TEST_UMLAUT_PW", "ääääää")

	tests := []struct {
		name string
		// edit turns base into the broken inventory: pairs of old, new.
		edit []string
		// at is text on the line the problem must point to ("" = no line).
		at string
		// want is the rest of the message after "t.toml:LINE: ".
		want string
		// also are the other problems the inventory has, in line order; the
		// error must hold these and no more.
		also       []problemAt
		fileChecks bool
	}{
		{
			name: "toml syntax error",
			edit: []string{`version = "2.14.9"`, `version = "2.14.9`},
			at:   `version = "2.14.9`,
			want: "strings cannot contain newlines; fix the TOML syntax",
		},
		{
			name: "unknown key, typo",
			edit: []string{`  name = "app"`, `  name = "app"` + "\n  passwrd = \"x\""},
			at:   "passwrd",
			want: `accounts[1].users[0].passwrd: unknown key "passwrd"; did you mean "password"?`,
		},
		{
			name: "unknown key, wrong section",
			edit: []string{`user = "deploy"`, `user = "deploy"` + "\nversion = \"2.14.9\""},
			at:   "version = \"2.14.9\"\n\n[nats]",
			want: `ssh.version: unknown key "version" here; it belongs in [nats]`,
		},
		{
			name: "unknown key, nothing close",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2"` + "\ncolour = \"blue\""},
			at:   "colour",
			want: `hosts[1].colour: unknown key "colour"; the keys allowed in hosts[1] are: address, jump, name, nats, ssh_port, ssh_user`,
		},
		{
			// The first of the closest keys in alphabetical order.
			name: "unknown key, as close to two keys",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2"` + "\nnams = \"x\""},
			at:   "nams",
			want: `hosts[1].nams: unknown key "nams"; did you mean "name"?`,
		},
		{
			// One letter off a key of this table, though "users" is a key of
			// [[accounts]]: the typo is the likelier mistake.
			name: "unknown key, a typo that is a key elsewhere",
			edit: []string{`user = "deploy"`, `user = "deploy"` + "\nusers = \"x\""},
			at:   "users",
			want: `ssh.users: unknown key "users"; did you mean "user"?`,
		},
		{
			name: "unknown key, two letters off a short key",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2"` + "\nnmae = \"x\""},
			at:   "nmae",
			want: `hosts[1].nmae: unknown key "nmae"; did you mean "name"?`,
		},
		{
			// Two edits of three letters is a different word.
			name: "unknown key, two letters off a three-letter key",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2"` + "\nnax = 1"},
			at:   "nax",
			want: `hosts[1].nax: unknown key "nax"; the keys allowed in hosts[1] are: address, jump, name, nats, ssh_port, ssh_user`,
		},
		{
			// Three edits of ten letters is still a typo.
			name: "unknown key, a third of a long key off",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2"` + "\nip_address = \"x\""},
			at:   "ip_address",
			want: `hosts[1].ip_address: unknown key "ip_address"; did you mean "address"?`,
		},
		{
			name: "wrong type",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nclient_port = \"4222\""},
			at:   "client_port",
			want: `nats.client_port: expected an integer, got the string "4222"; remove the quotes`,
		},
		{
			// Not also "missing" for the "" it leaves.
			name: "version not in quotes",
			edit: []string{`version = "2.14.9"`, `version = 2.14`},
			at:   "version",
			want: `nats.version: expected a string, got the number 2.14; put the value in double quotes`,
		},
		{
			name: "a value where [[tables]] are expected",
			edit: []string{threeHosts, "", "[ssh]\n", "hosts = \"n1\"\n\n[ssh]\n"},
			at:   `hosts = "n1"`,
			want: `hosts: expected a list of tables ([[hosts]] sections), got the string "n1"`,
		},
		{
			name: "a value where a list is expected",
			edit: []string{`allow = ["app.>", "logs.app.*"]`, `allow = "app.>"`},
			at:   `allow = "app.>"`,
			want: `accounts[1].users[0].allow: expected a list such as ["a", "b"], got the string "app.>"; put the value in [ ]`,
		},
		{
			name: "account jetstream written as a flag",
			edit: []string{"system = true\n", "system = true\njetstream = true\n"},
			at:   "jetstream = true\n  [[accounts.users]]\n  name = \"sys\"",
			want: `accounts[0].jetstream: expected a table, got true; an account's JetStream is its limits: jetstream = { max_mem = "1GB"`,
		},
		{
			name: "no hosts",
			edit: []string{threeHosts, ""},
			want: "hosts: no hosts; add a [[hosts]] table with name and address for each machine (1, or 3 or more)",
		},
		{
			name: "two hosts",
			edit: []string{"[[hosts]]\nname = \"n3\"\naddress = \"10.0.0.3\"\n", ""},
			at:   "[[hosts]]\nname = \"n1\"",
			want: "hosts: a 2-node JetStream cluster cannot keep quorum when one node is down; use 1 or 3+ hosts",
		},
		{
			name: "no host runs NATS",
			edit: []string{threeHosts, strings.ReplaceAll(threeHosts, "\"\n\n", "\"\nnats = false\n\n") + "nats = false\n"},
			at:   "[[hosts]]\nname = \"n1\"",
			want: "hosts: no host runs NATS (every [[hosts]] sets nats = false); remove nats = false from 1, or 3 or more of them",
		},
		{
			name: "two NATS hosts and a monitoring host",
			edit: []string{`address = "10.0.0.3"`, "address = \"10.0.0.3\"\nnats = false"},
			at:   "[[hosts]]\nname = \"n1\"",
			want: "hosts: a 2-node JetStream cluster cannot keep quorum when one node is down; use 1 or 3+ hosts that run NATS",
		},
		{
			name: "three NATS hosts and a monitoring host",
			edit: []string{threeHosts, threeHosts + monitoringHost},
		},
		{
			name: "nats is a flag",
			edit: []string{threeHosts, threeHosts + strings.Replace(monitoringHost, "nats = false", `nats = "no"`, 1)},
			at:   `nats = "no"`,
			want: `hosts[3].nats: expected true or false, got the string "no"`,
		},
		{
			name: "monitoring host without a name",
			edit: []string{threeHosts, threeHosts + strings.Replace(monitoringHost, "name = \"mon\"\n", "", 1)},
			at:   "[[hosts]]\naddress = \"10.0.0.9\"",
			want: `hosts[3].name: host has no name; add name = "nats-4"`,
		},
		{
			name: "monitoring host named like a NATS host",
			edit: []string{threeHosts, threeHosts + strings.Replace(monitoringHost, `name = "mon"`, `name = "n2"`, 1)},
			at:   "name = \"n2\"\naddress = \"10.0.0.9\"",
			want: `hosts[3].name: host name "n2" is also used by hosts[1]; every host needs its own name`,
		},
		{
			name: "monitoring host on a NATS host's address",
			edit: []string{threeHosts, threeHosts + strings.Replace(monitoringHost, `address = "10.0.0.9"`, `address = "10.0.0.2"`, 1)},
			at:   "address = \"10.0.0.2\"\nnats = false",
			want: `hosts[3].address: address "10.0.0.2" is also used by hosts[1]; list each machine once`,
		},
		{
			name: "monitoring host without an address",
			edit: []string{threeHosts, threeHosts + strings.Replace(monitoringHost, "address = \"10.0.0.9\"\n", "", 1)},
			at:   "[[hosts]]\nname = \"mon\"",
			want: `hosts[3].address: host "mon" has no address; add address = "IP or DNS name"`,
		},
		{
			name: "monitoring host with a bad ssh_user",
			edit: []string{threeHosts, threeHosts + monitoringHost + "ssh_user = \"-x\"\n"},
			at:   `ssh_user = "-x"`,
			want: `hosts[3].ssh_user: "-x" is not a valid login name`,
		},
		{
			name: "monitoring host with a bad ssh_port",
			edit: []string{threeHosts, threeHosts + monitoringHost + "ssh_port = 0\n"},
			at:   "ssh_port = 0",
			want: "hosts[3].ssh_port: port 0 is out of range; use 1 to 65535",
		},
		{
			// No nats-server listens there, so its sshd may use the port.
			name: "monitoring host's ssh_port may be a NATS port",
			edit: []string{threeHosts, threeHosts + monitoringHost + "ssh_port = 4222\n"},
		},
		{
			name: "one NATS host and a monitoring host: the single-node quota rule applies",
			edit: []string{threeHosts, "[[hosts]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n" + monitoringHost, "\n[[accounts]]\nname = \"SYS\"", otherAccount("1GB", "1GB") + "\n[[accounts]]\nname = \"SYS\""},
			at:   "[nats]",
			want: "nats.max_memory_store: 1GB is less than the accounts' JetStream max_mem added up (2GB); a single NATS node would not start with that",
			also: []problemAt{{"[nats]", "nats.max_file_store: 4GB is less than the accounts' JetStream max_file added up (5GB)"}},
		},
		{
			name: "missing host name",
			edit: []string{"name = \"n2\"\n", ""},
			at:   "[[hosts]]\naddress = \"10.0.0.2\"",
			want: `hosts[1].name: host has no name; add name = "nats-2" (it becomes the node's server_name)`,
		},
		{
			name: "missing host address",
			edit: []string{"address = \"10.0.0.2\"\n", ""},
			at:   "[[hosts]]\nname = \"n2\"",
			want: `hosts[1].address: host "n2" has no address; add address = "IP or DNS name"`,
		},
		{
			name: "duplicate host name",
			edit: []string{`name = "n3"`, `name = "n1"`},
			at:   "name = \"n1\"\naddress = \"10.0.0.3\"",
			want: `hosts[2].name: host name "n1" is also used by hosts[0]; every host needs its own name`,
		},
		{
			name: "duplicate host address",
			edit: []string{`address = "10.0.0.3"`, `address = "10.0.0.1"`},
			at:   "address = \"10.0.0.1\"\n\n[[accounts]]",
			want: `hosts[2].address: address "10.0.0.1" is also used by hosts[0]; each NATS node needs a machine of its own`,
		},
		{
			name: "host name not a server name",
			edit: []string{`name = "n2"`, `name = "n 2"`},
			at:   `name = "n 2"`,
			want: `hosts[1].name: "n 2" is not a valid server name; use letters, digits, '-', '_' and '.' only`,
		},
		{
			name: "host address with port",
			edit: []string{`address = "10.0.0.2"`, `address = "10.0.0.2:22"`},
			at:   `10.0.0.2:22`,
			want: `hosts[1].address: "10.0.0.2:22" contains a port; put the SSH port in ssh_port`,
		},
		{
			name: "port out of range",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nclient_port = 70000"},
			at:   "client_port",
			want: "nats.client_port: port 70000 is out of range; use 1 to 65535",
		},
		{
			name: "ports collide",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nhttp_port = 6222"},
			at:   "http_port",
			want: "nats.http_port: port 6222 is also nats.cluster_port; client, cluster and HTTP ports must differ",
		},
		{
			name: "ssh port collides with a nats port",
			edit: []string{`address = "10.0.0.2"`, "address = \"10.0.0.2\"\nssh_port = 8222"},
			at:   "ssh_port",
			want: `hosts[1].ssh_port: SSH port 8222 of host "n2" is also nats.http_port; sshd and nats-server cannot share a port`,
		},
		{
			name: "ssh port out of range",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nport = 0"},
			at:   "port = 0",
			want: "ssh.port: port 0 is out of range; use 1 to 65535",
		},
		{
			name: "ssh port shared by the NATS hosts is a NATS port",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nport = 4222"},
			at:   "port = 4222",
			want: "ssh.port: SSH port 4222 is also nats.client_port; sshd and nats-server cannot share a port",
		},
		{
			name: "IPv4-mapped IPv6 of another host (issue 9)",
			edit: []string{`address = "10.0.0.3"`, `address = "::ffff:10.0.0.1"`},
			at:   `"::ffff:10.0.0.1"`,
			want: `hosts[2].address: address "::ffff:10.0.0.1" is also used by hosts[0]; each NATS node needs a machine of its own`,
		},
		{
			name: "IPv6 written in two cases",
			edit: []string{`address = "10.0.0.1"`, `address = "2001:DB8::1"`, `address = "10.0.0.3"`, `address = "2001:db8:0::1"`},
			at:   `"2001:db8:0::1"`,
			want: `hosts[2].address: address "2001:db8:0::1" is also used by hosts[0]`,
		},
		{
			name: "DNS name with a trailing dot",
			edit: []string{`address = "10.0.0.1"`, `address = "nats-1.example.com"`, `address = "10.0.0.3"`, `address = "NATS-1.example.com."`},
			at:   `"NATS-1.example.com."`,
			want: `hosts[2].address: address "NATS-1.example.com." is also used by hosts[0]`,
		},
		{
			name: "loopback next to other machines (issue 9)",
			edit: []string{`address = "10.0.0.2"`, `address = "127.0.0.1"`},
			at:   `"127.0.0.1"`,
			want: `hosts[1].address: "127.0.0.1" is a loopback address`,
		},
		{
			name: "IPv6 loopback next to other machines",
			edit: []string{`address = "10.0.0.2"`, `address = "::1"`},
			at:   `"::1"`,
			want: `hosts[1].address: "::1" is a loopback address`,
		},
		{
			name: "localhost next to other machines",
			edit: []string{`address = "10.0.0.2"`, `address = "localhost"`},
			at:   `"localhost"`,
			want: `hosts[1].address: "localhost" is a loopback address`,
		},
		{
			name: "127.0.0.0/8 is loopback",
			edit: []string{`address = "10.0.0.2"`, `address = "127.1.2.3"`},
			at:   `"127.1.2.3"`,
			want: `hosts[1].address: "127.1.2.3" is a loopback address`,
		},
		{
			name: "0.0.0.0 as an address (issue 9)",
			edit: []string{`address = "10.0.0.2"`, `address = "0.0.0.0"`},
			at:   `"0.0.0.0"`,
			want: `hosts[1].address: "0.0.0.0" is the unspecified address`,
		},
		{
			name: ":: as an address",
			edit: []string{`address = "10.0.0.2"`, `address = "::"`},
			at:   `"::"`,
			want: `hosts[1].address: "::" is the unspecified address`,
		},
		{
			name: "multicast as an address",
			edit: []string{`address = "10.0.0.2"`, `address = "224.0.0.1"`},
			at:   `"224.0.0.1"`,
			want: `hosts[1].address: "224.0.0.1" is a multicast address`,
		},
		{
			name: "client port 80 (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nclient_port = 80"},
			at:   "client_port",
			want: `nats.client_port: port 80 is a privileged port (below 1024)`,
		},
		{
			name: "cluster port 443",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ncluster_port = 443"},
			at:   "cluster_port",
			want: `nats.cluster_port: port 443 is a privileged port`,
		},
		{
			name: "http port 1023",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nhttp_port = 1023"},
			at:   "http_port",
			want: `nats.http_port: port 1023 is a privileged port`,
		},
		{
			name: "grafana on port 80",
			edit: mon("host = \"n1\"\ngrafana.port = 80"),
			at:   "grafana.port",
			want: `monitoring.grafana.port: port 80 is a privileged port`,
		},
		{
			name: "lame duck 999999h (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"999999h\""},
			at:   "lame_duck_duration",
			want: `nats.lame_duck_duration: 999999h is more than the maximum of 10m`,
		},
		{
			name: "lame duck 11m",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"11m\""},
			at:   "lame_duck_duration",
			want: `nats.lame_duck_duration: 11m is more than the maximum of 10m`,
		},
		{
			name: "explicit empty ssh user (issue 9)",
			edit: []string{`user = "deploy"`, `user = ""`},
			at:   `user = ""`,
			want: `ssh.user: is empty; write the remote login name`,
		},
		{
			name: "explicit empty nats.data_dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"\""},
			at:   "data_dir",
			want: `nats.data_dir: is empty; write a value, or remove the key to use the default (/var/lib/nats)`,
		},
		{
			name: "explicit empty nats.config_dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = \"\""},
			at:   "config_dir",
			want: `nats.config_dir: is empty; write a value, or remove the key to use the default (/etc/nats)`,
		},
		{
			name: "explicit empty nats.log_dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"\""},
			at:   "log_dir",
			want: `nats.log_dir: is empty; write a value, or remove the key to use the default (/var/log/nats)`,
		},
		{
			name: "explicit empty nats.cluster_name",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ncluster_name = \"\""},
			at:   "cluster_name",
			want: `nats.cluster_name: is empty; write a value, or remove the key to use the default (nats-cluster)`,
		},
		{
			name: "explicit empty nats.route_user",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nroute_user = \"\""},
			at:   "route_user",
			want: `nats.route_user: is empty; write a value, or remove the key to use the default (route)`,
		},
		{
			name: "explicit empty ssh.known_hosts",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nknown_hosts = \"\""},
			at:   "known_hosts",
			want: `ssh.known_hosts: is empty; write a value, or remove the key to use the default (~/.ssh/known_hosts)`,
		},
		{
			name: "explicit empty host ssh_user",
			edit: []string{`address = "10.0.0.2"`, "address = \"10.0.0.2\"\nssh_user = \"\""},
			at:   "ssh_user",
			want: `hosts[1].ssh_user: is empty; write the login name for host "n2"`,
		},
		{
			name: "ssh port 1024, also a NATS port",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nport = 1024", `version = "2.14.9"`, "version = \"2.14.9\"\nclient_port = 1024"},
			at:   "port = 1024",
			want: "ssh.port: SSH port 1024 is also nats.client_port; sshd and nats-server cannot share a port",
		},
		{
			name: "ssh port 65535, also a NATS port",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nport = 65535", `version = "2.14.9"`, "version = \"2.14.9\"\nhttp_port = 65535"},
			at:   "port = 65535",
			want: "ssh.port: SSH port 65535 is also nats.http_port; sshd and nats-server cannot share a port",
		},
		{
			name: "ports 1024 and 65535 are in range",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nclient_port = 1024\nhttp_port = 65535"},
		},
		{
			name: "connect_timeout zero",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nconnect_timeout = \"0s\""},
			at:   "connect_timeout",
			want: `ssh.connect_timeout: must be more than 0; write e.g. connect_timeout = "10s"`,
		},
		{
			name: "missing version",
			edit: []string{`version = "2.14.9"`, ""},
			at:   "[nats]",
			want: `nats.version: missing; name the nats-server release to deploy, e.g. version = "2.14.9"`,
		},
		{
			name: "version with v",
			edit: []string{`version = "2.14.9"`, `version = "v2.14.9"`},
			at:   "version",
			want: `nats.version: "v2.14.9" is not a release version (write "2.14.9", without the v); write MAJOR.MINOR.PATCH such as "2.14.9"`,
		},
		{
			name: "version too old",
			edit: []string{`version = "2.14.9"`, `version = "2.9.25"`},
			at:   "version",
			want: "nats.version: 2.9.25 is too old: natsdeploy renders settings that need nats-server 2.10 or newer",
		},
		{
			name: "oldest version supported",
			edit: []string{`version = "2.14.9"`, `version = "2.10.0"`},
		},
		{
			name: "bad size",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nmax_file_store = \"4XB\""},
			at:   "max_file_store",
			want: `nats.max_file_store: "4XB" is not a size: unknown unit "XB"; write a byte count such as 1073741824, or a number with a unit: "512MB", "100M", "1GB", "1GiB"`,
		},
		{
			name: "negative size",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_max_size = -1"},
			at:   "log_max_size",
			want: "nats.log_max_size: -1 is not a size: it is negative",
		},
		{
			name: "zero size",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nmax_memory_store = 0"},
			at:   "max_memory_store",
			want: `nats.max_memory_store: must be more than 0; write a size such as "1GB"`,
		},
		{
			name: "bad duration",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"30\""},
			at:   "lame_duck_duration",
			want: `nats.lame_duck_duration: "30" is not a duration: it has no unit; write a number with a unit such as "500ms", "30s", "2m" or "1h30m"`,
		},
		{
			name: "duration without quotes",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nconnect_timeout = 10"},
			at:   "connect_timeout",
			want: "ssh.connect_timeout: 10 is not a duration: it has no unit",
		},
		{
			name: "grace not shorter than lame duck duration",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"30s\"\nlame_duck_grace_period = \"30s\""},
			at:   "lame_duck_grace_period",
			want: "nats.lame_duck_grace_period: 30s is not shorter than lame_duck_duration 30s; nats-server needs the grace period to be shorter",
		},
		{
			name: "grace above the default lame duck duration",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_grace_period = \"1m\""},
			at:   "lame_duck_grace_period",
			want: "nats.lame_duck_grace_period: 1m is not shorter than lame_duck_duration 30s; nats-server needs the grace period to be shorter: lower it or raise lame_duck_duration",
		},
		{
			name: "lame duck duration too short",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"500ms\""},
			at:   "lame_duck_duration",
			want: `nats.lame_duck_duration: 500ms is below nats-server's minimum of 30s, and the server would not start; write at least "30s" (the default)`,
		},
		{
			// nats-server -t refuses it only on the host, after connecting.
			name: "lame duck duration under nats-server's 30s minimum",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlame_duck_duration = \"10s\""},
			at:   "lame_duck_duration",
			want: `nats.lame_duck_duration: 10s is below nats-server's minimum of 30s, and the server would not start; write at least "30s" (the default)`,
		},
		{
			name: "invalid cluster name",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ncluster_name = \"my cluster\""},
			at:   "cluster_name",
			want: `nats.cluster_name: "my cluster" is not a valid cluster name; use letters, digits, '-', '_' and '.' only`,
		},
		{
			name: "invalid route user",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nroute_user = \"route user\""},
			at:   "route_user",
			want: `nats.route_user: "route user" is not a valid user name; use letters, digits and - _ . @`,
		},
		{
			name: "zero log_max_size",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_max_size = 0"},
			at:   "log_max_size",
			want: `nats.log_max_size: must be more than 0; write a size such as "1GB"`,
		},
		{
			name: "zero max_file_store",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nmax_file_store = \"0\""},
			at:   "max_file_store",
			want: `nats.max_file_store: must be more than 0; write a size such as "1GB"`,
		},
		{
			name: "space in log dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/var/log/my nats\""},
			at:   "log_dir",
			want: `nats.log_dir: "/var/log/my nats" has characters other than letters, digits and / . _ - @ +; it ends up in systemd units and shell commands, so rename it`,
		},
		{
			name: "quote in config dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = '/etc/\"nats'"},
			at:   "config_dir",
			want: `nats.config_dir: "/etc/\"nats" has characters other than letters, digits`,
		},
		{
			name: "system account without a name",
			edit: []string{"name = \"SYS\"\nsystem = true\n", "system = true\n"},
			at:   "[[accounts]]\nsystem = true",
			want: `accounts[0].name: account has no name; add name = "..."`,
		},
		{
			name: "single host, accounts' max_mem above the server's",
			edit: []string{threeHosts, "[[hosts]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n", "\n[[accounts]]\nname = \"SYS\"", otherAccount("512MB", "1GB") + "\n[[accounts]]\nname = \"SYS\""},
			at:   "[nats]",
			want: "nats.max_memory_store: 1GB is less than the accounts' JetStream max_mem added up (1536MB); a single NATS node would not start with that: lower the quotas or raise max_memory_store",
			also: []problemAt{{"[nats]", "nats.max_file_store: 4GB is less than the accounts' JetStream max_file added up (5GB)"}},
		},
		{
			name: "single host, accounts' max_file above the server's",
			edit: []string{threeHosts, "[[hosts]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n", `max_mem = "1GB"`, `max_mem = "512MB"`, `version = "2.14.9"`, "version = \"2.14.9\"\nmax_file_store = \"4GB\"", "\n[[accounts]]\nname = \"SYS\"", otherAccount("512MB", "1GB") + "\n[[accounts]]\nname = \"SYS\""},
			at:   "max_file_store",
			want: "nats.max_file_store: 4GB is less than the accounts' JetStream max_file added up (5GB); a single NATS node would not start with that: lower the quotas or raise max_file_store",
		},
		{
			name: "single host, quotas fit",
			edit: []string{threeHosts, "[[hosts]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n", `max_mem = "1GB"`, `max_mem = "512MB"`, `max_file = "4GB"`, `max_file = "3GB"`, "\n[[accounts]]\nname = \"SYS\"", otherAccount("512MB", "1GB") + "\n[[accounts]]\nname = \"SYS\""},
		},
		{
			// A cluster checks quotas when streams are created, not at start.
			name: "three hosts, quotas may add up to more than a server's",
			edit: []string{"\n[[accounts]]\nname = \"SYS\"", otherAccount("1GB", "4GB") + "\n[[accounts]]\nname = \"SYS\""},
		},
		{
			name: "negative log_max_files",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_max_files = -1"},
			at:   "log_max_files",
			want: "nats.log_max_files: -1 is negative; write how many rotated log files to keep (0 keeps all)",
		},
		{
			name: "log_max_files zero keeps all",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_max_files = 0"},
		},
		{
			// The quota checks see 0 and stay quiet: one mistake, one message.
			name: "single host, zero max_memory_store",
			edit: []string{threeHosts, "[[hosts]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n", `version = "2.14.9"`, "version = \"2.14.9\"\nmax_memory_store = 0"},
			at:   "max_memory_store",
			want: `nats.max_memory_store: must be more than 0; write a size such as "1GB"`,
		},
		{
			name: "relative data dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"data\""},
			at:   "data_dir",
			want: `nats.data_dir: "data" is not an absolute path; directories on the hosts start with /`,
		},
		{
			name: "root as log dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/\""},
			at:   "log_dir",
			want: `nats.log_dir: "/" is a system directory, whose owner and mode natsdeploy would change; use a directory of its own such as "/var/log/nats"`,
		},
		{
			name: "system dir as data dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/var/lib/\""},
			at:   "data_dir",
			want: `nats.data_dir: "/var/lib/" (/var/lib) is a system directory`,
		},
		{
			name: "/usr/sbin as data dir (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/usr/sbin\""},
			at:   "data_dir",
			want: `nats.data_dir: "/usr/sbin" is inside /usr, a system tree`,
		},
		{
			name: "a home as data dir (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/home/deploy\""},
			at:   "data_dir",
			want: `nats.data_dir: "/home/deploy" is inside /home, a system tree`,
		},
		{
			name: "/etc/ssh reached through .. (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = \"/etc/nats/../ssh\""},
			at:   "config_dir",
			want: `nats.config_dir: "/etc/nats/../ssh" (/etc/ssh) is a system directory`,
		},
		{
			name: "journal as log dir (issue 9)",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/var/log/journal\""},
			at:   "log_dir",
			want: `nats.log_dir: "/var/log/journal" is a system directory`,
		},
		{
			name: "inside the journal",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/var/log/journal/nats\""},
			at:   "log_dir",
			want: `nats.log_dir: "/var/log/journal/nats" is inside /var/log/journal`,
		},
		{
			name: "dpkg database",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/var/lib/dpkg/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "/var/lib/dpkg/nats" is inside /var/lib/dpkg`,
		},
		{
			name: "/root",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/root/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "/root/nats" is inside /root`,
		},
		{
			name: "/boot",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/boot\""},
			at:   "data_dir",
			want: `nats.data_dir: "/boot" is a system directory`,
		},
		{
			name: "/proc",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/proc/nats\""},
			at:   "log_dir",
			want: `nats.log_dir: "/proc/nats" is inside /proc`,
		},
		{
			name: "/usr/local/nats",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/usr/local/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "/usr/local/nats" is inside /usr`,
		},
		{
			name: "/tmp",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/tmp/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "/tmp/nats" is inside /tmp`,
		},
		{
			name: "/etc as config dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = \"/etc\""},
			at:   "config_dir",
			want: `nats.config_dir: "/etc" is a system directory`,
		},
		{
			name: "/srv as data dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/srv\""},
			at:   "data_dir",
			want: `nats.data_dir: "/srv" is a system directory`,
		},
		{
			name: "/var/log/../lib is /var/lib",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/var/log/../lib\""},
			at:   "data_dir",
			want: `nats.data_dir: "/var/log/../lib" (/var/lib) is a system directory`,
		},
		{
			name: "relative data dir",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"var/lib/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "var/lib/nats" is not an absolute path`,
		},
		{
			name: "dirs of their own below /etc, /var/lib, /var/log and /opt are fine",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = \"/etc/nats-prod\"\ndata_dir = \"/opt/nats/data\"\nlog_dir = \"/var/log/nats-prod\""},
		},
		{
			name: "/srv/nats is fine",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndata_dir = \"/srv/nats\""},
		},
		{
			name: "overlapping dirs",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nlog_dir = \"/var/lib/nats/logs\""},
			at:   "log_dir",
			want: `nats.log_dir: "/var/lib/nats/logs" is inside nats.data_dir "/var/lib/nats"; use separate directories`,
		},
		{
			name: "same dirs",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nconfig_dir = \"/srv/nats\"\ndata_dir = \"/srv/nats\""},
			at:   "data_dir",
			want: `nats.data_dir: "/srv/nats" is also nats.config_dir; use separate directories`,
		},
		{
			name: "bad download url",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\ndownload_url = \"ftp://example.com/x\""},
			at:   "download_url",
			want: `nats.download_url: "ftp://example.com/x" is not an http(s) URL`,
		},
		{
			name: "account name with space",
			edit: []string{`name = "APP"`, `name = "MY APP"`},
			at:   `name = "MY APP"`,
			want: `accounts[1].name: "MY APP" is not a valid account name; use letters, digits, '-', '_' and '$' (no spaces or dots)`,
		},
		{
			name: "account named $G",
			edit: []string{`name = "APP"`, `name = "$G"`},
			at:   `name = "$G"`,
			want: `accounts[1].name: "$G" is nats-server's global account`,
		},
		{
			name: "duplicate account",
			edit: []string{`name = "APP"`, `name = "SYS"`},
			at:   "name = \"SYS\"\njetstream",
			want: `accounts[1].name: account "SYS" is already defined at accounts[0]; merge the two or rename one`,
		},
		{
			name: "account without users",
			edit: []string{"  [[accounts.users]]\n" + appUser + "  jetstream = true\n", ""},
			at:   "[[accounts]]\nname = \"APP\"",
			want: `accounts[1]: account "APP" has no users; add a [[accounts.users]] table below it, or remove the account`,
		},
		{
			name: "no system account",
			edit: []string{"system = true\n", ""},
			at:   "[[accounts]]\nname = \"SYS\"",
			want: "accounts: no system account; mark one account system = true",
		},
		{
			name: "two system accounts",
			edit: []string{`name = "APP"`, "name = \"APP\"\nsystem = true"},
			at:   "system = true\njetstream",
			want: `accounts[1].system: account "APP" is a second system account ("SYS" is one already); mark only one account system = true`,
			also: []problemAt{
				{"jetstream = {", `accounts[1].jetstream: the system account "APP" cannot have JetStream; remove its jetstream limits`},
				{"  jetstream = true", `accounts[1].users[0].jetstream: user "app" is in the system account "APP", which cannot have JetStream; remove jetstream = true`},
			},
		},
		{
			name: "system account with jetstream",
			edit: []string{"system = true\n", "system = true\njetstream = { max_mem = \"1GB\", max_file = \"1GB\", max_streams = 1, max_consumers = 1 }\n"},
			at:   "jetstream = { max_mem = \"1GB\", max_file = \"1GB\"",
			want: `accounts[0].jetstream: the system account "SYS" cannot have JetStream; remove its jetstream limits`,
		},
		{
			name: "jetstream limit missing",
			edit: []string{"max_streams = 10, ", ""},
			at:   "jetstream = {",
			want: `accounts[1].jetstream.max_streams: JetStream limit max_streams of account "APP" must be more than 0; set it, e.g. max_streams = 1000`,
		},
		{
			name: "account quota above the server's",
			edit: []string{`max_mem = "1GB"`, `max_mem = "2GB"`},
			at:   "jetstream = {",
			want: "accounts[1].jetstream.max_mem: 2GB is more than nats.max_memory_store (1GB), which no account can exceed; lower it or raise max_memory_store",
		},
		{
			name: "account file quota above the server's",
			edit: []string{`max_file = "4GB"`, `max_file = "8GB"`},
			at:   "jetstream = {",
			want: "accounts[1].jetstream.max_file: 8GB is more than nats.max_file_store (4GB), which no account can exceed; lower it or raise max_file_store",
		},
		{
			name: "user jetstream in an account without it",
			edit: []string{`jetstream = { max_mem = "1GB", max_file = "4GB", max_streams = 10, max_consumers = 100 }` + "\n", ""},
			at:   "jetstream = true",
			want: `accounts[1].users[0].jetstream: user "app" asks for JetStream but account "APP" has none`,
		},
		{
			name: "user in two accounts",
			edit: []string{`name = "app"`, `name = "sys"`},
			at:   `name = "sys"` + "\n  allow = [\"app",
			want: `accounts[1].users[0].name: user "sys" is already defined in account "SYS" (accounts[0].users[0]); NATS needs user names unique across all accounts, so rename one`,
		},
		{
			name: "user without allow rules",
			edit: []string{"  allow = [\"app.>\", \"logs.app.*\"]\n  jetstream = true\n", "  deny = [\"x\"]\n"},
			at:   "[[accounts.users]]\n  name = \"app\"",
			want: `accounts[1].users[0]: user "app" has no allow rule, so it could do nothing; write allow = [">"] for full access`,
		},
		{
			name: "subject with double wildcard",
			edit: []string{`"logs.app.*"`, `"dev.**"`},
			at:   `"dev.**"`,
			want: `accounts[1].users[0].allow[1]: "dev.**" is not a valid subject: token "**" mixes a wildcard with other characters; a wildcard is a whole token: "*" matches one token, ">" all remaining ones`,
		},
		{
			name: "subject with empty token",
			edit: []string{`"logs.app.*"`, `"logs..app"`},
			at:   `"logs..app"`,
			want: `accounts[1].users[0].allow[1]: "logs..app" is not a valid subject: it has an empty token (two dots in a row); write "a.b", not "a..b"`,
		},
		{
			name: "subject with leading dot, in publish",
			edit: []string{appUser, appUser + "  publish = [\".app\"]\n"},
			at:   `".app"`,
			want: `accounts[1].users[0].publish[0]: ".app" is not a valid subject: it starts with a dot`,
		},
		{
			name: "subject with trailing dot, in deny",
			edit: []string{appUser, appUser + "  deny = [\"app.\"]\n"},
			at:   `"app."`,
			want: `accounts[1].users[0].deny[0]: "app." is not a valid subject: it ends with a dot`,
		},
		{
			name: "subject with > in the middle",
			edit: []string{`"logs.app.*"`, `"logs.>.app"`},
			at:   `"logs.>.app"`,
			want: `accounts[1].users[0].allow[1]: "logs.>.app" is not a valid subject: ">" must be the last token`,
		},
		{
			name: "subject with whitespace, multi-line list",
			edit: []string{appUser, appUser + "  deny_subscribe = [\n    \"ok\",\n    \"app. x\",\n  ]\n"},
			at:   `"app. x"`,
			want: `accounts[1].users[0].deny_subscribe[1]: "app. x" is not a valid subject: it contains whitespace`,
		},
		{
			name: "subject mixing a wildcard into a token",
			edit: []string{`"logs.app.*"`, `"logs.app*"`},
			at:   `"logs.app*"`,
			want: `accounts[1].users[0].allow[1]: "logs.app*" is not a valid subject: token "app*" mixes a wildcard`,
		},
		{
			name: "rule listed twice",
			edit: []string{`"logs.app.*"`, `"logs.app.*", "app.>"`},
			at:   `"logs.app.*", "app.>"`,
			want: `accounts[1].users[0].allow[2]: "app.>" is listed twice (also allow[0]); remove one`,
		},
		{
			name: "password and password_env",
			edit: []string{appUser, appUser + "  password = \"a-long-enough-password\"\n  password_env = \"TEST_SHORT_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: user "app" sets both password and password_env; keep one`,
			also: []problemAt{{"password_env", `accounts[1].users[0].password_env: the password in environment variable TEST_SHORT_PW (for user "app") is shorter than 12 characters`}},
		},
		{
			name: "password_env unset",
			edit: []string{appUser, appUser + "  password_env = \"TEST_UNSET_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: environment variable TEST_UNSET_PW (the password of user "app") is not set; export it before running natsdeploy`,
		},
		{
			name: "password_env too short",
			edit: []string{appUser, appUser + "  password_env = \"TEST_SHORT_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: the password in environment variable TEST_SHORT_PW (for user "app") is shorter than 12 characters`,
		},
		{
			name: "password_env not a variable name",
			edit: []string{appUser, appUser + "  password_env = \"$PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: is not an environment variable name (its value is not shown`,
		},
		{
			name: "inline seed password",
			edit: []string{appUser, appUser + "  password = \"nats123\"\n"},
			at:   "password",
			want: `accounts[1].users[0].password: the password of user "app" is one of the seed's published example passwords; use at least 12 characters`,
		},
		{
			name: "one character repeated (issue 9)",
			edit: []string{appUser, appUser + "  password = \"aaaaaaaaaaaa\"\n"},
			at:   "password =",
			want: `accounts[1].users[0].password: the password of user "app" has fewer than 4 different characters`,
		},
		{
			name: "two characters alternating",
			edit: []string{appUser, appUser + "  password = \"abababababab\"\n"},
			at:   "password =",
			want: `accounts[1].users[0].password: the password of user "app" has fewer than 4 different characters`,
		},
		{
			name: "a common password (issue 9)",
			edit: []string{appUser, appUser + "  password = \"password1234\"\n"},
			at:   "password =",
			want: `accounts[1].users[0].password: the password of user "app" is one of the most common passwords`,
		},
		{
			name: "a common password in other case",
			edit: []string{appUser, appUser + "  password = \"QWERTY123456\"\n"},
			at:   "password =",
			want: `accounts[1].users[0].password: the password of user "app" is one of the most common passwords`,
		},
		{
			name: "twelve bytes but six characters (issue 9)",
			edit: []string{appUser, appUser + "  password = \"ääääää\"\n"},
			at:   "password =",
			want: `accounts[1].users[0].password: the password of user "app" is shorter than 12 characters`,
		},
		{
			name: "env password one character repeated",
			edit: []string{appUser, appUser + "  password_env = \"TEST_REPEAT_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: the password in environment variable TEST_REPEAT_PW (for user "app") has fewer than 4 different characters`,
		},
		{
			name: "env password common",
			edit: []string{appUser, appUser + "  password_env = \"TEST_COMMON_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: the password in environment variable TEST_COMMON_PW (for user "app") is one of the most common passwords`,
		},
		{
			name: "env password of six umlauts",
			edit: []string{appUser, appUser + "  password_env = \"TEST_UMLAUT_PW\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: the password in environment variable TEST_UMLAUT_PW (for user "app") is shorter than 12 characters`,
		},
		{
			name: "a password in password_env is not echoed (issue 9)",
			edit: []string{appUser, appUser + "  password_env = \"s3cret-Passw0rd!\"\n"},
			at:   "password_env",
			want: `accounts[1].users[0].password_env: is not an environment variable name (its value is not shown`,
		},
		{
			name: "a long password of letters in non-ASCII is fine",
			edit: []string{appUser, appUser + "  password = \"ÄÖÜäöüßÀÉÈÊË\"\n"},
			at:   "",
			want: ``,
		},
		{
			name: "inline short password",
			edit: []string{appUser, appUser + "  password = \"hunter2hunt\"\n"},
			at:   "password",
			want: `accounts[1].users[0].password: the password of user "app" is shorter than 12 characters`,
		},
		{
			name: "route password from env is the seed's",
			edit: []string{`version = "2.14.9"`, "version = \"2.14.9\"\nroute_password_env = \"TEST_SEED_PW\""},
			at:   "route_password_env",
			want: "nats.route_password_env: the password in environment variable TEST_SEED_PW (for the route user) is one of the seed's published example passwords",
		},
		{
			name: "monitoring on a NATS host",
			edit: mon(`host = "n1"`),
		},
		{
			name: "monitoring on a host of its own",
			edit: onMonHost(""),
		},
		{
			name: "user named like the surveyor's, surveyor on",
			edit: append(mon(`host = "n1"`), `  name = "sys"`, `  name = "surveyor"`),
			at:   `name = "surveyor"`,
			want: `accounts[0].users[0].name: "surveyor" is the user natsdeploy adds to the system account for nats-surveyor`,
		},
		{
			name: "user named like the surveyor's in another account, surveyor on",
			edit: append(mon(`host = "n1"`), `  name = "app"`, `  name = "surveyor"`),
			at:   `name = "surveyor"`,
			want: `accounts[1].users[0].name: "surveyor" is the user natsdeploy adds`,
		},
		{
			name: "user named like natsdeploy's own",
			edit: []string{`  name = "app"`, `  name = "natsdeploy"`},
			at:   `name = "natsdeploy"`,
			want: `accounts[1].users[0].name: "natsdeploy" is the user natsdeploy adds to the system account for its own cluster operations; NATS needs user names unique across all accounts, so rename this one`,
		},
		{
			name: "user named like the surveyor's, surveyor off",
			edit: append(mon("host = \"n1\"\n[monitoring.surveyor]\nenabled = false"), `  name = "sys"`, `  name = "surveyor"`),
		},
		{
			name: "user named like the surveyor's, no monitoring",
			edit: []string{`  name = "sys"`, `  name = "surveyor"`},
		},
		{
			name: "monitoring without host",
			edit: mon(`artifact_dir = "cache"`),
			at:   "[monitoring]",
			want: `monitoring.host: missing; name the [[hosts]] entry that runs Prometheus, Grafana and the surveyor, e.g. host = "n1"`,
		},
		{
			name: "monitoring without host, and no hosts",
			edit: append([]string{threeHosts, ""}, mon(`artifact_dir = "cache"`)...),
			at:   "[monitoring]",
			want: `monitoring.host: missing; name the [[hosts]] entry that runs Prometheus, Grafana and the surveyor, e.g. host = "monitor-1"`,
			also: []problemAt{{"", "hosts: no hosts; add a [[hosts]] table"}},
		},
		{
			name: "monitoring sub-table only, so no host",
			edit: []string{baseEnd, baseEnd + "\n[monitoring.prometheus]\nport = 9091\n"},
			at:   "[monitoring.prometheus]",
			want: `monitoring.host: missing; name the [[hosts]] entry`,
		},
		{
			name: "monitoring host not in hosts",
			edit: mon(`host = "mon"`),
			at:   `host = "mon"`,
			want: `monitoring.host: "mon" is not in [[hosts]]; add it as a [[hosts]] entry with nats = false, or name one of: n1, n2, n3`,
		},
		{
			name: "monitoring key in the wrong table",
			edit: mon("host = \"n1\"\nretention = \"30d\""),
			at:   "retention",
			want: `monitoring.retention: unknown key "retention" here; it belongs in [monitoring.prometheus]`,
		},
		{
			name: "monitoring key typo",
			edit: mon("host = \"n1\"\n[monitoring.surveyor]\nprot = 7000"),
			at:   "prot",
			want: `monitoring.surveyor.prot: unknown key "prot"; did you mean "port"?`,
		},
		{
			name: "monitoring enabled is a flag",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nenabled = \"no\""),
			at:   "enabled",
			want: `monitoring.grafana.enabled: expected true or false, got the string "no"; write it without quotes`,
		},
		{
			name: "monitoring disabled as a whole",
			edit: mon("host = \"n1\"\nenabled = false"),
			at:   "enabled",
			want: `monitoring.enabled: unknown key "enabled" here; it belongs in [monitoring.SERVICE] (SERVICE: prometheus, grafana, exporter, surveyor)`,
		},
		{
			name: "monitoring all disabled",
			edit: mon("host = \"n1\"\nprometheus.enabled = false\ngrafana.enabled = false\nexporter.enabled = false\nsurveyor.enabled = false"),
		},
		{
			name: "monitoring bad download url",
			edit: mon("host = \"n1\"\ndownload_url = \"mirror.example.com\""),
			at:   "download_url",
			want: `monitoring.download_url: "mirror.example.com" is not an http(s) URL; write the base URL of a mirror laid out like artifact_dir`,
		},
		{
			name: "monitoring download url over http",
			edit: mon("host = \"n1\"\ndownload_url = \"http://mirror.example.com/artifacts\""),
		},
		{
			name: "monitoring version with v",
			edit: mon("host = \"n1\"\n[monitoring.exporter]\nversion = \"v0.20.1\""),
			at:   `version = "v0.20.1"`,
			want: `monitoring.exporter.version: "v0.20.1" is not a release version (write "0.20.1", without the v); write MAJOR.MINOR.PATCH such as "0.20.1"`,
		},
		{
			name: "monitoring version not a release",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nversion = \"3.16\""),
			at:   `version = "3.16"`,
			want: `monitoring.prometheus.version: "3.16" is not a release version; write MAJOR.MINOR.PATCH such as "3.16.0"`,
		},
		{
			name: "monitoring version empty",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nversion = \"\""),
			at:   `version = ""`,
			want: `monitoring.grafana.version: is empty; remove it to deploy 12.4.2, or name a release such as "12.4.2"`,
		},
		{
			name: "monitoring port out of range",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nport = 0"),
			at:   "port = 0",
			want: "monitoring.prometheus.port: port 0 is out of range; use 1 to 65535",
		},
		{
			// Both programs listen on 7777 upstream.
			name: "exporter on the surveyor's port, same host",
			edit: mon("host = \"n1\"\n[monitoring.exporter]\nport = 7777"),
			at:   "port = 7777",
			want: `monitoring.exporter.port: port 7777 is also monitoring.surveyor.port on host "n1"; give every service on one host its own port`,
		},
		{
			name: "exporter on the surveyor's port, surveyor on a host of its own",
			edit: onMonHost("[monitoring.exporter]\nport = 7777"),
		},
		{
			name: "exporter on the surveyor's port, surveyor disabled",
			edit: mon("host = \"n1\"\n[monitoring.exporter]\nport = 7777\n[monitoring.surveyor]\nenabled = false"),
		},
		{
			name: "grafana on prometheus's default port",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nport = 9090"),
			at:   "port = 9090",
			want: `monitoring.grafana.port: port 9090 is also monitoring.prometheus.port on host "n1"; give every service on one host its own port`,
		},
		{
			name: "two services on port 1024",
			edit: mon("host = \"n1\"\nprometheus.port = 1024\ngrafana.port = 1024"),
			at:   "grafana.port",
			want: `monitoring.grafana.port: port 1024 is also monitoring.prometheus.port on host "n1"; give every service on one host its own port`,
		},
		{
			name: "two services on port 65535",
			edit: mon("host = \"n1\"\nprometheus.port = 65535\ngrafana.port = 65535"),
			at:   "grafana.port",
			want: `monitoring.grafana.port: port 65535 is also monitoring.prometheus.port on host "n1"; give every service on one host its own port`,
		},
		{
			name: "prometheus on grafana's default port",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nport = 3000"),
			at:   "port = 3000",
			want: `monitoring.prometheus.port: port 3000 is also monitoring.grafana.port on host "n1"`,
		},
		{
			name: "prometheus on a NATS port",
			edit: mon("host = \"n2\"\n[monitoring.prometheus]\nport = 8222"),
			at:   "port = 8222",
			want: `monitoring.prometheus.port: port 8222 is also nats.http_port on host "n2"`,
		},
		{
			name: "NATS port set onto prometheus's default",
			edit: append([]string{`version = "2.14.9"`, "version = \"2.14.9\"\nhttp_port = 9090"}, mon(`host = "n1"`)...),
			at:   "http_port = 9090",
			want: `nats.http_port: port 9090 is also monitoring.prometheus.port on host "n1"`,
		},
		{
			name: "exporter on the SSH port",
			edit: append([]string{`user = "deploy"`, "user = \"deploy\"\nport = 2222"}, mon("host = \"n1\"\nexporter.port = 2222")...),
			at:   "exporter.port",
			want: `monitoring.exporter.port: port 2222 is also ssh.port on host "n1"`,
		},
		{
			name: "exporter on one host's own SSH port",
			edit: append([]string{`address = "10.0.0.3"`, "address = \"10.0.0.3\"\nssh_port = 7778"}, mon(`host = "n1"`)...),
			at:   "ssh_port = 7778",
			want: `hosts[2].ssh_port: port 7778 is also monitoring.exporter.port on host "n3"`,
		},
		{
			name: "grafana on the monitoring host's SSH port",
			edit: append([]string{threeHosts, threeHosts + monitoringHost + "ssh_port = 3000\n"}, mon(`host = "mon"`)...),
			at:   "ssh_port = 3000",
			want: `hosts[3].ssh_port: port 3000 is also monitoring.grafana.port on host "mon"`,
		},
		{
			// No nats-server listens on a host of its own.
			name: "prometheus on a NATS port, on a host of its own",
			edit: onMonHost("[monitoring.prometheus]\nport = 4222"),
		},
		{
			name: "retention in Prometheus's syntax",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nretention = \"30d12h\""),
		},
		{
			name: "retention not a Prometheus duration",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nretention = \"15 days\""),
			at:   "retention",
			want: `monitoring.prometheus.retention: "15 days" is not a Prometheus duration; write whole numbers with units, largest first, such as "15d"`,
		},
		{
			name: "retention zero",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nretention = \"0d\""),
			at:   "retention",
			want: `monitoring.prometheus.retention: must be more than 0; write how long to keep samples, e.g. retention = "15d" (the default)`,
		},
		{
			name: "scrape interval below 1s",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nscrape_interval = \"500ms\""),
			at:   "scrape_interval",
			want: `monitoring.prometheus.scrape_interval: 500ms is below the minimum of 1s; write e.g. scrape_interval = "15s" (the default)`,
		},
		{
			name: "scrape interval below a millisecond's precision",
			edit: mon("host = \"n1\"\n[monitoring.prometheus]\nscrape_interval = \"1.0001s\""),
			at:   "scrape_interval",
			want: `monitoring.prometheus.scrape_interval: 1.0001s has a fraction of a millisecond, which Prometheus cannot express; round it`,
		},
		{
			name: "grafana password in the file",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\npassword = \"admin123\""),
			at:   "password",
			want: `monitoring.grafana.password: unknown key "password": the Grafana admin password is not written in the inventory; use password_env = "VAR" (an environment variable holding it), or remove it to have one generated and kept in the secrets file`,
		},
		{
			name: "grafana password_env unset",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\npassword_env = \"TEST_UNSET_PW\""),
			at:   "password_env",
			want: `monitoring.grafana.password_env: environment variable TEST_UNSET_PW (the password of the Grafana admin) is not set; export it before running natsdeploy`,
		},
		{
			name: "grafana password_env holds the seed's admin123",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\npassword_env = \"TEST_GRAFANA_SEED_PW\""),
			at:   "password_env",
			want: `monitoring.grafana.password_env: the password in environment variable TEST_GRAFANA_SEED_PW (for the Grafana admin) is one of the seed's published example passwords; use at least 12 characters`,
		},
		{
			name: "grafana password_env too short",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\npassword_env = \"TEST_SHORT_PW\""),
			at:   "password_env",
			want: `monitoring.grafana.password_env: the password in environment variable TEST_SHORT_PW (for the Grafana admin) is shorter than 12 characters`,
		},
		{
			name: "grafana password_env set",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\npassword_env = \"TEST_GRAFANA_PW\""),
		},
		{
			name: "grafana password_env need not be set while grafana is disabled",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nenabled = false\npassword_env = \"TEST_UNSET_PW\""),
		},
		{
			name: "grafana password_env not a variable name, grafana disabled",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nenabled = false\npassword_env = \"$PW\""),
			at:   "password_env",
			want: `monitoring.grafana.password_env: is not an environment variable name (its value is not shown`,
		},
		{
			name: "grafana file and sha256",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"grafana_12.4.2_20118542_linux_amd64.tar.gz\"\nsha256 = \"" + strings.Repeat("AB", 32) + "\""),
		},
		{
			name: "grafana file as an https URL",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"https://dl.grafana.com/grafana/release/12.4.2/grafana_12.4.2_20118542_linux_amd64.tar.gz\""),
		},
		{
			name: "grafana sha256 without file",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nsha256 = \"" + strings.Repeat("ab", 32) + "\""),
			at:   "sha256",
			want: `monitoring.grafana.sha256: is set without file; name the release file it belongs to in file = "...", or remove sha256 to use the official checksum file`,
		},
		{
			name: "grafana sha256 not hex",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"grafana_12.4.2_1_linux_amd64.tar.gz\"\nsha256 = \"abc\""),
			at:   "sha256",
			want: `monitoring.grafana.sha256: "abc" is not a SHA-256 checksum; write the 64 hex digits grafana.com shows beside the download`,
		},
		{
			name: "grafana file is a path",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"grafana/v12.4.2/grafana_12.4.2_1_linux_amd64.tar.gz\""),
			at:   `file = "grafana`,
			want: `monitoring.grafana.file: "grafana/v12.4.2/grafana_12.4.2_1_linux_amd64.tar.gz" is a path; write only the file name (it is looked up in artifact_dir under grafana/v12.4.2/), or its https URL`,
		},
		{
			name: "grafana file URL not https",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"http://dl.grafana.com/grafana_12.4.2_1_linux_amd64.tar.gz\""),
			at:   `file = "http`,
			want: `monitoring.grafana.file: "http://dl.grafana.com/grafana_12.4.2_1_linux_amd64.tar.gz" is not an https URL; write the release file's name or its https URL`,
		},
		{
			name: "grafana file not a tarball",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"grafana_12.4.2_1_windows_amd64.zip\""),
			at:   `file = "grafana`,
			want: `monitoring.grafana.file: "grafana_12.4.2_1_windows_amd64.zip" is not a .tar.gz release file name; name the linux tarball from grafana.com's download page, e.g. "grafana_12.4.2_<build id>_linux_amd64.tar.gz"`,
		},
		{
			name: "grafana file of another version",
			edit: mon("host = \"n1\"\n[monitoring.grafana]\nfile = \"grafana_12.3.0_1_linux_amd64.tar.gz\""),
			at:   `file = "grafana`,
			want: `monitoring.grafana.file: "grafana_12.3.0_1_linux_amd64.tar.gz" does not name version 12.4.2; set version to the file's release, or name the file of 12.4.2`,
		},
		{
			name:       "identity file missing",
			edit:       []string{`user = "deploy"`, "user = \"deploy\"\nidentity_files = [\"keys/nope\"]\naccept_new_host_keys = true"},
			at:         "identity_files",
			want:       "ssh.identity_files[0]: identity file " + filepath.Join(mustAbs(t, "keys"), "nope") + " does not exist",
			fileChecks: true,
		},
		{
			name:       "identity file is the public key",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nidentity_files = [%q, %q]\naccept_new_host_keys = true", key, key+".pub")},
			at:         "identity_files",
			want:       "ssh.identity_files[1]: " + key + ".pub is a public key; name the private key file (without .pub)",
			fileChecks: true,
		},
		{
			name:       "identity file is a directory",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nidentity_files = [%q]\naccept_new_host_keys = true", tmp)},
			at:         "identity_files",
			want:       "ssh.identity_files[0]: identity file " + tmp + " is a directory; name the private key file",
			fileChecks: true,
		},
		{
			name:       "identity file others can read (issue 9)",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nidentity_files = [%q]\nknown_hosts = %q", openKey, knownHosts)},
			at:         "identity_files",
			want:       "ssh.identity_files[0]: identity file " + openKey + " has mode 0644, so other users can read the private key; run chmod 600 " + openKey,
			fileChecks: true,
		},
		{
			// Opening a FIFO would block: refused from its Stat.
			name:       "identity file is a FIFO",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nidentity_files = [%q]\nknown_hosts = %q", fifoKey, knownHosts)},
			at:         "identity_files",
			want:       "ssh.identity_files[0]: identity file " + fifoKey + " is not a regular file",
			fileChecks: true,
		},
		{
			name:       "known_hosts is a FIFO",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", fifoKey)},
			at:         "known_hosts",
			want:       "ssh.known_hosts: " + fifoKey + " is not a regular file; name the known_hosts file",
			fileChecks: true,
		},
		{
			name:       "offline without the artifact dir (issue 9)",
			edit:       []string{`version = "2.14.9"`, fmt.Sprintf("version = \"2.14.9\"\ndownload_url = \"\"\nartifact_dir = %q", filepath.Join(tmp, "no-artifacts")), `user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", knownHosts)},
			at:         "artifact_dir",
			want:       "nats.artifact_dir: " + filepath.Join(tmp, "no-artifacts") + ` does not exist, and download_url = "" leaves it the only source`,
			fileChecks: true,
		},
		{
			name:       "offline with an artifact dir that is a file",
			edit:       []string{`version = "2.14.9"`, fmt.Sprintf("version = \"2.14.9\"\ndownload_url = \"\"\nartifact_dir = %q", knownHosts), `user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", knownHosts)},
			at:         "artifact_dir",
			want:       "nats.artifact_dir: " + knownHosts + " is not a directory",
			fileChecks: true,
		},
		{
			name:       "offline with the artifact dir",
			edit:       []string{`version = "2.14.9"`, fmt.Sprintf("version = \"2.14.9\"\ndownload_url = \"\"\nartifact_dir = %q", tmp), `user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", knownHosts)},
			fileChecks: true,
		},
		{
			name:       "offline with a version the artifact dir lacks (issue 9)",
			edit:       []string{`version = "2.14.9"`, fmt.Sprintf("version = \"2.14.8\"\ndownload_url = \"\"\nartifact_dir = %q", tmp), `user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", knownHosts)},
			at:         `version = "2.14.8"`,
			want:       "nats.version: 2.14.8 has no release files in " + filepath.Join(tmp, "nats-server", "v2.14.8") + `, and download_url = "" allows no download`,
			fileChecks: true,
		},
		{
			name:       "known_hosts missing",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q", filepath.Join(tmp, "missing"))},
			at:         "known_hosts",
			want:       "ssh.known_hosts: known_hosts file " + filepath.Join(tmp, "missing") + " does not exist; add the hosts' keys to it",
			fileChecks: true,
		},
		{
			name:       "ssh file checks pass",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nidentity_files = [%q]\nknown_hosts = %q", key, knownHosts)},
			fileChecks: true,
		},
		{
			name:       "known_hosts may be missing with accept_new_host_keys",
			edit:       []string{`user = "deploy"`, fmt.Sprintf("user = \"deploy\"\nknown_hosts = %q\naccept_new_host_keys = true", filepath.Join(tmp, "missing"))},
			fileChecks: true,
		},
		{
			name:       "rule file missing, relative to the inventory",
			edit:       append(ruleFiles(rules, "alerts/nope.yml"), trustHosts...),
			at:         "alerts/nope.yml",
			want:       "monitoring.prometheus.rule_files[1]: rule file " + filepath.Join(mustAbs(t, "alerts"), "nope.yml") + " does not exist; fix the path",
			fileChecks: true,
		},
		{
			name:       "rule file is a directory",
			edit:       append(ruleFiles(rulesDir), trustHosts...),
			at:         rulesDir,
			want:       "monitoring.prometheus.rule_files[0]: rule file " + rulesDir + " is not a regular file",
			fileChecks: true,
		},
		{
			name:       "rule file too big",
			edit:       append(ruleFiles(bigRules, bigRules+"x.yml"), trustHosts...),
			at:         bigRules + "x.yml",
			want:       fmt.Sprintf("monitoring.prometheus.rule_files[1]: rule file %sx.yml is %d bytes, more than the %d", bigRules, MaxRuleFileSize+1, MaxRuleFileSize),
			fileChecks: true,
		},
		{
			name: "rule files with the same name",
			edit: ruleFiles(rules, otherRules),
			at:   otherRules,
			want: "monitoring.prometheus.rule_files[1]: " + otherRules + " has the same file name as rule_files[0] (" + rules + "); both would be deployed as user-my.rules.yml, so rename one",
		},
		{
			name: "rule file not yaml",
			edit: ruleFiles("alerts/my.rules"),
			at:   "alerts/my.rules",
			want: `monitoring.prometheus.rule_files[0]: "my.rules": a rule file's name must end in .yml or .yaml`,
		},
		{
			name: "rule file name with a glob character",
			edit: ruleFiles("alerts/*.yml"),
			at:   "alerts/*.yml",
			want: `monitoring.prometheus.rule_files[0]: "*.yml": a rule file's name must end in .yml or .yaml and use only letters, digits`,
		},
		{
			name: "rule file checks skipped",
			edit: ruleFiles("alerts/nope.yml", "alerts/nope.yaml"),
		},
		{
			name:       "rule file checks skipped when prometheus is off",
			edit:       append(mon("host = \"n1\"\n[monitoring.prometheus]\nenabled = false\nrule_files = [\"alerts/nope.yml\"]"), trustHosts...),
			fileChecks: true,
		},
		{
			name:       "rule files pass",
			edit:       append(ruleFiles(rules, yamlRules), trustHosts...),
			fileChecks: true,
		},
		{
			name: "sudo_password_env not a name",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nsudo_password_env = \"hunter2 hunter2!\""},
			at:   "sudo_password_env",
			want: "ssh.sudo_password_env: is not an environment variable name (value not shown); write the name",
		},
		{
			name: "sudo_password_env not set",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nsudo_password_env = \"NATSDEPLOY_TEST_UNSET_SUDO\""},
			at:   "sudo_password_env",
			want: "ssh.sudo_password_env: environment variable NATSDEPLOY_TEST_UNSET_SUDO (the sudo password) is not set; export it",
		},
		{
			name: "sudo_password_env set",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nsudo_password_env = \"NATSDEPLOY_TEST_SUDO\""},
		},
		{
			name: "jump hosts",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\njump = \"ops@bastion:2222, inner\"", `address = "10.0.0.2"`, "address = \"10.0.0.2\"\njump = \"none\""},
		},
		{
			name: "jump without a host",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\njump = \"ops@\""},
			at:   `jump = "ops@"`,
			want: `ssh.jump: jump host "ops@" has no host name`,
		},
		{
			name: "jump empty",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\njump = \"\""},
			at:   `jump = ""`,
			want: `ssh.jump: empty jump host; write [user@]host[:port], several separated by commas, or none`,
		},
		{
			name: "host jump with a bad port",
			edit: []string{`address = "10.0.0.2"`, "address = \"10.0.0.2\"\njump = \"a, b:0\""},
			at:   `jump = "a, b:0"`,
			want: `hosts[1].jump: jump host "b:0": port "0" is not a number in 1-65535`,
		},
		{
			name: "ssh config_file empty",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nconfig_file = \"\""},
			at:   `config_file = ""`,
			want: "ssh.config_file: is empty; name the file, or write use_ssh_config = false to read no ssh config",
		},
		{
			name: "ssh config_file with use_ssh_config = false",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nuse_ssh_config = false\nconfig_file = \"x\""},
			at:   `config_file = "x"`,
			want: "ssh.config_file: is set but use_ssh_config = false says to read no ssh config; remove one of them",
		},
		{
			name:       "ssh config_file missing",
			edit:       append([]string{`[ssh]`, "[ssh]\nconfig_file = \"nope/ssh_config\""}, trustHosts...),
			at:         "config_file",
			want:       "ssh.config_file: ssh config " + filepath.Join(mustAbs(t, "nope"), "ssh_config") + " does not exist; fix the path",
			fileChecks: true,
		},
		{
			name:       "ssh config_file unreadable as an ssh config",
			edit:       append([]string{`[ssh]`, fmt.Sprintf("[ssh]\nconfig_file = %q", badSSHConfig)}, trustHosts...),
			at:         "config_file",
			want:       "ssh.config_file: ssh config " + badSSHConfig + ": ",
			fileChecks: true,
		},
		{
			name:       "ssh config_file read",
			edit:       append([]string{`[ssh]`, fmt.Sprintf("[ssh]\nconfig_file = %q", sshConfig)}, trustHosts...),
			fileChecks: true,
		},
		{
			name:       "default ssh config may be missing",
			edit:       trustHosts,
			fileChecks: true,
		},
		{
			name: "file checks skipped",
			edit: []string{`user = "deploy"`, "user = \"deploy\"\nidentity_files = [\"keys/nope\"]\nknown_hosts = \"nope\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.edit)%2 != 0 {
				t.Fatal("edit needs old, new pairs")
			}
			text := base
			for i := 0; i < len(tt.edit); i += 2 {
				if !strings.Contains(text, tt.edit[i]) {
					t.Fatalf("edit: %q not in the inventory", tt.edit[i])
				}
				text = strings.Replace(text, tt.edit[i], tt.edit[i+1], 1)
			}
			_, err := parseTest(t, text, LoadOptions{SkipFileChecks: !tt.fileChecks})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want no problems, got:\n%v", err)
				}
				return
			}
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("want *Problems, got %T: %v", err, err)
			}
			// Each wanted problem starts a line of the error of its own, and
			// no line is left over.
			wanted := append([]problemAt{{tt.at, tt.want}}, tt.also...)
			var prefixes []string
			for _, w := range wanted {
				prefix := "t.toml: "
				if w.at != "" {
					prefix = fmt.Sprintf("t.toml:%d: ", lineOf(t, text, w.at))
				}
				prefixes = append(prefixes, prefix+w.want)
			}
			got := strings.Split(err.Error(), "\n")
			unmatched := len(got) != len(prefixes)
			for _, p := range prefixes {
				i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, p) })
				if i < 0 {
					unmatched = true
					break
				}
				got = slices.Delete(got, i, i+1)
			}
			if unmatched {
				t.Fatalf("want exactly these problems, each the start of a line:\n%s\ngot:\n%v", strings.Join(prefixes, "\n"), err)
			}
		})
	}
}

// problemAt is a problem a TestValidation case expects: the text on its
// line ("" = no line) and the start of the message after "t.toml:LINE: ".
type problemAt struct{ at, want string }

// otherAccount is a JetStream account with the given quotas, to add to base.
func otherAccount(maxMem, maxFile string) string {
	return fmt.Sprintf(`
[[accounts]]
name = "OTHER"
jetstream = { max_mem = %q, max_file = %q, max_streams = 10, max_consumers = 100 }
  [[accounts.users]]
  name = "other"
  allow = ["other.>"]
`, maxMem, maxFile)
}

func mustAbs(t *testing.T, p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// lineOf returns the 1-based line on which sub starts in text.
func lineOf(t *testing.T, text, sub string) int {
	t.Helper()
	i := strings.Index(text, sub)
	if i < 0 {
		t.Fatalf("%q not in the inventory", sub)
	}
	return strings.Count(text[:i], "\n") + 1
}

func TestAllProblemsReportedInLineOrder(t *testing.T) {
	text := strings.NewReplacer(
		`version = "2.14.9"`, `version = "2.14"`+"\nclient_port = 6222",
		`"app.>"`, `"app..>"`,
		`"logs.app.*"`, `"logs..app"`,
		`address = "10.0.0.3"`, `address = "10.0.0.1"`,
		`user = "deploy"`, `usr = "deploy"`,
	).Replace(base)
	_, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("want *Problems, got %v", err)
	}
	want := []string{
		`t.toml:2: ssh.usr: unknown key "usr"; did you mean "user"?`,
		`t.toml:5: nats.version: "2.14" is not a release version; write MAJOR.MINOR.PATCH such as "2.14.9"`,
		`t.toml:6: nats.client_port: port 6222 is also nats.cluster_port; client, cluster and HTTP ports must differ`,
		`t.toml:18: hosts[2].address: address "10.0.0.1" is also used by hosts[0]; each NATS node needs a machine of its own (their ports would collide)`,
		// Two on one line: in the order they were found.
		`t.toml:33: accounts[1].users[0].allow[0]: "app..>" is not a valid subject: it has an empty token (two dots in a row); write "a.b", not "a..b"`,
		`t.toml:33: accounts[1].users[0].allow[1]: "logs..app" is not a valid subject: it has an empty token (two dots in a row); write "a.b", not "a..b"`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, p := range probs.List {
		if p.File != "t.toml" || p.Line == 0 || p.Key == "" {
			t.Errorf("incomplete problem %+v", p)
		}
	}
}

// A value that cannot be decoded gets one message, not a second one from a
// check that sees its zero value.
func TestNoFollowUpProblemsForBadValues(t *testing.T) {
	text := strings.Replace(base, `version = "2.14.9"`, `version = "2.14.9"`+"\nmax_memory_store = \"lots\"", 1)
	_, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	if err == nil {
		t.Fatal("want an error")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Fatalf("want 1 problem, got %d:\n%v", n, err)
	}
}

// A port clash that every NATS host shares is one mistake, reported once.
func TestMonitoringPortClashReportedOnce(t *testing.T) {
	text := strings.Replace(base, baseEnd, baseEnd+"\n[monitoring]\nhost = \"n1\"\nexporter.port = 2222\n", 1)
	text = strings.Replace(text, `user = "deploy"`, "user = \"deploy\"\nport = 2222", 1)
	_, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	want := fmt.Sprintf(`t.toml:%d: monitoring.exporter.port: port 2222 is also ssh.port on host "n1"; give every service on one host its own port`, lineOf(t, text, "exporter.port"))
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestMonitoringHost(t *testing.T) {
	inv, err := parseTest(t, base, LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inv.MonitoringHost(); ok || inv.Monitoring != nil {
		t.Fatalf("no [monitoring]: MonitoringHost() ok, Monitoring = %+v", inv.Monitoring)
	}
	text := strings.Replace(base, threeHosts, threeHosts+monitoringHost, 1) + "\n[monitoring]\nhost = \"mon\"\n"
	if inv, err = parseTest(t, text, LoadOptions{SkipFileChecks: true}); err != nil {
		t.Fatal(err)
	}
	h, ok := inv.MonitoringHost()
	if !ok || h.Name != "mon" || h.Address != "10.0.0.9" || h.RunsNATS() {
		t.Fatalf("MonitoringHost() = %+v, %v", h, ok)
	}
	if !(PrometheusSpec{}).On() || !(GrafanaSpec{}).On() || !(ExporterSpec{}).On() || !(SurveyorSpec{}).On() {
		t.Error("a spec with Enabled unset must be on (the default)")
	}
	off := false
	if (SurveyorSpec{Enabled: &off}).On() {
		t.Error("enabled = false must be off")
	}
}

func TestNATSHosts(t *testing.T) {
	text := strings.Replace(base, threeHosts, "[[hosts]]\nname = \"mon\"\naddress = \"10.0.0.9\"\nnats = false\n\n"+threeHosts+"\n[[hosts]]\nname = \"n4\"\naddress = \"10.0.0.4\"\nnats = true\n", 1)
	inv, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range inv.NATSHosts() {
		names = append(names, h.Name)
	}
	if got, want := strings.Join(names, ","), "n1,n2,n3,n4"; got != want {
		t.Errorf("NATSHosts() = %s, want %s (inventory order, without mon)", got, want)
	}
	for _, h := range inv.Hosts {
		if h.NATS == nil {
			t.Errorf("%s: NATS is nil after Load", h.Name)
		}
		if got, want := h.RunsNATS(), h.Name != "mon"; got != want {
			t.Errorf("%s: RunsNATS() = %v, want %v", h.Name, got, want)
		}
	}
	if !(Host{Name: "built by hand"}).RunsNATS() {
		t.Error("a Host with NATS unset must run NATS (the default)")
	}
}

// rule_files are paths on the control machine, resolved like identity
// files: relative to the inventory's folder, ~ expanded.
func TestRuleFilesResolved(t *testing.T) {
	text := strings.Replace(base, baseEnd, baseEnd+"\n[monitoring]\nhost = \"n1\"\n[monitoring.prometheus]\nrule_files = [\"alerts/a.yml\", \"~/b.yaml\", \"/abs/../c.yml\"]\n", 1)
	inv, err := Parse(filepath.Join("conf", "t.toml"), []byte(text), LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	want := []string{filepath.Join(mustAbs(t, "conf"), "alerts", "a.yml"), filepath.Join(home, "b.yaml"), "/c.yml"}
	got := inv.Monitoring.Prometheus.RuleFiles
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rule_files = %q, want %q", got, want)
	}
	if n := UserRuleName(got[0]); n != "user-a.yml" {
		t.Errorf("UserRuleName = %q", n)
	}
}

// What the file says is told apart from defaults, so that deploy lets the
// inventory win over the ssh config and the ssh config over defaults.
func TestSSHWrittenAndDefaults(t *testing.T) {
	t.Setenv("HOME", "/home/tester")
	text := strings.Replace(base, `address = "10.0.0.2"`, "address = \"10.0.0.2\"\nssh_port = 2222\njump = \"b\"", 1)
	inv, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"ssh.user": true, "ssh.port": false, "ssh.jump": false, "ssh.identity_files": false,
		"hosts.1.ssh_port": true, "hosts.1.jump": true, "hosts.0.ssh_port": false, "hosts.1.ssh_user": false,
	} {
		if got := inv.Written(key); got != want {
			t.Errorf("Written(%q) = %v, want %v", key, got, want)
		}
	}
	if inv.SSH.UseSSHConfig == nil || !*inv.SSH.UseSSHConfig {
		t.Errorf("use_ssh_config defaults to %v, want true", inv.SSH.UseSSHConfig)
	}
	if inv.SSH.ConfigFile != "/home/tester/.ssh/config" {
		t.Errorf("config_file defaults to %q", inv.SSH.ConfigFile)
	}
	if inv.Hosts[0].SSHPort != DefaultSSHPort || inv.Hosts[1].SSHPort != 2222 {
		t.Errorf("ssh ports %d, %d", inv.Hosts[0].SSHPort, inv.Hosts[1].SSHPort)
	}
}
