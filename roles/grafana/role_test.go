package grafana

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats"
	"github.com/natsdeploy/natsdeploy/roles/prometheus"
)

// labInventory is the lab's inventory with Grafana turned on, as a user
// with the official tarball would.
func labInventory(t *testing.T, edit func(*inventory.Inventory)) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions("../../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	on := true
	inv.Monitoring.Grafana.Enabled = &on
	if edit != nil {
		edit(inv)
	}
	return inv
}

func TestRenderGolden(t *testing.T) {
	inv := labInventory(t, nil)
	r, err := Render(inv, `pa"ss$w\rd`+"`x", "KEY")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "grafana.ini"), r.INI)
	golden.Check(t, filepath.Join("testdata", "grafana.service"), r.Unit)
	golden.Check(t, filepath.Join("testdata", "role-datasource.yaml"), r.Datasource)
	golden.Check(t, filepath.Join("testdata", "role-dashboards.yaml"), r.Provider)
	golden.Check(t, filepath.Join("testdata", "admin.env"), r.AdminEnv)
	again, _ := Render(inv, `pa"ss$w\rd`+"`x", "KEY")
	if !bytes.Equal(again.INI, r.INI) || !bytes.Equal(again.Unit, r.Unit) || !bytes.Equal(again.Datasource, r.Datasource) {
		t.Error("rendering is not byte-stable")
	}
}

func TestEnvFileValues(t *testing.T) {
	for _, tc := range []struct{ in, line string }{
		{"plain", `K="plain"`},
		{`a"b`, `K="a\"b"`},
		{`a\b`, `K="a\\b"`},
		{"$HOME", `K="\$HOME"`},
		{"`id`", "K=\"\\`id\\`\""},
		{"'quoted' #not a comment", `K="'quoted' #not a comment"`},
	} {
		got := string(envFile("K", tc.in))
		if !strings.HasSuffix(got, "\n"+tc.line+"\n") {
			t.Errorf("%q: got %q, want the line %s", tc.in, got, tc.line)
		}
	}
}

func TestSecretsAnEnvFileCannotCarryAreRefused(t *testing.T) {
	inv := labInventory(t, nil)
	for _, tc := range []struct{ admin, key string }{
		{"two\nlines", "Sentinel-key"},
		{"Sentinel-pw", "tab\there"},
		{"", "Sentinel-key"},
		{"Sentinel-pw", ""},
	} {
		_, err := Render(inv, tc.admin, tc.key)
		if err == nil {
			t.Errorf("%q/%q rendered", tc.admin, tc.key)
			continue
		}
		if strings.Contains(err.Error(), "Sentinel") || strings.Contains(err.Error(), "lines") || strings.Contains(err.Error(), "here") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestArtifacts(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	mirror, offline := "https://mirror.example/files", ""
	for _, tc := range []struct {
		name    string
		edit    func(g *inventory.GrafanaSpec, m *inventory.Monitoring)
		arch    string
		asset   string
		baseURL string
		flat    bool
		sums    string
		sha256  string
		err     string
	}{
		{
			name:  "derived name, official site, bare .sha256 beside it",
			edit:  func(g *inventory.GrafanaSpec, m *inventory.Monitoring) { g.Version = "11.6.1"; m.DownloadURL = nil },
			arch:  "x86_64",
			asset: "grafana-11.6.1.linux-amd64.tar.gz", baseURL: ReleaseURL, flat: true, sums: "grafana-11.6.1.linux-amd64.tar.gz.sha256",
		},
		{
			name: "12.x file name and sha256, from a mirror",
			edit: func(g *inventory.GrafanaSpec, m *inventory.Monitoring) {
				g.File, g.SHA256, m.DownloadURL = "grafana_12.4.2_16983001953_linux_amd64.tar.gz", sha, &mirror
			},
			arch:  "amd64",
			asset: "grafana_12.4.2_16983001953_linux_amd64.tar.gz", baseURL: mirror + "/grafana", sha256: sha,
		},
		{
			name: "12.x https URL, downloaded from there",
			edit: func(g *inventory.GrafanaSpec, m *inventory.Monitoring) {
				g.File, g.SHA256, m.DownloadURL = "https://dl.grafana.com/grafana/release/12.4.2/grafana_12.4.2_16983001953_linux_amd64.tar.gz", sha, nil
			},
			arch:  "amd64",
			asset: "grafana_12.4.2_16983001953_linux_amd64.tar.gz", baseURL: "https://dl.grafana.com/grafana/release/12.4.2", flat: true, sha256: sha,
		},
		{
			name: "https URL but offline: cache only",
			edit: func(g *inventory.GrafanaSpec, m *inventory.Monitoring) {
				g.File, g.SHA256, m.DownloadURL = "https://dl.grafana.com/x/grafana_12.4.2_1_linux_amd64.tar.gz", sha, &offline
			},
			arch:  "amd64",
			asset: "grafana_12.4.2_1_linux_amd64.tar.gz", baseURL: "", sha256: sha,
		},
		{
			name: "a file for another architecture",
			edit: func(g *inventory.GrafanaSpec, m *inventory.Monitoring) {
				g.File, g.SHA256 = "grafana_12.4.2_1_linux_amd64.tar.gz", sha
			},
			arch: "aarch64",
			err:  "not the linux arm64 tarball",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := labInventory(t, func(inv *inventory.Inventory) { tc.edit(&inv.Monitoring.Grafana, inv.Monitoring) })
			rels, err := Role{}.Artifacts(inv, tc.arch)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(rels) != 1 {
				t.Fatalf("%+v, %v", rels, err)
			}
			r := rels[0]
			g := inv.Monitoring.Grafana
			if r.Asset != tc.asset || r.BaseURL != tc.baseURL || r.Flat != tc.flat || r.Sums != tc.sums || r.SHA256 != tc.sha256 ||
				r.Member != "" || r.ID() != ArtifactName || r.Name != "grafana" || r.Tag != "v"+g.Version || r.Dir != inv.Monitoring.ArtifactDir {
				t.Errorf("release %+v", r)
			}
		})
	}
	off := labInventory(t, func(inv *inventory.Inventory) { inv.Monitoring.Grafana.Enabled = new(bool) })
	if rels, _ := (Role{}).Artifacts(off, "amd64"); len(rels) != 0 || len((Role{}).Hosts(off)) != 0 || (Role{}).Secrets(off) != nil {
		t.Error("a disabled Grafana still has artifacts, hosts or secrets")
	}
}

// Grafana, Prometheus and the NATS node share the lab's monitoring host:
// their desired states merge without a clash.
func TestDesiredMergesWithNATSAndPrometheus(t *testing.T) {
	inv := labInventory(t, nil)
	h, _ := inv.MonitoringHost()
	var parts []desired.Part
	for _, r := range []role.Role{nats.Role{}, prometheus.Role{}, Role{}} {
		d, err := r.Desired(role.Input{Inv: inv, Host: h})
		if err != nil {
			t.Fatalf("%s: %v", r.Name(), err)
		}
		parts = append(parts, desired.Part{Role: r.Name(), Host: d})
	}
	merged, err := desired.Merge(h.Name, parts...)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if len(merged.Units) != 4 {
		t.Errorf("units %+v", merged.Units)
	}
	g := parts[2].Host
	if hosts := (Role{}).Hosts(inv); len(hosts) != 1 || hosts[0].Name != h.Name {
		t.Errorf("hosts %+v", hosts)
	}
	handler := map[string]desired.Handler{}
	for _, f := range g.Files {
		handler[f.Path] = f.OnChange
		if f.Service != Service {
			t.Errorf("%s belongs to %q", f.Path, f.Service)
		}
	}
	for p, want := range map[string]desired.Handler{
		Tarball(inv.Monitoring.Grafana.Version): desired.Restart,
		ConfigFile:                              desired.Restart,
		KeyEnvFile:                              desired.Restart,
		AdminEnvFile:                            desired.Reload,
		DatasourceFile:                          desired.Restart,
		ProviderFile:                            desired.Restart,
		UnitPath:                                desired.Restart,
		UnpackPath:                              desired.None,
		filepath.Join(DashboardsDir, "natsdeploy-jetstream.json"): desired.None,
	} {
		if got, ok := handler[p]; !ok || got != want {
			t.Errorf("%s: handler %v (present %v), want %v", p, got, ok, want)
		}
	}
	if len(g.Ports) != 1 || g.Ports[0].Number != 3000 || g.Ports[0].Key != "monitoring.grafana.port" {
		t.Errorf("ports %+v", g.Ports)
	}
	if u := g.Units[0]; u.Name != Service || u.Ready == nil || u.Reload != nil || u.UnitFile != UnitPath {
		t.Errorf("unit %+v", u)
	}
}

// The admin password and the secret key appear only in the two Sensitive
// environment files: not in grafana.ini, not on any command line of the
// unit, not in any file plan may show.
func TestNoSecretOutsideSensitiveFiles(t *testing.T) {
	const admin, env = "Adm1n-Sentinel-Passw0rd", "NATSDEPLOY_TEST_GRAFANA_ADMIN"
	t.Setenv(env, admin)
	inv := labInventory(t, func(inv *inventory.Inventory) {
		inv.Monitoring.Grafana.PasswordEnv = env
		inv.SecretsFile = filepath.Join(t.TempDir(), "secrets.toml")
	})
	sec, err := secrets.Open(inv, Role{}.Secrets(inv)...)
	if err != nil {
		t.Fatal(err)
	}
	key := sec.Secret(SecretKey)
	if sec.Secret(SecretAdmin) != admin || len(key) < 20 {
		t.Fatalf("secrets not resolved: admin from env %v, key length %d", sec.Secret(SecretAdmin) == admin, len(key))
	}
	h, _ := inv.MonitoringHost()
	d, err := Role{}.Desired(role.Input{Inv: inv, Host: h, Secrets: sec})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range d.Files {
		has := bytes.Contains(f.Content, []byte(admin)) || bytes.Contains(f.Content, []byte(key))
		seen[f.Path] = has
		if has && !f.Sensitive {
			t.Errorf("%s holds a secret and is not Sensitive", f.Path)
		}
		if f.Sensitive && (f.Mode != 0o600 || f.Owner != "root" || f.Group != "root") {
			t.Errorf("%s: sensitive file is %s:%s %o", f.Path, f.Owner, f.Group, f.Mode)
		}
		if f.Path == UnitPath {
			sc := bufio.NewScanner(bytes.NewReader(f.Content))
			for sc.Scan() {
				if l := sc.Text(); strings.HasPrefix(l, "Exec") && (strings.Contains(l, admin) || strings.Contains(l, key)) {
					t.Errorf("unit command line holds a secret: %s", l)
				}
			}
		}
	}
	if !seen[AdminEnvFile] || !seen[KeyEnvFile] {
		t.Errorf("the environment files do not carry the secrets: %v", seen)
	}
	if seen[ConfigFile] {
		t.Error("grafana.ini holds a secret")
	}
}

// status asks the very program the unit starts for its version, with
// the flag its urfave/cli app answers (--version).
func TestVersionCmdRunsTheUnitsProgram(t *testing.T) {
	inv := labInventory(t, nil)
	h, _ := inv.MonitoringHost()
	d, err := Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	var unit []byte
	for _, f := range d.Files {
		if f.Path == UnitPath {
			unit = f.Content
		}
	}
	var exec string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			exec = strings.Fields(v)[0]
		}
	}
	if len(d.Units) != 1 || exec == "" || d.Units[0].VersionCmd != exec+" --version" {
		t.Errorf("version command %q, want the unit's program %q with --version", d.Units[0].VersionCmd, exec)
	}
}
