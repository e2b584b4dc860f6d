package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testVersion = "2.14.9"

var fakeBinary = []byte("#!/bin/sh\necho not really nats-server\n")

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// releaseFiles builds an archive in the upstream layout (a folder named like
// the archive, holding nats-server and a few neighbours) and its SHA256SUMS.
func releaseFiles(t *testing.T, version, arch string, bin []byte) (asset string, tgz, sums []byte) {
	t.Helper()
	base := fmt.Sprintf("nats-server-v%s-linux-%s", version, arch)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, data []byte, mode int64) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: base + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	add(base+"/LICENSE", []byte("Apache-2.0\n"), 0o644)
	add(base+"/README.md", []byte("readme\n"), 0o644)
	add(base+"/nats-server", bin, 0o755)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	asset = base + ".tar.gz"
	tgz = buf.Bytes()
	other := sum([]byte("some other asset"))
	sums = []byte(fmt.Sprintf("%s  nats-server-v%s-linux-s390x.tar.gz\n%s  %s\n", other, version, sum(tgz), asset))
	return asset, tgz, sums
}

// mirror serves files at /vX.Y.Z/NAME, like the release URL, and counts requests.
func mirror(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func putCache(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, "nats-server", "v"+testVersion, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadThenCached(t *testing.T) {
	asset, tgz, sums := releaseFiles(t, testVersion, "amd64", fakeBinary)
	srv, requests := mirror(t, map[string][]byte{
		"/nats/v" + testVersion + "/" + asset:   tgz,
		"/nats/v" + testVersion + "/SHA256SUMS": sums,
	})
	dir := t.TempDir()
	ctx := context.Background()

	bin, err := NATSServer(ctx, dir, srv.URL+"/nats", testVersion, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	wantPath := filepath.Join(dir, "nats-server", "v"+testVersion, "linux-amd64", "nats-server")
	if bin.Path != wantPath || bin.SHA256 != sum(fakeBinary) || bin.Version != testVersion {
		t.Fatalf("got %+v, want path %s sha %s", bin, wantPath, sum(fakeBinary))
	}
	got, err := os.ReadFile(bin.Path)
	if err != nil || !bytes.Equal(got, fakeBinary) {
		t.Fatalf("extracted binary = %q, %v", got, err)
	}
	if fi, _ := os.Stat(bin.Path); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v, want 0755", fi.Mode())
	}
	// The cache now has the upstream layout, so it can itself be a mirror.
	for _, f := range []string{asset, "SHA256SUMS"} {
		if _, err := os.Stat(filepath.Join(dir, "nats-server", "v"+testVersion, f)); err != nil {
			t.Fatal(err)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}

	again, err := NATSServer(ctx, dir, srv.URL+"/nats", "v"+testVersion, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if again != bin {
		t.Fatalf("second call %+v != first %+v", again, bin)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("cached call made HTTP requests: %d in total", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "nats-server", "v"+testVersion, "*", ".*part"))
	leftovers2, _ := filepath.Glob(filepath.Join(dir, "nats-server", "v"+testVersion, ".*part"))
	if len(leftovers)+len(leftovers2) > 0 {
		t.Fatalf("temporary files left: %v %v", leftovers, leftovers2)
	}
}

func TestOfflineMirror(t *testing.T) {
	asset, tgz, sums := releaseFiles(t, testVersion, "arm64", fakeBinary)
	dir := t.TempDir()
	putCache(t, dir, asset, tgz)
	putCache(t, dir, "SHA256SUMS", sums)
	bin, err := NATSServer(context.Background(), dir, "", testVersion, "aarch64")
	if err != nil {
		t.Fatal(err)
	}
	if bin.SHA256 != sum(fakeBinary) || !strings.HasSuffix(bin.Path, "/linux-arm64/nats-server") {
		t.Fatalf("got %+v", bin)
	}
}

func TestOfflineEmptyCacheSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := NATSServer(context.Background(), dir, "", testVersion, "x86_64")
	if err == nil {
		t.Fatal("no error")
	}
	want := fmt.Sprintf("put nats-server-v2.14.9-linux-amd64.tar.gz and SHA256SUMS in %s/", filepath.Join(dir, "nats-server", "v2.14.9"))
	for _, w := range []string{want, "or set nats.download_url"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nlacks %q", err, w)
		}
	}
}

func TestChecksumMismatch(t *testing.T) {
	asset, tgz, _ := releaseFiles(t, testVersion, "amd64", fakeBinary)
	wrong := sum([]byte("tampered"))
	sums := []byte(wrong + "  " + asset + "\n")

	t.Run("cached", func(t *testing.T) {
		dir := t.TempDir()
		putCache(t, dir, asset, tgz)
		putCache(t, dir, "SHA256SUMS", sums)
		_, err := NATSServer(context.Background(), dir, "", testVersion, "amd64")
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range []string{"checksum mismatch", asset, wrong, sum(tgz)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "nats-server", "v"+testVersion, "linux-amd64", "nats-server")); !os.IsNotExist(err) {
			t.Errorf("binary extracted from an unverified archive: %v", err)
		}
	})

	t.Run("downloaded", func(t *testing.T) {
		srv, _ := mirror(t, map[string][]byte{
			"/v" + testVersion + "/" + asset:   tgz,
			"/v" + testVersion + "/SHA256SUMS": sums,
		})
		dir := t.TempDir()
		_, err := NATSServer(context.Background(), dir, srv.URL, testVersion, "amd64")
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("error %v, want checksum mismatch", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "nats-server", "v"+testVersion, asset)); !os.IsNotExist(err) {
			t.Errorf("a download that failed verification was cached: %v", err)
		}
	})
}

func TestMissingSumsEntry(t *testing.T) {
	asset, tgz, _ := releaseFiles(t, testVersion, "amd64", fakeBinary)
	dir := t.TempDir()
	putCache(t, dir, asset, tgz)
	putCache(t, dir, "SHA256SUMS", []byte(sum(tgz)+"  nats-server-v2.14.9-linux-arm64.tar.gz\n"))
	_, err := NATSServer(context.Background(), dir, "", testVersion, "amd64")
	if err == nil || !strings.Contains(err.Error(), "has no checksum for "+asset) {
		t.Fatalf("error %v, want a missing-entry error naming %s", err, asset)
	}
}

func TestDownloadNotFound(t *testing.T) {
	srv, _ := mirror(t, map[string][]byte{})
	_, err := NATSServer(context.Background(), t.TempDir(), srv.URL, testVersion, "amd64")
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %v, want an HTTP 404 error", err)
	}
}

func TestReextractDamagedBinary(t *testing.T) {
	asset, tgz, sums := releaseFiles(t, testVersion, "amd64", fakeBinary)
	dir := t.TempDir()
	putCache(t, dir, asset, tgz)
	putCache(t, dir, "SHA256SUMS", sums)
	ctx := context.Background()
	bin, err := NATSServer(ctx, dir, "", testVersion, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin.Path, []byte("damaged"), 0o755); err != nil {
		t.Fatal(err)
	}
	again, err := NATSServer(ctx, dir, "", testVersion, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(again.Path)
	if !bytes.Equal(got, fakeBinary) || again.SHA256 != sum(fakeBinary) {
		t.Fatalf("damaged binary was not re-extracted: %q %+v", got, again)
	}
}

func TestArchiveWithoutBinary(t *testing.T) {
	// An archive of another product named like ours: verified, but the
	// binary is not at the expected path.
	_, tgz, _ := releaseFiles(t, "9.9.9", "amd64", fakeBinary)
	asset := "nats-server-v" + testVersion + "-linux-amd64.tar.gz"
	dir := t.TempDir()
	putCache(t, dir, asset, tgz)
	putCache(t, dir, "SHA256SUMS", []byte(sum(tgz)+"  "+asset+"\n"))
	_, err := NATSServer(context.Background(), dir, "", testVersion, "amd64")
	if err == nil || !strings.Contains(err.Error(), "has no nats-server-v2.14.9-linux-amd64/nats-server") {
		t.Fatalf("error %v", err)
	}
}

func TestGoArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "amd64": "amd64", "armv7l": "arm7"} {
		if got, err := GoArch(in); err != nil || got != want {
			t.Errorf("GoArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := GoArch("sparc64"); err == nil {
		t.Error("GoArch(sparc64): no error")
	}
}

// NATSServer gets a nats-server release as the nats role describes it: the
// layout these tests exercise Get with.
func NATSServer(ctx context.Context, dir, downloadURL, version, arch string) (Binary, error) {
	v := strings.TrimPrefix(version, "v")
	a, err := GoArch(arch)
	if err != nil {
		return Binary{}, err
	}
	tag := "v" + v
	base := fmt.Sprintf("nats-server-%s-linux-%s", tag, a)
	return Get(ctx, Release{
		Dir: dir, BaseURL: downloadURL, Name: "nats-server", Tag: tag, Version: v,
		Asset: base + ".tar.gz", Sums: "SHA256SUMS", Member: base + "/nats-server",
		Target: "linux-" + a, Hint: "https://github.com/nats-io/nats-server/releases/tag/" + tag,
		Setting: "nats.download_url",
	})
}

// One archive, two executables (Prometheus ships prometheus and promtool):
// each is its own Release with its own Key, extracted beside the other with
// its own record, and neither extraction spoils the other's cache.
func TestTwoMembersOfOneArchive(t *testing.T) {
	dir := t.TempDir()
	asset, tgz, sums := releaseFiles(t, testVersion, "amd64", []byte("binary"))
	putCache(t, dir, asset, tgz)
	putCache(t, dir, "SHA256SUMS", sums)
	base := strings.TrimSuffix(asset, ".tar.gz")
	rel := func(key, member string) Release {
		return Release{Dir: dir, Name: "nats-server", Key: key, Tag: "v" + testVersion, Version: testVersion,
			Asset: asset, Sums: "SHA256SUMS", Member: base + "/" + member, Target: "linux-amd64"}
	}
	ctx := context.Background()
	bin, err := Get(ctx, rel("nats-server", "nats-server"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := Get(ctx, rel("readme", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if bin.SHA256 != sum([]byte("binary")) || readme.SHA256 != sum([]byte("readme\n")) || filepath.Dir(bin.Path) != filepath.Dir(readme.Path) {
		t.Fatalf("extracted %+v and %+v", bin, readme)
	}
	if rel("readme", "x").ID() != "readme" || (Release{Name: "n"}).ID() != "n" {
		t.Error("ID is Key, else Name")
	}
	// Damage one: only it is extracted again.
	if err := os.WriteFile(readme.Path, []byte("damaged"), 0o755); err != nil {
		t.Fatal(err)
	}
	binInfo, _ := os.Stat(bin.Path)
	again, err := Get(ctx, rel("readme", "README.md"))
	if err != nil || again.SHA256 != readme.SHA256 {
		t.Fatalf("re-extract: %+v %v", again, err)
	}
	if got, _ := Get(ctx, rel("nats-server", "nats-server")); got.SHA256 != bin.SHA256 {
		t.Fatalf("the other member changed: %+v", got)
	}
	if info, _ := os.Stat(bin.Path); !info.ModTime().Equal(binInfo.ModTime()) {
		t.Error("the other member was extracted again")
	}
}

// A file's sum is hashed once and then reused while its size, mtime and
// inode stay the same; any rewrite that changes them is hashed again.
func TestKnownSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.tar.gz")
	os.WriteFile(p, []byte("first content"), 0o644)
	first, err := knownSHA256(p)
	if err != nil || first != sum([]byte("first content")) {
		t.Fatalf("first = %s, %v", first, err)
	}
	fi, _ := os.Stat(p)
	// Same size, same mtime, same inode: the note is trusted (this is what
	// makes a no-op apply cheap), so the stale sum comes back.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("FIRST"), 0)
	f.Close()
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	if again, _ := knownSHA256(p); again != first {
		t.Errorf("an unchanged stat was hashed again: %s", again)
	}
	// A rewrite with a new mtime is hashed again.
	os.WriteFile(p, []byte("other content"), 0o644)
	os.Chtimes(p, fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second))
	if got, _ := knownSHA256(p); got != sum([]byte("other content")) {
		t.Errorf("a rewritten file kept its old sum: %s", got)
	}
}
