package deploy

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestSudoPasswordSource(t *testing.T) {
	t.Setenv("NATSDEPLOY_TEST_SUDO_PW", "from-env-pw")
	tests := []struct {
		name      string
		env       string
		answer    string
		askErr    error
		want      string
		wantErr   string
		wantAsked int32
	}{
		{name: "from the environment", env: "NATSDEPLOY_TEST_SUDO_PW", want: "from-env-pw"},
		{name: "environment variable unset", env: "NATSDEPLOY_TEST_SUDO_UNSET", wantErr: "environment variable NATSDEPLOY_TEST_SUDO_UNSET (sudo_password_env in [ssh]) is not set"},
		{name: "asked once for all hosts", answer: "typed-pw", want: "typed-pw", wantAsked: 1},
		{name: "no terminal", askErr: errNoTerminal, wantErr: "no terminal to ask it on; set sudo_password_env", wantAsked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSudoPassword(tt.env)
			var asked atomic.Int32
			s.ask = func(prompt string) ([]byte, error) {
				asked.Add(1)
				if !strings.Contains(prompt, "deploy") {
					t.Errorf("prompt %q does not name the user", prompt)
				}
				return []byte(tt.answer), tt.askErr
			}
			// Hosts are dialled in parallel: all of them wait for the one answer.
			var wg sync.WaitGroup
			for _, host := range []string{"n1", "n2", "n3"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pw, err := s.get(host, "deploy")
					if tt.wantErr != "" {
						if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Errorf("%s: error %v, want %q", host, err, tt.wantErr)
						}
						return
					}
					if err != nil || string(pw) != tt.want {
						t.Errorf("%s: got %q, %v; want %q", host, pw, err, tt.want)
					}
				}()
			}
			wg.Wait()
			if n := asked.Load(); n != tt.wantAsked {
				t.Errorf("asked %d times, want %d", n, tt.wantAsked)
			}
		})
	}
}
