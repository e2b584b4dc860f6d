// Package artifact gets release binaries onto the control machine: from a
// local cache or offline mirror laid out like the upstream release URLs, or
// downloaded into that cache when a download URL is configured. Every
// archive is checked against the release's checksum file before anything is
// taken out of it, so hosts only ever receive verified binaries.
package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Binary is a verified executable on the control machine. Its fields match
// roles/nats.Artifact, so a Binary converts to one directly.
type Binary struct {
	Path    string // local file to upload
	SHA256  string // hex sha256 of the binary itself, compared with the host's copy
	Version string // without the leading "v", e.g. "2.14.9"
}

// Release describes one archive of a release and the executable inside it.
// Cached files live at Dir/Name/Tag/<Asset|Sums>, the same relative path as
// BaseURL/Tag/<Asset|Sums>, so a mirror can be made by copying a release
// page's files and a cache can be served as a mirror.
type Release struct {
	Dir     string // cache or mirror root
	BaseURL string // "" means offline: Dir only
	Name    string // product folder, e.g. "nats-server"
	// Key names the extracted executable among a role's artifacts
	// (role.Input.Artifacts); default Name. One archive can give several
	// executables (prometheus and promtool): one Release each, same
	// archive, different Key and Member.
	Key     string
	Tag     string // release folder, e.g. "v2.14.9"
	Version string // reported in Binary.Version
	Asset   string // archive file name (.tar.gz)
	// Sums is the checksum file's name: sha256sum format, or a bare hex
	// digest when it is named Asset+".sha256" (Grafana's download site).
	Sums string
	// SHA256, when set, is the archive's expected hex digest and replaces
	// the checksum file: for releases whose checksums are only published
	// on a web page (Grafana 12.x+), taken from the inventory.
	SHA256 string
	// Flat says the download URL has no Tag folder: the archive is at
	// BaseURL/Asset. The cache keeps the Tag folder either way.
	Flat bool
	// Member is the path of the executable inside the archive; "" means
	// the verified archive itself is the artifact (Grafana needs its whole
	// release tree, unpacked on the host).
	Member  string
	Target  string // extracted-binary folder below the release folder, e.g. "linux-amd64"
	Hint    string // where a user can fetch the files by hand
	Setting string // the inventory key that enables downloads, for error messages
	Client  *http.Client
}

// ID is the release's name among a role's artifacts: Key, or Name.
func (r Release) ID() string {
	if r.Key != "" {
		return r.Key
	}
	return r.Name
}

// maxDownload bounds a download so a wrong URL (an endless stream, a huge
// file) cannot fill the disk; release archives are tens of MB.
const maxDownload = 1 << 30

// DefaultClient gives up on a stalled transfer instead of hanging an apply
// forever; the limit is generous because mirrors can be slow.
var DefaultClient = &http.Client{Timeout: 10 * time.Minute}

// Get returns the verified executable of r, downloading the archive and
// checksum file into the cache first if they are missing and r.BaseURL is
// set, and extracting the executable once. With no Member the verified
// archive itself is returned.
func Get(ctx context.Context, r Release) (Binary, error) {
	relDir := filepath.Join(r.Dir, r.Name, r.Tag)
	archive := filepath.Join(relDir, r.Asset)

	need := []string{r.Sums, r.Asset}
	wanted := r.Asset + " and " + r.Sums
	if r.SHA256 != "" {
		need, wanted = []string{r.Asset}, r.Asset
	}
	for _, f := range need {
		p := filepath.Join(relDir, f)
		if _, err := os.Stat(p); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return Binary{}, fmt.Errorf("%s %s: %w", r.Name, r.Tag, err)
		}
		if r.BaseURL == "" {
			return Binary{}, fmt.Errorf("%s %s: %s not found and downloads are off: put %s in %s/ (from %s), or set %s",
				r.Name, r.Tag, p, wanted, relDir, r.Hint, r.Setting)
		}
		if err := download(ctx, r, f, p); err != nil {
			return Binary{}, err
		}
	}

	want, source, err := expected(r, relDir)
	if err != nil {
		return Binary{}, fmt.Errorf("%s %s: %w", r.Name, r.Tag, err)
	}
	got, err := knownSHA256(archive)
	if err != nil {
		return Binary{}, fmt.Errorf("%s %s: %w", r.Name, r.Tag, err)
	}
	if got != want {
		return Binary{}, fmt.Errorf("%s %s: checksum mismatch for %s: %s says %s, the file has %s; delete the file and fetch it again",
			r.Name, r.Tag, archive, source, want, got)
	}
	if r.Member == "" {
		return Binary{Path: archive, SHA256: got, Version: r.Version}, nil
	}

	bin, err := extractOnce(r, archive, got)
	if err != nil {
		return Binary{}, fmt.Errorf("%s %s: %w", r.Name, r.Tag, err)
	}
	return bin, nil
}

// download fetches BaseURL/Tag/name into dst through a temporary file, so
// an interrupted transfer never leaves a partial file under the final name.
// An archive is checked against the (already present) checksum file before
// the rename, so a corrupt download never enters the cache.
func download(ctx context.Context, r Release, name, dst string) error {
	u, err := url.Parse(r.BaseURL)
	if err != nil {
		return fmt.Errorf("%s %s: download URL %q: %w", r.Name, r.Tag, r.BaseURL, err)
	}
	if r.Flat {
		u.Path = path.Join(u.Path, name)
	} else {
		u.Path = path.Join(u.Path, r.Tag, name)
	}
	src := u.String()

	client := r.Client
	if client == nil {
		client = DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w (offline? put %s in %s instead)", src, err, name, filepath.Dir(dst))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: HTTP %s (is version %s published for this platform?)", src, resp.Status, r.Version)
	}

	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+name+".*.part")
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename

	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxDownload+1))
	if err == nil && n > maxDownload {
		err = fmt.Errorf("larger than %d bytes", maxDownload)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}

	if name == r.Asset {
		want, source, err := expected(r, filepath.Dir(dst))
		if err != nil {
			return fmt.Errorf("download %s: %w", src, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("download %s: checksum mismatch: %s says %s, the download has %s; not cached",
				src, source, want, got)
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	return nil
}

// expected returns the archive's expected digest and, for messages, where
// it comes from: r.SHA256, or the checksum file in dir.
func expected(r Release, dir string) (sum, source string, err error) {
	if r.SHA256 != "" {
		sum = strings.ToLower(r.SHA256)
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return "", "", fmt.Errorf("%q is not a sha256 digest", r.SHA256)
		}
		return sum, "the configured sha256", nil
	}
	p := filepath.Join(dir, r.Sums)
	sum, err = expectedSum(p, r.Asset, r.Sums == r.Asset+".sha256")
	return sum, p, err
}

// expectedSum reads the sha256 of asset from a sha256sum-style file
// ("HEX  NAME" or "HEX *NAME" per line). bare also accepts a line holding
// only the digest, for a file that belongs to one asset by its name.
func expectedSum(sumsPath, asset string, bare bool) (string, error) {
	data, err := os.ReadFile(sumsPath)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if bare && len(fields) == 1 {
			fields = append(fields, asset)
		}
		if len(fields) != 2 {
			continue
		}
		name := strings.TrimPrefix(fields[1], "*")
		if name != asset && path.Base(name) != asset {
			continue
		}
		sum := strings.ToLower(fields[0])
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("%s: malformed checksum %q for %s", sumsPath, fields[0], asset)
		}
		return sum, nil
	}
	return "", fmt.Errorf("%s has no checksum for %s; the checksum file does not belong to this release or is incomplete", sumsPath, asset)
}

// recordSuffix names the record written beside an extracted binary in sha256sum format:
// the binary's hash and the archive's, so `sha256sum -c` in that folder
// checks both, and a changed archive or a damaged binary forces a fresh
// extraction.
const recordSuffix = ".sha256"

func extractOnce(r Release, archive, archiveSum string) (Binary, error) {
	outDir := filepath.Join(r.Dir, r.Name, r.Tag, r.Target)
	binName := path.Base(r.Member)
	out := filepath.Join(outDir, binName)
	record := out + recordSuffix
	archiveRel := filepath.Join("..", r.Asset)

	if rec, err := os.ReadFile(record); err == nil {
		binSum, fromSum, ok := parseRecord(rec, binName, archiveRel)
		if ok && fromSum == archiveSum {
			if got, err := knownSHA256(out); err == nil && got == binSum {
				return Binary{Path: out, SHA256: got, Version: r.Version}, nil
			}
		}
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Binary{}, err
	}
	binSum, err := extractMember(archive, r.Member, out)
	if err != nil {
		return Binary{}, err
	}
	rec := fmt.Sprintf("%s  %s\n%s  %s\n", binSum, binName, archiveSum, archiveRel)
	if err := writeFileAtomic(record, []byte(rec), 0o644); err != nil {
		return Binary{}, err
	}
	return Binary{Path: out, SHA256: binSum, Version: r.Version}, nil
}

func parseRecord(rec []byte, binName, archiveRel string) (binSum, archiveSum string, ok bool) {
	for _, line := range strings.Split(string(rec), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[1] {
		case binName:
			binSum = f[0]
		case archiveRel:
			archiveSum = f[0]
		}
	}
	return binSum, archiveSum, binSum != "" && archiveSum != ""
}

// extractMember copies one regular file out of a .tar.gz to dst (mode
// 0755, through a temporary file) and returns its sha256.
func extractMember(archive, member, dst string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", archive, err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("%s has no %s; is it the right archive?", archive, member)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", archive, err)
		}
		if path.Clean(hdr.Name) != member {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return "", fmt.Errorf("%s: %s is not a regular file", archive, member)
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.part")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(tmp, h), io.LimitReader(tr, maxDownload))
		if err == nil {
			err = tmp.Chmod(0o755)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("extract %s from %s: %w", member, archive, err)
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
}

// knownSHA256 is fileSHA256 remembered across runs: the sum is kept in a
// note beside the file with the file's size, modification time and inode,
// and reused while those are unchanged. Release archives and binaries are
// tens to hundreds of MB; hashing them on every run would cost a no-op
// apply a second. Anything that rewrites the file changes its stat, so a
// changed or damaged file is hashed again. The note is best effort: a
// read-only mirror just hashes every time.
func knownSHA256(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	stamp := statStamp(fi)
	note := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".sum")
	if b, err := os.ReadFile(note); err == nil {
		if st, sum, ok := strings.Cut(strings.TrimSpace(string(b)), " sha256="); ok && st == stamp && len(sum) == 64 {
			return sum, nil
		}
	}
	sum, err := fileSHA256(p)
	if err != nil {
		return "", err
	}
	_ = writeFileAtomic(note, []byte(stamp+" sha256="+sum+"\n"), 0o644)
	return sum, nil
}

func statStamp(fi os.FileInfo) string {
	ino := uint64(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("size=%d mtime=%d ino=%d", fi.Size(), fi.ModTime().UnixNano(), ino)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
