package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// fixture is a client key, a server that trusts it and a known_hosts file
// that trusts the server.
type fixture struct {
	srv     *testServer
	keyFile string
	key     ed25519.PrivateKey
	dir     string
	cfg     Config
}

func newFixture(t *testing.T, opts ...serverOpt) *fixture {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, key: priv, keyFile: writeKey(t, dir, priv, "")}
	f.srv = newTestServer(t, signer.PublicKey(), opts...)
	kh := filepath.Join(dir, "known_hosts")
	var lines string
	for _, k := range f.srv.hostKeys {
		lines += f.srv.knownHostsLine(k.PublicKey())
	}
	writeFile(t, kh, lines, 0o600)
	f.cfg = Config{
		Host:          "nats-1",
		Address:       "127.0.0.1",
		Port:          f.srv.port,
		User:          "deploy",
		IdentityFiles: []string{f.keyFile},
		KnownHosts:    kh,
		Timeout:       5 * time.Second,
	}
	return f
}

func (f *fixture) dial(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(context.Background(), f.cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeFile(t testing.TB, name, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\ndoes not contain %q", err, s)
		}
	}
}

// isWrapped reports whether wire is what Run sends for cmd.
func isWrapped(wire, cmd string, sudo bool) bool {
	prefix := "exec sh -c " + shell.Quote(groupWrapper) + " " + tagPrefix
	if sudo {
		prefix = "exec sudo -n -- sh -c " + shell.Quote(groupWrapper) + " " + tagPrefix
	}
	rest, ok := strings.CutPrefix(wire, prefix)
	if !ok {
		return false
	}
	tag, quoted, ok := strings.Cut(rest, " ")
	return ok && len(tag) == 16 && quoted == shell.Quote(cmd)
}

func TestWrap(t *testing.T) {
	cmd := `echo "it's" | tr a-z A-Z`
	sudo := wrap(cmd, "natsdeploy-run:0123456789abcdef", privilege{})
	want := "exec sudo -n -- sh -c " + shell.Quote(groupWrapper) + ` natsdeploy-run:0123456789abcdef 'echo "it'\''s" | tr a-z A-Z'`
	if sudo != want {
		t.Fatalf("wrap = %s\nwant   %s", sudo, want)
	}
	if !isWrapped(sudo, cmd, true) {
		t.Fatal("isWrapped false")
	}
	root := wrap(cmd, "natsdeploy-run:0123456789abcdef", privilege{root: true})
	if !isWrapped(root, cmd, false) {
		t.Fatalf("root wrap = %s", root)
	}
	// Run what would be sent, with a stand-in sudo that drops its flags:
	// output, stdin and exit status come through the wrapper untouched.
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "sudo"), "#!/bin/sh\nshift 2\nexec \"$@\"\n", 0o755)
	for _, tc := range []struct {
		cmd, stdin, out string
		code            int
	}{
		{cmd: cmd, out: "IT'S\n"},
		{cmd: "cat; echo; printf '%s' \"$0 $#\"", stdin: "in'put", out: "in'put\nsh 0"},
		{cmd: "echo a >&2; exit 7", code: 7},
		{cmd: "kill -TERM $$", code: 143},
	} {
		for _, wire := range []string{wrap(tc.cmd, runTag(), privilege{}), wrap(tc.cmd, runTag(), privilege{root: true})} {
			sh := exec.Command("/bin/sh", "-c", wire)
			sh.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			sh.Stdin = strings.NewReader(tc.stdin)
			out, err := sh.Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if string(out) != tc.out || code != tc.code {
				t.Errorf("%s: got %q exit %d (%v), want %q exit %d", wire, out, code, err, tc.out, tc.code)
			}
		}
	}
}

func TestHostKeys(t *testing.T) {
	type tc struct {
		name string
		// setup changes the fixture before the dial.
		setup func(t *testing.T, f *fixture)
		// wantErr lists message parts; empty means the dial succeeds.
		wantErr func(f *fixture) []string
		problem HostKeyProblem
	}
	otherKey := newSigner(t, "ed25519")
	cases := []tc{
		{name: "known host accepted"},
		{
			name: "unknown host refused",
			setup: func(t *testing.T, f *fixture) {
				writeFile(t, f.cfg.KnownHosts, "", 0o600)
			},
			wantErr: func(f *fixture) []string {
				fp := ssh.FingerprintSHA256(f.srv.hostKeys[0].PublicKey())
				return []string{"host nats-1:", "unknown host key", f.srv.addr, "not in " + f.cfg.KnownHosts,
					"add it with ssh-keyscan after checking the fingerprint " + fp, "-t ed25519", "accept_new_host_keys = true"}
			},
			problem: HostKeyUnknown,
		},
		{
			name: "missing known_hosts is an unknown host",
			setup: func(t *testing.T, f *fixture) {
				f.cfg.KnownHosts = filepath.Join(f.dir, "nope", "known_hosts")
			},
			wantErr: func(f *fixture) []string { return []string{"unknown host key", "ssh-keyscan"} },
			problem: HostKeyUnknown,
		},
		{
			name: "other host's line does not count",
			setup: func(t *testing.T, f *fixture) {
				writeFile(t, f.cfg.KnownHosts, "[127.0.0.1]:1 "+string(ssh.MarshalAuthorizedKey(f.srv.hostKeys[0].PublicKey())), 0o600)
			},
			wantErr: func(f *fixture) []string { return []string{"unknown host key"} },
			problem: HostKeyUnknown,
		},
		{
			name: "changed key refused even with accept-new",
			setup: func(t *testing.T, f *fixture) {
				writeFile(t, f.cfg.KnownHosts, "# lab\n"+f.srv.knownHostsLine(otherKey.PublicKey()), 0o600)
				f.cfg.AcceptNew = true
			},
			wantErr: func(f *fixture) []string {
				return []string{"host nats-1: REFUSED: host key for " + f.srv.addr + " changed",
					"was " + ssh.FingerprintSHA256(otherKey.PublicKey()) + " (" + f.cfg.KnownHosts + ":2)",
					"now " + ssh.FingerprintSHA256(f.srv.hostKeys[0].PublicKey()),
					"if the host was rebuilt, remove its line from " + f.cfg.KnownHosts}
			},
			problem: HostKeyChanged,
		},
		{
			name: "revoked key refused",
			setup: func(t *testing.T, f *fixture) {
				old := readFile(t, f.cfg.KnownHosts)
				writeFile(t, f.cfg.KnownHosts, old+"@revoked * "+string(ssh.MarshalAuthorizedKey(f.srv.hostKeys[0].PublicKey())), 0o600)
			},
			wantErr: func(f *fixture) []string { return []string{"REFUSED", "@revoked"} },
			problem: HostKeyRevoked,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.setup != nil {
				c.setup(t, f)
			}
			before, _ := os.ReadFile(f.cfg.KnownHosts)
			cl, err := Dial(context.Background(), f.cfg)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				cl.Close()
				return
			}
			if err == nil {
				cl.Close()
				t.Fatal("Dial succeeded, want refusal")
			}
			wantContains(t, err, c.wantErr(f)...)
			var hke *HostKeyError
			if !errors.As(err, &hke) || hke.Problem != c.problem {
				t.Errorf("error %T %v, want *HostKeyError with problem %d", err, err, c.problem)
			}
			after, _ := os.ReadFile(f.cfg.KnownHosts)
			if !bytes.Equal(before, after) {
				t.Errorf("known_hosts changed on a refused dial:\n%s\n->\n%s", before, after)
			}
			if conns, _, _ := f.srv.stats(); conns != 0 {
				t.Errorf("server saw %d authenticated connections, want none", conns)
			}
		})
	}
}

func TestAcceptNew(t *testing.T) {
	f := newFixture(t)
	// Directory and file do not exist yet.
	f.cfg.KnownHosts = filepath.Join(f.dir, "ssh", "known_hosts")
	f.cfg.AcceptNew = true
	f.dial(t).Close()

	got := readFile(t, f.cfg.KnownHosts)
	if want := f.srv.knownHostsLine(f.srv.hostKeys[0].PublicKey()); got != want {
		t.Fatalf("known_hosts = %q, want exactly %q", got, want)
	}
	for path, want := range map[string]fs.FileMode{f.cfg.KnownHosts: 0o600, filepath.Dir(f.cfg.KnownHosts): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, err %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}

	// The second dial verifies against the recorded key, without
	// accept-new, and adds nothing.
	f.cfg.AcceptNew = false
	f.dial(t).Close()
	if again := readFile(t, f.cfg.KnownHosts); again != got {
		t.Fatalf("known_hosts changed on the second dial: %q", again)
	}

	// A file without a final newline gets one before the new line.
	f2 := newFixture(t)
	writeFile(t, f2.cfg.KnownHosts, "# no newline", 0o600)
	f2.cfg.AcceptNew = true
	f2.dial(t).Close()
	if got, want := readFile(t, f2.cfg.KnownHosts), "# no newline\n"+f2.srv.knownHostsLine(f2.srv.hostKeys[0].PublicKey()); got != want {
		t.Fatalf("known_hosts = %q, want %q", got, want)
	}
}

// Parallel first dials to one host with accept-new write one line.
func TestAcceptNewParallel(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.cfg.KnownHosts, "", 0o600)
	f.cfg.AcceptNew = true
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), f.cfg)
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	if got := strings.Count(readFile(t, f.cfg.KnownHosts), "\n"); got != 1 {
		t.Fatalf("known_hosts has %d lines, want 1:\n%s", got, readFile(t, f.cfg.KnownHosts))
	}
}

// knownhosts reports a host known under another key type exactly like a
// changed key. Dial prefers the recorded type, so a host that has both keys
// is accepted; a host that lost the recorded type is refused.
func TestHostKeyOfAnotherType(t *testing.T) {
	ed := newSigner(t, "ed25519")
	ec := newSigner(t, "ecdsa")
	rsaKey := newSigner(t, "rsa")

	t.Run("recorded type preferred", func(t *testing.T) {
		for _, known := range []ssh.Signer{ec, rsaKey, ed} {
			f := newFixture(t, withHostKeys(ed, ec, rsaKey))
			writeFile(t, f.cfg.KnownHosts, f.srv.knownHostsLine(known.PublicKey()), 0o600)
			f.dial(t).Close()
		}
	})
	t.Run("recorded type gone", func(t *testing.T) {
		f := newFixture(t, withHostKeys(ed))
		writeFile(t, f.cfg.KnownHosts, f.srv.knownHostsLine(ec.PublicKey()), 0o600)
		f.cfg.AcceptNew = true
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "REFUSED", "changed", ssh.FingerprintSHA256(ec.PublicKey()), "ecdsa-sha2-nistp256",
			"presented ssh-ed25519 "+ssh.FingerprintSHA256(ed.PublicKey()), "remove its line")
		var hke *HostKeyError
		if !errors.As(err, &hke) || hke.Problem != HostKeyOtherType {
			t.Errorf("want HostKeyOtherType, got %#v", err)
		}
	})
}

func TestAuth(t *testing.T) {
	t.Run("wrong key", func(t *testing.T) {
		f := newFixture(t)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		f.cfg.IdentityFiles = []string{writeKey(t, f.dir, other, "")}
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "host nats-1: ssh authentication as deploy failed (tried: "+f.cfg.IdentityFiles[0]+")", "unable to authenticate")
	})
	t.Run("second key works", func(t *testing.T) {
		f := newFixture(t)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		f.cfg.IdentityFiles = []string{writeKey(t, f.dir, other, ""), f.keyFile}
		f.dial(t)
	})
	t.Run("encrypted key without agent", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.IdentityFiles = []string{writeKey(t, f.dir, f.key, "secret")}
		t.Setenv("SSH_AUTH_SOCK", "")
		f.cfg.UseAgent = true
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "host nats-1: identity file "+f.cfg.IdentityFiles[0]+" is encrypted", "ssh-agent", "ssh-add")
	})
	t.Run("missing key file", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.IdentityFiles = []string{filepath.Join(f.dir, "absent")}
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "host nats-1: identity file", "absent", "no such file")
	})
	t.Run("no key at all", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.IdentityFiles = nil
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "host nats-1: no SSH key", "identity_files")
	})
	t.Run("agent", func(t *testing.T) {
		f := newFixture(t)
		sock := serveAgent(t, f.key)
		t.Setenv("SSH_AUTH_SOCK", sock)
		f.cfg.UseAgent = true
		// The file is encrypted: skipped, the agent has the key.
		f.cfg.IdentityFiles = []string{writeKey(t, f.dir, f.key, "secret")}
		f.dial(t)
	})
	t.Run("agent without the key, file has it", func(t *testing.T) {
		f := newFixture(t)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		t.Setenv("SSH_AUTH_SOCK", serveAgent(t, other))
		f.cfg.UseAgent = true
		f.dial(t)
	})
	t.Run("agent wrong key", func(t *testing.T) {
		f := newFixture(t)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		t.Setenv("SSH_AUTH_SOCK", serveAgent(t, other))
		f.cfg.UseAgent = true
		f.cfg.IdentityFiles = nil
		_, err := Dial(context.Background(), f.cfg)
		wantContains(t, err, "ssh authentication as deploy failed (tried: agent)")
	})
}

// serveAgent runs an in-memory ssh-agent holding key on a unix socket.
func serveAgent(t *testing.T, key any) string {
	t.Helper()
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent") // short path: unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	return sock
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	f := newFixture(t)
	f.cfg.Port = port
	_, err = Dial(context.Background(), f.cfg)
	wantContains(t, err, "host nats-1: cannot reach 127.0.0.1:"+fmt.Sprint(port), "connection refused")
}

// A port that accepts but never speaks SSH: the handshake times out.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	f := newFixture(t)
	f.cfg.Port = ln.Addr().(*net.TCPAddr).Port
	f.cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), f.cfg)
	wantContains(t, err, "host nats-1: ssh handshake with 127.0.0.1:", "timed out after 300ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %v", d)
	}

	// ctx cancellation interrupts the handshake too.
	f.cfg.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, f.cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial with expired ctx: %v, want DeadlineExceeded", err)
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	if !mustIsRoot(t, c) {
		t.Fatal("IsRoot false for a uid 0 login")
	}
	ctx := context.Background()
	cases := []struct {
		cmd            string
		stdin          string
		stdout, stderr string
		code           int
		errParts       []string
	}{
		{cmd: "echo out; echo err >&2", stdout: "out\n", stderr: "err\n"},
		{cmd: "tr a-z A-Z", stdin: "hello", stdout: "HELLO"},
		{cmd: "echo partial; echo 'no such unit' >&2; exit 3", stdout: "partial\n", stderr: "no such unit\n", code: 3,
			errParts: []string{"host nats-1: echo partial;", "exit status 3: no such unit"}},
		{cmd: "echo only-stdout; exit 1", stdout: "only-stdout\n", code: 1, errParts: []string{"exit status 1: only-stdout"}},
		{cmd: "exit 0"},
		{cmd: "printf '%s' " + shell.Quote("a'b c"), stdout: "a'b c"},
	}
	for _, tc := range cases {
		var stdin io.Reader
		if tc.stdin != "" {
			stdin = strings.NewReader(tc.stdin)
		}
		res, err := c.Run(ctx, tc.cmd, stdin)
		if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr || res.ExitCode != tc.code {
			t.Errorf("Run(%q) = %+q %+q %d, want %q %q %d", tc.cmd, res.Stdout, res.Stderr, res.ExitCode, tc.stdout, tc.stderr, tc.code)
		}
		if tc.code == 0 {
			if err != nil {
				t.Errorf("Run(%q): %v", tc.cmd, err)
			}
			continue
		}
		var ee *ExitError
		if !errors.As(err, &ee) || ee.ExitCode != tc.code {
			t.Errorf("Run(%q) error %v, want *ExitError with code %d", tc.cmd, err, tc.code)
		}
		wantContains(t, err, tc.errParts...)
	}
	// As root, commands are sent as they are.
	got := f.srv.recorded()
	if got[0] != "id -u; sudo -n true" || !isWrapped(got[1], cases[0].cmd, false) {
		t.Errorf("recorded %q", got)
	}
}

// Many commands at once share one connection; sessions are capped.
func TestRunConcurrentOneConnection(t *testing.T) {
	f := newFixture(t)
	f.cfg.MaxSessions = 4
	c := f.dial(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), fmt.Sprintf("sleep 0.05; echo %d", i), nil)
			if err != nil || string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				t.Errorf("Run %d: %q %v", i, res.Stdout, err)
			}
		}()
	}
	wg.Wait()
	if err := c.Upload(context.Background(), strings.NewReader("x"), filepath.Join(f.srv.home, "x"), 0o644, "", ""); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	resp, err := c.HTTPClient().Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	conns, _, maxSess := f.srv.stats()
	if conns != 1 {
		t.Errorf("server saw %d connections, want 1", conns)
	}
	if maxSess > 4+1 { // +1: the SFTP session
		t.Errorf("%d sessions at once, want at most 5", maxSess)
	}
}

// Cancelling a Run stops the whole command, not only the process sshd
// started: with sudo, the signal reaches sudo, which passes it to a shell
// that would die and leave its children running.
func TestRunCancel(t *testing.T) {
	for _, mode := range loginModes {
		t.Run(mode, func(t *testing.T) {
			f, c := loginFixture(t, mode)
			// Asked before the clock starts: 300ms is for the command.
			mustIsRoot(t, c)
			marker := fmt.Sprintf("30.%d", time.Now().UnixNano()%1000000)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			cmd := "echo started; sleep " + marker + "; echo not reached"
			res, err := c.Run(ctx, cmd, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run: %v, want DeadlineExceeded", err)
			}
			wantContains(t, err, "host nats-1: "+cmd)
			// Far below the 30s sleep, so a Run that waits for the command
			// is caught; generous, because a loaded 2-core machine takes
			// seconds to tear a session down.
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("Run returned after %v", d)
			}
			if string(res.Stdout) != "started\n" {
				t.Errorf("partial stdout %q", res.Stdout)
			}
			deadline := time.Now().Add(15 * time.Second)
			for len(procsWithArg(marker)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("remote command still running after cancel: pids %v", procsWithArg(marker))
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The connection is still usable.
			if _, err := c.Run(context.Background(), "true", nil); err != nil {
				t.Fatal(err)
			}
			// An already cancelled ctx sends nothing.
			n := len(f.srv.recorded())
			if _, err := c.Run(ctx, "true", nil); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run with dead ctx: %v", err)
			}
			if len(f.srv.recorded()) != n {
				t.Error("a command was sent with a cancelled ctx")
			}
		})
	}
}

// procsWithArg lists the pids of processes with arg among their arguments.
func procsWithArg(arg string) []string {
	var pids []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				pids = append(pids, d.Name())
			}
		}
	}
	return pids
}

func TestSudo(t *testing.T) {
	t.Run("wrapped", func(t *testing.T) {
		f := newFixture(t, asNonRoot())
		c := f.dial(t)
		cmd := `echo "it's $((40+2))" | tr a-z A-Z`
		res, err := c.Run(context.Background(), cmd, nil)
		if err != nil || string(res.Stdout) != "IT'S 42\n" {
			t.Fatalf("Run: %q %v", res.Stdout, err)
		}
		// The first command went through sudo -n on the guess alone, and
		// its success answered the question: no probe, before or after.
		if mustIsRoot(t, c) {
			t.Fatal("IsRoot true for uid 1000")
		}
		if got := f.srv.recorded(); len(got) != 1 || !isWrapped(got[0], cmd, true) {
			t.Errorf("server got\n%q", got)
		}
		// A failing command's error shows the command as written.
		_, err = c.Run(context.Background(), "echo boom >&2; exit 4", nil)
		wantContains(t, err, "host nats-1: echo boom >&2; exit 4: exit status 4: boom")
		if strings.Contains(err.Error(), "sudo") {
			t.Errorf("error shows the sudo wrapping: %v", err)
		}
	})
	t.Run("first command fails by itself", func(t *testing.T) {
		f := newFixture(t, asNonRoot())
		c := f.dial(t)
		_, err := c.Run(context.Background(), "echo ran >> ran.log; exit 3", nil)
		wantContains(t, err, "exit status 3")
		// The host was asked why, said sudo works: the failure is the
		// command's own and it is not run again.
		if got := f.srv.recorded(); len(got) != 2 || got[1] != privilegeProbe {
			t.Errorf("server got\n%q", got)
		}
		if b, _ := os.ReadFile(filepath.Join(f.srv.home, "ran.log")); string(b) != "ran\n" {
			t.Errorf("the command ran %q times, want once", b)
		}
	})
	t.Run("no sudo right", func(t *testing.T) {
		f := newFixture(t, withoutSudoRight())
		c := f.dial(t)
		for range 2 {
			_, err := c.Run(context.Background(), "echo ran >> ran.log", nil)
			wantContains(t, err, "host nats-1: user deploy needs passwordless sudo: sudo said: sudo: a password is required")
		}
		// The guess (refused by sudo before it ran anything), the probe,
		// and nothing after: the answer is kept.
		if got := f.srv.recorded(); len(got) != 2 || got[1] != privilegeProbe {
			t.Errorf("server got %q", got)
		}
		if _, err := os.Stat(filepath.Join(f.srv.home, "ran.log")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the command ran: %v", err)
		}
		err := c.Upload(context.Background(), strings.NewReader("x"), filepath.Join(f.srv.home, "up"), 0o644, "", "")
		wantContains(t, err, "needs passwordless sudo")
	})
	t.Run("sudo not installed", func(t *testing.T) {
		f := newFixture(t, asNonRoot())
		f.srv.writeBin("sudo", `echo "sh: 1: sudo: not found" >&2; exit 127`)
		c := f.dial(t)
		_, err := c.Run(context.Background(), "true", nil)
		wantContains(t, err, "host nats-1: user deploy is not root and sudo is not installed")
	})
	// A login the guess gets wrong runs each command once, as it must.
	t.Run("uid 0 without sudo, not named root", func(t *testing.T) {
		f := newFixture(t) // the tests run as root; this machine need not have sudo
		f.srv.writeBin("sudo", `echo "sh: 1: sudo: not found" >&2; exit 127`)
		c := f.dial(t)
		if _, err := c.Run(context.Background(), "echo ran >> ran.log", nil); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(f.srv.home, "ran.log")); string(b) != "ran\n" {
			t.Errorf("the command ran %q times, want once", b)
		}
		if got := f.srv.recorded(); len(got) != 3 || !isWrapped(got[0], "echo ran >> ran.log", true) || got[1] != privilegeProbe || !isWrapped(got[2], "echo ran >> ran.log", false) {
			t.Errorf("server got\n%q", got)
		}
		if !mustIsRoot(t, c) {
			t.Error("IsRoot false for uid 0")
		}
	})
	t.Run("named root and uid 0", func(t *testing.T) {
		f := newFixture(t) // the tests run as root
		f.cfg.User = "root"
		c := f.dial(t)
		res, err := c.Run(context.Background(), "id -u", nil)
		if err != nil || string(res.Stdout) != "0\n" {
			t.Fatalf("Run: %q %v", res.Stdout, err)
		}
		// One command, as it is behind the guard, and nothing asked.
		if got := f.srv.recorded(); len(got) != 1 || !isWrapped(got[0], rootGuard+"id -u", false) {
			t.Errorf("server got\n%q", got)
		}
		if !mustIsRoot(t, c) || len(f.srv.recorded()) != 1 {
			t.Errorf("IsRoot asked the host again, or said no: %q", f.srv.recorded())
		}
	})
	t.Run("named root, not uid 0", func(t *testing.T) {
		f := newFixture(t, asNonRoot())
		f.cfg.User = "root"
		c := f.dial(t)
		res, err := c.Run(context.Background(), "echo ran >> ran.log; id -u", nil)
		if err != nil || string(res.Stdout) != "1000\n" {
			t.Fatalf("Run: %q %v", res.Stdout, err)
		}
		// rootGuard stopped the guess before the command ran; then sudo.
		if b, _ := os.ReadFile(filepath.Join(f.srv.home, "ran.log")); string(b) != "ran\n" {
			t.Errorf("the command ran %q times, want once", b)
		}
		if got := f.srv.recorded(); len(got) != 3 || got[1] != privilegeProbe || !isWrapped(got[2], "echo ran >> ran.log; id -u", true) {
			t.Errorf("server got\n%q", got)
		}
	})
}

// statFile returns mode, uid and inode.
func statFile(t *testing.T, name string) (fs.FileMode, uint32, uint64) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), st.Uid, st.Ino
}

// loginModes are the ways a login becomes root that uploads must work
// with.
var loginModes = []string{"root", "sudo", "sudo with a password"}

// loginFixture is a server and a connection to it whose login becomes root
// as mode says.
func loginFixture(t *testing.T, mode string) (*fixture, *Client) {
	t.Helper()
	var opts []serverOpt
	switch mode {
	case "sudo":
		opts = append(opts, asNonRoot())
	case "sudo with a password":
		opts = append(opts, withSudoPassword(sudoPW))
	}
	f := newFixture(t, opts...)
	if mode == "sudo with a password" {
		f.cfg.SudoPassword = func(string, string) ([]byte, error) { return []byte(sudoPW), nil }
	}
	return f, f.dial(t)
}

func TestUpload(t *testing.T) {
	for _, mode := range loginModes {
		t.Run(mode, func(t *testing.T) {
			f, c := loginFixture(t, mode)
			ctx := context.Background()
			dir := filepath.Join(f.srv.home, "etc", "nats")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, "nats.conf")
			secret := "password: $2a$11$SECRETMARKER"

			// New file, owner and group set.
			if err := c.Upload(ctx, strings.NewReader(secret), dst, 0o640, "nobody", "nogroup"); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, dst); got != secret {
				t.Fatalf("content %q", got)
			}
			m, uid, ino := statFile(t, dst)
			if m != 0o640 || uid != 65534 {
				t.Errorf("mode %v uid %d, want 0640 65534", m, uid)
			}
			st, _ := os.Stat(dst)
			if gid := st.Sys().(*syscall.Stat_t).Gid; gid != 65534 {
				t.Errorf("gid %d, want 65534", gid)
			}

			// Overwrite: a reader holding the old file keeps the old
			// content (a rename, not a rewrite in place).
			old, err := os.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			if err := c.Upload(ctx, strings.NewReader("v2"), dst, 0o4755, "", ""); err == nil {
				t.Fatal("mode with os.FileMode bits 0o4755 accepted") // 0o4755 is not ModeSetuid
			}
			if err := c.Upload(ctx, strings.NewReader("v2\n"), dst, fs.ModeSetgid|0o750, "", ""); err != nil {
				t.Fatal(err)
			}
			m2, uid2, ino2 := statFile(t, dst)
			if got := readFile(t, dst); got != "v2\n" {
				t.Fatalf("content after overwrite %q", got)
			}
			if m2 != fs.ModeSetgid|0o750 || uid2 != 0 {
				t.Errorf("mode %v uid %d after overwrite, want %v 0", m2, uid2, fs.ModeSetgid|0o750)
			}
			if ino2 == ino {
				t.Error("file rewritten in place, want a new file renamed over it")
			}
			if b, _ := io.ReadAll(old); string(b) != secret {
				t.Errorf("old reader saw %q", b)
			}

			// Empty file.
			if err := c.Upload(ctx, strings.NewReader(""), dst, 0o600, "", ""); err != nil || readFile(t, dst) != "" {
				t.Fatalf("empty upload: %v", err)
			}

			// Nothing left behind; the secret never was on a command line.
			assertNoLeftovers(t, f, dir)
			for _, cmd := range f.srv.recorded() {
				if strings.Contains(cmd, "SECRETMARKER") {
					t.Errorf("content in a command line: %q", cmd)
				}
			}
			if mode == "root" {
				// pkg/sftp's server lacks fsync@openssh.com: the fallback ran.
				if !slices.ContainsFunc(f.srv.recorded(), func(w string) bool { return isWrapped(w, "sync "+TempPath(dst), false) }) {
					t.Errorf("no sync fallback in %q", f.srv.recorded())
				}
			} else {
				fi, err := os.Stat(filepath.Join(f.srv.home, StagingDir))
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("staging dir: %v %v", fi.Mode(), err)
				}
			}
		})
	}
}

func assertNoLeftovers(t *testing.T, f *fixture, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	staged, _ := os.ReadDir(filepath.Join(f.srv.home, StagingDir))
	for _, e := range staged {
		t.Errorf("staged file %s left behind", e.Name())
	}
}

// failingReader fails after n bytes, like a local file read error or a
// killed run in the middle of a transfer.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestUploadInterrupted(t *testing.T) {
	for _, mode := range []string{"root", "sudo"} {
		t.Run(mode, func(t *testing.T) {
			var opts []serverOpt
			if mode == "sudo" {
				opts = append(opts, asNonRoot())
			}
			f := newFixture(t, opts...)
			c := f.dial(t)
			dst := filepath.Join(f.srv.home, "bin-nats")
			writeFile(t, dst, "old", 0o755)

			err := c.Upload(context.Background(), &failingReader{n: 300 << 10}, dst, 0o755, "", "")
			wantContains(t, err, "host nats-1: upload "+dst+":", "disk on fire")
			if got := readFile(t, dst); got != "old" {
				t.Fatalf("destination changed by a failed upload: %d bytes", len(got))
			}

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := c.Upload(ctx, strings.NewReader("new"), dst, 0o755, "", ""); !errors.Is(err, context.Canceled) {
				t.Fatalf("Upload with cancelled ctx: %v", err)
			}

			// A temporary file as an interrupted run leaves it is
			// overwritten by the next upload.
			writeFile(t, TempPath(dst), "stale garbage, longer than the new content", 0o644)
			if err := c.Upload(context.Background(), strings.NewReader("new"), dst, 0o755, "", ""); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, dst); got != "new" {
				t.Fatalf("content %q", got)
			}
			assertNoLeftovers(t, f, f.srv.home)
		})
	}
}

func TestUploadErrors(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	ctx := context.Background()
	err := c.Upload(ctx, strings.NewReader("x"), "relative/path", 0o644, "", "")
	wantContains(t, err, "host nats-1: upload relative/path: destination must be a clean absolute file path")
	err = c.Upload(ctx, strings.NewReader("x"), filepath.Join(f.srv.home, "no", "dir", "f"), 0o644, "", "")
	wantContains(t, err, "host nats-1: upload "+filepath.Join(f.srv.home, "no", "dir", "f")+": create temporary file")
	dst := filepath.Join(f.srv.home, "f")
	err = c.Upload(ctx, strings.NewReader("x"), dst, 0o644, "no-such-user-xyz", "")
	wantContains(t, err, "host nats-1: upload "+dst+": chown -- no-such-user-xyz", "exit status 1", "no-such-user-xyz")
	if strings.Count(err.Error(), "host nats-1") != 1 {
		t.Errorf("host named twice: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destination exists after a failed upload: %v", err)
	}
	assertNoLeftovers(t, f, f.srv.home)

	// With sudo: a failing install names the host once and cleans up.
	g := newFixture(t, asNonRoot())
	gc := g.dial(t)
	dst = filepath.Join(g.srv.home, "g")
	err = gc.Upload(ctx, strings.NewReader("x"), dst, 0o644, "no-such-user-xyz", "")
	wantContains(t, err, "host nats-1: upload "+dst+": mv -fZ -- ", "chown: invalid user", "no-such-user-xyz")
	if strings.Count(err.Error(), "host nats-1") != 1 {
		t.Errorf("host named twice: %v", err)
	}
	assertNoLeftovers(t, g, g.srv.home)
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		x := r.off + int64(i)
		p[i] = byte(x*7 + x>>11)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// A 20 MB binary streams through, in both modes.
func TestUploadLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large upload")
	}
	const size = 20 << 20
	want := sha256.New()
	io.Copy(want, &patternReader{n: size})
	for _, mode := range []string{"root", "sudo"} {
		t.Run(mode, func(t *testing.T) {
			var opts []serverOpt
			if mode == "sudo" {
				opts = append(opts, asNonRoot())
			}
			f := newFixture(t, opts...)
			c := f.dial(t)
			dst := filepath.Join(f.srv.home, "nats-server")
			if err := c.Upload(context.Background(), &patternReader{n: size}, dst, 0o755, "", ""); err != nil {
				t.Fatal(err)
			}
			got := sha256.New()
			fh, err := os.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			io.Copy(got, fh)
			if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatal("content differs")
			}
		})
	}
}

func TestDialTCPAndHTTP(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", r.URL.Path)
	}))
	defer hs.Close()
	f := newFixture(t)
	c := f.dial(t)

	hc := c.HTTPClient()
	for i := 0; i < 3; i++ {
		resp, err := hc.Get(hs.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok /healthz" {
			t.Fatalf("body %q", body)
		}
	}
	f.srv.mu.Lock()
	tunnels := append([]string(nil), f.srv.tunnels...)
	f.srv.mu.Unlock()
	if len(tunnels) != 1 || tunnels[0] != strings.TrimPrefix(hs.URL, "http://") {
		t.Errorf("tunnels %q, want one to %s (kept alive across requests)", tunnels, hs.URL)
	}
	if c.HTTPClient() != hc {
		t.Error("HTTPClient not reused")
	}

	// The proxy environment is ignored.
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	if resp, err := hc.Get(hs.URL + "/p"); err != nil {
		t.Fatalf("with proxy env: %v", err)
	} else {
		resp.Body.Close()
	}

	// A refused tunnel names the host and the target.
	_, err := c.DialTCP(context.Background(), "10.0.0.1:80")
	wantContains(t, err, "host nats-1: open tunnel to 10.0.0.1:80")
}

func TestDialAll(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	a.cfg.Host, b.cfg.Host = "nats-1", "nats-2"
	bad := a.cfg
	bad.Host = "nats-3"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	bad.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	unknown := b.cfg
	unknown.Host = "nats-4"
	unknown.KnownHosts = filepath.Join(b.dir, "empty_known_hosts")

	clients, err := DialAll(context.Background(), []Config{a.cfg, bad, b.cfg, unknown})
	if clients != nil {
		t.Fatal("clients returned with an error")
	}
	wantContains(t, err, "cannot connect to 2 of 4 hosts", "host nats-3: cannot reach 127.0.0.1:", "host nats-4: unknown host key")
	if strings.Contains(err.Error(), "nats-1") || strings.Contains(err.Error(), "nats-2") {
		t.Errorf("good hosts named: %v", err)
	}
	var de *DialError
	var hke *HostKeyError
	if !errors.As(err, &de) || len(de.Errs) != 2 || !errors.As(err, &hke) {
		t.Errorf("error %#v", err)
	}
	// The good connections were closed.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, openA, _ := a.srv.stats()
		_, openB, _ := b.srv.stats()
		if openA+openB == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("good connections still open: %d %d", openA, openB)
		}
		time.Sleep(10 * time.Millisecond)
	}

	clients, err = DialAll(context.Background(), []Config{a.cfg, b.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 2 || clients["nats-1"] == nil || clients["nats-2"] == nil {
		t.Fatalf("clients %v", clients)
	}
	if err := CloseAll(clients); err != nil {
		t.Fatal(err)
	}

	_, err = DialAll(context.Background(), []Config{a.cfg, a.cfg})
	wantContains(t, err, "host nats-1: listed twice")
}

// DialSome keeps the hosts it reached and says why each other one failed,
// instead of closing everything as DialAll does.
func TestDialSome(t *testing.T) {
	a := newFixture(t)
	a.cfg.Host = "nats-1"
	bad := a.cfg
	bad.Host = "nats-2"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	bad.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	clients, failed, err := DialSome(context.Background(), []Config{a.cfg, bad})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(clients)
	if len(clients) != 1 || clients["nats-1"] == nil {
		t.Fatalf("clients %v, want nats-1 only", clients)
	}
	if _, err := clients["nats-1"].Run(context.Background(), "true", nil); err != nil {
		t.Errorf("the reached host's connection does not work: %v", err)
	}
	if len(failed) != 1 {
		t.Fatalf("failed %v, want nats-2 only", failed)
	}
	wantContains(t, failed["nats-2"], "host nats-2: cannot reach 127.0.0.1:")

	_, _, err = DialSome(context.Background(), []Config{a.cfg, a.cfg})
	wantContains(t, err, "host nats-1: listed twice")
}

// A host that stops answering (stopped, network cut) fails pending and new
// commands instead of hanging: the keepalive closes the connection.
func TestKeepAliveDetectsDeadPeer(t *testing.T) {
	f := newFixture(t)
	p := newPausingProxy(t, f.srv.addr)
	f.cfg.Port = p.port
	// known_hosts names the server's port; the proxy has another.
	f.cfg.AcceptNew = true
	f.cfg.KeepAlive = 100 * time.Millisecond
	c := f.dial(t)
	if _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Fatal(err)
	}
	p.pause()
	start := time.Now()
	_, err := c.Run(context.Background(), "sleep 5", nil)
	if err == nil {
		t.Fatal("Run succeeded through a dead connection")
	}
	wantContains(t, err, "host nats-1:", "connection to 127.0.0.1:", "lost", "keepalive")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to notice", d)
	}
	if _, err := c.Run(context.Background(), "true", nil); err == nil {
		t.Error("Run on a lost connection succeeded")
	}
}

// pausingProxy forwards TCP to target until paused, then silently drops
// everything, like a host that vanished without closing connections.
type pausingProxy struct {
	port   int
	mu     sync.Mutex
	paused bool
}

func newPausingProxy(t *testing.T, target string) *pausingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausingProxy{port: ln.Addr().(*net.TCPAddr).Port}
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			paused := p.paused
			p.mu.Unlock()
			if paused {
				continue // swallow
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, u)
			cmu.Unlock()
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return p
}

func (p *pausingProxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

func TestReadFileAndAsUser(t *testing.T) {
	for _, mode := range []string{"root", "sudo"} {
		t.Run(mode, func(t *testing.T) {
			var opts []serverOpt
			if mode == "sudo" {
				opts = append(opts, asNonRoot())
			}
			f := newFixture(t, opts...)
			c := f.dial(t)
			ctx := context.Background()
			name := filepath.Join(f.srv.home, "it's a file")
			writeFile(t, name, "secret: x\n", 0o600)
			b, err := c.ReadFile(ctx, name)
			if err != nil || string(b) != "secret: x\n" {
				t.Fatalf("ReadFile: %q %v", b, err)
			}
			_, err = c.ReadFile(ctx, name+".missing")
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("ReadFile of a missing file: %v", err)
			}
			wantContains(t, err, "host nats-1: read "+name+".missing")
			_, err = c.ReadFile(ctx, f.srv.home) // a directory
			wantContains(t, err, "host nats-1: read "+f.srv.home+":", "Is a directory")
			if errors.Is(err, fs.ErrNotExist) {
				t.Error("directory reported as missing")
			}

			res, err := c.Run(ctx, AsUser("nobody", `id -un; echo "$0"`), nil)
			if err != nil || string(res.Stdout) != "nobody\nsh\n" {
				t.Fatalf("AsUser: %q %v", res.Stdout, err)
			}
		})
	}
}
