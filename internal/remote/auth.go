package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth holds the keys offered to one host: the agent's first, then the
// identity files.
type auth struct {
	agentConn net.Conn
	agent     agent.ExtendedAgent
	files     []ssh.Signer
	tried     []string // what we offer, for the error message
}

func newAuth(cfg Config) (*auth, error) {
	a := &auth{}
	if cfg.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				// A stale socket is common (a closed terminal's agent);
				// carry on with the files, and say so if auth fails.
				a.tried = append(a.tried, fmt.Sprintf("agent (unreachable: %v)", err))
			} else {
				a.agentConn = conn
				a.agent = agent.NewClient(conn)
				a.tried = append(a.tried, "agent")
			}
		}
	}
	for _, name := range cfg.IdentityFiles {
		s, err := readIdentity(expandHome(name))
		var pme *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pme) && a.agent != nil:
			// The agent probably holds this key already.
			a.tried = append(a.tried, name+" (encrypted, skipped: using the agent instead)")
			continue
		case errors.As(err, &pme):
			a.close()
			return nil, fmt.Errorf("host %s: identity file %s is encrypted with a passphrase and natsdeploy never prompts: load it into an ssh-agent (ssh-add %s) and run with SSH_AUTH_SOCK set",
				cfg.Host, name, name)
		case err != nil:
			a.close()
			return nil, fmt.Errorf("host %s: identity file %s: %w", cfg.Host, name, err)
		}
		a.files = append(a.files, s)
		a.tried = append(a.tried, name)
	}
	if a.agent == nil && len(a.files) == 0 {
		detail := ""
		if len(a.tried) > 0 {
			detail = " (" + strings.Join(a.tried, ", ") + ")"
		}
		return nil, fmt.Errorf("host %s: no SSH key to log in with%s: set identity_files in the inventory or run an ssh-agent with SSH_AUTH_SOCK set",
			cfg.Host, detail)
	}
	return a, nil
}

func readIdentity(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// methods offers every key through a single publickey method: the ssh
// package tries each method name once, so a second PublicKeys method would
// never be tried after the first one failed.
func (a *auth) methods() []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		var signers []ssh.Signer
		if a.agent != nil {
			// An agent that fails to list its keys should not stop the
			// identity files from being tried.
			if s, err := a.agent.Signers(); err == nil {
				signers = append(signers, s...)
			}
		}
		return append(signers, a.files...), nil
	})}
}

func (a *auth) describe() string {
	if len(a.tried) == 0 {
		return "no keys"
	}
	return strings.Join(a.tried, ", ")
}

// close releases the agent connection; it is only needed during the
// handshake.
func (a *auth) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}
