package remote

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server on 127.0.0.1 for the tests. It
// runs "exec" requests with /bin/sh -c on this machine (in its home
// directory), serves the "sftp" subsystem with pkg/sftp, and forwards
// direct-tcpip channels to loopback addresses only, so that it can be the
// jump host in front of another test server. It records what it was
// asked to do.
type testServer struct {
	t        *testing.T
	ln       net.Listener
	addr     string
	port     int
	home     string
	bin      string // on PATH before the system's: fake sudo/id
	hostKeys []ssh.Signer
	authKeys []ssh.PublicKey

	mu          sync.Mutex
	commands    []string
	tunnels     []string
	users       []string // login user of each connection, in order
	conns       int      // accepted connections, ever
	open        int      // connections still open
	sessions    int      // exec/sftp sessions open now
	maxSessions int
	live        map[*ssh.ServerConn]bool
	pgroups     []int // of every command, killed at Close so no test leaks a process
	signals     bool  // obey "signal" requests: OpenSSH does only for non-root logins
	wg          sync.WaitGroup
}

type serverOpt func(*testServer)

// withHostKeys replaces the server's host key (one ed25519 key by default).
func withHostKeys(keys ...ssh.Signer) serverOpt {
	return func(s *testServer) { s.hostKeys = keys }
}

// asNonRoot installs a fake `id` that says uid 1000, and a fake `sudo`
// that runs its command after checking the -n flag, so the sudo path of
// the client runs for real here (the tests run as root).
func asNonRoot() serverOpt {
	return func(s *testServer) {
		s.signals = true
		s.writeBin("id", `if [ "$#" = 1 ] && [ "$1" = -u ]; then echo 1000; exit 0; fi
exec /usr/bin/id "$@"`)
		s.writeBin("sudo", `[ "$1" = -n ] || { echo "sudo: test: expected -n" >&2; exit 2; }
shift
[ "$1" = -- ] && shift
exec "$@"`)
	}
}

// withoutSudoRight makes the fake sudo refuse like a sudo without NOPASSWD.
func withoutSudoRight() serverOpt {
	return func(s *testServer) {
		asNonRoot()(s)
		s.writeBin("sudo", `echo "sudo: a password is required" >&2; exit 1`)
	}
}

// withSudoPassword makes the fake sudo want a password: `sudo -n` fails as
// a real one does, and `sudo -k -S` with an empty prompt reads one line of stdin and runs
// its command only if that line is pw, leaving the rest of stdin to it.
func withSudoPassword(pw string) serverOpt {
	return func(s *testServer) {
		asNonRoot()(s)
		if err := os.WriteFile(filepath.Join(s.bin, "sudo.pw"), []byte(pw+"\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
		s.writeBin("sudo", `if [ "$1" = -n ]; then echo "sudo: a password is required" >&2; exit 1; fi
[ "$1" = -k ] && [ "$2" = -S ] && [ "$3" = -p ] && [ "$4" = "" ] && [ "$5" = -- ] || { echo "sudo: test: unexpected arguments" >&2; exit 2; }
shift 5
IFS= read -r want < "$(dirname "$0")/sudo.pw"
IFS= read -r got || { echo "sudo: no password was provided" >&2; exit 1; }
[ "$got" = "$want" ] || { echo "sudo: 1 incorrect password attempt" >&2; exit 1; }
exec "$@"`)
	}
}

func (s *testServer) writeBin(name, script string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

func newTestServer(t *testing.T, clientKey ssh.PublicKey, opts ...serverOpt) *testServer {
	t.Helper()
	root := t.TempDir()
	s := &testServer{
		t:        t,
		home:     filepath.Join(root, "home"),
		bin:      filepath.Join(root, "bin"),
		authKeys: []ssh.PublicKey{clientKey},
		hostKeys: []ssh.Signer{newSigner(t, "ed25519")},
		live:     map[*ssh.ServerConn]bool{},
	}
	for _, d := range []string{s.home, s.bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range s.authKeys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveConn(c, cfg)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Close stops listening and drops every connection.
func (s *testServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.live {
		c.Close()
	}
	for _, pg := range s.pgroups {
		syscall.Kill(-pg, syscall.SIGKILL)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testServer) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	s.conns++
	s.open++
	s.users = append(s.users, sc.User())
	s.live[sc] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		delete(s.live, sc)
		s.mu.Unlock()
	}()
	go ssh.DiscardRequests(reqs) // keepalives get a "false" reply, like OpenSSH's
	var wg sync.WaitGroup
	for nc := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch nc.ChannelType() {
			case "session":
				s.serveSession(nc)
			case "direct-tcpip":
				s.serveTunnel(nc)
			default:
				nc.Reject(ssh.UnknownChannelType, "unsupported")
			}
		}()
	}
	wg.Wait()
}

func (s *testServer) serveSession(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	s.mu.Lock()
	s.sessions++
	s.maxSessions = max(s.maxSessions, s.sessions)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.sessions--
		s.mu.Unlock()
	}()

	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
			s.exec(ch, reqs, p.Command)
			return
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.home))
			if err != nil {
				return
			}
			srv.Serve()
			srv.Close()
			return
		default:
			// env, pty-req, shell: not offered.
			req.Reply(false, nil)
		}
	}
}

// exec runs one command in its own process group, passes "signal"
// requests to it, and reports the exit status.
func (s *testServer) exec(ch ssh.Channel, reqs <-chan *ssh.Request, command string) {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = s.home
	cmd.Env = append(os.Environ(), "PATH="+s.bin+":"+os.Getenv("PATH"), "HOME="+s.home)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return
	}
	if err := cmd.Start(); err != nil {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
		return
	}
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.pgroups = append(s.pgroups, pid)
	s.mu.Unlock()
	go func() {
		for req := range reqs {
			// Like sshd: the signal goes to the process it started, and
			// only to that one, and only for a non-root login. Closing
			// the channel kills nothing.
			if req.Type == "signal" && s.signals {
				var p struct{ Signal string }
				ssh.Unmarshal(req.Payload, &p)
				sig := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP}[p.Signal]
				if sig != 0 {
					syscall.Kill(pid, sig)
				}
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}()
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			code = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	}
	ch.CloseWrite()
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}

func (s *testServer) serveTunnel(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	ip := net.ParseIP(p.Host)
	if p.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		nc.Reject(ssh.Prohibited, "test server forwards to loopback only")
		return
	}
	target := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	s.mu.Lock()
	s.tunnels = append(s.tunnels, target)
	s.mu.Unlock()
	conn, err := net.Dial("tcp", target)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(ch, conn); ch.CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(conn, ch); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	ch.Close()
	conn.Close()
}

func (s *testServer) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// tunnelled returns the targets of the direct-tcpip channels opened so
// far: what a jump host was asked to forward to.
func (s *testServer) tunnelled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tunnels...)
}

func (s *testServer) logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

func (s *testServer) stats() (conns, open, maxSessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.open, s.maxSessions
}

// knownHostsLine is the line OpenSSH would write for this server.
func (s *testServer) knownHostsLine(key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key) + "\n"
}

// newSigner makes a throwaway key of the given kind.
func newSigner(t testing.TB, kind string) ssh.Signer {
	t.Helper()
	var key any
	var err error
	switch kind {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeKey writes a private key file, encrypted when passphrase is set,
// and returns its path.
func writeKey(t testing.TB, dir string, key any, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "test", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(key, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "id_*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pem.Encode(f, block); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
