package surveyor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/exporter"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// testPassword has characters YAML and shells care about, to prove the
// config carries it intact and the command line never does.
const testPassword = `s3cr"et: #pw\ 'x'`

// labWithSurveyor is the lab inventory with the surveyor (and the
// exporter, which shares the monitoring host) turned on.
func labWithSurveyor(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions("../../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	// The plaintext baseline; TLS cases set it themselves.
	inv.TLS = nil
	on := true
	inv.Monitoring.Surveyor.Enabled = &on
	inv.Monitoring.Exporter.Enabled = &on
	return inv
}

// standIns are what the tests upload: no real exporter or surveyor exists
// on these machines, and nothing here runs them.
var standIns = map[string]artifact.Binary{
	ArtifactName:          {Path: "/cache/stand-in/nats-surveyor", SHA256: strings.Repeat("ef", 32), Version: inventory.DefaultSurveyorVersion},
	exporter.ArtifactName: {Path: "/cache/stand-in/prometheus-nats-exporter", SHA256: strings.Repeat("cd", 32), Version: inventory.DefaultExporterVersion},
}

func TestGolden(t *testing.T) {
	r, err := Render(labWithSurveyor(t), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{Service: r.Unit, "nats-surveyor.yaml": r.Config} {
		golden.Check(t, filepath.Join("testdata", name+".golden"), got)
	}
}

// The password is in the config file only: never on the command line, and
// the file is the surveyor user's alone and hidden from plan.
func TestPasswordOnlyInConfig(t *testing.T) {
	inv := labWithSurveyor(t)
	r, err := Render(inv, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.Config, []byte(yamlString(testPassword))) {
		t.Errorf("config lacks the password:\n%s", r.Config)
	}
	for _, s := range []string{ExecStart(inv), string(r.Unit)} {
		if strings.Contains(s, "s3cr") || strings.Contains(s, "--password") || strings.Contains(s, "--user") {
			t.Errorf("a credential is on the command line or in the unit:\n%s", s)
		}
	}
	h, _ := inv.MonitoringHost()
	d, err := Role{}.Desired(role.Input{Inv: inv, Host: h, Artifacts: standIns})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range d.Files {
		if f.Path != ConfigPath {
			continue
		}
		if !f.Sensitive || f.Mode != 0o600 || f.Owner != User {
			t.Errorf("config file: sensitive %v, mode %o, owner %s; want sensitive, 0600, %s", f.Sensitive, f.Mode, f.Owner, User)
		}
		return
	}
	t.Fatalf("no %s among the files", ConfigPath)
}

// The password survives YAML: whatever characters it has, a YAML reader
// gets it back. JSON quoting is what yamlString relies on; this pins the
// escapes of the awkward characters.
func TestYAMLString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a: #b", `"a: #b"`},
		{"tab\tnl\n", `"tab\tnl\n"`},
	} {
		if got := yamlString(tc.in); got != tc.want {
			t.Errorf("yamlString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// On the lab's monitoring host the surveyor shares the host with
// nats-server and an exporter: no path, unit, user or port may clash.
func TestMergesWithNATSAndExporter(t *testing.T) {
	inv := labWithSurveyor(t)
	hs := Role{}.Hosts(inv)
	if len(hs) != 1 || hs[0].Name != inv.Monitoring.Host {
		t.Fatalf("Hosts = %v, want the monitoring host", hs)
	}
	h := hs[0]
	parts := []desired.Part{}
	for _, r := range []role.Role{nats.Role{}, exporter.Role{}, Role{}} {
		d, err := r.Desired(role.Input{Inv: inv, Host: h, Artifacts: standIns})
		if err != nil {
			t.Fatalf("%s: %v", r.Name(), err)
		}
		parts = append(parts, desired.Part{Role: r.Name(), Host: d})
	}
	if _, err := desired.Merge(h.Name, parts...); err != nil {
		t.Fatal(err)
	}
}

func TestPortClashWithExporter(t *testing.T) {
	inv := labWithSurveyor(t)
	inv.Monitoring.Surveyor.Port = inv.Monitoring.Exporter.Port
	h, _ := inv.MonitoringHost()
	ex, err := exporter.Role{}.Desired(role.Input{Inv: inv, Host: h, Artifacts: standIns})
	if err != nil {
		t.Fatal(err)
	}
	su, err := Role{}.Desired(role.Input{Inv: inv, Host: h, Artifacts: standIns})
	if err != nil {
		t.Fatal(err)
	}
	_, err = desired.Merge(h.Name, desired.Part{Role: "exporter", Host: ex}, desired.Part{Role: "surveyor", Host: su})
	var c *desired.Clash
	if !errors.As(err, &c) || c.Key != "monitoring.surveyor.port" {
		t.Fatalf("Merge = %v, want a clash on monitoring.surveyor.port", err)
	}
}

// Both the surveyor and the nats role ask for the same slot, so the
// password the surveyor sends is the one whose hash NATS holds.
func TestSecretsSlot(t *testing.T) {
	inv := labWithSurveyor(t)
	got := Role{}.Secrets(inv)
	if len(got) != 1 || got[0] != nats.SurveyorSlot || !got[0].Bcrypt || got[0].Name != "surveyor" {
		t.Errorf("Secrets = %v", got)
	}
	if n := (nats.Role{}).Secrets(inv); !slices.Contains(n, got[0]) {
		t.Errorf("nats role asks for %v, surveyor for %v", n, got)
	}
	off := false
	inv.Monitoring.Surveyor.Enabled = &off
	if got := (Role{}).Secrets(inv); len(got) != 0 {
		t.Errorf("surveyor off: Secrets = %v", got)
	}
	if hs := (Role{}).Hosts(inv); len(hs) != 0 {
		t.Errorf("surveyor off: Hosts = %v", hs)
	}
}

func TestExecStart(t *testing.T) {
	got := ExecStart(labWithSurveyor(t))
	want := "/usr/local/bin/nats-surveyor --config /etc/nats-surveyor/nats-surveyor.yaml" +
		" --servers nats://172.31.253.11:4222,nats://172.31.253.12:4222,nats://172.31.253.13:4222" +
		" --count 3 --port 7777 --addr 0.0.0.0 --jsz all --accounts"
	if got != want {
		t.Errorf("ExecStart =\n%s\nwant\n%s", got, want)
	}
}

// The exact official asset names and the archive layout: the binary in a
// folder named like the archive.
func TestArtifacts(t *testing.T) {
	for _, tc := range []struct {
		arch, base, err string
	}{
		{"amd64", "nats-surveyor-v0.9.9-linux-amd64", ""},
		{"x86_64", "nats-surveyor-v0.9.9-linux-amd64", ""},
		{"arm64", "nats-surveyor-v0.9.9-linux-arm64", ""},
		{"aarch64", "nats-surveyor-v0.9.9-linux-arm64", ""},
		{"armv7l", "nats-surveyor-v0.9.9-linux-armv7", ""},
		{"s390x", "", "no Linux release for s390x"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			rs, err := Role{}.Artifacts(labWithSurveyor(t), tc.arch)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			if len(rs) != 1 || r.Asset != tc.base+".tar.gz" || r.Member != tc.base+"/nats-surveyor" ||
				r.Sums != "SHA256SUMS" || r.Tag != "v0.9.9" || r.Name != "nats-surveyor" || r.BaseURL != "" {
				t.Errorf("releases = %+v", rs)
			}
		})
	}
	inv := labWithSurveyor(t)
	inv.Monitoring.DownloadURL = nil
	if rs, _ := (Role{}).Artifacts(inv, "amd64"); rs[0].BaseURL != ReleaseURL {
		t.Errorf("BaseURL = %q, want %q", rs[0].BaseURL, ReleaseURL)
	}
}

func TestGetOfficialLayout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt bool
		err     string
	}{
		{"verified", false, ""},
		{"checksum mismatch", true, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := labWithSurveyor(t)
			inv.Monitoring.ArtifactDir = t.TempDir()
			rs, err := Role{}.Artifacts(inv, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			const standIn = "#!/bin/sh\n# stand-in for nats-surveyor: tests the archive layout only\nexit 1\n"
			folder := strings.TrimSuffix(r.Asset, ".tar.gz")
			archive := tarGz(t, map[string]string{
				folder + "/LICENSE": "license", folder + "/README.md": "readme", folder + "/nats-surveyor": standIn,
			})
			dir := filepath.Join(r.Dir, r.Name, r.Tag)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, r.Asset), archive, 0o644); err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(archive)
			hexSum := hex.EncodeToString(s[:])
			if tc.corrupt {
				hexSum = strings.Repeat("0", 64)
			}
			if err := os.WriteFile(filepath.Join(dir, r.Sums), []byte(hexSum+"  "+r.Asset+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := artifact.Get(context.Background(), r)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Get = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(b.Path); err != nil || string(got) != standIn {
				t.Fatalf("extracted %q (%v), want the archive's member", got, err)
			}
		})
	}
}

func tarGz(t *testing.T, members map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range members {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSample(t *testing.T) {
	body := []byte("# HELP nats_up x\n# TYPE nats_up gauge\nnats_up 1\nnats_up_other 5\n" +
		"nats_survey_surveyed_count{a=\"b}\"} 3\nnats_survey_expected_count 3\n")
	for _, tc := range []struct {
		metric string
		want   float64
		ok     bool
	}{
		{"nats_up", 1, true},
		{"nats_survey_surveyed_count", 3, true},
		{"nats_survey", 0, false},
		{"missing", 0, false},
	} {
		got, ok := Sample(body, tc.metric)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Sample(%s) = %v %v, want %v %v", tc.metric, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCheckServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		ok   bool
		seen string
	}{
		{"all answer", 200, "nats_up 1\nnats_survey_surveyed_count 3\n", true, "nats_survey_surveyed_count 3"},
		{"one missing", 200, "nats_up 1\nnats_survey_surveyed_count 2\n", false, "2 of 3 servers answered"},
		{"not connected", 200, "nats_up 0\n", false, "not connected"},
		{"no survey", 200, "nats_up 1\n", false, "no nats_survey_surveyed_count"},
		{"busy", 503, "Concurrent polls are not supported", false, "HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.code)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			ok, seen := checkServers(context.Background(), srv.Client(), srv.URL+"/metrics", 3)
			if ok != tc.ok || !strings.Contains(seen, tc.seen) {
				t.Errorf("checkServers = %v %q, want %v %q", ok, seen, tc.ok, tc.seen)
			}
		})
	}
}

// labWithTLS is labWithSurveyor with [tls] turning on the listeners in
// on, its TLS directory under t's temporary directory.
func labWithTLS(t *testing.T, on inventory.TLS) *inventory.Inventory {
	t.Helper()
	inv := labWithSurveyor(t)
	on.Dir = filepath.Join(t.TempDir(), "lab.tls")
	on.ValidFor, on.RenewBefore = inventory.DefaultTLSValidFor, inventory.DefaultTLSRenewBefore
	inv.TLS = &on
	return inv
}

func TestGoldenTLS(t *testing.T) {
	r, err := Render(labWithTLS(t, inventory.TLS{Clients: true}), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Render(labWithSurveyor(t), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Config, plain.Config) {
		t.Errorf("TLS changed the config file; it carries the credentials only:\n%s", r.Config)
	}
	golden.Check(t, filepath.Join("testdata", "nats-surveyor-tls.service.golden"), r.Unit)
}

// The surveyor follows [tls] clients alone: tls:// servers, --tlscacert
// and the CA bundle when it is on; nothing changes for TLS on routes or
// the monitoring port, which it does not use.
func TestTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  *inventory.TLS
		on   bool
	}{
		{"no [tls]", nil, false},
		{"routes and monitoring", &inventory.TLS{Routes: true, Monitoring: true}, false},
		{"clients", &inventory.TLS{Clients: true}, true},
		{"all", &inventory.TLS{Clients: true, Routes: true, Monitoring: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := labWithSurveyor(t)
			if tc.tls != nil {
				inv = labWithTLS(t, *tc.tls)
			}
			cmd := ExecStart(inv)
			want := ExecStart(labWithSurveyor(t))
			if tc.on {
				want = strings.ReplaceAll(want, "nats://", "tls://") + " --tlscacert " + CAPath
			}
			if cmd != want {
				t.Errorf("ExecStart =\n%s\nwant\n%s", cmd, want)
			}
			if strings.Contains(cmd, "--tlscert") || strings.Contains(cmd, "--tlskey") || strings.Contains(cmd, "--http-tls") {
				t.Errorf("ExecStart gives the surveyor a certificate of its own: %s", cmd)
			}

			m, err := pki.Open(inv, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			h, _ := inv.MonitoringHost()
			for _, in := range []role.Input{
				{Inv: inv, Host: h, Artifacts: standIns, TLS: m},
				// Claims only: no material yet, the same paths.
				{Inv: inv, Host: h},
			} {
				d, err := Role{}.Desired(in)
				if err != nil {
					t.Fatal(err)
				}
				var ca *desired.File
				for i, f := range d.Files {
					if strings.Contains(string(f.Content), "PRIVATE KEY") {
						t.Errorf("%s: a private key goes to the host", f.Path)
					}
					if f.Path == CAPath {
						ca = &d.Files[i]
					}
				}
				if (ca != nil) != tc.on {
					t.Fatalf("CA bundle deployed %v, want %v", ca != nil, tc.on)
				}
				if ca == nil {
					continue
				}
				// ConfigDir is root:nats-surveyor 0750: the surveyor
				// reaches the bundle, others do not need to.
				if ca.Mode != 0o644 || ca.OnChange != desired.Restart || ca.Service != Service || ca.Sensitive {
					t.Errorf("CA bundle: mode %04o, on change %v of %s, sensitive %v", ca.Mode, ca.OnChange, ca.Service, ca.Sensitive)
				}
				if in.TLS != nil && !bytes.Equal(ca.Content, m.Trust) {
					t.Error("CA bundle is not the deployment's Trust")
				}
			}

			// Beside the exporter, each with its own bundle: nothing
			// clashes.
			var parts []desired.Part
			for _, r := range []role.Role{exporter.Role{}, Role{}} {
				d, err := r.Desired(role.Input{Inv: inv, Host: h, Artifacts: standIns, TLS: m})
				if err != nil {
					t.Fatalf("%s: %v", r.Name(), err)
				}
				parts = append(parts, desired.Part{Role: r.Name(), Host: d})
			}
			if _, err := desired.Merge(h.Name, parts...); err != nil {
				t.Fatal(err)
			}
		})
	}
}
