// Package surveyor is the role that runs nats-surveyor on the monitoring
// host: one client of the system account that polls every server's
// statistics and serves them as nats_* series. It runs when the inventory
// has [monitoring] and the surveyor is enabled.
//
// It logs in as inventory.SurveyorUser, a user the nats role adds to the
// system account with the hash of nats.SurveyorSlot. The password reaches
// nats-surveyor in its config file, 0600 and owned by its own user, read
// through --config: not on the command line (ps, systemctl status) and not
// in the environment (/proc/PID/environ, `systemctl show` for
// Environment=). The surveyor logs the config file's path, not its content.
package surveyor

import (
	"context"
	"encoding/json"
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
	User       = "nats-surveyor"
	Service    = "nats-surveyor.service"
	BinaryPath = "/usr/local/bin/nats-surveyor"
	UnitPath   = "/etc/systemd/system/" + Service
	ConfigDir  = "/etc/nats-surveyor"
	// ConfigPath is the name nats-surveyor would also find on its own in
	// ConfigDir; --config names it anyway so no other extension there
	// (nats-surveyor.json, .toml) is picked instead.
	ConfigPath = ConfigDir + "/nats-surveyor.yaml"
	// CAPath is the CA bundle the surveyor trusts the nodes' client port
	// with when [tls] clients is on (--tlscacert).
	CAPath = ConfigDir + "/ca.pem"
	// WorkDir is its working directory and home: empty, its own.
	WorkDir = "/var/lib/nats-surveyor"
)

// ReleaseURL is where nats-surveyor releases are published; a release's
// files are at ReleaseURL/vX.Y.Z/NAME.
const ReleaseURL = "https://github.com/nats-io/nats-surveyor/releases/download"

// ArtifactName is the artifact's name in role.Input.Artifacts, and its
// folder under artifact_dir.
const ArtifactName = "nats-surveyor"

// SumsFile is the release's checksum file.
const SumsFile = "SHA256SUMS"

// Role is nats-surveyor on the monitoring host.
type Role struct{}

var _ role.Role = Role{}

func (Role) Name() string { return "surveyor" }

func (Role) Hosts(inv *inventory.Inventory) []inventory.Host {
	return inv.OnMonitoringHost(inv.RunsSurveyor())
}

// assetArch spells a Go architecture the way the surveyor's release names
// do (goreleaser's {{.Arch}}{{if .Arm}}v{{.Arm}}{{end}}); "" for one it
// does not publish for Linux.
func assetArch(goarch string) string {
	switch goarch {
	case "amd64", "arm64", "386":
		return goarch
	case "arm6":
		return "armv6"
	case "arm7":
		return "armv7"
	}
	return ""
}

// Artifacts: the release archive for arch, whose files sit in a folder of
// the archive's own name. Layout under artifact_dir, the same as below the
// release URL:
//
//	nats-surveyor/vX.Y.Z/nats-surveyor-vX.Y.Z-linux-amd64.tar.gz
//	nats-surveyor/vX.Y.Z/SHA256SUMS
func (Role) Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error) {
	m := inv.Monitoring
	if m == nil {
		return nil, nil
	}
	sp, err := artifact.Spell(ArtifactName, m.Surveyor.Version, arch, assetArch, "monitoring.surveyor")
	if err != nil {
		return nil, err
	}
	url := m.ReleaseBase(ArtifactName, ReleaseURL)
	base := fmt.Sprintf("%s-%s-linux-%s", ArtifactName, sp.Tag, sp.Arch)
	return []artifact.Release{{
		Dir:     m.ArtifactDir,
		BaseURL: url,
		Name:    ArtifactName,
		Tag:     sp.Tag,
		Version: sp.Version,
		Asset:   base + ".tar.gz",
		Sums:    SumsFile,
		Member:  base + "/nats-surveyor",
		Target:  "linux-" + sp.GoArch,
		Hint:    "https://github.com/nats-io/nats-surveyor/releases/tag/" + sp.Tag,
		Setting: "monitoring.download_url",
	}}, nil
}

// Secrets: the surveyor's NATS password, the same slot the nats role
// hashes into the system account.
func (Role) Secrets(inv *inventory.Inventory) []secretstore.Slot {
	if !inv.RunsSurveyor() {
		return nil
	}
	return []secretstore.Slot{nats.SurveyorSlot}
}

// placeholderPassword stands in when the engine renders only to see what
// the role claims, before any secret is resolved.
const placeholderPassword = "-"

func (Role) Desired(in role.Input) (desired.Host, error) {
	if !in.Inv.RunsSurveyor() {
		return desired.Host{}, fmt.Errorf("surveyor on %s: the inventory does not deploy it", in.Host.Name)
	}
	b := in.Binary(ArtifactName, in.Inv.Monitoring.Surveyor.Version)
	if b.Path == "" || b.SHA256 == "" {
		return desired.Host{}, fmt.Errorf("surveyor on %s: no verified nats-surveyor binary", in.Host.Name)
	}
	password := placeholderPassword
	if in.Secrets != nil {
		password = in.Secrets.Secret(nats.SurveyorSlot.Name)
		if password == "" {
			return desired.Host{}, fmt.Errorf("surveyor on %s: no password for the surveyor's user: the secrets were opened without slot %q", in.Host.Name, nats.SurveyorSlot.Name)
		}
	}
	r, err := Render(in.Inv, password)
	if err != nil {
		return desired.Host{}, fmt.Errorf("surveyor on %s: %w", in.Host.Name, err)
	}
	port := in.Inv.Monitoring.Surveyor.Port
	h := desired.Host{
		Name:  in.Host.Name,
		Users: []desired.User{{Name: User, Home: WorkDir, Shell: "/usr/sbin/nologin"}},
		Dirs: []desired.Dir{
			{Path: ConfigDir, Owner: "root", Group: User, Mode: fs.ModeDir | 0o750},
			// Whatever it writes there is of no use once it is gone.
			{Path: WorkDir, Owner: User, Group: User, Mode: fs.ModeDir | 0o750, Holds: desired.Runtime},
		},
		Files: []desired.File{
			{
				Path: BinaryPath, Source: b.Path, SHA256: b.SHA256,
				Mode: 0o755, Owner: "root", Group: "root",
				Service: Service, OnChange: desired.Restart,
			},
			{
				// The only client secret on any host: readable by the
				// surveyor's user alone, and never shown by plan.
				Path: ConfigPath, Content: r.Config, SHA256: sum(r.Config),
				Mode: 0o600, Owner: User, Group: User,
				Sensitive: true,
				Service:   Service, OnChange: desired.Restart,
			},
			{
				Path: UnitPath, Content: r.Unit, SHA256: sum(r.Unit),
				Mode: 0o644, Owner: "root", Group: "root",
				Service: Service, OnChange: desired.Restart,
			},
		},
		Units: []desired.Unit{{
			Name:     Service,
			UnitFile: UnitPath,
			Ready:    readyGate(port),
			// Its ready gate wants nats_up 1.
			After: []string{nats.Service},
			// cmd/root.go sets cobra's Version: --version prints
			// "nats-surveyor version vX".
			Version:    strings.TrimPrefix(in.Inv.Monitoring.Surveyor.Version, "v"),
			VersionCmd: BinaryPath + " --version",
		}},
		Ports: []desired.Port{{Number: port, Key: "monitoring.surveyor.port"}},
	}
	if in.Inv.TLS.ClientsOn() {
		// Public certificates only: the surveyor logs in with its
		// password, so it presents no certificate and gets no key.
		trust := placeholderTrust
		if in.TLS != nil {
			trust = in.TLS.Trust
		}
		h.Files = append(h.Files, desired.File{
			Path: CAPath, Content: trust, SHA256: sum(trust),
			Mode: 0o644, Owner: "root", Group: "root",
			// Read once, when the surveyor connects: a new CA needs a
			// restart to be trusted.
			Service: Service, OnChange: desired.Restart,
		})
	}
	return h, nil
}

// placeholderTrust stands in for the CA bundle when the engine renders
// only to see what the role claims, before the TLS material is opened.
var placeholderTrust = []byte("-\n")

// Rendered are the surveyor's rendered files.
type Rendered struct {
	Config []byte // ConfigPath, holds the password
	Unit   []byte // UnitPath
}

// Servers is the comma-separated client URL of every NATS node: the
// surveyor needs one to connect and fails over to the others. tls://
// when [tls] clients is on, so nats.go insists on TLS and checks each
// node's certificate against the address dialled (one of its names).
func Servers(inv *inventory.Inventory) string {
	scheme := "nats://"
	if inv.TLS.ClientsOn() {
		scheme = "tls://"
	}
	var urls []string
	for _, h := range inv.NATSHosts() {
		urls = append(urls, scheme+net.JoinHostPort(h.Address, strconv.Itoa(inv.NATS.ClientPort)))
	}
	return strings.Join(urls, ",")
}

// ExecStart is the surveyor's command line; it carries no secret.
// --count is the cluster size, so nats_survey_surveyed_count below
// nats_survey_expected_count means a node did not answer. --jsz all and
// --accounts give the nats_stream_*, nats_consumer_* and
// nats_core_account_* series the NATS Surveyor dashboard queries.
// --tlscacert (TLS on the client port) is the CA bundle nats.go trusts the
// nodes with; not --tlscert/--tlskey, which would present a client
// certificate the client port does not ask for. Its /metrics stays http:
// Prometheus reads it on this host's loopback.
func ExecStart(inv *inventory.Inventory) string {
	args := []string{
		BinaryPath,
		"--config", ConfigPath,
		"--servers", Servers(inv),
		"--count", strconv.Itoa(len(inv.NATSHosts())),
		"--port", strconv.Itoa(inv.Monitoring.Surveyor.Port),
		"--addr", "0.0.0.0",
		"--jsz", "all",
		"--accounts",
	}
	if inv.TLS.ClientsOn() {
		args = append(args, "--tlscacert", CAPath)
	}
	return strings.Join(args, " ")
}

type configData struct{ User, Password string }

type unitData struct {
	ExecStart, Config, WorkDir, User, Group string
}

// Render renders the config file and the unit. Output depends only on the
// arguments, so an unchanged inventory and password give unchanged bytes.
func Render(inv *inventory.Inventory, password string) (Rendered, error) {
	var r Rendered
	if password == "" {
		return r, fmt.Errorf("empty password for the surveyor's user")
	}
	cfg, err := render("surveyor/nats-surveyor.yaml.tmpl", configData{
		User: yamlString(inventory.SurveyorUser), Password: yamlString(password),
	})
	if err != nil {
		return r, err
	}
	unit, err := render("surveyor/nats-surveyor.service.tmpl", unitData{
		ExecStart: ExecStart(inv), Config: ConfigPath, WorkDir: WorkDir, User: User, Group: User,
	})
	if err != nil {
		return r, err
	}
	return Rendered{Config: cfg, Unit: unit}, nil
}

// yamlString quotes s as a JSON string, which YAML reads as a
// double-quoted scalar with the same escapes, whatever characters a
// password from the environment holds.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func metricsURL(port int) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/metrics"
}

// readyGate: /metrics with nats_up 1, so a surveyor that listens but cannot
// log in (a wrong password, a missing user) fails the apply instead of
// serving nats_up 0. Not /healthz: not every release serves it, and it
// says nothing about the NATS connection.
func readyGate(port int) *desired.Gate {
	return &desired.Gate{
		Desc: "/metrics nats_up 1",
		Check: func(ctx context.Context, n desired.Node) error {
			url := metricsURL(port)
			body, code, err := health.Get(ctx, n.Remote.HTTPClient(), url)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("%s answered %d: %s", url, code, health.Trim(body))
			}
			up, ok := Sample(body, "nats_up")
			switch {
			case !ok:
				return fmt.Errorf("%s has no nats_up", url)
			case up != 1:
				return fmt.Errorf("%s: nats_up is %g: the surveyor is not connected to NATS (see its journal)", url, up)
			}
			return nil
		},
	}
}

// Sample returns the value of the first sample of metric in a Prometheus
// text exposition, with or without labels.
func Sample(body []byte, metric string) (float64, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

// CheckServers is the verifier's check: the surveyor sees every NATS node.
const CheckServers = "surveyor/servers"

// Verify checks that the surveyor's /metrics answers and that
// nats_survey_surveyed_count equals the inventory's NATS hosts.
func (r Role) Verify(ctx context.Context, env role.Env) []report.Result {
	var out []report.Result
	for _, h := range r.Hosts(env.Inv) {
		out = append(out, verifyHost(ctx, env, h))
	}
	return out
}

func verifyHost(ctx context.Context, env role.Env, h inventory.Host) report.Result {
	want := len(env.Inv.NATSHosts())
	url := metricsURL(env.Inv.Monitoring.Surveyor.Port)
	res := report.Result{Check: CheckServers, Target: h.Name,
		Expected: fmt.Sprintf("%s: nats_survey_surveyed_count %d", url, want)}
	rem := env.Remote(h.Name)
	if rem == nil {
		res.Skipped, res.Seen = true, "not connected"
		return res
	}
	res.OK, res.Seen = checkServers(ctx, rem.HTTPClient(), url, want)
	return res
}

func checkServers(ctx context.Context, c *http.Client, url string, want int) (bool, string) {
	body, code, err := health.Get(ctx, c, url)
	switch {
	case err != nil:
		return false, err.Error()
	case code != http.StatusOK:
		return false, fmt.Sprintf("HTTP %d: %s", code, health.Trim(body))
	}
	if up, ok := Sample(body, "nats_up"); ok && up != 1 {
		return false, fmt.Sprintf("nats_up %g: the surveyor is not connected to NATS", up)
	}
	got, ok := Sample(body, "nats_survey_surveyed_count")
	if !ok {
		return false, "no nats_survey_surveyed_count in /metrics"
	}
	if got != float64(want) {
		return false, fmt.Sprintf("nats_survey_surveyed_count %g: %g of %d servers answered", got, got, want)
	}
	return true, fmt.Sprintf("nats_survey_surveyed_count %g", got)
}

func render(name string, data any) ([]byte, error) { return files.Render(name, data, nil) }

func sum(b []byte) string { return files.SHA256(b) }
