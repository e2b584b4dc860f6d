package deploy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// sudoPassword gives the sudo password to every host of a run that needs
// one: from the environment variable the inventory names, or asked once on
// the terminal, the first time a host needs it; hosts dialled in parallel
// wait for that one answer.
type sudoPassword struct {
	env string // [ssh] sudo_password_env; "" asks on the terminal

	// For tests: where the question goes and the answer comes from.
	ask func(prompt string) ([]byte, error)

	once sync.Once
	pw   []byte
	err  error
}

func newSudoPassword(env string) *sudoPassword {
	return &sudoPassword{env: env, ask: askTerminal}
}

func (s *sudoPassword) get(host, user string) ([]byte, error) {
	s.once.Do(func() {
		if s.env != "" {
			v := os.Getenv(s.env)
			if v == "" {
				s.err = fmt.Errorf("environment variable %s (sudo_password_env in [ssh]) is not set; export it", s.env)
				return
			}
			s.pw = []byte(v)
			return
		}
		s.pw, s.err = s.ask(fmt.Sprintf("sudo password for %s (asked once, for every host that needs it; first: %s): ", user, host))
	})
	return s.pw, s.err
}

// errNoTerminal: nobody to ask.
var errNoTerminal = errors.New("there is no terminal to ask it on; set sudo_password_env in [ssh] to the name of an environment variable holding it, or give the user passwordless sudo")

// askTerminal reads a password from the controlling terminal without echo.
// It uses /dev/tty rather than stdin so that it works when stdin is a pipe,
// and refuses when there is no terminal (cron, CI) instead of hanging.
func askTerminal(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errNoTerminal
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, errNoTerminal
	}
	_, _ = io.WriteString(tty, prompt)
	pw, err := term.ReadPassword(int(tty.Fd()))
	_, _ = io.WriteString(tty, "\n")
	if err != nil {
		return nil, fmt.Errorf("reading the sudo password from the terminal: %w", err)
	}
	return pw, nil
}
