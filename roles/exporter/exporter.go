// Package exporter is the role that runs prometheus-nats-exporter beside
// every NATS node: it reads the node's monitoring port on loopback and
// serves the gnatsd_* and jetstream_* series the dashboards and alert rules
// query. It runs when the inventory has [monitoring] and the exporter is
// enabled.
package exporter

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/natsdeploy/natsdeploy/files"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	secretstore "github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// Fixed names and paths on the host.
const (
	// User runs the exporter. Named after the program, like nats for
	// nats-server; it owns nothing, since the exporter writes nothing.
	User       = "nats-exporter"
	Service    = "prometheus-nats-exporter.service"
	BinaryPath = "/usr/local/bin/prometheus-nats-exporter"
	UnitPath   = "/etc/systemd/system/" + Service

	// ConfigDir holds the CA bundle when the monitoring port is https;
	// nothing else, and nothing secret.
	ConfigDir = "/etc/prometheus-nats-exporter"
	// CAPath is the CA bundle the exporter trusts the node's https
	// monitoring port with.
	CAPath = ConfigDir + "/ca.pem"

	// natsUnit is nats-server's unit, which the exporter starts after.
	natsUnit = "nats-server.service"
)

// ReleaseURL is where the exporter's releases are published; a release's
// files are at ReleaseURL/vX.Y.Z/NAME.
const ReleaseURL = "https://github.com/nats-io/prometheus-nats-exporter/releases/download"

// ArtifactName is the artifact's name in role.Input.Artifacts, and its
// folder under artifact_dir.
const ArtifactName = "prometheus-nats-exporter"

// SumsFile is the release's checksum file (goreleaser's checksum
// name_template).
const SumsFile = "checksums.txt"

// Collectors are the exporter's collector flags. Without any the exporter
// exits, so they are given explicitly: varz (server, JetStream usage and
// limits), connz, routez, subz and healthz for the Servers, Overview and
// Exporter dashboards and the alert rules; jsz=all for the per-stream and
// per-consumer jetstream_* series of the JetStream dashboard. -accstatz is
// left out: no dashboard or rule reads gnatsd_accstatz_*, and per-account
// numbers come from the surveyor (--accounts).
var Collectors = []string{"-varz", "-connz", "-routez", "-subz", "-healthz", "-jsz=all"}

// Role is prometheus-nats-exporter on every NATS host.
type Role struct{}

var _ role.Role = Role{}

func (Role) Name() string { return "exporter" }

// Hosts: every NATS node, when the inventory monitors and the exporter is
// on; a host without nats-server has nothing to export.
func (Role) Hosts(inv *inventory.Inventory) []inventory.Host {
	if inv.Monitoring == nil || !inv.Monitoring.Exporter.On() {
		return nil
	}
	return inv.NATSHosts()
}

// assetArch spells a Go architecture the way the exporter's release names
// do (its .goreleaser.yml: amd64 is x86_64, 386 is i386, arm carries v6 or
// v7); "" for one it does not publish for Linux.
func assetArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "386":
		return "i386"
	case "arm64", "s390x":
		return goarch
	case "arm6":
		return "armv6"
	case "arm7":
		return "armv7"
	}
	return ""
}

// Artifacts: the release archive for arch. The binary sits at the archive's
// root (no wrap_in_directory). Layout under artifact_dir, the same as below
// the release URL:
//
//	prometheus-nats-exporter/vX.Y.Z/prometheus-nats-exporter-vX.Y.Z-linux-x86_64.tar.gz
//	prometheus-nats-exporter/vX.Y.Z/checksums.txt
func (Role) Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error) {
	m := inv.Monitoring
	if m == nil {
		return nil, nil
	}
	sp, err := artifact.Spell(ArtifactName, m.Exporter.Version, arch, assetArch, "monitoring.exporter")
	if err != nil {
		return nil, err
	}
	url := m.ReleaseBase(ArtifactName, ReleaseURL)
	return []artifact.Release{{
		Dir:     m.ArtifactDir,
		BaseURL: url,
		Name:    ArtifactName,
		Tag:     sp.Tag,
		Version: sp.Version,
		Asset:   fmt.Sprintf("%s-%s-linux-%s.tar.gz", ArtifactName, sp.Tag, sp.Arch),
		Sums:    SumsFile,
		Member:  "prometheus-nats-exporter",
		Target:  "linux-" + sp.GoArch,
		Hint:    "https://github.com/nats-io/prometheus-nats-exporter/releases/tag/" + sp.Tag,
		Setting: "monitoring.download_url",
	}}, nil
}

// Secrets: none; the exporter reads an unauthenticated loopback port.
func (Role) Secrets(*inventory.Inventory) []secretstore.Slot { return nil }

func (Role) Desired(in role.Input) (desired.Host, error) {
	if in.Inv.Monitoring == nil {
		return desired.Host{}, fmt.Errorf("exporter on %s: the inventory has no [monitoring]", in.Host.Name)
	}
	b := in.Binary(ArtifactName, in.Inv.Monitoring.Exporter.Version)
	if b.Path == "" || b.SHA256 == "" {
		return desired.Host{}, fmt.Errorf("exporter on %s: no verified prometheus-nats-exporter binary", in.Host.Name)
	}
	unit, err := RenderUnit(in.Inv)
	if err != nil {
		return desired.Host{}, fmt.Errorf("exporter on %s: %w", in.Host.Name, err)
	}
	port := in.Inv.Monitoring.Exporter.Port
	h := desired.Host{
		Name: in.Host.Name,
		// No home of its own: / is not writable under ProtectSystem and
		// the exporter writes nothing.
		Users: []desired.User{{Name: User, Home: "/nonexistent", Shell: "/usr/sbin/nologin"}},
		Files: []desired.File{
			{
				Path: BinaryPath, Source: b.Path, SHA256: b.SHA256,
				Mode: 0o755, Owner: "root", Group: "root",
				Service: Service, OnChange: desired.Restart,
			},
			{
				Path: UnitPath, Content: unit, SHA256: sum(unit),
				Mode: 0o644, Owner: "root", Group: "root",
				Service: Service, OnChange: desired.Restart,
			},
		},
		Units: []desired.Unit{{
			Name:     Service,
			UnitFile: UnitPath,
			Ready:    readyGate(port),
			// It reads its node's monitoring endpoint from the start.
			After: []string{nats.Service},
			// main.go: -version prints "prometheus-nats-exporter version X".
			Version:    strings.TrimPrefix(in.Inv.Monitoring.Exporter.Version, "v"),
			VersionCmd: BinaryPath + " -version",
		}},
		Ports: []desired.Port{{Number: port, Key: "monitoring.exporter.port"}},
	}
	if in.Inv.TLS.MonitoringOn() {
		// Public certificates only: the exporter is a client of the
		// node's https port and presents no certificate of its own (its
		// collectors have no way to), so no key comes here.
		trust := placeholderTrust
		if in.TLS != nil {
			trust = in.TLS.Trust
		}
		h.Dirs = append(h.Dirs, desired.Dir{Path: ConfigDir, Owner: "root", Group: "root", Mode: fs.ModeDir | 0o755})
		h.Files = append(h.Files, desired.File{
			Path: CAPath, Content: trust, SHA256: sum(trust),
			Mode: 0o644, Owner: "root", Group: "root",
			// Go reads its roots once per process: a new CA needs a
			// restart to be trusted.
			Service: Service, OnChange: desired.Restart,
		})
	}
	return h, nil
}

// placeholderTrust stands in for the CA bundle when the engine renders
// only to see what the role claims, before the TLS material is opened.
var placeholderTrust = []byte("-\n")

// ExecStart is the exporter's command line: the collectors, the listener,
// and the node's monitoring URL on loopback, https when [tls] monitoring
// is on (127.0.0.1 is among the names of every node's certificate). No -prefix: it would rename
// jetstream_* onto the surveyor's names. No -use_internal_server_name: it
// makes the exporter wait for /varz before it listens, so a node that is
// down would also take its exporter's /metrics away; the server_id label
// it would set is not needed, since Prometheus labels each target with the
// inventory's host name.
func ExecStart(inv *inventory.Inventory) string {
	args := []string{BinaryPath, "-port", strconv.Itoa(inv.Monitoring.Exporter.Port), "-addr", "0.0.0.0"}
	args = append(args, Collectors...)
	args = append(args, MonitorURL(inv))
	return strings.Join(args, " ")
}

// MonitorURL is the node's monitoring port as the exporter reads it.
func MonitorURL(inv *inventory.Inventory) string {
	scheme := "http"
	if inv.TLS.MonitoringOn() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(inv.NATS.HTTPPort))
}

type unitData struct {
	ExecStart, User, Group, NATSUnit string
	// CAFile and CADir are set when the monitoring port is https: see
	// the template.
	CAFile, CADir string
}

// RenderUnit renders prometheus-nats-exporter.service; it depends only on
// the inventory, so it is the same on every host.
func RenderUnit(inv *inventory.Inventory) ([]byte, error) {
	d := unitData{ExecStart: ExecStart(inv), User: User, Group: User, NATSUnit: natsUnit}
	if inv.TLS.MonitoringOn() {
		d.CAFile, d.CADir = CAPath, ConfigDir
	}
	return render("exporter/prometheus-nats-exporter.service.tmpl", d)
}

func metricsURL(port int) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/metrics"
}

// readyGate: the exporter has no /healthz of its own; /metrics answering
// 200 means it listens and its collectors are registered.
func readyGate(port int) *desired.Gate {
	return &desired.Gate{
		Desc: "/metrics",
		Check: func(ctx context.Context, n desired.Node) error {
			return health.OK(ctx, n.Remote.HTTPClient(), metricsURL(port))
		},
	}
}

// CheckMetrics is the verifier's check: "exporter/metrics" on each host
// that runs the exporter, one row per host.
const CheckMetrics = "exporter/metrics"

// varzSeries proves the exporter reaches its node: without the node's
// /varz it serves no gnatsd_varz_ series at all.
const varzSeries = "gnatsd_varz_"

// Verify checks on every host that runs the exporter that /metrics answers
// and carries the node's gnatsd_varz_ series.
func (r Role) Verify(ctx context.Context, env role.Env) []report.Result {
	var out []report.Result
	for _, h := range r.Hosts(env.Inv) {
		out = append(out, verifyHost(ctx, env, h))
	}
	return out
}

func verifyHost(ctx context.Context, env role.Env, h inventory.Host) report.Result {
	url := metricsURL(env.Inv.Monitoring.Exporter.Port)
	res := report.Result{Check: CheckMetrics, Target: h.Name, Expected: url + " answers 200 with " + varzSeries + "* series"}
	rem := env.Remote(h.Name)
	if rem == nil {
		res.Skipped, res.Seen = true, "not connected"
		return res
	}
	res.OK, res.Seen = checkMetrics(ctx, rem.HTTPClient(), url)
	return res
}

// checkMetrics returns whether url serves the node's series, and what was
// seen either way.
func checkMetrics(ctx context.Context, c *http.Client, url string) (bool, string) {
	body, code, err := health.Get(ctx, c, url)
	switch {
	case err != nil:
		return false, err.Error()
	case code != http.StatusOK:
		return false, fmt.Sprintf("HTTP %d: %s", code, health.Trim(body))
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, varzSeries) {
			n++
		}
	}
	if n == 0 {
		return false, "HTTP 200 but no " + varzSeries + " series: the exporter does not reach the node's monitoring port"
	}
	return true, fmt.Sprintf("%d %s samples", n, varzSeries)
}

func render(name string, data any) ([]byte, error) { return files.Render(name, data, nil) }

func sum(b []byte) string { return files.SHA256(b) }
