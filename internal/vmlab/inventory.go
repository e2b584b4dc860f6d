package vmlab

import (
	"fmt"
	"strings"
)

// Placeholder is the address a Multipass lab's inventory holds until `lab
// addresses` fills it in. The .invalid top-level domain never resolves
// (RFC 2606), so an apply run too early fails on the name, not on some
// other machine.
func Placeholder(name string) string { return name + ".invalid" }

// inventoryText is the lab's inventory: the seed's tenants as in
// inventory/lab.toml, monitoring on nats-1 with Prometheus.
func inventoryText(o Options, provider, header string, addrs []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# A %d-VM %s lab, written by natsdeploy lab %s (see README.md beside it).
%s#
# Paths are relative to this file. Passwords are not written here: each one
# is generated on the first apply and kept in inventory.secrets.toml (0600).

[ssh]
user = %q                         # created with passwordless sudo at boot
identity_files = [%q]
known_hosts = "known_hosts"             # each VM's host key, generated with this file
connect_timeout = "10s"

[nats]
version = "2.14.9"
cluster_name = "nats-cluster"
max_memory_store = "1GB"                # at least the accounts' quotas added up,
max_file_store = "4GB"                  # so that --nodes 1 starts too
log_max_size = "100MB"
log_max_files = 5
`, o.Nodes, providerTitle(provider), provider, header, User, o.IdentityFile)
	for i, a := range addrs {
		comment := ""
		if a == Placeholder(NodeName(i+1)) {
			comment = "  # placeholder until: natsdeploy lab addresses DIR"
		}
		fmt.Fprintf(&b, "\n[[hosts]]\nname = %q\naddress = %q%s\n", NodeName(i+1), a, comment)
	}
	b.WriteString(tenants)
	return []byte(b.String())
}

func providerTitle(p string) string {
	if p == "multipass" {
		return "Multipass"
	}
	return "Vagrant"
}

// tenants is inventory/lab.toml's tenants and monitoring, with the services
// whose release files natsdeploy cannot fetch unasked (Grafana needs its
// file and sha256 named) left off.
const tenants = `
# ---- Tenants (the seed's accounts) ----

[[accounts]]
name = "SYS"
system = true
  [[accounts.users]]
  name = "sys-user"
  allow = ["$SYS.>"]
  request_reply = true

[[accounts]]
name = "ADMIN"
jetstream = { max_mem = "256MB", max_file = "1GB", max_streams = 1000, max_consumers = 10000 }
  [[accounts.users]]
  name = "admin"
  allow = [">"]

[[accounts]]
name = "DEV"
jetstream = { max_mem = "256MB", max_file = "1GB", max_streams = 1000, max_consumers = 10000 }
  [[accounts.users]]
  name = "dev-user"
  allow = ["dev.*", "logs.dev.*", "metrics.dev.*"]
  jetstream = true
  request_reply = true

[[accounts]]
name = "PROD"
jetstream = { max_mem = "256MB", max_file = "1GB", max_streams = 1000, max_consumers = 10000 }
  [[accounts.users]]
  name = "prod-user"
  allow = ["prod.*", "logs.prod.*", "metrics.prod.*", "alerts.*"]
  jetstream = true
  request_reply = true

[[accounts]]
name = "MONITORING"
jetstream = { max_mem = "256MB", max_file = "1GB", max_streams = 1000, max_consumers = 10000 }
  [[accounts.users]]
  name = "monitor-user"
  allow = [">", "$SYS.>", "$SYS.REQ.>"]

[[accounts]]
name = "SERVICES"
  [[accounts.users]]
  name = "user-service"
  allow = ["services.user.>", "events.user.>", "notifications.user.>"]
  request_reply = true

  [[accounts.users]]
  name = "order-service"
  allow = ["services.order.>", "events.order.>", "notifications.order.>"]
  request_reply = true

  [[accounts.users]]
  name = "payment-service"
  allow = ["services.payment.>", "events.payment.>", "notifications.payment.>"]
  request_reply = true

  [[accounts.users]]
  name = "notification-service"
  allow = ["notifications.send.>", "events.notification.>"]
  request_reply = true

# ---- Monitoring ----
[monitoring]
host = "nats-1"

[monitoring.prometheus]
enabled = true
scrape_interval = "5s"

# Off so that a first apply needs nothing but nats-server's and Prometheus's
# official downloads; set enabled = true to add them (Grafana also needs its
# file and sha256, see inventory/example.toml).
[monitoring.exporter]
enabled = false

[monitoring.surveyor]
enabled = false

[monitoring.grafana]
enabled = false
`
