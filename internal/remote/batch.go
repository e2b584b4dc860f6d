package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// Batch is a set of uploads whose contents travel first, over SFTP into
// the login's staging directory, and are then installed together by one
// command. Upload costs a command (and, for a sudo login, a sudo) per
// file; on a fresh host that is most of the time its small files take.
// Sending needs nothing on the host but the staging directory, so it can
// run while other commands still create the users and directories the
// files will belong to.
//
// A Batch is safe for concurrent Sends. Install or Discard ends it.
type Batch struct {
	c     *Client
	mu    sync.Mutex
	files []batched
}

type batched struct {
	staged, dst  string
	mode         fs.FileMode
	owner, group string
}

// NewBatch starts an empty batch on c.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// Send streams r to the staging directory, to be installed at dst with
// mode, owner and group by Install. Nothing outside the staging directory
// changes. The same rules as Upload's apply to dst and mode.
func (b *Batch) Send(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	if err := b.send(ctx, r, dst, mode, owner, group); err != nil {
		return &opError{host: b.c.cfg.Host, op: "upload " + dst, err: err}
	}
	return nil
}

func (b *Batch) send(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	if err := checkUpload(dst, mode); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sc, err := b.c.SFTP()
	if err != nil {
		return err
	}
	staged, err := b.c.stage(sc, ctxReader{ctx: ctx, r: r}, dst)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files = append(b.files, batched{staged: staged, dst: dst, mode: mode, owner: owner, group: group})
	return nil
}

// Install puts every file sent into place in one command: each is moved
// next to its destination with its owner and mode, all are flushed to
// disk, and each is renamed over its destination, so a reader sees a
// whole old file or a whole new one. The staged copies are removed
// whatever happens. On failure, files renamed before the failing step
// stay installed; none is left half-written.
func (b *Batch) Install(ctx context.Context) error {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	if len(files) == 0 {
		return nil
	}
	if err := b.c.install(ctx, files); err != nil {
		return &opError{host: b.c.cfg.Host, op: fmt.Sprintf("install %d uploaded file(s)", len(files)), err: err}
	}
	return nil
}

// Discard removes what was sent and not installed.
func (b *Batch) Discard(ctx context.Context) {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	sc, err := b.c.SFTP()
	if err != nil {
		return
	}
	for _, f := range files {
		if ctx.Err() != nil {
			return
		}
		_ = sc.Remove(f.staged)
	}
}

// installScript installs files in one shell command. The temporary names
// are those Upload uses, so whatever an interrupted run leaves is
// overwritten by the next.
//
// Each staged file is moved, not copied, next to its destination: on one
// filesystem that is a rename, where a copy of a 160 MB binary and its
// flush took a tenth of a second on the lab (across filesystems mv
// copies, as install did). -Z gives it the destination's default SELinux
// label, as a new file would get, instead of the staging directory's; it
// does nothing without SELinux. The owner is set always (0:0 by default,
// as install gave root's): the staged file is the login's. chown comes
// before chmod because it clears setuid and setgid. Moving trusts the
// login no more than copying did: the login owns the staged file until
// this command runs either way.
func installScript(files []batched) string {
	var steps, tmps, staged []string
	for _, f := range files {
		tmp := TempPath(f.dst)
		owner, group := f.owner, f.group
		if owner == "" {
			owner = "0"
		}
		if group == "" {
			group = "0"
		}
		steps = append(steps,
			shell.Join("mv", "-fZ", "--", f.staged, tmp),
			shell.Join("chown", owner+":"+group, "--", tmp),
			shell.Join("chmod", fmt.Sprintf("%04o", chmodBits(f.mode)), "--", tmp))
		tmps = append(tmps, tmp)
		staged = append(staged, f.staged)
	}
	// coreutils' sync with file arguments fsyncs just those files.
	steps = append(steps, shell.Join(append([]string{"sync", "--"}, tmps...)...))
	for i, f := range files {
		steps = append(steps, shell.Join("mv", "-f", "--", tmps[i], f.dst))
	}
	// The staged copies may hold secrets: removed however it ends (a name
	// already moved is gone); the temporary ones too when a step failed
	// (rm -f of a name already renamed does nothing).
	return strings.Join(steps, " &&\n") + "; rc=$?\n" +
		shell.Join(append([]string{"rm", "-f", "--"}, staged...)...) + "\n" +
		"[ $rc = 0 ] || " + shell.Join(append([]string{"rm", "-f", "--"}, tmps...)...) + "\n" +
		"exit $rc"
}

// stagedName is dst's file in the staging directory dir: one name per
// destination, so an interrupted run leaves at most one file for each,
// which the next run overwrites.
func stagedName(dir, dst string) string {
	sum := sha256.Sum256([]byte(dst))
	return path.Join(dir, path.Base(dst)+"."+hex.EncodeToString(sum[:6]))
}

// checkUpload refuses a destination or mode no upload can honour.
func checkUpload(dst string, mode fs.FileMode) error {
	if !path.IsAbs(dst) || path.Clean(dst) != dst || dst == "/" {
		return errors.New("destination must be a clean absolute file path")
	}
	if mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("mode %v has bits other than permissions, setuid, setgid and sticky", mode)
	}
	return nil
}
