package remote

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"

	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// TempSuffix ends the name of the temporary file an upload writes next to
// its destination. An interrupted run leaves at most one such file per
// destination, which the next upload of the same file overwrites.
const TempSuffix = ".natsdeploy-tmp"

// StagingDir is where a non-root login stages uploads, in its home
// directory, before sudo installs them.
const StagingDir = ".natsdeploy-staging"

const (
	extFsync       = "fsync@openssh.com"
	extPosixRename = "posix-rename@openssh.com"
)

// TempPath is the temporary name Upload writes dst under before renaming
// it: in the same directory, so that the rename is atomic, and hidden.
func TempPath(dst string) string {
	return path.Join(path.Dir(dst), "."+path.Base(dst)+TempSuffix)
}

// Upload writes r to dst on the host atomically: readers see the old file
// or the new one, never part of one. The content is written to a temporary
// name in dst's directory, given its owner, group and mode, flushed to disk
// (fsync) and renamed over dst. owner and group may be empty (root; or,
// with only owner set, the owner's login group is not implied: give both).
// dst must be absolute and its directory must exist.
//
// r is streamed, never read whole into memory. File contents only ever
// travel through SFTP, never through a command line, so secrets stay out of
// process lists and error messages.
func (c *Client) Upload(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	if err := c.upload(ctx, r, dst, mode, owner, group); err != nil {
		return &opError{host: c.cfg.Host, op: "upload " + dst, err: err}
	}
	return nil
}

// opError prefixes "host H: OP: " to an error, without repeating the host
// when the inner error (say an *ExitError of a helper command) names it
// already.
type opError struct {
	host, op string
	err      error
}

func (e *opError) Error() string {
	prefix := "host " + e.host + ": "
	return prefix + e.op + ": " + strings.TrimPrefix(e.err.Error(), prefix)
}

func (e *opError) Unwrap() error { return e.err }

func (c *Client) upload(ctx context.Context, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	if err := checkUpload(dst, mode); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sc, err := c.SFTP()
	if err != nil {
		return err
	}
	r = ctxReader{ctx: ctx, r: r}
	root, err := c.IsRoot(ctx)
	if err != nil {
		return err
	}
	if root {
		return c.uploadAsRoot(ctx, sc, r, dst, mode, owner, group)
	}
	return c.uploadWithSudo(ctx, sc, r, dst, mode, owner, group)
}

// uploadAsRoot writes the temporary file in place over SFTP.
func (c *Client) uploadAsRoot(ctx context.Context, sc *sftp.Client, r io.Reader, dst string, mode fs.FileMode, owner, group string) (err error) {
	tmp := TempPath(dst)
	// O_TRUNC: a temporary file left by an interrupted run is reused.
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create temporary file %s: %w", tmp, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			// Best effort: a later upload overwrites it anyway.
			_ = sc.Remove(tmp)
		}
	}()
	// Shut the file to others before any content lands in it: the server
	// created it with its default mode (often 0644) and it may hold a secret.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod temporary file %s: %w", tmp, err)
	}
	if _, err := f.ReadFromWithConcurrency(r, 0); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// chown before the final chmod: chown clears setuid/setgid bits.
	if spec := chownSpec(owner, group); spec != "" {
		if _, err := c.Run(ctx, shell.Join("chown", "--", spec, tmp), nil); err != nil {
			return err
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	synced := false
	if _, ok := sc.HasExtension(extFsync); ok {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", tmp, err)
		}
		synced = true
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("close %s: %w", tmp, cerr)
	}
	if !synced {
		// The server lacks fsync@openssh.com: coreutils' sync with a file
		// argument fsyncs just that file.
		if _, err := c.Run(ctx, "sync "+shell.Quote(tmp), nil); err != nil {
			return err
		}
	}
	if _, ok := sc.HasExtension(extPosixRename); ok {
		if err := sc.PosixRename(tmp, dst); err != nil {
			return fmt.Errorf("rename %s to %s: %w", tmp, dst, err)
		}
		return nil
	}
	// Plain SFTP rename fails when dst exists; mv -f replaces it with
	// rename(2) just the same.
	if _, err := c.Run(ctx, shell.Join("mv", "-f", "--", tmp, dst), nil); err != nil {
		return err
	}
	return nil
}

// uploadWithSudo stages the content in the login user's own private
// directory (SFTP runs as that user, who cannot write to /etc), then one
// command as root moves it next to dst with owner and mode, flushes it and
// renames it over dst: a batch of one.
func (c *Client) uploadWithSudo(ctx context.Context, sc *sftp.Client, r io.Reader, dst string, mode fs.FileMode, owner, group string) error {
	staged, err := c.stage(sc, r, dst)
	if err != nil {
		return err
	}
	return c.install(ctx, []batched{{staged: staged, dst: dst, mode: mode, owner: owner, group: group}})
}

// stage writes r to dst's file in the staging directory, shut to others
// before any content lands in it (it may be a secret). A failed write
// leaves nothing behind.
func (c *Client) stage(sc *sftp.Client, r io.Reader, dst string) (staged string, err error) {
	dir, err := c.stagingDir(sc)
	if err != nil {
		return "", err
	}
	staged = stagedName(dir, dst)
	f, err := sc.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return "", fmt.Errorf("create staging file %s: %w", staged, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = sc.Remove(staged)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("chmod staging file %s: %w", staged, err)
	}
	if _, err := f.ReadFromWithConcurrency(r, 0); err != nil {
		return "", fmt.Errorf("write %s: %w", staged, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return "", fmt.Errorf("close %s: %w", staged, cerr)
	}
	return staged, nil
}

// install puts staged files into place in one command (installScript).
// The script cleans up after itself; when it does not get to (the run was
// cancelled and the command killed), the temporary and staged copies are
// removed by a command of their own.
func (c *Client) install(ctx context.Context, files []batched) error {
	if _, err := c.Run(ctx, installScript(files), nil); err != nil {
		var rm []string
		for _, f := range files {
			rm = append(rm, TempPath(f.dst), f.staged)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		_, _ = c.Run(cctx, shell.Join(append([]string{"rm", "-f", "--"}, rm...)...), nil)
		cancel()
		return err
	}
	return nil
}

// stagingDir creates ~/.natsdeploy-staging with mode 0700 once per
// connection. It refuses a symlink (someone could point it elsewhere), and
// the chmod fails unless the login user owns the directory.
func (c *Client) stagingDir(sc *sftp.Client) (string, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.staging != "" {
		return c.staging, nil
	}
	home, err := sc.Getwd()
	if err != nil {
		return "", fmt.Errorf("find home directory of %s: %w", c.cfg.User, err)
	}
	dir := path.Join(home, StagingDir)
	if err := sc.Mkdir(dir); err != nil {
		// Mkdir's error for an existing directory varies by server; the
		// Lstat below tells what is really there.
		if _, serr := sc.Lstat(dir); serr != nil {
			return "", fmt.Errorf("create staging directory %s: %w", dir, err)
		}
	}
	fi, err := sc.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("staging directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("staging directory %s is not a directory (%v): remove it", dir, fi.Mode())
	}
	if err := sc.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("chmod 0700 staging directory %s: %w", dir, err)
	}
	c.staging = dir
	return dir, nil
}

// sftpWriteSize is the most each SFTP write request carries. pkg/sftp's
// default, 32 KB, is the least the protocol promises; OpenSSH's
// sftp-server takes messages up to 256 KB (SFTP_MAX_MSG_LENGTH, and its
// limits@openssh.com reply offers writes of 255 KB). Writes of 128 KB cut
// the requests, and each one's work on both ends, by four: on the lab a
// 160 MB binary went over in 0.35 s instead of 0.42 s, and its CPU is
// what several hosts' uploads share.
const sftpWriteSize = 128 << 10

// SFTP returns the connection's SFTP client, opening it on first use. It
// is shared: do not close it.
func (c *Client) SFTP() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	// The SFTP session counts against sshd's MaxSessions like a command;
	// Config.MaxSessions leaves room for it.
	sc, err := sftp.NewClient(c.ssh, sftp.MaxPacketUnchecked(sftpWriteSize))
	if err != nil {
		return nil, fmt.Errorf("start sftp: %w", c.connErr(err))
	}
	c.sftp = sc
	return sc, nil
}

// chownSpec is chown's OWNER[:GROUP] argument, or "" for no change.
func chownSpec(owner, group string) string {
	switch {
	case owner != "" && group != "":
		return owner + ":" + group
	case owner != "":
		return owner
	case group != "":
		return ":" + group
	}
	return ""
}

// chmodBits converts a FileMode to the octal bits chmod and install take.
func chmodBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// ctxReader stops a transfer when ctx ends: SFTP writes take no context.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (cr ctxReader) Read(p []byte) (int, error) {
	if err := cr.ctx.Err(); err != nil {
		return 0, err
	}
	return cr.r.Read(p)
}
