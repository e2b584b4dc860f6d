package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/ssh"

	"github.com/natsdeploy/natsdeploy/internal/secrets"
)

// withSecrets puts a [secrets] table at the top of the inventory.
func withSecrets(t *testing.T, inv, table string) {
	t.Helper()
	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	// Replace a table added before, so a test can change its mind.
	text := string(data)
	if i := strings.Index(text, "# end of [secrets]\n"); i >= 0 {
		text = text[i+len("# end of [secrets]\n"):]
	}
	if err := os.WriteFile(inv, []byte("[secrets]\n"+table+"\n# end of [secrets]\n"+text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeKey writes a new ed25519 private key to p.
func writeKey(t *testing.T, p string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tableLines splits a secrets file's text into the lines of [header] and
// all the others.
func tableLines(text, header string) (inside, outside string) {
	in := false
	var a, b []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "[") {
			in = l == header
		}
		if in {
			a = append(a, l)
		} else {
			b = append(b, l)
		}
	}
	return strings.Join(a, "\n"), strings.Join(b, "\n")
}

// Bad rotations are usage errors: exit 2 before any file is opened or
// host contacted, saying what to do.
func TestSecretsRotateBadInput(t *testing.T) {
	tests := []struct {
		name string
		args func(inv string) []string
		want []string
	}{
		{"unknown user", func(inv string) []string { return []string{"secrets", "rotate", "nobody", inv} },
			[]string{`the inventory has no user "nobody"`, "admin, dev-user, monitor-user, natsdeploy, notification-service", "--route, --grafana"}},
		{"no user", func(inv string) []string { return []string{"secrets", "rotate", inv} },
			[]string{"usage: natsdeploy secrets rotate [flags] USER INVENTORY.toml"}},
		{"flag after the inventory", func(inv string) []string { return []string{"secrets", "rotate", "dev-user", inv, "--no-verify"} },
			[]string{"--no-verify comes after dev-user; put flags before it"}},
		{"a user and --route", func(inv string) []string { return []string{"secrets", "rotate", "--route", "dev-user", inv} },
			[]string{"usage: natsdeploy secrets rotate --route|--grafana INVENTORY.toml"}},
		{"--route and --grafana", func(inv string) []string { return []string{"secrets", "rotate", "--route", "--grafana", inv} },
			[]string{"name one password: a USER, --route or --grafana"}},
		{"--grafana without Grafana", func(inv string) []string { return []string{"secrets", "rotate", "--grafana", inv} },
			[]string{"the inventory deploys no Grafana"}},
		{"encrypt before there is a file", func(inv string) []string { return []string{"secrets", "encrypt", inv} },
			[]string{"there is no secrets file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := labWith(t, "", "")
			if tc.name == "encrypt before there is a file" {
				withSecrets(t, inv, "encrypt = \"ssh-key\"\nidentity = \""+filepath.Join(filepath.Dir(inv), "id_ed25519")+"\"")
			}
			out, code := run(tc.args(inv)...)
			if code != 2 {
				t.Errorf("exit %d, want 2:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(inv), "inv.secrets.toml")); !os.IsNotExist(err) {
				t.Errorf("a secrets file was written: %v", err)
			}
		})
	}
}

// rotate saves the new password before it touches a host, so when no host
// can be reached (exit 1) the file already holds it, and only it: every
// other line is byte for byte as it was. No password is printed.
func TestSecretsRotateSavesOnlyThatPasswordFirst(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		header string
	}{
		{"user", []string{"dev-user"}, `[accounts.DEV.dev-user]`},
		{"route", []string{"--route"}, `[route]`},
		{"operator user", []string{"natsdeploy"}, `[secrets.natsdeploy]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := offlineLab(t)
			sec := filepath.Join(filepath.Dir(inv), "inv.secrets.toml")
			if out, code := run("apply", inv); code != 1 {
				t.Fatalf("apply: exit %d\n%s", code, out)
			}
			before := string(readFile(t, sec))
			out, code := run(append(append([]string{"secrets", "rotate"}, tc.args...), inv)...)
			if code != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(out, "the new password is saved in "+sec) ||
				!strings.Contains(out, "natsdeploy apply "+inv) {
				t.Fatalf("exit %d, want 1 for the refused connections, saying the password is saved:\n%s", code, out)
			}
			after := string(readFile(t, sec))
			inB, outB := tableLines(before, tc.header)
			inA, outA := tableLines(after, tc.header)
			if inB == "" || inA == inB {
				t.Fatalf("%s did not change:\n%s", tc.header, after)
			}
			if outA != outB {
				t.Errorf("other entries changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			var doc map[string]any
			if _, err := toml.Decode(after, &doc); err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(inA, "\n") {
				if k, v, ok := strings.Cut(l, " = "); ok && k == "password" && strings.Contains(out, strings.Trim(v, `"`)) {
					t.Errorf("the output shows the new password:\n%s", out)
				}
			}
			if fi, err := os.Stat(sec); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("secrets file mode: %v %v", fi.Mode(), err)
			}
		})
	}
}

// plan, apply and rotate read and write an encrypted secrets file; the
// wrong key is refused before any connection (exit 2) and changes nothing.
func TestEncryptedSecretsWithSSHKey(t *testing.T) {
	inv := offlineLab(t)
	dir := filepath.Dir(inv)
	sec := filepath.Join(dir, "inv.secrets.toml")
	withSecrets(t, inv, "encrypt = \"ssh-key\"\nidentity = \""+filepath.Join(dir, "id_ed25519")+"\"")
	if out, code := run("apply", inv); code != 1 || !strings.Contains(out, "connection refused") {
		t.Fatalf("apply: exit %d, want 1 at the connection:\n%s", code, out)
	}
	first := readFile(t, sec)
	if !secrets.IsEncrypted(first) {
		t.Fatalf("apply wrote a plain secrets file:\n%s", first)
	}
	if fi, _ := os.Stat(sec); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", fi.Mode().Perm())
	}
	for _, cmd := range []string{"plan", "apply"} {
		if out, code := run(cmd, inv); code != 1 || !strings.Contains(out, "connection refused") {
			t.Fatalf("%s: exit %d, want 1 at the connection:\n%s", cmd, code, out)
		}
	}
	if !bytes.Equal(readFile(t, sec), first) {
		t.Error("plan or apply with nothing new rewrote the encrypted file")
	}
	if out, code := run("secrets", "rotate", "--route", inv); code != 1 || !strings.Contains(out, "the new password is saved") {
		t.Fatalf("rotate: exit %d:\n%s", code, out)
	}
	rotated := readFile(t, sec)
	if bytes.Equal(rotated, first) || !secrets.IsEncrypted(rotated) {
		t.Fatal("rotate did not write an encrypted file")
	}

	// Another key: refused, before any connection, nothing written.
	other := filepath.Join(dir, "other")
	writeKey(t, other)
	withSecrets(t, inv, "encrypt = \"ssh-key\"\nidentity = \""+other+"\"")
	for _, args := range [][]string{{"plan", inv}, {"apply", inv}, {"secrets", "rotate", "dev-user", inv}, {"contexts", "--dir", t.TempDir(), inv}} {
		out, code := run(args...)
		if code != 2 || !strings.Contains(out, "cannot be decrypted with identity "+other+": it was encrypted to other keys") ||
			!strings.Contains(out, "nothing was changed") || strings.Contains(out, "connection refused") {
			t.Errorf("%v: exit %d, want 2 before connecting:\n%s", args, code, out)
		}
	}
	if !bytes.Equal(readFile(t, sec), rotated) {
		t.Error("a refused run changed the file")
	}
}

// A passphrase from the environment: the wrong one is refused (exit 2,
// nothing changed), and no output ever shows either.
func TestEncryptedSecretsWithPassphrase(t *testing.T) {
	const pass, wrong = "a passphrase for the catalogue 1", "not the passphrase, surely"
	inv := offlineLab(t)
	sec := filepath.Join(filepath.Dir(inv), "inv.secrets.toml")
	withSecrets(t, inv, "encrypt = \"passphrase\"\npassphrase_env = \"NATSDEPLOY_TEST_PASSPHRASE\"")
	t.Setenv("NATSDEPLOY_TEST_PASSPHRASE", pass)
	var outs []string
	out, code := run("apply", inv)
	outs = append(outs, out)
	if code != 1 || !strings.Contains(out, "connection refused") {
		t.Fatalf("apply: exit %d:\n%s", code, out)
	}
	saved := readFile(t, sec)
	if !secrets.IsEncrypted(saved) {
		t.Fatal("not encrypted")
	}
	t.Setenv("NATSDEPLOY_TEST_PASSPHRASE", wrong)
	out, code = run("plan", inv)
	outs = append(outs, out)
	if code != 2 || !strings.Contains(out, "cannot be decrypted with the passphrase in environment variable NATSDEPLOY_TEST_PASSPHRASE: wrong passphrase") {
		t.Errorf("plan with the wrong passphrase: exit %d:\n%s", code, out)
	}
	t.Setenv("NATSDEPLOY_TEST_PASSPHRASE", pass)
	out, code = run("plan", inv)
	outs = append(outs, out)
	if code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("plan: exit %d:\n%s", code, out)
	}
	if !bytes.Equal(readFile(t, sec), saved) {
		t.Error("the file changed")
	}
	for _, o := range outs {
		if strings.Contains(o, pass) || strings.Contains(o, wrong) {
			t.Errorf("output shows a passphrase:\n%s", o)
		}
	}
}

// secrets encrypt turns apply's plain file into an encrypted one that
// plan then reads; until then, plan refuses the plain file.
func TestSecretsEncryptCommand(t *testing.T) {
	inv := offlineLab(t)
	dir := filepath.Dir(inv)
	sec := filepath.Join(dir, "inv.secrets.toml")
	if out, code := run("apply", inv); code != 1 {
		t.Fatalf("apply: exit %d:\n%s", code, out)
	}
	plain := readFile(t, sec)
	withSecrets(t, inv, "encrypt = \"ssh-key\"\nidentity = \""+filepath.Join(dir, "id_ed25519")+"\"")
	out, code := run("plan", inv)
	if code != 2 || !strings.Contains(out, "is in plain text") || !strings.Contains(out, "natsdeploy secrets encrypt "+inv) {
		t.Fatalf("plan on the plain file: exit %d:\n%s", code, out)
	}
	if !bytes.Equal(readFile(t, sec), plain) {
		t.Fatal("plan changed the plain file")
	}
	out, code = run("secrets", "encrypt", inv)
	if code != 0 || !strings.Contains(out, "encrypted secrets file "+sec) {
		t.Fatalf("secrets encrypt: exit %d:\n%s", code, out)
	}
	enc := readFile(t, sec)
	if !secrets.IsEncrypted(enc) || bytes.Contains(enc, []byte("password")) {
		t.Fatal("not encrypted")
	}
	if out, code := run("plan", inv); code != 1 || !strings.Contains(out, "connection refused") {
		t.Fatalf("plan on the encrypted file: exit %d:\n%s", code, out)
	}
	out, code = run("secrets", "encrypt", inv)
	if code != 0 || !strings.Contains(out, "is encrypted already") || !bytes.Equal(readFile(t, sec), enc) {
		t.Fatalf("second secrets encrypt: exit %d:\n%s", code, out)
	}
}
