package exporter

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
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

// labWithExporter is the lab inventory with the exporter turned on, as a
// user with the official tarball in place would have it.
func labWithExporter(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadWithOptions("../../inventory/lab.toml", inventory.LoadOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	// The plaintext baseline; TLS cases set it themselves.
	inv.TLS = nil
	on := true
	inv.Monitoring.Exporter.Enabled = &on
	return inv
}

// standInBinary names what the tests upload: no real exporter exists on
// these machines, and nothing here runs it.
var standInBinary = map[string]artifact.Binary{
	ArtifactName: {Path: "/cache/stand-in/prometheus-nats-exporter", SHA256: strings.Repeat("cd", 32), Version: inventory.DefaultExporterVersion},
}

func TestUnitGolden(t *testing.T) {
	got, err := RenderUnit(labWithExporter(t))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", Service+".golden"), got)
}

// The exporter runs on every NATS host of the lab and shares each with
// nats-server: its user, paths, unit and port must not clash with the
// nats role's.
func TestMergesWithNATS(t *testing.T) {
	inv := labWithExporter(t)
	hosts := Role{}.Hosts(inv)
	if len(hosts) != len(inv.NATSHosts()) {
		t.Fatalf("Hosts = %d, want every NATS host (%d)", len(hosts), len(inv.NATSHosts()))
	}
	for _, h := range hosts {
		in := role.Input{Inv: inv, Host: h, Artifacts: standInBinary}
		ex, err := Role{}.Desired(in)
		if err != nil {
			t.Fatal(err)
		}
		n, err := nats.Role{}.Desired(role.Input{Inv: inv, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := desired.Merge(h.Name, desired.Part{Role: "nats", Host: n}, desired.Part{Role: "exporter", Host: ex}); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
		if len(ex.Units) != 1 || ex.Units[0].Ready == nil {
			t.Errorf("%s: want one unit with a Ready gate, got %+v", h.Name, ex.Units)
		}
	}
}

// An exporter port that is a NATS port is refused, naming the key to fix.
func TestPortClashWithNATS(t *testing.T) {
	inv := labWithExporter(t)
	inv.Monitoring.Exporter.Port = inv.NATS.HTTPPort
	h := inv.NATSHosts()[1]
	ex, err := Role{}.Desired(role.Input{Inv: inv, Host: h, Artifacts: standInBinary})
	if err != nil {
		t.Fatal(err)
	}
	n, err := nats.Role{}.Desired(role.Input{Inv: inv, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	_, err = desired.Merge(h.Name, desired.Part{Role: "nats", Host: n}, desired.Part{Role: "exporter", Host: ex})
	var c *desired.Clash
	if !errors.As(err, &c) || c.Key != "monitoring.exporter.port" {
		t.Fatalf("Merge = %v, want a clash on monitoring.exporter.port", err)
	}
}

func TestHostsOnlyWhenOn(t *testing.T) {
	inv := labWithExporter(t)
	off := false
	inv.Monitoring.Exporter.Enabled = &off
	if hs := (Role{}).Hosts(inv); len(hs) != 0 {
		t.Errorf("exporter off: Hosts = %v", hs)
	}
	inv.Monitoring = nil
	if hs := (Role{}).Hosts(inv); len(hs) != 0 {
		t.Errorf("no [monitoring]: Hosts = %v", hs)
	}
}

// The exact official asset names (the exporter's .goreleaser.yml spells
// amd64 x86_64) and the archive layout: the binary at its root.
func TestArtifacts(t *testing.T) {
	for _, tc := range []struct {
		arch, asset, err string
	}{
		{"amd64", "prometheus-nats-exporter-v0.20.1-linux-x86_64.tar.gz", ""},
		{"x86_64", "prometheus-nats-exporter-v0.20.1-linux-x86_64.tar.gz", ""},
		{"arm64", "prometheus-nats-exporter-v0.20.1-linux-arm64.tar.gz", ""},
		{"aarch64", "prometheus-nats-exporter-v0.20.1-linux-arm64.tar.gz", ""},
		{"armv7l", "prometheus-nats-exporter-v0.20.1-linux-armv7.tar.gz", ""},
		{"i686", "prometheus-nats-exporter-v0.20.1-linux-i386.tar.gz", ""},
		{"riscv64", "", "no Linux release for riscv64"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			rs, err := Role{}.Artifacts(labWithExporter(t), tc.arch)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("%d releases, want 1", len(rs))
			}
			r := rs[0]
			if r.Asset != tc.asset || r.Sums != "checksums.txt" || r.Member != "prometheus-nats-exporter" ||
				r.Tag != "v0.20.1" || r.Name != "prometheus-nats-exporter" || r.ID() != ArtifactName {
				t.Errorf("release = %+v", r)
			}
			// The lab is offline: download_url "" in [nats] carries over.
			if r.BaseURL != "" {
				t.Errorf("BaseURL = %q, want offline", r.BaseURL)
			}
		})
	}
}

func TestArtifactsOfficialURL(t *testing.T) {
	inv := labWithExporter(t)
	inv.Monitoring.DownloadURL = nil
	rs, err := Role{}.Artifacts(inv, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].BaseURL != ReleaseURL {
		t.Errorf("BaseURL = %q, want %q", rs[0].BaseURL, ReleaseURL)
	}
}

// writeRelease lays out a release in artifact_dir as upstream publishes it:
// a tar.gz holding the files at its root, and checksums.txt. The program in
// it is a stand-in: this tests the layout, not the exporter.
func writeRelease(t *testing.T, r artifact.Release, members map[string]string, corrupt bool) {
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
	dir := filepath.Join(r.Dir, r.Name, r.Tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, r.Asset), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	hexSum := hex.EncodeToString(sum[:])
	if corrupt {
		hexSum = strings.Repeat("0", 64)
	}
	sums := fmt.Sprintf("%s  %s\n%s  other-asset.tar.gz\n", hexSum, r.Asset, strings.Repeat("1", 64))
	if err := os.WriteFile(filepath.Join(dir, r.Sums), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
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
			inv := labWithExporter(t)
			inv.Monitoring.ArtifactDir = t.TempDir()
			rs, err := Role{}.Artifacts(inv, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			const standIn = "#!/bin/sh\n# stand-in for prometheus-nats-exporter: tests the archive layout only\nexit 1\n"
			writeRelease(t, rs[0], map[string]string{
				"LICENSE": "license", "README.md": "readme", "prometheus-nats-exporter": standIn,
			}, tc.corrupt)
			b, err := artifact.Get(context.Background(), rs[0])
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Get = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(b.Path)
			if err != nil || string(got) != standIn {
				t.Fatalf("extracted %q (%v), want the archive's member", got, err)
			}
		})
	}
}

// The unit names the collectors, listens on the inventory's port, reads
// the node on loopback and does not rename the series.
func TestExecStart(t *testing.T) {
	got := ExecStart(labWithExporter(t))
	want := "/usr/local/bin/prometheus-nats-exporter -port 7778 -addr 0.0.0.0 -varz -connz -routez -subz -healthz -jsz=all http://127.0.0.1:8222"
	if got != want {
		t.Errorf("ExecStart =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"-prefix", "-use_internal_server_name"} {
		if strings.Contains(got, bad) {
			t.Errorf("ExecStart has %s", bad)
		}
	}
}

func TestCheckMetrics(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		ok   bool
		seen string
	}{
		{"node reached", 200, "# TYPE gnatsd_varz_mem gauge\ngnatsd_varz_mem{server_id=\"http://127.0.0.1:8222\"} 1.2e+07\ngnatsd_varz_connections{server_id=\"x\"} 3\n", true, "2 gnatsd_varz_ samples"},
		{"node not reached", 200, "go_goroutines 7\n", false, "no gnatsd_varz_ series"},
		{"error", 500, "boom", false, "HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metrics" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.code)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			ok, seen := checkMetrics(context.Background(), srv.Client(), srv.URL+"/metrics")
			if ok != tc.ok || !strings.Contains(seen, tc.seen) {
				t.Errorf("checkMetrics = %v %q, want %v %q", ok, seen, tc.ok, tc.seen)
			}
		})
	}
}

// labWithTLS is labWithExporter with [tls] turning on the listeners in
// on, its TLS directory under t's temporary directory.
func labWithTLS(t *testing.T, on inventory.TLS) *inventory.Inventory {
	t.Helper()
	inv := labWithExporter(t)
	on.Dir = filepath.Join(t.TempDir(), "lab.tls")
	on.ValidFor, on.RenewBefore = inventory.DefaultTLSValidFor, inventory.DefaultTLSRenewBefore
	inv.TLS = &on
	return inv
}

func TestUnitGoldenTLS(t *testing.T) {
	got, err := RenderUnit(labWithTLS(t, inventory.TLS{Monitoring: true}))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "prometheus-nats-exporter-tls.service.golden"), got)
}

// The exporter follows [tls] monitoring alone: https and the CA bundle
// when it is on, the plain unit and no bundle otherwise (TLS on the
// client port or routes only changes nothing for it).
func TestTLS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   *inventory.TLS
		https bool
	}{
		{"no [tls]", nil, false},
		{"clients and routes", &inventory.TLS{Clients: true, Routes: true}, false},
		{"monitoring", &inventory.TLS{Monitoring: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := labWithExporter(t)
			if tc.tls != nil {
				inv = labWithTLS(t, *tc.tls)
			}
			plain, err := RenderUnit(labWithExporter(t))
			if err != nil {
				t.Fatal(err)
			}
			unit, err := RenderUnit(inv)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(ExecStart(inv), " https://127.0.0.1:8222"); got != tc.https {
				t.Errorf("ExecStart %q: https %v, want %v", ExecStart(inv), got, tc.https)
			}
			if got := bytes.Contains(unit, []byte("Environment=SSL_CERT_FILE="+CAPath+"\n")); got != tc.https {
				t.Errorf("unit sets SSL_CERT_FILE %v, want %v", got, tc.https)
			}
			if !tc.https && !bytes.Equal(unit, plain) {
				t.Errorf("unit differs from the plain one:\n%s", unit)
			}

			m, err := pki.Open(inv, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range []role.Input{
				{Inv: inv, Host: inv.NATSHosts()[0], Artifacts: standInBinary, TLS: m},
				// Claims only: no material yet, the same paths.
				{Inv: inv, Host: inv.NATSHosts()[0]},
			} {
				d, err := Role{}.Desired(in)
				if err != nil {
					t.Fatal(err)
				}
				var ca *desired.File
				for i, f := range d.Files {
					if strings.Contains(string(f.Content), "PRIVATE KEY") || strings.Contains(f.Path, "key") {
						t.Errorf("%s: a private key goes to the host", f.Path)
					}
					if f.Path == CAPath {
						ca = &d.Files[i]
					}
				}
				if (ca != nil) != tc.https {
					t.Fatalf("CA bundle deployed %v, want %v", ca != nil, tc.https)
				}
				if ca == nil {
					continue
				}
				if ca.Mode != 0o644 || ca.OnChange != desired.Restart || ca.Service != Service || ca.Sensitive {
					t.Errorf("CA bundle: mode %04o, on change %v of %s, sensitive %v", ca.Mode, ca.OnChange, ca.Service, ca.Sensitive)
				}
				if in.TLS != nil && !bytes.Equal(ca.Content, m.Trust) {
					t.Error("CA bundle is not the deployment's Trust")
				}
				if !slices.ContainsFunc(d.Dirs, func(dir desired.Dir) bool { return dir.Path == ConfigDir }) {
					t.Errorf("%s not among the directories", ConfigDir)
				}
			}
		})
	}
}
