package remote

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A batch sends files without touching their destinations, then
// installs them all in one command, with owner and mode, each renamed
// over its destination; nothing is left staged, and no content is ever
// on a command line.
func TestBatch(t *testing.T) {
	for _, mode := range loginModes {
		t.Run(mode, func(t *testing.T) {
			f, c := loginFixture(t, mode)
			ctx := context.Background()
			// The login's rights are learnt first, so that the commands
			// counted below are the install's alone.
			mustIsRoot(t, c)
			dir := filepath.Join(f.srv.home, "etc", "nats")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old := filepath.Join(dir, "old.conf")
			writeFile(t, old, "old", 0o644)
			_, _, oldIno := statFile(t, old)
			type file struct {
				dst, content string
				mode         fs.FileMode
				owner, group string
			}
			files := []file{
				{filepath.Join(dir, "secret.conf"), "password: $2a$11$SECRETMARKER", 0o640, "nobody", "nogroup"},
				{old, "new\n", fs.ModeSetgid | 0o750, "", ""},
				{filepath.Join(dir, "empty"), "", 0o600, "", ""},
			}
			for i := range 5 {
				files = append(files, file{filepath.Join(dir, fmt.Sprintf("f%d.pem", i)), strings.Repeat("x", i*1000), 0o644, "", ""})
			}
			b := c.NewBatch()
			var wg sync.WaitGroup
			errs := make([]error, len(files))
			for i, fl := range files {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = b.Send(ctx, strings.NewReader(fl.content), fl.dst, fl.mode, fl.owner, fl.group)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("send %s: %v", files[i].dst, err)
				}
			}
			if got := readFile(t, old); got != "old" {
				t.Fatalf("a send changed its destination: %q", got)
			}
			if _, err := os.Stat(files[0].dst); err == nil {
				t.Fatal("a send created its destination")
			}
			// The staged files are the login's; this server runs as root
			// whatever the login, so they are given to another user here,
			// as a non-root login's would be: install must set every
			// owner, the defaults (root) included.
			for _, s := range b.files {
				if err := os.Chown(s.staged, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			before := len(f.srv.recorded())
			if err := b.Install(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(f.srv.recorded()) - before; n != 1 {
				t.Errorf("install ran %d commands, want 1: %q", n, f.srv.recorded()[before:])
			}
			for _, fl := range files {
				if got := readFile(t, fl.dst); got != fl.content {
					t.Errorf("%s holds %q, want %q", fl.dst, got, fl.content)
				}
				m, uid, _ := statFile(t, fl.dst)
				if m != fl.mode {
					t.Errorf("%s mode %v, want %v", fl.dst, m, fl.mode)
				}
				if wantUID := map[bool]uint32{true: 65534, false: 0}[fl.owner == "nobody"]; uid != wantUID {
					t.Errorf("%s uid %d, want %d", fl.dst, uid, wantUID)
				}
			}
			for _, fl := range files {
				st, _ := os.Stat(fl.dst)
				if gid, want := st.Sys().(*syscall.Stat_t).Gid, map[bool]uint32{true: 65534, false: 0}[fl.group == "nogroup"]; gid != want {
					t.Errorf("%s gid %d, want %d", fl.dst, gid, want)
				}
			}
			if _, _, ino := statFile(t, old); ino == oldIno {
				t.Error("file rewritten in place, want a new file renamed over it")
			}
			assertNoLeftovers(t, f, dir)
			for _, cmd := range f.srv.recorded() {
				if strings.Contains(cmd, "SECRETMARKER") {
					t.Errorf("content in a command line: %q", cmd)
				}
			}
			if err := b.Install(ctx); err != nil {
				t.Errorf("a second install with nothing sent: %v", err)
			}
			if n := len(f.srv.recorded()) - before; n != 1 {
				t.Errorf("an empty install ran a command")
			}
		})
	}
}

// A failing install says which host and how many files, changes no
// destination it did not reach, and leaves nothing staged or temporary;
// Discard removes what was sent.
func TestBatchFailures(t *testing.T) {
	f := newFixture(t, asNonRoot())
	c := f.dial(t)
	ctx := context.Background()
	dir := filepath.Join(f.srv.home, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "keep.conf")
	writeFile(t, keep, "old", 0o644)

	b := c.NewBatch()
	for _, s := range []struct{ dst, owner string }{{keep, ""}, {filepath.Join(dir, "bad.conf"), "no-such-user-here"}} {
		if err := b.Send(ctx, strings.NewReader("new"), s.dst, 0o644, s.owner, ""); err != nil {
			t.Fatal(err)
		}
	}
	err := b.Install(ctx)
	wantContains(t, err, "host nats-1: install 2 uploaded file(s):", "no-such-user-here")
	if got := readFile(t, keep); got != "old" {
		t.Errorf("a failed install changed %s: %q", keep, got)
	}
	assertNoLeftovers(t, f, dir)

	b = c.NewBatch()
	if err := b.Send(ctx, strings.NewReader("x"), filepath.Join(dir, "a"), 0o644, "", ""); err != nil {
		t.Fatal(err)
	}
	b.Discard(ctx)
	assertNoLeftovers(t, f, dir)
	if err := b.Install(ctx); err != nil {
		t.Errorf("install after discard: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("a discarded file was installed")
	}

	if err := c.NewBatch().Send(ctx, strings.NewReader("x"), "etc/relative", 0o644, "", ""); err == nil || !strings.Contains(err.Error(), "clean absolute") {
		t.Errorf("relative destination: %v", err)
	}
}
