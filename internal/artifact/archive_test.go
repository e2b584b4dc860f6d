package artifact

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A release whose archive is the artifact (Member ""), verified either
// against a digest given with the release (SHA256) or against a checksum
// file holding only the digest (Grafana's <file>.sha256), downloaded from a
// flat URL (no tag folder) or from a mirror laid out like the cache.
func TestArchiveAsArtifact(t *testing.T) {
	asset, tgz, _ := releaseFiles(t, testVersion, "amd64", fakeBinary)
	good, bad := sum(tgz), sum([]byte("another archive"))
	const tag = "v" + testVersion
	for _, tc := range []struct {
		name  string
		rel   func(r *Release)
		files map[string][]byte // served, by URL path
		cache map[string][]byte // already in the cache folder
		err   string            // "" means success
	}{
		{
			name:  "sha256 given, flat download",
			rel:   func(r *Release) { r.SHA256, r.Flat = strings.ToUpper(good), true },
			files: map[string][]byte{"/dl/" + asset: tgz},
		},
		{
			name:  "sha256 given, offline cache",
			rel:   func(r *Release) { r.SHA256, r.BaseURL = good, "" },
			cache: map[string][]byte{asset: tgz},
		},
		{
			name:  "sha256 given, mismatch refused and not cached",
			rel:   func(r *Release) { r.SHA256, r.Flat = bad, true },
			files: map[string][]byte{"/dl/" + asset: tgz},
			err:   "checksum mismatch: the configured sha256 says " + bad,
		},
		{
			name:  "sha256 given, cached file that does not match refused",
			rel:   func(r *Release) { r.SHA256, r.BaseURL = bad, "" },
			cache: map[string][]byte{asset: tgz},
			err:   "checksum mismatch for",
		},
		{
			name:  "sha256 given, malformed",
			rel:   func(r *Release) { r.SHA256, r.BaseURL = "abc", "" },
			cache: map[string][]byte{asset: tgz},
			err:   `"abc" is not a sha256 digest`,
		},
		{
			name: "bare digest file beside the asset, mirror layout",
			rel:  func(r *Release) { r.Sums = asset + ".sha256" },
			files: map[string][]byte{
				"/dl/" + tag + "/" + asset:             tgz,
				"/dl/" + tag + "/" + asset + ".sha256": []byte(good + "\n"),
			},
		},
		{
			name: "bare digest file, mismatch refused",
			rel:  func(r *Release) { r.Sums, r.Flat = asset+".sha256", true },
			files: map[string][]byte{
				"/dl/" + asset:             tgz,
				"/dl/" + asset + ".sha256": []byte(bad),
			},
			err: "checksum mismatch",
		},
		{
			// A bare digest only counts in a file named for the asset.
			name:  "bare digest in a shared checksum file is no entry",
			rel:   func(r *Release) { r.Sums, r.BaseURL = "SHA256SUMS", "" },
			cache: map[string][]byte{asset: tgz, "SHA256SUMS": []byte(good + "\n")},
			err:   "has no checksum for " + asset,
		},
		{
			name: "offline and missing names only the archive when sha256 is given",
			rel:  func(r *Release) { r.SHA256, r.BaseURL = good, "" },
			err:  "put " + asset + " in ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := mirror(t, tc.files)
			dir := t.TempDir()
			for name, data := range tc.cache {
				putCache(t, dir, name, data)
			}
			r := Release{
				Dir: dir, BaseURL: srv.URL + "/dl", Name: "nats-server", Tag: tag, Version: testVersion,
				Asset: asset, Sums: "SHA256SUMS", Hint: "the release page", Setting: "download_url",
			}
			tc.rel(&r)
			bin, err := Get(context.Background(), r)
			cached := filepath.Join(dir, "nats-server", tag, asset)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				if tc.cache == nil {
					if _, serr := os.Stat(cached); serr == nil {
						t.Error("a refused archive entered the cache")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bin.Path != cached || bin.SHA256 != good || bin.Version != testVersion {
				t.Errorf("got %+v, want the cached archive %s with sha %s", bin, cached, good)
			}
			// Nothing was extracted: the archive is the artifact.
			entries, _ := os.ReadDir(filepath.Dir(cached))
			for _, e := range entries {
				if e.IsDir() {
					t.Errorf("extracted into %s", e.Name())
				}
			}
		})
	}
}
