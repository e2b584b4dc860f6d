package nats

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/shell"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

// The gates the engine waits on for nats-server. All of them read the
// node's monitoring port on the host's loopback, through the SSH
// connection.

// readyGate: without parameters /healthz on a JetStream node waits for the
// meta leader and every local replica to catch up, the gate a rolling
// restart needs before the next node goes.
func readyGate(mon Mon) *desired.Gate {
	return &desired.Gate{
		Desc: "/healthz",
		Check: func(ctx context.Context, n desired.Node) error {
			return monitor.Healthz(ctx, mon.Of(n.Remote))
		},
	}
}

// reloadGate: `nats-server -t` prints "... is valid (sha256:HEX)" for the
// config on disk and /varz reports the running config's config_digest in
// the same form; equal means a reload took effect (nats-server only logs a
// reload it refused).
//
// The digest covers the config text, not the certificate files it names,
// so with TLS on the node must also serve the certificate on disk (cert):
// a renewal is in service only then.
func reloadGate(mon Mon, config, cert string) *desired.ReloadGate {
	desc := "config_digest"
	if cert != "" {
		desc += " and the certificate served"
	}
	return &desired.ReloadGate{
		Desc: desc,
		Want: func(ctx context.Context, n desired.Node) (string, error) {
			return DiskDigest(ctx, n.Remote, config)
		},
		Check: func(ctx context.Context, n desired.Node, want string) error {
			got, err := monitor.Digest(ctx, mon.Of(n.Remote))
			if err != nil {
				return err
			}
			if !monitor.SameDigest(got, want) {
				return fmt.Errorf("config_digest is %q, want %q (the reload did not take effect)", got, want)
			}
			if cert == "" {
				return nil
			}
			served, err := mon.ServedFingerprint(ctx, n.Remote)
			if err != nil {
				return fmt.Errorf("certificate served: %w", err)
			}
			if served != cert {
				return fmt.Errorf("serves certificate %.16s..., want %.16s... (the renewed certificate is not in service)", served, cert)
			}
			return nil
		},
	}
}

// metaGate: a node that answers /healthz is not yet counted back in by the
// JetStream meta leader; R3 placement and the next restart wait for that.
// Routes come first: after a reload of route credentials each node drops
// and re-solicits its routes, and the meta leader's "current" view lags a
// lost route by seconds. It relies on the host name being the node's
// server_name, as Render makes it.
func metaGate(mon Mon) *desired.ClusterGate {
	return &desired.ClusterGate{
		Desc: "every node routes to every other; the JetStream meta leader sees every node current",
		Check: func(ctx context.Context, nodes []desired.Node) error {
			gets := make([]monitor.Get, len(nodes))
			names := make([]string, len(nodes))
			for i, n := range nodes {
				gets[i], names[i] = mon.Of(n.Remote), n.Name
			}
			if err := monitor.RoutesWhole(ctx, gets, names); err != nil {
				return err
			}
			return monitor.MetaSettled(ctx, gets, names)
		},
	}
}

// leaderGate: the JetStream meta leader restarts last. Restarted first, it
// would hand leadership to a node the roll takes down later, which hands
// it on again: an election, and a moment without a meta leader, per step
// instead of once. Like metaGate it relies on host name == server_name.
func leaderGate(mon Mon) *desired.OrderGate {
	return &desired.OrderGate{
		Desc: "the JetStream meta leader",
		Last: func(ctx context.Context, nodes []desired.Node) (string, error) {
			gets := make([]monitor.Get, len(nodes))
			names := make([]string, len(nodes))
			for i, n := range nodes {
				gets[i], names[i] = mon.Of(n.Remote), n.Name
			}
			return monitor.MetaLeader(ctx, gets, names)
		},
	}
}

// DigestCmd prints, on stderr, the digest of the config on disk, parsed as
// the service user would read it.
// From the config's folder, the service's working directory: the
// certificate paths in it are relative.
func DigestCmd(config string) string {
	return "cd " + shell.Quote(path.Dir(config)) + " && runuser -u " + User + " -- " + BinaryPath + " -t -c " + shell.Quote(path.Base(config))
}

// DiskDigest asks the host's nats-server for the digest of the config on
// disk; the running server's /varz config_digest must equal it.
func DiskDigest(ctx context.Context, r desired.Remote, config string) (string, error) {
	out, err := r.Exec(ctx, DigestCmd(config)+" 2>&1")
	if err != nil {
		return "", fmt.Errorf("%s: %w %s", DigestCmd(config), err, strings.TrimSpace(out))
	}
	d := ParseDigest(out)
	if d == "" {
		return "", fmt.Errorf("no digest in %q", strings.TrimSpace(out))
	}
	return d, nil
}

var digestRe = regexp.MustCompile(`\((sha256:[0-9a-f]{64})\)`)

// ParseDigest finds the digest in nats-server -t output:
// "nats-server: configuration file X is valid (sha256:...)".
func ParseDigest(out string) string {
	m := digestRe.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}
