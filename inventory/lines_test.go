package inventory

import (
	"os"
	"reflect"
	"sort"
	"testing"

	"github.com/BurntSushi/toml"
)

const tricky = `# [[not.a.header]] in a comment
secrets_file = "s.toml" # key = "value" in a comment

[ssh]
user = "deploy"
identity_files = [
  "a",   # first
  # "commented",
  "b",
]
motd = """
[[accounts]]
name = "fake"
"""
quote = "say \"hi\" = [x] # not a comment" # 'C:\dir'
"quoted.key" = 1
dotted.key = 2

[nats]
version = "2.14.9"
literal = '''
port = 1
'''

[[accounts]]
name = "A"
jetstream = { max_mem = "1GB", max_file = "4GB" }
  [[accounts.users]]
  name = "a1"
  allow = ["x.>", "y.*"]

  [[accounts.users]]
  name = "a2"

[[accounts]]
name = "B"
  [[accounts.users]]
  name = "b1"
  allow = [
    "p",
    "q" ,
  ]

[accounts.extra]
k = "v"

[[hosts]]
name = "h1"

[monitoring.prometheus]
port = 9091

[quoting]
"esc\"aped" = 1
AZ09 = 2
basic = """a \""" b ""c"" d"""
literal = '''C:\dir\'''
ends = """say "hi"""""
last = 3
`

func TestLocateKeys(t *testing.T) {
	// The locator assumes input the real parser accepted.
	if _, err := toml.Decode(tricky, new(map[string]any)); err != nil {
		t.Fatalf("test input is not valid TOML: %v", err)
	}
	lines := locateKeys(tricky)
	want := map[string]int{
		"secrets_file":                  2,
		"ssh":                           4,
		"ssh.user":                      5,
		"ssh.identity_files":            6,
		"ssh.identity_files.0":          7,
		"ssh.identity_files.1":          9,
		"ssh.motd":                      11,
		"ssh.quote":                     15,
		"ssh.quoted.key":                16,
		"ssh.dotted.key":                17,
		"nats":                          19,
		"nats.version":                  20,
		"nats.literal":                  21,
		"accounts":                      25,
		"accounts.0":                    25,
		"accounts.0.name":               26,
		"accounts.0.jetstream":          27,
		"accounts.0.jetstream.max_mem":  27,
		"accounts.0.jetstream.max_file": 27,
		"accounts.0.users":              28,
		"accounts.0.users.0":            28,
		"accounts.0.users.0.name":       29,
		"accounts.0.users.0.allow":      30,
		"accounts.0.users.0.allow.1":    30,
		"accounts.0.users.1":            32,
		"accounts.0.users.1.name":       33,
		"accounts.1":                    35,
		"accounts.1.users.0":            37,
		"accounts.1.users.0.name":       38,
		"accounts.1.users.0.allow":      39,
		"accounts.1.users.0.allow.0":    40,
		"accounts.1.users.0.allow.1":    41,
		"accounts.1.extra":              44,
		"accounts.1.extra.k":            45,
		"hosts.0":                       47,
		"hosts.0.name":                  48,
		"monitoring":                    50, // defined by [monitoring.prometheus]
		"monitoring.prometheus":         50,
		"monitoring.prometheus.port":    51,
		// Quotes, escapes and characters that could lose the scanner.
		"quoting":          53,
		`quoting.esc"aped`: 54,
		"quoting.AZ09":     55,
		"quoting.basic":    56,
		"quoting.literal":  57,
		"quoting.ends":     58,
		"quoting.last":     59,
	}
	for k, w := range want {
		if got := lines[k]; got != w {
			t.Errorf("line of %q = %d, want %d", k, got, w)
		}
	}
	for _, k := range []string{"accounts.1.name.0", "name", "port", "accounts.2"} {
		if n, ok := lines[k]; ok {
			t.Errorf("key %q found at line %d; it is inside a string or does not exist", k, n)
		}
	}
}

// TestLocateKeysCoversDecodedKeys checks the locator against the real parser
// on the shipped inventories: every key the decoder saw has a line.
func TestLocateKeysCoversDecodedKeys(t *testing.T) {
	for _, f := range []string{"lab.toml", "example.toml"} {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tree map[string]any
			if _, err := toml.Decode(string(data), &tree); err != nil {
				t.Fatal(err)
			}
			d := &decoder{defined: map[string]bool{}, bad: map[string]bool{}}
			var inv Inventory
			d.table("", tree, reflect.ValueOf(&inv).Elem())
			if len(d.problems) > 0 {
				t.Fatalf("decode problems: %v", d.problems)
			}
			lines := locateKeys(string(data))
			var missing []string
			for k := range d.defined {
				if lines[k] == 0 {
					missing = append(missing, k)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Fatalf("no line for %v", missing)
			}
		})
	}
}

func TestLineFallsBackToEnclosingTable(t *testing.T) {
	inv := &Inventory{Path: "x.toml", lines: locateKeys(tricky)}
	tests := []struct {
		key  string
		line int
		pos  string
	}{
		{"accounts.0.users.1.allow", 32, "x.toml:32"}, // not written: the user's header
		{"nats.client_port", 19, "x.toml:19"},
		{"accounts.1.users.0.allow.1", 41, "x.toml:41"},
		{"nothing.here", 0, "x.toml"},
	}
	for _, tt := range tests {
		if got := inv.Line(tt.key); got != tt.line {
			t.Errorf("Line(%q) = %d, want %d", tt.key, got, tt.line)
		}
		if got := inv.Pos(tt.key); got != tt.pos {
			t.Errorf("Pos(%q) = %q, want %q", tt.key, got, tt.pos)
		}
	}
}

// On what it cannot read the locator stops, keeping what it found: a
// missing line makes a message less precise, a wrong one misleads. (Load
// runs it only on text the TOML parser accepted.)
func TestLocateKeysStopsWhereLost(t *testing.T) {
	tests := []struct {
		text string
		want map[string]int
	}{
		{"a = 1\nb = 2", map[string]int{"a": 1, "b": 2}},
		{"a =\nb = 2", map[string]int{"a": 1}},
		{"a = [\"x\" \"y\"]\nb = 2", map[string]int{"a": 1, "a.0": 1}},
		{"a = [1, , 2]\nb = 2", map[string]int{"a": 1, "a.0": 1, "a.1": 1}},
		{"a = { x = \"1\" y = 2 }\nb = 2", map[string]int{"a": 1, "a.x": 1}},
		{"\"a\nb = 2", map[string]int{}},
		{"a = 'x\nb = 2", map[string]int{"a": 1}},
	}
	for _, tt := range tests {
		if got := locateKeys(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("locateKeys(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestLocateKeysNeverPanics(t *testing.T) {
	// Truncations of a valid file: the locator must stop quietly.
	for i := range tricky {
		locateKeys(tricky[:i])
	}
	for _, s := range []string{"[", "[[", "a = ", "a = [", "a = {", `a = "`, `a = """`, "= 1", "a.b.", "]]"} {
		locateKeys(s)
	}
}
