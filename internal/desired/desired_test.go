package desired

import (
	"errors"
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	a := Host{
		Users: []User{{Name: "nats", Home: "/var/lib/nats"}},
		Dirs:  []Dir{{Path: "/etc/nats", Owner: "root", Group: "nats", Mode: 0o750}},
		Files: []File{{Path: "/etc/nats/a.conf"}},
		Units: []Unit{{Name: "a.service"}},
		Ports: []Port{{Number: 4222, Key: "nats.client_port"}},
	}
	b := Host{
		Users: []User{{Name: "nats", Home: "/var/lib/nats"}, {Name: "prometheus", Home: "/var/lib/prometheus"}},
		Dirs:  []Dir{{Path: "/etc/nats", Owner: "root", Group: "nats", Mode: 0o750}},
		Files: []File{{Path: "/etc/prometheus/prometheus.yml"}},
		Units: []Unit{{Name: "b.service"}},
		Ports: []Port{{Number: 9090, Key: "monitoring.prometheus.port"}},
	}
	got, err := Merge("h", Part{"a", a}, Part{"b", b})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "h" || len(got.Users) != 2 || len(got.Dirs) != 1 || len(got.Files) != 2 || len(got.Units) != 2 || len(got.Ports) != 2 {
		t.Errorf("merged %+v", got)
	}
	if got.Units[0].Name != "a.service" || got.Files[1].Path != "/etc/prometheus/prometheus.yml" {
		t.Errorf("order not kept: %+v", got)
	}
	if got.Units[0].Role != "a" || got.Units[1].Role != "b" {
		t.Errorf("units' roles %q, %q; want a, b", got.Units[0].Role, got.Units[1].Role)
	}

	c := Host{
		Dirs:  []Dir{{Path: "/etc/nats", Owner: "root", Group: "root", Mode: 0o755}},
		Files: []File{{Path: "/etc/nats/a.conf"}},
		Ports: []Port{{Number: 4222, Key: "monitoring.exporter.port"}},
	}
	_, err = Merge("h", Part{"a", a}, Part{"c", c})
	var clashes []*Clash
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var cl *Clash
		if errors.As(e, &cl) {
			clashes = append(clashes, cl)
		}
	}
	if len(clashes) != 3 {
		t.Fatalf("clashes %v", err)
	}
	for i, want := range []string{
		"host h: directory /etc/nats (with different owner or mode) is claimed by role a and by role c",
		"host h: path /etc/nats/a.conf is claimed by role a and by role c",
		"host h: port 4222 is also nats.client_port (role a); give one of them another port",
	} {
		if clashes[i].Error() != want {
			t.Errorf("clash %d = %q, want %q", i, clashes[i].Error(), want)
		}
	}
	if clashes[2].Key != "monitoring.exporter.port" || clashes[2].Role != "c" {
		t.Errorf("port clash names %q (role %s), want the second role's key", clashes[2].Key, clashes[2].Role)
	}
	if !strings.Contains(err.Error(), "a.conf") {
		t.Errorf("error text %v", err)
	}
}

// Only keeps a unit's files and the unit; setup adds what belongs to no
// unit.
func TestOnly(t *testing.T) {
	h := Host{
		Name:  "h",
		Users: []User{{Name: "nats"}},
		Dirs:  []Dir{{Path: "/etc/nats"}},
		Ports: []Port{{Number: 4222}},
		Files: []File{{Path: "/a", Service: "a.service"}, {Path: "/b", Service: "b.service"}, {Path: "/shared"}},
		Units: []Unit{{Name: "a.service"}, {Name: "b.service"}},
	}
	paths := func(h Host) (out []string) {
		for _, f := range h.Files {
			out = append(out, f.Path)
		}
		for _, u := range h.Units {
			out = append(out, u.Name)
		}
		return out
	}
	for _, tc := range []struct {
		units map[string]bool
		setup bool
		want  string
	}{
		{map[string]bool{"a.service": true}, true, "/a /shared a.service"},
		{map[string]bool{"b.service": true}, false, "/b b.service"},
		{map[string]bool{}, false, ""},
	} {
		got := h.Only(tc.units, tc.setup)
		if s := strings.Join(paths(got), " "); s != tc.want || got.Name != "h" {
			t.Errorf("Only(%v, %v) = %q (name %q), want %q", tc.units, tc.setup, s, got.Name, tc.want)
		}
		if setup := len(got.Users) == 1 && len(got.Dirs) == 1 && len(got.Ports) == 1; setup != tc.setup {
			t.Errorf("Only(%v, %v): users, dirs and ports %+v", tc.units, tc.setup, got)
		}
	}
}
