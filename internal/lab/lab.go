// Package lab drives natsdeploy's built-in test lab from Go: three Debian 12
// containers running systemd and sshd on the docker network natsdeploy-lab
// (see internal/lab/lab.sh, which builds and starts them, and
// inventory/lab.toml, which describes them to natsdeploy).
//
// End-to-end tests use it to reach the hosts out of band (docker exec) and to
// inject faults: stop, kill, freeze or cut a host off the network, and start
// it again. Every call goes through the docker CLI; errors name the command
// and carry its stderr.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The lab's fixed facts; internal/lab/lab.sh and inventory/lab.toml use the
// same values.
const (
	Network = "natsdeploy-lab"
	Subnet  = "172.31.253.0/24"
	Image   = "natsdeploy-lab:bookworm-v1"
	// User is the lab hosts' login: passwordless sudo, authorized for
	// Paths.Key.
	User = "deploy"
	// Module is the module path RepoRoot looks for in go.mod.
	Module = "github.com/natsdeploy/natsdeploy"
)

// NATSServerVersions are the nats-server releases `make lab-artifacts`
// provides in Paths.Artifacts, oldest first.
var NATSServerVersions = []string{"2.14.9", "2.15.2"}

// DefaultWait bounds how long Start, Connect and Reset wait for a host when
// the context has no deadline of its own.
const DefaultWait = 90 * time.Second

// Host is one lab host.
type Host struct {
	Name      string // hostname and inventory name: "nats-1"
	Container string // docker container: "natsdeploy-lab-1"
	Address   string // fixed address on Network: "172.31.253.11"
}

// SSHAddress is the host's sshd as host:port.
func (h Host) SSHAddress() string { return net.JoinHostPort(h.Address, "22") }

// DefaultHosts is the lab's size (inventory/lab.toml's); MaxHosts is how
// far it grows (Resize) for scaling tests and benchmarks.
const (
	DefaultHosts = 3
	MaxHosts     = 9
)

// allHosts are every host the lab can have: nats-N, natsdeploy-lab-N,
// 172.31.253.1N, as lab.sh makes them.
var allHosts = func() []Host {
	var hs []Host
	for i := 1; i <= MaxHosts; i++ {
		hs = append(hs, Host{Name: fmt.Sprintf("nats-%d", i), Container: fmt.Sprintf("natsdeploy-lab-%d", i), Address: fmt.Sprintf("172.31.253.1%d", i)})
	}
	return hs
}()

var hosts = allHosts[:DefaultHosts]

// Hosts returns the lab's hosts in order (a fresh copy).
func Hosts() []Host { return append([]Host(nil), hosts...) }

// HostsN returns the first n hosts the lab can have (n from 1 to MaxHosts).
func HostsN(n int) []Host { return append([]Host(nil), allHosts[:n]...) }

// Lookup finds a host by its name, container name or address.
func Lookup(id string) (Host, error) {
	for _, h := range allHosts {
		if id == h.Name || id == h.Container || id == h.Address {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("lab: no host %q (have nats-1..%d, natsdeploy-lab-1..%d, 172.31.253.11..1%d)", id, MaxHosts, MaxHosts, MaxHosts)
}

// RepoRoot returns the repository's root folder (see FindRepoRoot). It
// panics when there is none: tests always run inside the repository.
func RepoRoot() string {
	root, err := FindRepoRoot()
	if err != nil {
		panic(err)
	}
	return root
}

// FindRepoRoot returns the repository's root folder: $NATSDEPLOY_REPO_ROOT
// if set, else the nearest folder at or above the working directory whose
// go.mod declares Module, else the one this source file was compiled from.
func FindRepoRoot() (string, error) {
	if r := os.Getenv("NATSDEPLOY_REPO_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("lab: repo root: %w", err)
	}
	if root, ok := findModule(wd); ok {
		return root, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if root, ok := findModule(filepath.Dir(file)); ok {
			return root, nil
		}
	}
	return "", fmt.Errorf("lab: no go.mod of module %s at or above %s (set NATSDEPLOY_REPO_ROOT)", Module, wd)
}

func findModule(dir string) (string, bool) {
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == Module {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod declares, or "".
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Paths are the lab's files.
type Paths struct {
	Root       string // repository root
	Dir        string // .lab/ (or $NATSDEPLOY_LAB_DIR)
	Key        string // private key that logs in as User on every host
	KnownHosts string // the hosts' ed25519 keys, "ADDR ssh-ed25519 AAAA..."
	Artifacts  string // offline release mirror: nats-server/vX.Y.Z/...
	Inventory  string // inventory/lab.toml
	Script     string // internal/lab/lab.sh
	Binary     string // bin/natsdeploy (made by `make build`)
	Tools      string // bin/tools (nats, staticcheck)
}

// Locate returns the lab's paths below the repository root. The files need
// not exist.
func Locate() (Paths, error) {
	root, err := FindRepoRoot()
	if err != nil {
		return Paths{}, err
	}
	dir := filepath.Join(root, ".lab")
	if d := os.Getenv("NATSDEPLOY_LAB_DIR"); d != "" {
		if dir, err = filepath.Abs(d); err != nil {
			return Paths{}, fmt.Errorf("lab: NATSDEPLOY_LAB_DIR: %w", err)
		}
	}
	return Paths{
		Root:       root,
		Dir:        dir,
		Key:        filepath.Join(dir, "id_ed25519"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		Artifacts:  filepath.Join(dir, "artifacts"),
		Inventory:  filepath.Join(root, "inventory", "lab.toml"),
		Script:     filepath.Join(root, "internal", "lab", "lab.sh"),
		Binary:     filepath.Join(root, "bin", "natsdeploy"),
		Tools:      filepath.Join(root, "bin", "tools"),
	}, nil
}

// run runs a command and returns its stdout; the error names the command and
// carries its stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &CommandError{Args: append([]string{name}, args...), Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// CommandError is a command that failed: its arguments, how it failed (an
// *exec.ExitError for a non-zero exit status) and what it wrote to stderr.
type CommandError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("lab: %s: %v", strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's exit status, or -1 when it did not exit normally.
func (e *CommandError) ExitCode() int {
	var xe *exec.ExitError
	if errors.As(e.Err, &xe) {
		return xe.ExitCode()
	}
	return -1
}

func docker(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "docker", args...)
}

// Exec runs cmd in the container (as root, out of band: no SSH) and returns
// its stdout. A non-zero exit is an error (a *CommandError) carrying stderr;
// the stdout written so far is still returned.
func Exec(ctx context.Context, container string, cmd ...string) (string, error) {
	h, err := Lookup(container)
	if err != nil {
		return "", err
	}
	if len(cmd) == 0 {
		return "", fmt.Errorf("lab: exec on %s: no command", h.Container)
	}
	return docker(ctx, append([]string{"exec", h.Container}, cmd...)...)
}

// Sh runs a shell script in the container with bash -c, like Exec.
func Sh(ctx context.Context, container, script string) (string, error) {
	return Exec(ctx, container, "bash", "-c", script)
}

// State is what docker knows of a container.
type State struct {
	Exists    bool
	Running   bool
	Paused    bool
	Connected bool   // attached to Network
	Address   string // its address on Network; "" when not connected or not running
}

// Inspect returns the container's state; a container that does not exist is
// State{} without error.
func Inspect(ctx context.Context, container string) (State, error) {
	h, err := Lookup(container)
	if err != nil {
		return State{}, err
	}
	out, err := docker(ctx, "inspect", "--type", "container", "-f",
		`{{.State.Running}} {{.State.Paused}} {{with index .NetworkSettings.Networks "`+Network+`"}}net:{{.IPAddress}}{{else}}-{{end}}`,
		h.Container)
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Stderr), "no such") {
			return State{}, nil
		}
		return State{}, err
	}
	return parseInspect(out)
}

func parseInspect(out string) (State, error) {
	f := strings.Fields(out)
	if len(f) != 3 {
		return State{}, fmt.Errorf("lab: unexpected docker inspect output %q", out)
	}
	s := State{Exists: true, Running: f[0] == "true", Paused: f[1] == "true"}
	// "net:ADDR" when attached to Network (ADDR is empty while stopped),
	// "-" when not.
	if a, ok := strings.CutPrefix(f[2], "net:"); ok {
		s.Connected, s.Address = true, a
	}
	return s, nil
}

// Stop shuts the host down cleanly (docker stop; systemd gets SIGRTMIN+3 and
// stops every unit). Stopping a stopped host is not an error.
func Stop(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	_, err = docker(ctx, "stop", "--time", "30", h.Container)
	return err
}

// Kill pulls the plug (SIGKILL to the container's init: no unit is stopped,
// nothing is flushed). Killing a stopped host is not an error.
func Kill(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	st, err := Inspect(ctx, h.Container)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	_, err = docker(ctx, "kill", "--signal", "KILL", h.Container)
	return err
}

// Start boots a stopped or killed host and waits until systemd has finished
// booting and sshd answers (see WaitReady). Starting a running host only
// waits. Its host keys are kept, so Paths.KnownHosts stays valid.
func Start(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	st, err := Inspect(ctx, h.Container)
	if err != nil {
		return err
	}
	if !st.Exists {
		return fmt.Errorf("lab: container %s does not exist: run 'make lab-up'", h.Container)
	}
	if st.Paused {
		if _, err := docker(ctx, "unpause", h.Container); err != nil {
			return err
		}
	}
	if !st.Running {
		if _, err := docker(ctx, "start", h.Container); err != nil {
			return err
		}
	}
	return WaitReady(ctx, h.Container)
}

// Pause freezes every process of the host (cgroup freezer): it stays on the
// network but answers nothing, like a hung machine. Unpause (or Start)
// thaws it.
func Pause(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	_, err = docker(ctx, "pause", h.Container)
	return err
}

// Unpause thaws a paused host.
func Unpause(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	_, err = docker(ctx, "unpause", h.Container)
	return err
}

// Disconnect cuts the host off the lab network: it keeps running but neither
// this machine nor the other hosts can reach it. Not an error when it is
// already disconnected.
func Disconnect(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	st, err := Inspect(ctx, h.Container)
	if err != nil {
		return err
	}
	if !st.Connected {
		return nil
	}
	_, err = docker(ctx, "network", "disconnect", "--force", Network, h.Container)
	return err
}

// Connect puts the host back on the lab network at its fixed address and, if
// it is running, waits until its sshd answers. Not an error when it is
// already connected.
func Connect(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	st, err := Inspect(ctx, h.Container)
	if err != nil {
		return err
	}
	if !st.Connected {
		if _, err := docker(ctx, "network", "connect", "--ip", h.Address, Network, h.Container); err != nil {
			return err
		}
	}
	if !st.Running || st.Paused {
		return nil
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	return waitSSH(ctx, h)
}

func withDefaultWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultWait)
}

// SystemState returns `systemctl is-system-running` on the host (running,
// degraded, starting, ...); a non-zero exit from systemctl is not an error.
func SystemState(ctx context.Context, container string) (string, error) {
	out, err := Exec(ctx, container, "systemctl", "is-system-running")
	var ce *CommandError
	if err != nil && !(errors.As(err, &ce) && ce.ExitCode() > 0 && strings.TrimSpace(out) != "") {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// WaitReady waits until the host's systemd has finished booting (running or
// degraded) and its sshd sends an SSH banner to this machine, bounded by ctx
// or DefaultWait.
func WaitReady(ctx context.Context, container string) error {
	h, err := Lookup(container)
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	last := ""
	for {
		state, err := SystemState(ctx, h.Container)
		if err == nil {
			last = state
			if state == "running" || state == "degraded" {
				break
			}
		} else {
			last = err.Error()
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return fmt.Errorf("lab: %s: systemd not booted (last: %s): %w", h.Container, last, err)
		}
	}
	return waitSSH(ctx, h)
}

// waitSSH waits until h's port 22 answers with an SSH banner.
func waitSSH(ctx context.Context, h Host) error {
	var last error
	for {
		if last = probeSSH(ctx, h.SSHAddress()); last == nil {
			return nil
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return fmt.Errorf("lab: %s: sshd at %s does not answer (%v): %w", h.Container, h.SSHAddress(), last, err)
		}
	}
}

func probeSSH(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if !isSSHBanner(line) {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	return nil
}

func isSSHBanner(line string) bool {
	return strings.HasPrefix(line, "SSH-2.0-") || strings.HasPrefix(line, "SSH-1.99-")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Ready reports whether the lab is usable: docker answers and every host is
// running, connected at its address, booted, and its sshd answers. The error
// says what is missing and how to fix it.
func Ready(ctx context.Context) error {
	if _, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("lab: no docker daemon (run 'make docker lab-up'): %w", err)
	}
	for _, h := range hosts {
		st, err := Inspect(ctx, h.Container)
		if err != nil {
			return err
		}
		switch {
		case !st.Exists:
			return fmt.Errorf("lab: %s does not exist: run 'make lab-up'", h.Container)
		case !st.Running || st.Paused:
			return fmt.Errorf("lab: %s is not running: run 'make lab-up'", h.Container)
		case st.Address != h.Address:
			return fmt.Errorf("lab: %s is at %q on %s, want %s: run 'make lab-reset'", h.Container, st.Address, Network, h.Address)
		}
		if err := probeSSH(ctx, h.SSHAddress()); err != nil {
			return fmt.Errorf("lab: %s: sshd at %s: %w", h.Name, h.SSHAddress(), err)
		}
	}
	return nil
}

// Resize makes the lab n hosts (`NATSDEPLOY_LAB_HOSTS=n lab.sh up`): the
// missing ones are created, healthy ones kept as they are, any beyond n
// removed; Paths.KnownHosts then lists the n.
func Resize(ctx context.Context, n int) ([]Host, error) { return sized(ctx, "up", n) }

// Reset recreates every host from the image (`lab.sh reset`: a clean slate,
// new host keys) and rewrites Paths.KnownHosts. It takes a few seconds.
func Reset(ctx context.Context) error {
	p, err := Locate()
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", p.Script, "reset")
	cmd.Dir = p.Root
	cmd.Env = append(os.Environ(), "NATSDEPLOY_LAB_DIR="+p.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s reset: %w\n%s", p.Script, err, tail(string(out), 40))
	}
	return WriteKnownHosts(ctx)
}

// ResetN is Reset for a lab of n hosts (1 to MaxHosts): the first n
// recreated bare, any beyond n removed, Paths.KnownHosts listing the n.
// Benchmarks use it for fresh applies at 6 and 9 hosts.
func ResetN(ctx context.Context, n int) ([]Host, error) { return sized(ctx, "reset", n) }

// sized runs `NATSDEPLOY_LAB_HOSTS=n lab.sh verb` and rewrites
// Paths.KnownHosts for the n hosts.
func sized(ctx context.Context, verb string, n int) ([]Host, error) {
	if n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("lab: %d hosts: want 1 to %d", n, MaxHosts)
	}
	p, err := Locate()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", p.Script, verb)
	cmd.Dir = p.Root
	cmd.Env = append(os.Environ(), "NATSDEPLOY_LAB_DIR="+p.Dir, fmt.Sprintf("NATSDEPLOY_LAB_HOSTS=%d", n))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("lab: NATSDEPLOY_LAB_HOSTS=%d %s %s: %w\n%s", n, p.Script, verb, err, tail(string(out), 40))
	}
	hs := HostsN(n)
	return hs, writeKnownHosts(ctx, hs)
}

// WriteKnownHosts writes Paths.KnownHosts from each host's ed25519 host key,
// read out of band through docker exec.
func WriteKnownHosts(ctx context.Context) error { return writeKnownHosts(ctx, hosts) }

func writeKnownHosts(ctx context.Context, hosts []Host) error {
	p, err := Locate()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, h := range hosts {
		pub, err := Exec(ctx, h.Container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			return err
		}
		line, err := KnownHostsLine(h.Address, pub)
		if err != nil {
			return fmt.Errorf("lab: %s: %w", h.Container, err)
		}
		b.WriteString(line + "\n")
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	tmp := p.KnownHosts + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Rename(tmp, p.KnownHosts); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// KnownHostsLine turns a public key file's content ("TYPE BASE64 [comment]")
// into a known_hosts line for addr: "ADDR TYPE BASE64".
func KnownHostsLine(addr, pub string) (string, error) {
	if net.ParseIP(addr) == nil {
		return "", fmt.Errorf("known_hosts: %q is not an IP address", addr)
	}
	f := strings.Fields(pub)
	if len(f) < 2 {
		return "", fmt.Errorf("known_hosts: malformed public key %q", pub)
	}
	typ, key := f[0], f[1]
	if !strings.HasPrefix(typ, "ssh-") && !strings.HasPrefix(typ, "ecdsa-") && !strings.HasPrefix(typ, "sk-") {
		return "", fmt.Errorf("known_hosts: unknown key type %q", typ)
	}
	if strings.Trim(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
		return "", fmt.Errorf("known_hosts: key of type %s is not base64", typ)
	}
	return addr + " " + typ + " " + key, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
