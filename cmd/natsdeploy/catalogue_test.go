package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// edits of inventory/lab.toml that each make one bad inventory.
const (
	natsAt  = `version = "2.14.9"`
	sshAt   = `connect_timeout = "5s"`
	host1At = `address = "172.31.253.11"`
	monAt   = "[monitoring]\nhost = \"nats-1\""
	promAt  = "[monitoring.prometheus]\nenabled = true"
	devAt   = `  name = "dev-user"`
	tlsAt   = "[tls]\nclients = true"
)

func natsKV(kv string) (string, string) { return natsAt, natsAt + "\n" + kv }
func sshKV(kv string) (string, string)  { return sshAt, sshAt + "\n" + kv }
func host1(kv string) (string, string)  { return host1At, host1At + "\n" + kv }
func promKV(kv string) (string, string) { return promAt, promAt + "\n" + kv }
func tlsKV(kv string) (string, string)  { return tlsAt, tlsAt + "\n" + kv }

// secrets adds a [secrets] table of these lines before [ssh].
func secretsTable(lines ...string) (string, string) {
	return "[ssh]", "[secrets]\n" + strings.Join(lines, "\n") + "\n[ssh]"
}

// ecdsaKey is a public key age cannot encrypt to.
const ecdsaKey = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBM2IYVH7Y9JWFaieQPg0vAILFxRYrJeEMlECDETv2qJzJMSZiMxvte99SGabgEpQZti4hHxk2QRXeYMomBAXHuE= test"

// TestCatalogueOfBadInventories: each bad inventory, a small edit of the
// lab's, is refused with exit 2 before any connection (the lab's hosts
// cannot be reached from here, so getting past the checks would show as
// exit 1), by a message that starts with file:line and the key it is about
// and says what is wrong in a word the case names. None shows a password.
func TestCatalogueOfBadInventories(t *testing.T) {
	os.Unsetenv("NATSDEPLOY_CATALOGUE_UNSET")
	type bad struct {
		name     string
		old, new string
		at       string // text on the line the message must name; "" = the first line of new's addition
		key      string // as the message shows it; "" for a syntax error
		word     string
		hide     string // must not appear in the output
	}
	kv := func(name string, edit func(string) (string, string), line, key, word string) bad {
		o, n := edit(line)
		return bad{name: name, old: o, new: n, at: line, key: key, word: word}
	}
	sec := func(name string, lines []string, line, key, word string) bad {
		o, n := secretsTable(lines...)
		return bad{name: name, old: o, new: n, at: line, key: key, word: word}
	}
	const secret = "s3cret-Passw0rd!"
	cases := []bad{
		// Directories natsdeploy would take over (issue 9).
		kv("data dir /usr/sbin", natsKV, `data_dir = "/usr/sbin"`, "nats.data_dir", "inside /usr"),
		kv("data dir a home", natsKV, `data_dir = "/home/deploy"`, "nats.data_dir", "inside /home"),
		kv("config dir /etc/ssh through ..", natsKV, `config_dir = "/etc/nats/../ssh"`, "nats.config_dir", "(/etc/ssh) is a system directory"),
		kv("log dir the journal", natsKV, `log_dir = "/var/log/journal"`, "nats.log_dir", "system directory"),
		kv("data dir /", natsKV, `data_dir = "/"`, "nats.data_dir", "system directory"),
		kv("data dir /var", natsKV, `data_dir = "/var"`, "nats.data_dir", "system directory"),
		kv("data dir dpkg's", natsKV, `data_dir = "/var/lib/dpkg"`, "nats.data_dir", "system directory"),
		kv("config dir in systemd's", natsKV, `config_dir = "/etc/systemd/system/nats"`, "nats.config_dir", "inside /etc/systemd"),
		kv("data dir in /root", natsKV, `data_dir = "/root/nats"`, "nats.data_dir", "inside /root"),
		kv("log dir in /dev/shm", natsKV, `log_dir = "/dev/shm/nats"`, "nats.log_dir", "inside /dev"),
		kv("data dir in /boot", natsKV, `data_dir = "/boot/nats"`, "nats.data_dir", "inside /boot"),
		kv("data dir in /sys", natsKV, `data_dir = "/sys/fs/nats"`, "nats.data_dir", "inside /sys"),
		kv("data dir relative", natsKV, `data_dir = "nats/data"`, "nats.data_dir", "absolute"),
		kv("data dir with a space", natsKV, `data_dir = "/var/lib/na ts"`, "nats.data_dir", "characters"),
		kv("log dir is the data dir", natsKV, `log_dir = "/var/lib/nats"`, "nats.log_dir", "is also nats.data_dir"),
		// Ports and durations.
		kv("client port 80", natsKV, `client_port = 80`, "nats.client_port", "privileged"),
		kv("cluster port 0", natsKV, `cluster_port = 0`, "nats.cluster_port", "out of range"),
		kv("http port 70000", natsKV, `http_port = 70000`, "nats.http_port", "out of range"),
		kv("client port on the cluster port", natsKV, `client_port = 6222`, "nats.client_port", "is also nats.cluster_port"),
		kv("client port quoted", natsKV, `client_port = "4222"`, "nats.client_port", "remove the quotes"),
		kv("lame duck 999999h", natsKV, `lame_duck_duration = "999999h"`, "nats.lame_duck_duration", "maximum"),
		kv("lame duck 10s", natsKV, `lame_duck_duration = "10s"`, "nats.lame_duck_duration", "minimum"),
		kv("lame duck without unit", natsKV, `lame_duck_duration = 30`, "nats.lame_duck_duration", "no unit"),
		kv("grace not below lame duck", natsKV, `lame_duck_grace_period = "40s"`, "nats.lame_duck_grace_period", "not shorter"),
		{name: "memory store 0", old: `max_memory_store = "1GB"`, new: `max_memory_store = 0`, at: "max_memory_store = 0", key: "nats.max_memory_store", word: "more than 0"},
		{name: "negative log files", old: `log_max_files = 5`, new: `log_max_files = -1`, at: "log_max_files = -1", key: "nats.log_max_files", word: "negative"},
		// Versions, names, URLs.
		{name: "offline version not in the artifact dir", old: natsAt, new: `version = "2.14.8"`, at: `version = "2.14.8"`, key: "nats.version", word: "no release files"},
		{name: "version too old", old: natsAt, new: `version = "2.9.0"`, at: `version = "2.9.0"`, key: "nats.version", word: "too old"},
		{name: "version with v", old: natsAt, new: `version = "v2.14.9"`, at: `version = "v2.14.9"`, key: "nats.version", word: "without the v"},
		{name: "version latest", old: natsAt, new: `version = "latest"`, at: `version = "latest"`, key: "nats.version", word: "release version"},
		{name: "download url ftp", old: `download_url = ""`, new: `download_url = "ftp://mirror/nats"`, at: "download_url", key: "nats.download_url", word: "http(s) URL"},
		{name: "cluster name with a space", old: `cluster_name = "nats-cluster"`, new: `cluster_name = "nats cluster"`, at: "cluster_name", key: "nats.cluster_name", word: "cluster name"},
		kv("route user with a space", natsKV, `route_user = "ro ute"`, "nats.route_user", "user name"),
		{name: "route password pasted into route_password_env", old: natsAt, new: natsAt + "\nroute_password_env = \"" + secret + "\"", at: "route_password_env", key: "nats.route_password_env", word: "not an environment variable name", hide: secret},
		kv("route password variable unset", natsKV, `route_password_env = "NATSDEPLOY_CATALOGUE_UNSET"`, "nats.route_password_env", "not set"),
		kv("debug as a string", natsKV, `debug = "yes"`, "nats.debug", "true or false"),
		kv("typo in a key", natsKV, `clusterr_name = "x"`, "nats.clusterr_name", "did you mean"),
		// [ssh].
		{name: "empty ssh user", old: `user = "deploy"`, new: `user = ""`, at: `user = ""`, key: "ssh.user", word: "is empty"},
		{name: "ssh user with a semicolon", old: `user = "deploy"`, new: `user = "root;id"`, at: `user = "root;id"`, key: "ssh.user", word: "login name"},
		kv("ssh port 0", sshKV, `port = 0`, "ssh.port", "out of range"),
		{name: "connect timeout 0", old: sshAt, new: `connect_timeout = "0s"`, at: "connect_timeout", key: "ssh.connect_timeout", word: "more than 0"},
		{name: "identity file missing", old: `identity_files = ["../.lab/id_ed25519"]`, new: `identity_files = ["/nonexistent/id_ed25519"]`, at: "identity_files", key: "ssh.identity_files[0]", word: "does not exist"},
		{name: "identity file public", old: `identity_files = ["../.lab/id_ed25519"]`, new: `identity_files = ["/nonexistent/id_ed25519.pub"]`, at: "identity_files", key: "ssh.identity_files[0]", word: "public key"},
		{name: "offline without the artifact dir", old: `artifact_dir = "../.lab/artifacts"`, new: `artifact_dir = "/nonexistent/artifacts"`, at: "artifact_dir = \"/nonexistent", key: "nats.artifact_dir", word: "does not exist"},
		{name: "known_hosts missing", old: `known_hosts = "../.lab/known_hosts"`, new: `known_hosts = "/nonexistent/known_hosts"`, at: "known_hosts", key: "ssh.known_hosts", word: "does not exist"},
		// [[hosts]].
		{name: "IPv4-mapped address of another host", old: `address = "172.31.253.12"`, new: `address = "::ffff:172.31.253.11"`, at: "::ffff:", key: "hosts[1].address", word: "also used by hosts[0]"},
		{name: "duplicate address", old: `address = "172.31.253.12"`, new: `address = "172.31.253.11"`, at: "address = \"172.31.253.11\"\n\n[[hosts]]\nname = \"nats-3\"", key: "hosts[1].address", word: "also used"},
		{name: "loopback beside other machines", old: host1At, new: `address = "127.0.0.1"`, at: "127.0.0.1", key: "hosts[0].address", word: "loopback"},
		{name: "unspecified IPv4", old: host1At, new: `address = "0.0.0.0"`, at: "0.0.0.0", key: "hosts[0].address", word: "unspecified"},
		{name: "unspecified IPv6", old: host1At, new: `address = "::"`, at: `"::"`, key: "hosts[0].address", word: "unspecified"},
		{name: "address with a user", old: host1At, new: `address = "deploy@172.31.253.11"`, at: "deploy@", key: "hosts[0].address", word: "ssh_user"},
		{name: "address with a port", old: host1At, new: `address = "172.31.253.11:22"`, at: ":22", key: "hosts[0].address", word: "port"},
		{name: "address a URL", old: host1At, new: `address = "ssh://172.31.253.11/"`, at: "ssh://", key: "hosts[0].address", word: "not a host"},
		{name: "host name with a space", old: `name = "nats-1"`, new: `name = "nats 1"`, at: `"nats 1"`, key: "hosts[0].name", word: "server name"},
		{name: "duplicate host name", old: `name = "nats-2"`, new: `name = "nats-1"`, at: "name = \"nats-1\"\naddress = \"172.31.253.12\"", key: "hosts[1].name", word: "also used"},
		kv("empty host ssh_user", host1, `ssh_user = ""`, "hosts[0].ssh_user", "is empty"),
		kv("host ssh port out of range", host1, `ssh_port = 99999`, "hosts[0].ssh_port", "out of range"),
		kv("host ssh port is the client port", host1, `ssh_port = 4222`, "hosts[0].ssh_port", "cannot share a port"),
		kv("nats as a string", host1, `nats = "no"`, "hosts[0].nats", "true or false"),
		{name: "two NATS hosts", old: "[[hosts]]\nname = \"nats-3\"\naddress = \"172.31.253.13\"\n", new: "", at: "[[hosts]]", key: "hosts", word: "quorum"},
		// [[accounts]] and users.
		{name: "account name with a space", old: `name = "DEV"`, new: `name = "D EV"`, at: `"D EV"`, key: "accounts[2].name", word: "account name"},
		{name: "account $G", old: `name = "DEV"`, new: `name = "$G"`, at: `"$G"`, key: "accounts[2].name", word: "global account"},
		{name: "duplicate account", old: `name = "PROD"`, new: `name = "DEV"`, at: "name = \"DEV\"\njetstream = { max_mem = \"1GB\", max_file = \"4GB\", max_streams = 1000, max_consumers = 10000 }\n  [[accounts.users]]\n  name = \"prod-user\"", key: "accounts[3].name", word: "already defined"},
		{name: "quota above the store", old: "name = \"DEV\"\njetstream = { max_mem = \"1GB\"", new: "name = \"DEV\"\njetstream = { max_mem = \"8GB\"", at: `"8GB"`, key: "accounts[2].jetstream.max_mem", word: "more than nats.max_memory_store"},
		{name: "max_streams 0", old: "name = \"DEV\"\njetstream = { max_mem = \"1GB\", max_file = \"4GB\", max_streams = 1000", new: "name = \"DEV\"\njetstream = { max_mem = \"1GB\", max_file = \"4GB\", max_streams = 0", at: "max_streams = 0", key: "accounts[2].jetstream.max_streams", word: "more than 0"},
		{name: "user name with a space", old: devAt, new: `  name = "dev user"`, at: `"dev user"`, key: "accounts[2].users[0].name", word: "user name"},
		{name: "user named natsdeploy", old: devAt, new: `  name = "natsdeploy"`, at: `"natsdeploy"`, key: "accounts[2].users[0].name", word: "cluster operations"},
		{name: "duplicate user", old: `  name = "prod-user"`, new: `  name = "dev-user"`, at: "name = \"dev-user\"\n  allow = [\"prod.*\"", key: "accounts[3].users[0].name", word: "already defined"},
		{name: "subject with an empty token", old: `"dev.*"`, new: `"dev..x"`, at: `"dev..x"`, key: "accounts[2].users[0].allow[0]", word: "not a valid subject"},
		{name: "subject with a space", old: `"dev.*"`, new: `"dev x"`, at: `"dev x"`, key: "accounts[2].users[0].allow[0]", word: "not a valid subject"},
		{name: "subject ending in a dot", old: `"dev.*"`, new: `"dev."`, at: `"dev."`, key: "accounts[2].users[0].allow[0]", word: "not a valid subject"},
		{name: "subject listed twice", old: `"logs.dev.*"`, new: `"dev.*"`, at: `"dev.*", "dev.*"`, key: "accounts[2].users[0].allow[1]", word: "listed twice"},
		{name: "user without allow", old: `  allow = [">", "$SYS.>", "$SYS.REQ.>"]`, new: "", at: "[[accounts.users]]\n  name = \"monitor-user\"", key: "accounts[4].users[0]", word: "no allow rule"},
		{name: "common password", old: devAt, new: devAt + "\n  password = \"password1234\"", at: "password1234", key: "accounts[2].users[0].password", word: "most common", hide: "password1234\""},
		{name: "password of one character", old: devAt, new: devAt + "\n  password = \"aaaaaaaaaaaa\"", at: "aaaaaaaaaaaa", key: "accounts[2].users[0].password", word: "different characters", hide: "aaaaaaaaaaaa"},
		{name: "password of six umlauts", old: devAt, new: devAt + "\n  password = \"ääääää\"", at: "ääääää", key: "accounts[2].users[0].password", word: "shorter than 12 characters", hide: "ääääää"},
		{name: "seed password", old: devAt, new: devAt + "\n  password = \"dev123\"", at: "dev123", key: "accounts[2].users[0].password", word: "seed", hide: "dev123"},
		{name: "password pasted into password_env", old: devAt, new: devAt + "\n  password_env = \"" + secret + "\"", at: "password_env", key: "accounts[2].users[0].password_env", word: "not an environment variable name", hide: secret},
		{name: "password and password_env", old: devAt, new: devAt + "\n  password = \"" + secret + "\"\n  password_env = \"NATSDEPLOY_CATALOGUE_UNSET\"", at: "password_env", key: "accounts[2].users[0].password_env", word: "both", hide: secret},
		{name: "password not a string", old: devAt, new: devAt + "\n  password = 918273645546", at: "918273645546", key: "accounts[2].users[0].password", word: "not shown", hide: "918273645546"},
		{name: "password breaking the TOML", old: devAt, new: devAt + "\n  password = trustNo1Passw0rd", at: "trustNo1", key: "", word: "fix the TOML syntax", hide: "trustNo"},
		{name: "JetStream for a system user", old: `  name = "sys-user"`, new: "  name = \"sys-user\"\n  jetstream = true", at: "jetstream = true\n  allow", key: "accounts[0].users[0].jetstream", word: "system account"},
		{name: "JetStream user in an account without", old: `  name = "user-service"`, new: "  name = \"user-service\"\n  jetstream = true", at: "jetstream = true\n  allow = [\"services.user", key: "accounts[5].users[0].jetstream", word: "has none"},
		{name: "unknown user key", old: devAt, new: devAt + "\n  passwd = \"x\"", at: "passwd", key: "accounts[2].users[0].passwd", word: "unknown key"},
		// [monitoring].
		{name: "monitoring host not a host", old: monAt, new: "[monitoring]\nhost = \"nats-9\"", at: `"nats-9"`, key: "monitoring.host", word: "not in [[hosts]]"},
		kv("prometheus on port 80", promKV, "port = 80", "monitoring.prometheus.port", "privileged"),
		kv("prometheus on the NATS http port", promKV, "port = 8222", "monitoring.prometheus.port", "is also nats.http_port"),
		{name: "scrape interval 100ms", old: `scrape_interval = "5s"`, new: `scrape_interval = "100ms"`, at: "scrape_interval", key: "monitoring.prometheus.scrape_interval", word: "minimum"},
		kv("rule file not yaml", promKV, `rule_files = ["rules.txt"]`, "monitoring.prometheus.rule_files[0]", ".yml or .yaml"),
		kv("prometheus version 3", promKV, `version = "3"`, "monitoring.prometheus.version", "release version"),
		{name: "grafana password inline", old: "[monitoring.grafana]\nenabled = false", new: "[monitoring.grafana]\nenabled = false\npassword = \"" + secret + "\"", at: "password =", key: "monitoring.grafana.password", word: "not written in the inventory", hide: secret},
		// [secrets]: how the secrets file is encrypted.
		sec("encrypt gpg", []string{`encrypt = "gpg"`}, `encrypt = "gpg"`, "secrets.encrypt", "not a way to encrypt"),
		sec("ssh-key without identity", []string{`encrypt = "ssh-key"`}, `encrypt = "ssh-key"`, "secrets.encrypt", "needs identity"),
		sec("identity with a passphrase", []string{`encrypt = "passphrase"`, `identity = "../.lab/id_ed25519"`}, `identity =`, "secrets.identity", `only used with encrypt = "ssh-key"`),
		sec("recipients without encrypt", []string{`recipients = ["../.lab/id_ed25519.pub"]`}, `recipients =`, "secrets.recipients", `only used with encrypt = "ssh-key"`),
		sec("passphrase_env with ssh-key", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519"`, `passphrase_env = "X"`}, `passphrase_env`, "secrets.passphrase_env", `only used with encrypt = "passphrase"`),
		{name: "passphrase pasted into passphrase_env", old: "[ssh]", new: "[secrets]\nencrypt = \"passphrase\"\npassphrase_env = \"" + secret + "\"\n[ssh]", at: "passphrase_env", key: "secrets.passphrase_env", word: "not an environment variable name", hide: secret},
		sec("passphrase variable unset", []string{`encrypt = "passphrase"`, `passphrase_env = "NATSDEPLOY_CATALOGUE_UNSET"`}, `passphrase_env`, "secrets.passphrase_env", "is not set"),
		sec("identity missing", []string{`encrypt = "ssh-key"`, `identity = "/nonexistent/id_ed25519"`}, `identity =`, "secrets.identity", "does not exist"),
		sec("identity a public key", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519.pub"`}, `identity =`, "secrets.identity", "is a public key"),
		sec("identity not a key", []string{`encrypt = "ssh-key"`, `identity = "../.lab/known_hosts"`}, `identity =`, "secrets.identity", "is not an SSH private key"),
		sec("recipient not a key", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519"`, `recipients = ["ssh-ed25519 AAAAnot-base64 me"]`}, `recipients =`, "secrets.recipients[0]", "is not an SSH public key"),
		sec("recipient an ECDSA key", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519"`, `recipients = ["` + ecdsaKey + `"]`}, `recipients =`, "secrets.recipients[0]", "age encrypts only to ssh-ed25519 and ssh-rsa keys"),
		sec("recipients file missing", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519"`, `recipients = ["/nonexistent/keys.pub"]`}, `recipients =`, "secrets.recipients[0]", "no such file"),
		sec("recipients empty", []string{`encrypt = "ssh-key"`, `identity = "../.lab/id_ed25519"`, `recipients = []`}, `recipients =`, "secrets.recipients", "is empty"),
		// TLS.
		kv("tls renew_before not under valid_for", tlsKV, `renew_before = "9000h"`, "tls.renew_before", "not shorter than valid_for"),
		kv("tls valid_for an hour", tlsKV, `valid_for = "1h"`, "tls.valid_for", "too short"),
		kv("tls ca_key without ca_cert", tlsKV, `ca_key = "ca-key.pem"`, "tls.ca_key", "without its certificate"),
		kv("tls trust file missing", tlsKV, `trust = ["/nonexistent/next-ca.pem"]`, "tls.trust[0]", "cannot be read"),
		kv("tls trust named twice", tlsKV, `trust = ["/etc/hostname", "/etc/hostname"]`, "tls.trust[1]", "named twice"),
		kv("tls trust empty name", tlsKV, `trust = [""]`, "tls.trust[0]", "an empty file name"),
		kv("tls unknown key", tlsKV, `monitoring_only = true`, "tls.monitoring_only", "unknown key"),
		kv("tls renew_before without a unit", tlsKV, `renew_before = "30"`, "tls.renew_before", "no unit"),
		kv("host tls_cert without its key", host1, `tls_cert = "n1.pem"`, "hosts[0].tls_cert", "only one of"),
		{name: "host certificate without ca_cert", old: host1At, new: host1At + "\ntls_cert = \"n1.pem\"\ntls_key = \"n1-key.pem\"", at: `tls_cert = "n1.pem"`, key: "hosts[0].tls_cert", word: "set [tls] ca_cert"},
		{name: "tls on for no listener", old: "clients = true\nroutes = true\nmonitoring = true", new: "clients = false\nroutes = false\nmonitoring = false", at: "[tls]", key: "tls", word: "turns on no listener"},
		// The file itself.
		{name: "secrets file is the inventory", old: "[ssh]", new: "secrets_file = \"inv.toml\"\n[ssh]", at: "secrets_file", key: "secrets_file", word: "inventory itself"},
		{name: "TOML syntax error", old: natsAt, new: `version = "2.14.9`, at: `version = "2.14.9`, key: "", word: "fix the TOML syntax"},
	}
	if len(cases) < 60 {
		t.Fatalf("the catalogue has %d bad inventories, want at least 60", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := labWith(t, tc.old, tc.new)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The temporary folder's name holds the test's: keep it out of
			// the search.
			shown := strings.ReplaceAll(string(text), filepath.Dir(path), "")
			i := strings.Index(shown, tc.at)
			if tc.at == "" || i < 0 {
				t.Fatalf("%q is not in the edited inventory", tc.at)
			}
			line := strings.Count(shown[:i], "\n") + 1
			prefix := fmt.Sprintf("inv.toml:%d: ", line)
			if tc.key != "" {
				prefix += tc.key + ": "
			}
			out, code := run("plan", path)
			if code != 2 || !strings.Contains(out, "nothing was changed") {
				t.Fatalf("exit %d, want 2 and \"nothing was changed\":\n%s", code, out)
			}
			var msg string
			for _, l := range strings.Split(out, "\n") {
				if j := strings.Index(l, prefix); j >= 0 {
					msg = l[j+len(prefix):]
					break
				}
			}
			if msg == "" || !strings.Contains(msg, tc.word) {
				t.Fatalf("want a line starting %q that says %q:\n%s", prefix, tc.word, out)
			}
			if tc.hide != "" && strings.Contains(out, tc.hide) {
				t.Fatalf("the output shows %q:\n%s", tc.hide, out)
			}
		})
	}
}

// Inventory paths that are no file are refused with exit 2, at once.
func TestInventoryNotAFileExitsTwo(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "inv.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", t.TempDir()} {
		out, code := run("plan", p)
		if code != 2 || !strings.Contains(out, p) || !strings.Contains(out, "not a file") {
			t.Errorf("plan %s: exit %d, want 2 naming it:\n%s", p, code, out)
		}
	}
}

// A private key others can read is refused before it is offered, as
// OpenSSH would: exit 2, its path and the chmod to run.
func TestReadableIdentityFileExitsTwo(t *testing.T) {
	inv := labWith(t, "", "")
	key := filepath.Join(filepath.Dir(inv), "id_ed25519")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := run("plan", inv)
	if code != 2 || !strings.Contains(out, "ssh.identity_files[0]: identity file "+key+" has mode 0644") || !strings.Contains(out, "chmod 600 "+key) {
		t.Fatalf("exit %d, want 2 naming the key and the chmod:\n%s", code, out)
	}
}
