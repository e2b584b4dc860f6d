package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Load refuses what is not a regular file before reading it, and a file
// too large to be an inventory, each naming the path.
func TestLoadRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "inv.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxInventorySize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"a FIFO must not hang (issue 9)", fifo, "is a named pipe (FIFO), not a file"},
		{"/dev/zero must not eat memory (issue 9)", "/dev/zero", "is a device, not a file"},
		{"a directory", dir, "is a directory, not a file"},
		{"a file over the size cap", big, "more than the 4 MiB an inventory may have"},
		{"a missing file", filepath.Join(dir, "nope.toml"), "no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil && !strings.Contains(tc.name, "missing") {
				t.Skipf("%s: %v", tc.path, err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := LoadWithOptions(tc.path, LoadOptions{SkipFileChecks: true})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one naming %s and saying %q", err, tc.path, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load did not return within 5s")
			}
		})
	}
}

// No message repeats a password: not a password pasted into password_env,
// not the text near a TOML syntax error on a password line, not a password
// of the wrong type.
func TestMessagesNeverShowPasswords(t *testing.T) {
	const secret = "s3cret-Passw0rd!"
	appLine := `  name = "app"` + "\n"
	tests := []struct {
		name string
		edit string // inserted after the app user's name
	}{
		{"password pasted into password_env (issue 9)", `  password_env = "` + secret + `"`},
		{"syntax error on a password line (issue 9)", `  password = "` + secret + `\q"`},
		{"unterminated password", `  password = "` + secret},
		{"password after a bad token", `  password = ` + secret},
		{"syntax error on the line after a password", `  password = "` + secret + `"` + "\n  allow = [" + secret + "]"},
		{"grafana-style password key", `  password = ` + "'''" + secret + "'''" + ` x`},
		{"password_env with spaces", `  password_env = "my ` + secret + `"`},
		// The parser quotes the word it stopped at: "trustNo" here.
		{"unquoted password the parser quotes", "  password = trustNo1Passw0rd"},
		{"unquoted password after a bare word", "  password = falsely-Secret9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, appLine, appLine+tc.edit+"\n", 1)
			if text == base {
				t.Fatal("edit not applied")
			}
			_, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cret") ||
				strings.Contains(err.Error(), "trustNo") || strings.Contains(err.Error(), "falsely") {
				t.Fatalf("the message shows the password:\n%v", err)
			}
			if !strings.HasPrefix(err.Error(), "t.toml:") {
				t.Fatalf("the message does not start with file:line:\n%v", err)
			}
		})
	}
}

// A value of the wrong type under a password key is described, not shown.
func TestWrongTypedPasswordNotShown(t *testing.T) {
	text := strings.Replace(base, `  name = "app"`+"\n", `  name = "app"`+"\n  password = 987654321987\n", 1)
	_, err := parseTest(t, text, LoadOptions{SkipFileChecks: true})
	if err == nil || strings.Contains(err.Error(), "987654321987") || !strings.Contains(err.Error(), "expected a string, got an integer (not shown)") {
		t.Fatalf("got %v", err)
	}
}

// Found by FuzzLoad: the parser's message can quote a newline of the
// file, which split one problem over two lines, the second without the
// file's name.
func TestSyntaxErrorStaysOneLine(t *testing.T) {
	_, err := parseTest(t, "0.0.0.0={0=[{0=0b\n000", LoadOptions{SkipFileChecks: true})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "t.toml:1: ") || !strings.Contains(err.Error(), `'0b\n'`) {
		t.Fatalf("got %q", err)
	}
}
