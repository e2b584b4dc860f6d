package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The lab's key and known_hosts under ../.lab exist only after `make
// lab-up`, so the shipped inventories are checked without file checks.
var noFiles = LoadOptions{SkipFileChecks: true}

func TestLoadLab(t *testing.T) {
	inv, err := LoadWithOptions("lab.toml", noFiles)
	if err != nil {
		t.Fatalf("lab.toml: %v", err)
	}
	dir, _ := filepath.Abs(".")
	root := filepath.Dir(dir)
	checks := []struct {
		name      string
		got, want any
	}{
		{"Dir", inv.Dir, dir},
		{"SecretsFile", inv.SecretsFile, filepath.Join(dir, "lab.secrets.toml")},
		{"identity file", inv.SSH.IdentityFiles, []string{filepath.Join(root, ".lab", "id_ed25519")}},
		{"known_hosts", inv.SSH.KnownHosts, filepath.Join(root, ".lab", "known_hosts")},
		{"artifact_dir", inv.NATS.ArtifactDir, filepath.Join(root, ".lab", "artifacts")},
		{"download_url", *inv.NATS.DownloadURL, ""},
		{"ssh port", inv.SSH.Port, 22},
		{"connect timeout", inv.SSH.ConnectTimeout.D(), 5 * time.Second},
		{"ports", []int{inv.NATS.ClientPort, inv.NATS.ClusterPort, inv.NATS.HTTPPort}, []int{4222, 6222, 8222}},
		{"route user", inv.NATS.RouteUser, "route"},
		{"stores", []Size{inv.NATS.MaxMemoryStore, inv.NATS.MaxFileStore}, []Size{1 << 30, 4 << 30}},
		{"dirs", []string{inv.NATS.ConfigDir, inv.NATS.DataDir, inv.NATS.LogDir}, []string{"/etc/nats", "/var/lib/nats", "/var/log/nats"}},
		{"log", []any{inv.NATS.LogMaxSize, inv.NATS.LogMaxFiles, *inv.NATS.LogTime}, []any{Size(100 << 20), 5, true}},
		{"lame duck", []Duration{inv.NATS.LameDuckDuration, inv.NATS.LameDuckGracePeriod}, []Duration{Duration(30 * time.Second), Duration(10 * time.Second)}},
		{"host ssh", []any{inv.Hosts[1].SSHUser, inv.Hosts[1].SSHPort}, []any{"deploy", 22}},
		{"hosts", len(inv.Hosts), 3},
		{"accounts", len(inv.Accounts), 6},
		{"system account", inv.SystemAccount().Name, "SYS"},
		{"pos of a host", inv.Pos("hosts.1.address"), "lab.toml:29"},
		{"monitoring host", inv.Monitoring.Host, "nats-1"},
		{"monitoring artifact_dir", inv.Monitoring.ArtifactDir, filepath.Join(root, ".lab", "artifacts")},
		{"monitoring download_url", *inv.Monitoring.DownloadURL, ""}, // inherited: the lab is offline
		{"monitoring enabled", []bool{inv.Monitoring.Prometheus.On(), inv.Monitoring.Grafana.On(), inv.Monitoring.Exporter.On(), inv.Monitoring.Surveyor.On()},
			[]bool{true, false, false, false}},
		{"monitoring versions", []string{inv.Monitoring.Prometheus.Version, inv.Monitoring.Grafana.Version, inv.Monitoring.Exporter.Version, inv.Monitoring.Surveyor.Version},
			[]string{"3.16.0", DefaultGrafanaVersion, "0.20.1", "0.9.9"}},
		{"monitoring ports", []int{inv.Monitoring.Prometheus.Port, inv.Monitoring.Grafana.Port, inv.Monitoring.Exporter.Port, inv.Monitoring.Surveyor.Port},
			[]int{9090, 3000, 7778, 7777}},
		{"prometheus retention", inv.Monitoring.Prometheus.Retention, "15d"},
		{"prometheus scrape_interval (lab.toml sets 5s)", inv.Monitoring.Prometheus.ScrapeInterval.D(), 5 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestLoadExample(t *testing.T) {
	t.Setenv("NATS_ADMIN_PASSWORD", "correct-horse-battery-staple")
	t.Setenv("NATS_PROD_PASSWORD", "another-long-password")
	inv, err := LoadWithOptions("example.toml", noFiles)
	if err != nil {
		t.Fatalf("example.toml: %v", err)
	}
	home, _ := os.UserHomeDir()
	if want := filepath.Join(home, ".ssh", "known_hosts"); inv.SSH.KnownHosts != want {
		t.Errorf("known_hosts = %q, want %q", inv.SSH.KnownHosts, want)
	}
	if want := filepath.Join(home, ".ssh", "id_ed25519"); !reflect.DeepEqual(inv.SSH.IdentityFiles, []string{want}) {
		t.Errorf("identity_files = %q, want %q", inv.SSH.IdentityFiles, want)
	}
	if *inv.NATS.DownloadURL != DefaultDownloadURL {
		t.Errorf("download_url = %q", *inv.NATS.DownloadURL)
	}
	if !strings.HasSuffix(inv.NATS.ArtifactDir, filepath.Join("natsdeploy", "artifacts")) {
		t.Errorf("artifact_dir = %q", inv.NATS.ArtifactDir)
	}
	if m := inv.Monitoring; m == nil || m.Host != "nats-1" || m.ArtifactDir != inv.NATS.ArtifactDir || m.DownloadURL != nil {
		t.Errorf("monitoring = %+v, want host nats-1, nats' artifact_dir and official URLs", m)
	}

	// The example carries the same tenants as the lab; only where the
	// passwords come from differs.
	lab, err := LoadWithOptions("lab.toml", noFiles)
	if err != nil {
		t.Fatal(err)
	}
	strip := func(accts []Account) []Account {
		out := make([]Account, len(accts))
		for i, a := range accts {
			out[i] = a
			out[i].Users = append([]User(nil), a.Users...)
			for j := range out[i].Users {
				out[i].Users[j].PasswordEnv = ""
			}
		}
		return out
	}
	if !reflect.DeepEqual(strip(inv.Accounts), strip(lab.Accounts)) {
		t.Errorf("example.toml's accounts differ from lab.toml's")
	}
}

func TestMonitoringDefaults(t *testing.T) {
	const section = "\n[monitoring]\nhost = \"n1\"\n"
	inv, err := Parse("t.toml", []byte(base+section), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	m := inv.Monitoring
	for _, e := range []*bool{m.Prometheus.Enabled, m.Grafana.Enabled, m.Exporter.Enabled, m.Surveyor.Enabled} {
		if e == nil || !*e {
			t.Fatalf("Enabled after Load = %v, want true", e)
		}
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"artifact_dir", m.ArtifactDir, inv.NATS.ArtifactDir},
		{"download_url", m.DownloadURL, (*string)(nil)}, // each project's official URL
		{"versions", []string{m.Prometheus.Version, m.Grafana.Version, m.Exporter.Version, m.Surveyor.Version},
			[]string{DefaultPrometheusVersion, DefaultGrafanaVersion, DefaultExporterVersion, DefaultSurveyorVersion}},
		{"ports", []int{m.Prometheus.Port, m.Grafana.Port, m.Exporter.Port, m.Surveyor.Port}, []int{9090, 3000, 7778, 7777}},
		{"retention", m.Prometheus.Retention, "15d"},
		{"scrape_interval", m.Prometheus.ScrapeInterval, Duration(15 * time.Second)},
		{"grafana", []string{m.Grafana.PasswordEnv, m.Grafana.File, m.Grafana.SHA256}, []string{"", "", ""}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// An offline [nats] makes the monitoring stack offline too.
	offline := strings.Replace(base, `version = "2.14.9"`, "version = \"2.14.9\"\ndownload_url = \"\"", 1)
	if inv, err = Parse("t.toml", []byte(offline+section), noFiles); err != nil {
		t.Fatal(err)
	}
	if u := inv.Monitoring.DownloadURL; u == nil || *u != "" {
		t.Errorf("download_url with nats offline = %v, want \"\"", u)
	}

	own := section + "artifact_dir = \"mirror\"\ndownload_url = \"https://mirror.example.com/artifacts/\"\n" +
		"[monitoring.grafana]\nfile = \"grafana_12.4.2_1_linux_amd64.tar.gz\"\nsha256 = \"" + strings.Repeat("AB", 32) + "\"\n"
	if inv, err = Parse("t.toml", []byte(offline+own), noFiles); err != nil {
		t.Fatal(err)
	}
	m = inv.Monitoring
	if want := filepath.Join(inv.Dir, "mirror"); m.ArtifactDir != want {
		t.Errorf("artifact_dir = %q, want %q (relative to the inventory)", m.ArtifactDir, want)
	}
	if *m.DownloadURL != "https://mirror.example.com/artifacts" {
		t.Errorf("download_url = %q, want it without the trailing /", *m.DownloadURL)
	}
	if m.Grafana.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("sha256 = %q, want it in lower case", m.Grafana.SHA256)
	}
}

// Without artifact_dir, releases are cached in the user's cache folder,
// which $XDG_CACHE_HOME moves.
func TestDefaultArtifactDir(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct{ xdg, home, want string }{
		{filepath.Join(tmp, "cache"), filepath.Join(tmp, "home"), filepath.Join(tmp, "cache", "natsdeploy", "artifacts")},
		{"", filepath.Join(tmp, "home"), filepath.Join(tmp, "home", ".cache", "natsdeploy", "artifacts")},
	} {
		t.Setenv("XDG_CACHE_HOME", tc.xdg)
		t.Setenv("HOME", tc.home)
		inv, err := parseTest(t, base, noFiles)
		if err != nil {
			t.Fatal(err)
		}
		if inv.NATS.ArtifactDir != tc.want {
			t.Errorf("XDG_CACHE_HOME=%q HOME=%q: artifact_dir = %q, want %q", tc.xdg, tc.home, inv.NATS.ArtifactDir, tc.want)
		}
	}
}

func TestLoadExampleNeedsItsEnvironment(t *testing.T) {
	os.Unsetenv("NATS_ADMIN_PASSWORD")
	os.Unsetenv("NATS_PROD_PASSWORD")
	_, err := LoadWithOptions("example.toml", noFiles)
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	for _, v := range []string{"NATS_ADMIN_PASSWORD", "NATS_PROD_PASSWORD"} {
		if !strings.Contains(err.Error(), "environment variable "+v+" (the password of user") {
			t.Errorf("no problem names %s:\n%v", v, err)
		}
	}
}

func TestLoadSyntaxError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte("[nats]\nversion = \"2.14.9\"\nversion = \"2.14.8\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("want *Problems, got %v", err)
	}
	if p := probs.List[0]; p.File != path || p.Line != 3 {
		t.Fatalf("problem = %+v, want %s line 3", p, path)
	}
	if !strings.HasPrefix(err.Error(), path+":3: ") {
		t.Fatalf("error = %q", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func TestDefaultSecretsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "staging.toml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := LoadWithOptions(path, noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "staging.secrets.toml"); inv.SecretsFile != want {
		t.Fatalf("SecretsFile = %q, want %q", inv.SecretsFile, want)
	}
	if err := os.WriteFile(path, []byte("secrets_file = \"../s/x.toml\"\n"+base), 0o600); err != nil {
		t.Fatal(err)
	}
	if inv, err = LoadWithOptions(path, noFiles); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(dir), "s", "x.toml"); inv.SecretsFile != want {
		t.Fatalf("SecretsFile = %q, want %q", inv.SecretsFile, want)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "inventory/lab.toml", Line: 42, Key: "accounts.2.users.0.allow", Msg: "bad"}, "inventory/lab.toml:42: accounts[2].users[0].allow: bad"},
		{Problem{File: "x.toml", Key: "hosts", Msg: "none"}, "x.toml: hosts: none"},
		{Problem{File: "x.toml", Line: 3, Msg: "syntax"}, "x.toml:3: syntax"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDisplayKey(t *testing.T) {
	tests := []struct{ key, want string }{
		{"", ""},
		{"nats.client_port", "nats.client_port"},
		{"accounts.2.users.0.allow", "accounts[2].users[0].allow"},
		{"hosts.9.name", "hosts[9].name"},
		{"hosts.10", "hosts[10]"},
		{"accounts.1.users.0.allow.1", "accounts[1].users[0].allow[1]"},
		// Only a whole element of digits is an index: not a key that holds
		// digits, nor a top-level key of digits (`0 = 1` is valid TOML).
		{"0", "0"},
		{"90.x", "90.x"},
		{"ssh.v2", "ssh.v2"},
		{"a.1b.c", "a.1b.c"},
	}
	for _, tt := range tests {
		if got := DisplayKey(tt.key); got != tt.want {
			t.Errorf("DisplayKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// Problems found by the roles get the same file:line and order as Load's.
func TestNewProblems(t *testing.T) {
	inv, err := parseTest(t, base, noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewProblems(inv, nil); err != nil {
		t.Fatalf("NewProblems(no problems) = %v, want nil", err)
	}
	err = NewProblems(inv, []Problem{
		{Key: "accounts.1.users.0.allow.1", Msg: "third"},
		{Key: "hosts.2.ssh_port", Msg: "second, at its host"},
		{Key: "hosts", Line: 1, Msg: "first, on the line it was given"},
		{Key: "monitoring", Msg: "no line"},
	})
	want := strings.Join([]string{
		"t.toml: monitoring: no line",
		"t.toml:1: hosts: first, on the line it was given",
		"t.toml:15: hosts[2].ssh_port: second, at its host",
		"t.toml:32: accounts[1].users[0].allow[1]: third",
	}, "\n")
	var probs *Problems
	if !errors.As(err, &probs) || err.Error() != want {
		t.Fatalf("NewProblems = %v\nwant *Problems:\n%s", err, want)
	}
}

func TestHostKey(t *testing.T) {
	inv, err := parseTest(t, base, noFiles)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"n1": "hosts.0", "n3": "hosts.2", "mon": "hosts"} {
		if got := inv.HostKey(name); got != want {
			t.Errorf("HostKey(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestReleaseBase(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		url  *string
		want string
	}{
		{nil, "https://example.invalid/official"},
		{s(""), ""},
		{s("https://mirror.example.invalid/releases"), "https://mirror.example.invalid/releases/nats-surveyor"},
	} {
		m := &Monitoring{DownloadURL: tc.url}
		if got := m.ReleaseBase("nats-surveyor", "https://example.invalid/official"); got != tc.want {
			t.Errorf("download_url %v: %q, want %q", tc.url, got, tc.want)
		}
	}
}
