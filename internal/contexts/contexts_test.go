package contexts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/inventory"
)

type mapPasswords map[string]string

func (m mapPasswords) Password(account, user string) string { return m[account+"/"+user] }

func testInventory() *inventory.Inventory {
	return &inventory.Inventory{
		Path: "/somewhere/inventory/lab.toml",
		NATS: inventory.NATS{ClientPort: 4222},
		Hosts: []inventory.Host{
			{Name: "nats-1", Address: "172.31.253.11"},
			{Name: "nats-2", Address: "172.31.253.12"},
			{Name: "nats-3", Address: "172.31.253.13"},
		},
		Accounts: []inventory.Account{
			{Name: "SYS", System: true, Users: []inventory.User{{Name: "sys-user"}}},
			{Name: "DEV", Users: []inventory.User{{Name: "dev-user"}}},
			{Name: "SERVICES", Users: []inventory.User{{Name: "user-service"}, {Name: "order.service"}}},
		},
	}
}

var testPasswords = mapPasswords{
	"SYS/sys-user":           "pw-sys",
	"DEV/dev-user":           "pw-dev",
	"SERVICES/user-service":  "pw-user",
	"SERVICES/order.service": "pw-order",
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats", "context")
	names, err := Write(testInventory(), testPasswords, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lab-sys-user", "lab-dev-user", "lab-user-service", "lab-order_service"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}

	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("dir holds %d files, want %d (no temporary files left)", len(entries), len(want))
	}

	b, err := os.ReadFile(filepath.Join(dir, "lab-dev-user.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	for k, v := range map[string]string{
		"url":      "nats://172.31.253.11:4222,nats://172.31.253.12:4222,nats://172.31.253.13:4222",
		"user":     "dev-user",
		"password": "pw-dev",
		"creds":    "",
		"nkey":     "",
		"ca":       "",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if d, _ := got["description"].(string); !strings.Contains(d, "dev-user") || !strings.Contains(d, "DEV") {
		t.Errorf("description %q should name user and account", d)
	}

	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", n, st.Mode().Perm())
		}
	}
}

func TestWriteReplacesAndTightens(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "lab-dev-user.json")
	if err := os.WriteFile(old, []byte(`{"user":"dev-user","password":"old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(testInventory(), testPasswords, dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(old)
	if !strings.Contains(string(b), `"pw-dev"`) {
		t.Errorf("context not replaced: %s", b)
	}
	if st, _ := os.Stat(old); st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
}

func TestWriteMissingPasswordWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctx")
	pw := mapPasswords{"SYS/sys-user": "x"}
	_, err := Write(testInventory(), pw, dir)
	if err == nil || !strings.Contains(err.Error(), "DEV/dev-user") {
		t.Fatalf("want an error naming DEV/dev-user, got %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("nothing should be written, dir stat: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/x/cfg")
	if d, _ := DefaultDir(); d != "/x/cfg/nats/context" {
		t.Errorf("DefaultDir with XDG_CONFIG_HOME = %q", d)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := DefaultDir(); d != "/home/u/.config/nats/context" {
		t.Errorf("DefaultDir = %q", d)
	}
}

func TestNameWithoutPath(t *testing.T) {
	inv := testInventory()
	inv.Path = ""
	if n := Name(inv, "admin"); n != "natsdeploy-admin" {
		t.Errorf("Name = %q", n)
	}
}
