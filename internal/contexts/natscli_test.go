package contexts

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/natsdeploy/natsdeploy/internal/testbin"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// The written contexts, used by the real, independent `nats` CLI against a
// real nats-server: for each tenant one allowed publish works and one
// refused publish and subscription are refused.

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestContextsWithNatsCLI(t *testing.T) {
	server := testbin.NATSServer(t)
	cli := testbin.NATSCLI(t)

	port, httpPort := freePort(t), freePort(t)
	inv := &inventory.Inventory{
		Path:  "/x/lab.toml",
		NATS:  inventory.NATS{ClientPort: port},
		Hosts: []inventory.Host{{Name: "n1", Address: "127.0.0.1"}},
		Accounts: []inventory.Account{
			{Name: "DEV", Users: []inventory.User{{Name: "dev-user"}}},
			{Name: "PROD", Users: []inventory.User{{Name: "prod-user"}}},
		},
	}
	pw := mapPasswords{"DEV/dev-user": "dev-secret-1", "PROD/prod-user": "prod-secret-2"}
	hash := func(s string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(s), 4)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
accounts {
  DEV { users: [ { user: dev-user, password: %q, permissions: { publish: { allow: ["dev.*"] }, subscribe: { allow: ["dev.*", "_INBOX.>"] } } } ] }
  PROD { users: [ { user: prod-user, password: %q, permissions: { publish: { allow: ["prod.*"] }, subscribe: { allow: ["prod.*", "_INBOX.>"] } } } ] }
}
`, port, httpPort, hash(pw["DEV/dev-user"]), hash(pw["PROD/prod-user"]))
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(server, "-c", confPath)
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort))
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not become healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}

	xdg := filepath.Join(dir, "xdg")
	ctxDir := filepath.Join(xdg, "nats", "context")
	names, err := Write(inv, pw, ctxDir)
	if err != nil {
		t.Fatal(err)
	}

	nats := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		// natscli finds contexts under XDG_CONFIG_HOME; HOME keeps it away
		// from the developer's own files.
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cases := []struct {
		context          string
		allowed, refused string
	}{
		{names[0], "dev.a", "prod.a"},
		{names[1], "prod.a", "dev.a"},
	}
	for _, c := range cases {
		if out, err := nats("--context", c.context, "pub", c.allowed, "hello"); err != nil {
			t.Errorf("nats --context %s pub %s: %v\n%s", c.context, c.allowed, err, out)
		}
		out, err := nats("--context", c.context, "pub", c.refused, "hello")
		if err == nil || !strings.Contains(out, fmt.Sprintf("Permissions Violation for Publish to %q", c.refused)) {
			t.Errorf("nats --context %s pub %s: want a permissions violation, got %v\n%s", c.context, c.refused, err, out)
		}
		out, err = nats("--context", c.context, "sub", c.refused, "--count", "1")
		if err == nil || !strings.Contains(out, fmt.Sprintf("Permissions Violation for Subscription to %q", c.refused)) {
			t.Errorf("nats --context %s sub %s: want a permissions violation, got %v\n%s", c.context, c.refused, err, out)
		}
	}
	// The context file can also be named by its path.
	path := filepath.Join(ctxDir, names[0]+".json")
	if out, err := nats("--context", path, "pub", "dev.b", "hello"); err != nil {
		t.Errorf("nats --context %s pub dev.b: %v\n%s", path, err, out)
	}
}
