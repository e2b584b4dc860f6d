package remote

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const sudoPW = "s3cret-Sud0-pass"

// sudoPasswordFrom returns a Config.SudoPassword that gives pw and counts
// its calls.
func sudoPasswordFrom(pw string, err error, calls *atomic.Int32) func(string, string) ([]byte, error) {
	return func(host, user string) ([]byte, error) {
		calls.Add(1)
		return []byte(pw), err
	}
}

// With a password, commands run through sudo -S with the password on
// stdin: it never shows in a command line the host received, the command
// still gets its own stdin, and it is asked for once.
func TestSudoPassword(t *testing.T) {
	f := newFixture(t, withSudoPassword(sudoPW))
	var calls atomic.Int32
	f.cfg.SudoPassword = sudoPasswordFrom(sudoPW, nil, &calls)
	c := f.dial(t)
	if mustIsRoot(t, c) {
		t.Fatal("IsRoot with a fake non-root login")
	}
	res, err := c.Run(context.Background(), "cat; echo done", strings.NewReader("input line\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "input line\ndone\n" {
		t.Errorf("stdout %q: the command should get its stdin without the password line", got)
	}
	if _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Errorf("a command without stdin: %v", err)
	}
	_, err = c.Run(context.Background(), "echo oops >&2; exit 3", nil)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 3 {
		t.Errorf("got %v, want exit 3", err)
	}
	if strings.Contains(err.Error(), sudoPW) {
		t.Errorf("error shows the password: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("password asked %d times, want 1", n)
	}
	cmds := f.srv.recorded()
	for _, cmd := range cmds {
		if strings.Contains(cmd, sudoPW) {
			t.Errorf("the password is on a command line the host received: %q", cmd)
		}
	}
	sudoS := 0
	for _, cmd := range cmds {
		if strings.HasPrefix(cmd, "exec sudo -k -S -p '' -- ") {
			sudoS++
		}
	}
	// The check, then the three Runs.
	if sudoS != 4 {
		t.Errorf("%d commands ran through sudo -S, want 4: %q", sudoS, cmds)
	}
}

func TestSudoPasswordRefused(t *testing.T) {
	tests := []struct {
		name   string
		pw     string
		getErr error
		want   []string
	}{
		{name: "wrong password", pw: "not-the-" + sudoPW,
			want: []string{"host nats-1: sudo refused the password given for deploy: sudo said: sudo: 1 incorrect password attempt"}},
		{name: "no password to be had", getErr: errors.New("no terminal to ask it on"),
			want: []string{"host nats-1: user deploy needs a sudo password: no terminal to ask it on"}},
		{name: "empty", pw: "", want: []string{"host nats-1: the sudo password for deploy is empty"}},
		{name: "two lines", pw: sudoPW + "\nrm -rf /", want: []string{"has a line break"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withSudoPassword(sudoPW))
			var calls atomic.Int32
			f.cfg.SudoPassword = sudoPasswordFrom(tt.pw, tt.getErr, &calls)
			c := f.dial(t)
			_, err := c.Run(context.Background(), "echo ran >> ran.log", nil)
			wantContains(t, err, tt.want...)
			if _, serr := os.Stat(filepath.Join(f.srv.home, "ran.log")); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("the command ran: %v", serr)
			}
			// Asked once: the refusal is kept for the connection.
			_, err2 := c.Run(context.Background(), "true", nil)
			wantContains(t, err2, tt.want...)
			if n := calls.Load(); n > 1 {
				t.Errorf("password asked %d times, want at most 1", n)
			}
			if strings.Contains(err.Error(), sudoPW) {
				t.Errorf("error shows the password: %v", err)
			}
			for _, cmd := range f.srv.recorded() {
				if strings.Contains(cmd, sudoPW) || (tt.pw != "" && strings.Contains(cmd, tt.pw)) {
					t.Errorf("the password is on a command line: %q", cmd)
				}
			}
		})
	}
}

// Without a way to get a password, a sudo that wants one is refused as
// before, and passwordless sudo never asks for one.
func TestSudoPasswordNotAsked(t *testing.T) {
	f := newFixture(t, withSudoPassword(sudoPW))
	_, err := f.dial(t).Run(context.Background(), "true", nil)
	wantContains(t, err, "host nats-1: user deploy needs passwordless sudo: sudo said: sudo: a password is required")

	g := newFixture(t, asNonRoot())
	var calls atomic.Int32
	g.cfg.SudoPassword = sudoPasswordFrom(sudoPW, nil, &calls)
	c := g.dial(t)
	if _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("password asked %d times for passwordless sudo", n)
	}
}

func mustIsRoot(t *testing.T, c *Client) bool {
	t.Helper()
	root, err := c.IsRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return root
}
