//go:build e2e

// Package e2e runs the natsdeploy binary against the built-in lab: three
// Debian containers with real systemd, sshd and nats-server. `make e2e`
// brings the lab up and runs these; `go test ./...` never does.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/lab"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
)

var (
	root    string // repository root
	binary  string // natsdeploy built for this run
	workDir string // inventories and secrets of this run
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root = lab.RepoRoot()
	var err error
	workDir, err = os.MkdirTemp("", "natsdeploy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	binary = filepath.Join(workDir, "natsdeploy")
	build := exec.Command("go", "build", "-o", binary, "./cmd/natsdeploy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build natsdeploy: %v\n%s", err, out)
		return 1
	}
	// Every run starts from bare hosts: nothing a previous run left counts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := lab.Reset(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reset lab:", err)
		return 1
	}
	code := m.Run()
	// Leave bare hosts behind: the next user of the lab (make demo, with
	// its own secrets file) must not meet this run's cluster and passwords.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel2()
	if err := lab.Reset(ctx2); err != nil {
		fmt.Fprintln(os.Stderr, "reset lab after the tests:", err)
	}
	return code
}

// writeInventory writes the lab inventory with edits applied, with paths
// made absolute and a secrets file shared by every variant of this run,
// and returns its path.
func writeInventory(t testing.TB, name string, edits ...func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "inventory", "lab.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), `"../.lab/`, `"`+filepath.Join(root, ".lab")+`/`)
	for _, e := range edits {
		before := s
		s = e(s)
		if s == before {
			t.Fatalf("inventory edit for %s changed nothing", name)
		}
	}
	s = fmt.Sprintf("secrets_file = %q\n", filepath.Join(workDir, "lab.secrets.toml")) + s
	p := filepath.Join(workDir, name+".toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// replace returns an edit that replaces old with new once.
func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// natsdeploy runs the binary and returns its combined output and exit code.
func natsdeploy(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runNatsdeploy(t, nil, args...)
}

// runNatsdeploy runs the binary, after prepare (when given) has set up
// the command, and returns its combined output and exit code.
func runNatsdeploy(t *testing.T, prepare func(*exec.Cmd), args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	if prepare != nil {
		prepare(cmd)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run natsdeploy %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	t.Logf("natsdeploy %s -> exit %d\n%s", strings.Join(args, " "), code, out.String())
	return out.String(), code
}

func mustNatsdeploy(t *testing.T, args ...string) string {
	t.Helper()
	out, code := natsdeploy(t, args...)
	if code != 0 {
		t.Fatalf("natsdeploy %v failed (exit %d):\n%s", args, code, out)
	}
	return out
}

func loadInventory(t *testing.T, path string) (*inventory.Inventory, *secrets.Store) {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := secrets.Open(inv)
	if err != nil {
		t.Fatal(err)
	}
	return inv, sec
}

// hostExec runs a shell command in a lab container as root.
func hostExec(t *testing.T, h lab.Host, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := lab.Exec(ctx, h.Container, "sh", "-c", cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", h.Name, cmd, err, out)
	}
	return strings.TrimSpace(out)
}

// pids returns the MainPID of nats-server on every lab host.
func pids(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, h := range lab.Hosts() {
		p, err := strconv.Atoi(hostExec(t, h, "systemctl show -p MainPID --value nats-server.service"))
		if err != nil || p == 0 {
			t.Fatalf("%s: nats-server not running (MainPID %d, %v)", h.Name, p, err)
		}
		out[h.Name] = p
	}
	return out
}

// sums returns the sha256 of every file under /etc/nats and of the unit on
// every host that answers, to prove a refused apply changed nothing.
func sums(t *testing.T, hosts []lab.Host) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range hosts {
		out[h.Name] = hostExec(t, h, "sha256sum /etc/nats/* /etc/systemd/system/nats-server*.service /usr/local/bin/nats-server | sort")
	}
	return out
}

// labTLS is how tests trust the lab's nodes: the CA natsdeploy made on
// this run's first apply (lab.toml's [tls] dir, beside the inventories).
// Nil while there is none yet.
func labTLS() (*tls.Config, error) {
	b, err := os.ReadFile(filepath.Join(workDir, "lab.tls", "ca.pem"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in the lab CA file")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tlsOpt makes a nats.go connection trust the lab's CA (lab.toml turns
// TLS on for clients).
func tlsOpt() nats.Option {
	return func(o *nats.Options) error {
		cfg, err := labTLS()
		if err != nil || cfg == nil {
			return err
		}
		o.Secure, o.TLSConfig = true, cfg
		return nil
	}
}

// monitorURL and monitorClient reach a lab node's https monitoring port
// from here, trusting the lab's CA.
func monitorURL(h lab.Host, path string) string { return "https://" + h.Address + ":8222" + path }

func monitorClient(timeout time.Duration) *http.Client {
	cfg, err := labTLS()
	if err != nil || cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12} // fails, saying why
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil}}
}

// monitor fetches a monitoring endpoint of a lab node directly.
func monitor(t *testing.T, h lab.Host, path string, v any) int {
	t.Helper()
	c := monitorClient(5 * time.Second)
	resp, err := c.Get(monitorURL(h, path))
	if err != nil {
		t.Fatalf("%s %s: %v", h.Name, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", h.Name, path, err, b)
		}
	}
	return resp.StatusCode
}

// eventually retries check until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
