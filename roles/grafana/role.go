package grafana

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/natsdeploy/natsdeploy/files"
	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

// Fixed names and paths on the monitoring host. Everything Grafana reads
// is below ConfigDir (read-only to it); DataDir is the only folder it may
// write.
const (
	User       = "grafana"
	Service    = "grafana.service"
	UnitPath   = "/etc/systemd/system/" + Service
	InstallDir = "/opt/grafana"
	UnpackPath = InstallDir + "/unpack.sh"

	ConfigDir       = "/etc/grafana"
	ConfigFile      = ConfigDir + "/grafana.ini"
	KeyEnvFile      = ConfigDir + "/grafana.env"
	AdminEnvFile    = ConfigDir + "/admin.env"
	ProvisioningDir = ConfigDir + "/provisioning"
	DatasourceFile  = ProvisioningDir + "/datasources/natsdeploy.yaml"
	ProviderFile    = ProvisioningDir + "/dashboards/natsdeploy.yaml"
	DashboardsDir   = ConfigDir + "/dashboards"
	DataDir         = "/var/lib/grafana"

	// AdminUser is the admin login natsdeploy creates and verifies.
	AdminUser = "admin"

	// ArtifactName is the release tarball's name in role.Input.Artifacts.
	ArtifactName = "grafana"
	// ReleaseURL is Grafana's download folder: files sit directly below
	// it, with no version folder.
	ReleaseURL = "https://dl.grafana.com/oss/release"

	// UpdateIntervalSeconds is how often Grafana re-reads the dashboard
	// files, so a changed dashboard shows without a restart.
	UpdateIntervalSeconds = 30
)

// Secret slot names in the secrets file.
const (
	SecretAdmin = "grafana-admin"
	SecretKey   = "grafana-secret-key"
)

// Home is the folder a version's release tree is unpacked into, and
// Tarball the verified release tarball it is unpacked from.
func Home(version string) string    { return InstallDir + "/" + version }
func Tarball(version string) string { return InstallDir + "/grafana-" + version + ".tar.gz" }

// Role is Grafana on the monitoring host, with natsdeploy's Prometheus
// datasource and dashboards provisioned from files.
type Role struct{}

var _ role.Role = Role{}

func (Role) Name() string { return "grafana" }

func spec(inv *inventory.Inventory) (inventory.GrafanaSpec, bool) {
	if inv.Monitoring == nil || !inv.Monitoring.Grafana.On() {
		return inventory.GrafanaSpec{}, false
	}
	return inv.Monitoring.Grafana, true
}

func (Role) Hosts(inv *inventory.Inventory) []inventory.Host {
	_, on := spec(inv)
	return inv.OnMonitoringHost(on)
}

// Secrets: the admin password (from the inventory's password_env, else
// generated) and the key Grafana signs and encrypts with (generated once:
// a new one would make the secrets it stored unreadable).
func (Role) Secrets(inv *inventory.Inventory) []secrets.Slot {
	g, ok := spec(inv)
	if !ok {
		return nil
	}
	return []secrets.Slot{{Name: SecretAdmin, Env: g.PasswordEnv}, {Name: SecretKey}}
}

// Artifacts: the release tarball itself, verified, not one member of it.
// Layout under artifact_dir:
//
//	grafana/vV/grafana-V.linux-ARCH.tar.gz (+ .sha256)   <= 11.x, derived
//	grafana/vV/<file>                                     12.x+, from file and sha256
//
// Grafana's download site has no version folders, so the official URL is
// flat; a mirror (monitoring.download_url) has them, like the cache.
func (Role) Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error) {
	g, ok := spec(inv)
	if !ok {
		return nil, nil
	}
	a, err := artifact.GoArch(arch)
	if err != nil {
		return nil, fmt.Errorf("grafana %s: %w", g.Version, err)
	}
	base := inv.Monitoring.ReleaseBase("grafana", ReleaseURL)
	rel := artifact.Release{
		Dir:     inv.Monitoring.ArtifactDir,
		BaseURL: base,
		Flat:    base == ReleaseURL,
		Name:    "grafana",
		Key:     ArtifactName,
		Tag:     "v" + g.Version,
		Version: g.Version,
		Asset:   fmt.Sprintf("grafana-%s.linux-%s.tar.gz", g.Version, a),
		SHA256:  g.SHA256,
		Hint:    "https://grafana.com/grafana/download/" + g.Version + "?edition=oss",
		Setting: "monitoring.download_url",
	}
	switch {
	case strings.Contains(g.File, "://"):
		u, err := url.Parse(g.File)
		if err != nil {
			return nil, fmt.Errorf("grafana %s: monitoring.grafana.file: %w", g.Version, err)
		}
		rel.Asset = path.Base(u.Path)
		// The URL names where the file is; only an offline setting
		// (download_url = "") keeps it from being fetched.
		if base != "" {
			u.Path = path.Dir(u.Path)
			rel.BaseURL, rel.Flat = u.String(), true
		}
	case g.File != "":
		rel.Asset = g.File
	}
	if g.File != "" && !strings.Contains(rel.Asset, "linux_"+a) && !strings.Contains(rel.Asset, "linux-"+a) {
		return nil, fmt.Errorf("grafana %s: monitoring.grafana.file %q is not the linux %s tarball the monitoring host needs", g.Version, rel.Asset, a)
	}
	if rel.SHA256 == "" {
		rel.Sums = rel.Asset + ".sha256"
	}
	return []artifact.Release{rel}, nil
}

// Rendered are the files Grafana's host gets, other than the tarball.
type Rendered struct {
	INI, Unit, Unpack    []byte
	KeyEnv, AdminEnv     []byte // Sensitive: they hold the secrets
	Datasource, Provider []byte
	Dashboards           []dashboards.Dashboard
}

// Render renders every file of the monitoring host's Grafana. The output
// depends only on its arguments, so an unchanged inventory and unchanged
// secrets give unchanged bytes.
func Render(inv *inventory.Inventory, adminPassword, secretKey string) (Rendered, error) {
	var r Rendered
	m := inv.Monitoring
	g := m.Grafana
	for _, s := range []struct{ what, v string }{{"admin password", adminPassword}, {"secret key", secretKey}} {
		if err := envSafe(s.v); err != nil {
			return r, fmt.Errorf("grafana %s: %w", s.what, err)
		}
	}
	var err error
	if r.INI, err = render("grafana/grafana.ini.tmpl", struct {
		DataDir, ProvisioningDir string
		Port                     int
	}{DataDir, ProvisioningDir, g.Port}); err != nil {
		return r, err
	}
	if r.Unit, err = render("grafana/grafana.service.tmpl", struct {
		User, KeyEnv, AdminEnv, InstallDir, Unpack, Tarball, Home, Config, DataDir string
	}{User, KeyEnvFile, AdminEnvFile, InstallDir, UnpackPath, Tarball(g.Version), Home(g.Version), ConfigFile, DataDir}); err != nil {
		return r, err
	}
	if r.Unpack, err = files.FS.ReadFile("grafana/unpack.sh"); err != nil {
		return r, err
	}
	r.KeyEnv = envFile("GF_SECURITY_SECRET_KEY", secretKey)
	r.AdminEnv = envFile("GF_SECURITY_ADMIN_PASSWORD", adminPassword)
	if r.Datasource, err = DatasourceYAML(Datasource{
		Name: "Prometheus",
		// Prometheus always runs on the monitoring host, beside Grafana.
		URL:            "http://127.0.0.1:" + strconv.Itoa(m.Prometheus.Port),
		ScrapeInterval: m.Prometheus.ScrapeInterval.Prometheus(),
	}); err != nil {
		return r, err
	}
	if r.Provider, err = ProviderYAML(provider(DashboardsDir)); err != nil {
		return r, err
	}
	if r.Dashboards, err = dashboards.All(); err != nil {
		return r, err
	}
	return r, nil
}

func provider(dir string) Provider {
	return Provider{Name: "natsdeploy", Folder: "NATS", Path: dir, UpdateIntervalSeconds: UpdateIntervalSeconds}
}

// envSafe refuses what an environment file line cannot carry, and what
// `reset-admin-password --password-from-stdin` would cut (it reads one
// line). Errors never show the value.
func envSafe(v string) error {
	if v == "" {
		return fmt.Errorf("is empty")
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("has a control character (a line break?); systemd's environment file and Grafana's CLI take one line")
		}
	}
	return nil
}

// envFile renders one KEY="value" line of a systemd EnvironmentFile.
// Within double quotes systemd takes a backslash before " \ ` $ as that
// character itself, and expands nothing, so any password comes out as
// written.
func envFile(key, value string) []byte {
	var b strings.Builder
	b.WriteString("# Managed by natsdeploy; read by systemd for grafana.service.\n")
	b.WriteString(key + `="`)
	for _, c := range value {
		if strings.ContainsRune("\"\\`$", c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteString("\"\n")
	return []byte(b.String())
}

// placeholder stands in for a secret when the engine renders only to see
// what each role claims on a host.
const placeholder = "-"

func (Role) Desired(in role.Input) (desired.Host, error) {
	g := in.Inv.Monitoring.Grafana
	admin, key := placeholder, placeholder
	if in.Secrets != nil {
		admin, key = in.Secrets.Secret(SecretAdmin), in.Secrets.Secret(SecretKey)
	}
	r, err := Render(in.Inv, admin, key)
	if err != nil {
		return desired.Host{}, fmt.Errorf("grafana on %s: %w", in.Host.Name, err)
	}
	tarball := in.Binary(ArtifactName, g.Version)

	readable := func(p string) desired.Dir {
		return desired.Dir{Path: p, Owner: "root", Group: User, Mode: fs.ModeDir | 0o750}
	}
	h := desired.Host{
		Name:  in.Host.Name,
		Users: []desired.User{{Name: User, Home: DataDir, Shell: "/usr/sbin/nologin"}},
		Dirs: []desired.Dir{
			// Also the release trees the unit unpacks: nothing to keep.
			{Path: InstallDir, Owner: "root", Group: "root", Mode: fs.ModeDir | 0o755, Holds: desired.Runtime},
			readable(ConfigDir),
			readable(ProvisioningDir),
			readable(path.Dir(DatasourceFile)),
			readable(path.Dir(ProviderFile)),
			// Grafana also scans these at start and logs an error for
			// each one that is missing.
			readable(ProvisioningDir + "/alerting"),
			readable(ProvisioningDir + "/plugins"),
			readable(DashboardsDir),
			// Its database: users, sessions, anything made in the UI.
			{Path: DataDir, Owner: User, Group: User, Mode: fs.ModeDir | 0o750, Holds: desired.Data},
		},
	}
	file := func(p string, content []byte, mode fs.FileMode, group string, onChange desired.Handler) desired.File {
		return desired.File{Path: p, Content: content, SHA256: sum(content), Mode: mode, Owner: "root", Group: group,
			Service: Service, OnChange: onChange}
	}
	h.Files = []desired.File{
		// A new tarball is a new version: the restart unpacks it.
		{Path: Tarball(g.Version), Source: tarball.Path, SHA256: tarball.SHA256, Mode: 0o644, Owner: "root", Group: "root",
			Service: Service, OnChange: desired.Restart},
		// Only run at the next start; a new one needs no restart of its own.
		file(UnpackPath, r.Unpack, 0o755, "root", desired.None),
		file(ConfigFile, r.INI, 0o640, User, desired.Restart),
		// Datasources and dashboard providers are read at start only.
		file(DatasourceFile, r.Datasource, 0o640, User, desired.Restart),
		file(ProviderFile, r.Provider, 0o640, User, desired.Restart),
	}
	keyEnv := file(KeyEnvFile, r.KeyEnv, 0o600, "root", desired.Restart)
	// The reload is ExecReload's reset-admin-password: a restart would not
	// change the password of an admin that exists. Being a reload, the
	// engine also applies it before any restart the same apply owes.
	adminEnv := file(AdminEnvFile, r.AdminEnv, 0o600, "root", desired.Reload)
	keyEnv.Sensitive, adminEnv.Sensitive = true, true
	h.Files = append(h.Files, keyEnv, adminEnv)
	for _, d := range r.Dashboards {
		// Re-read every UpdateIntervalSeconds: no handler.
		h.Files = append(h.Files, file(path.Join(DashboardsDir, d.File), d.JSON, 0o640, User, desired.None))
	}
	h.Files = append(h.Files, file(UnitPath, r.Unit, 0o644, "root", desired.Restart))
	h.Units = []desired.Unit{{
		Name:        Service,
		UnitFile:    UnitPath,
		Ready:       readyGate(g.Port),
		DiagnoseCmd: "journalctl --no-pager -n 40 -u " + Service,
		// grafana is a urfave/cli app whose Version is the release's:
		// --version prints "grafana version 12.4.2" (pkg/cmd/grafana).
		VersionCmd: Home(g.Version) + "/bin/grafana --version",
	}}
	h.Ports = []desired.Port{{Number: g.Port, Key: "monitoring.grafana.port"}}
	return h, nil
}

// Verify: Grafana healthy, its datasource reaching Prometheus, every
// natsdeploy dashboard provisioned, and the admin login taking the stored
// password and refusing the well-known ones.
func (Role) Verify(ctx context.Context, env role.Env) []report.Result {
	var out []report.Result
	for _, h := range (Role{}).Hosts(env.Inv) {
		var c *client
		if rem := env.Remote(h.Name); rem != nil {
			c = &client{http: rem.HTTPClient(), base: base(env.Inv.Monitoring.Grafana.Port)}
		}
		pw := ""
		if env.Secrets != nil {
			pw = env.Secrets.Secret(SecretAdmin)
		}
		out = append(out, verifyHost(ctx, c, h.Name, pw)...)
	}
	return out
}

func render(name string, data any) ([]byte, error) { return files.Render(name, data, nil) }

func sum(b []byte) string { return files.SHA256(b) }
