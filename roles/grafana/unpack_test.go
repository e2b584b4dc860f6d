package grafana

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tarball writes a .tar.gz with files below one top folder, like a
// release. It holds no Grafana binary: the script is told to check for a
// plain file instead.
func tarball(t *testing.T, p, top string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: top + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: top + "/" + name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func unpack(t *testing.T, tgz, dir string) (string, error) {
	t.Helper()
	script := filepath.Join("..", "..", "files", "grafana", "unpack.sh")
	out, err := exec.Command("/bin/sh", script, tgz, dir, "conf/defaults.ini").CombinedOutput()
	return string(out), err
}

func TestUnpackScript(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar here")
	}
	parent := t.TempDir()
	v1, v1tgz := filepath.Join(parent, "11.6.1"), filepath.Join(parent, "grafana-11.6.1.tar.gz")
	tarball(t, v1tgz, "grafana-v11.6.1", map[string]string{"conf/defaults.ini": "v1\n", "public/x": "x"})

	if out, err := unpack(t, v1tgz, v1); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(v1, "conf", "defaults.ini")); string(b) != "v1\n" {
		t.Fatalf("unpacked %q; the top folder must be stripped", b)
	}
	if fi, _ := os.Stat(v1); fi.Mode().Perm() != 0o755 {
		t.Errorf("folder mode %v", fi.Mode())
	}

	// An unchanged version is not unpacked again.
	marker := filepath.Join(v1, "marker")
	os.WriteFile(marker, nil, 0o644)
	if out, err := unpack(t, v1tgz, v1); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("the second start unpacked again")
	}

	// A tarball that is not a release leaves nothing behind.
	bad, badDir := filepath.Join(parent, "grafana-12.0.0.tar.gz"), filepath.Join(parent, "12.0.0")
	tarball(t, bad, "something", map[string]string{"README": "no"})
	out, err := unpack(t, bad, badDir)
	if err == nil || !strings.Contains(out, "has no conf/defaults.ini") {
		t.Errorf("a tarball without the release tree: %v %s", err, out)
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() == "12.0.0" || strings.HasPrefix(e.Name(), ".unpack.") {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// A new version is unpacked and the earlier one, folder and tarball,
	// removed.
	v2, v2tgz := filepath.Join(parent, "12.4.2"), filepath.Join(parent, "grafana-12.4.2.tar.gz")
	tarball(t, v2tgz, "grafana-12.4.2", map[string]string{"conf/defaults.ini": "v2\n"})
	os.Remove(bad)
	if out, err := unpack(t, v2tgz, v2); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	entries, _ = os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "12.4.2 grafana-12.4.2.tar.gz" {
		t.Errorf("after the upgrade %s holds %s", parent, got)
	}

	// Another build of the same version (the inventory's file and sha256
	// changed) replaces the tree, though its folder name is the same.
	tarball(t, v2tgz, "grafana-12.4.2", map[string]string{"conf/defaults.ini": "v2 rebuilt\n"})
	if out, err := unpack(t, v2tgz, v2); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(v2, "conf", "defaults.ini")); string(b) != "v2 rebuilt\n" {
		t.Errorf("a rebuilt tarball of the same version left the old tree: %q", b)
	}
}
