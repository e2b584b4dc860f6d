package status

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/golden"
)

// nodeDetails is what a clustered service reports about itself, in the
// shapes a role gives them.
func nodeDetails(peers []string, leader string) []Detail {
	return []Detail{
		{Key: "routes", Text: join(peers), Value: peers},
		{Key: "meta_leader", Text: leader, Value: leader},
		{Key: "streams", Text: "2", Value: 2},
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func healthy() Report {
	row := func(host, unit, role, version string, up time.Duration, details []Detail) Row {
		return Row{Host: host, Role: role, Unit: unit, Reachable: true, State: "active", Enabled: true,
			Uptime: up, UptimeKnown: true, Version: version, WantVersion: version, ConfigOK: true, Config: "5 files as rendered", Details: details}
	}
	return Report{Elapsed: 842 * time.Millisecond, Rows: []Row{
		row("nats-1", "svc-log.service", "svc", "", 26*time.Hour+3*time.Minute, nil),
		row("nats-1", "svc.service", "svc", "2.14.9", 26*time.Hour+3*time.Minute, nodeDetails([]string{"nats-2", "nats-3"}, "nats-2")),
		row("nats-1", "watcher.service", "watcher", "3.16.0", 4*time.Minute+2*time.Second, nil),
		row("nats-2", "svc.service", "svc", "2.14.9", 2*time.Hour+13*time.Minute, nodeDetails([]string{"nats-1", "nats-3"}, "nats-2")),
		row("nats-3", "svc.service", "svc", "2.14.9", 45*time.Second, nodeDetails([]string{"nats-1", "nats-2"}, "nats-2")),
	}}
}

// One of everything that can go wrong: a host not reached, a unit down
// and disabled, a file changed by hand, an old binary, a role's problem.
func troubled() Report {
	r := healthy()
	r.Rows[1].Version = "2.14.8"
	r.Rows[1].Problems = []string{"version 2.14.8, the inventory asks for 2.14.9 (run apply)"}
	r.Rows[2].State, r.Rows[2].Enabled = "failed", false
	r.Rows[2].Problems = []string{"watcher.service failed (run apply to start it)", "watcher.service not enabled"}
	r.Rows[3].ConfigOK, r.Rows[3].Config = false, "/etc/svc/main.conf changed (run apply to restore)"
	r.Rows[3].Details = nodeDetails([]string{"nats-1"}, "nats-2")
	r.Rows[3].Problems = []string{"/etc/svc/main.conf changed (run apply to restore)", "no route to nats-3\nsecond line"}
	r.Rows[4] = Row{Host: "nats-3", Problems: []string{"cannot connect: host nats-3: cannot reach 192.0.2.13:22: i/o timeout"}}
	return r
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name     string
		report   Report
		ok       bool
		problems int
	}{
		{"healthy", healthy(), true, 0},
		{"troubled", troubled(), false, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.report.OK() != tc.ok || tc.report.Problems() != tc.problems {
				t.Errorf("OK() = %v, Problems() = %d; want %v, %d", tc.report.OK(), tc.report.Problems(), tc.ok, tc.problems)
			}
			var text, js bytes.Buffer
			if err := tc.report.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := tc.report.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".txt"), text.Bytes())
			golden.Check(t, filepath.Join("testdata", tc.name+".json"), js.Bytes())
			var doc struct {
				OK       bool             `json:"ok"`
				Services []map[string]any `json:"services"`
			}
			if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
				t.Fatalf("not one JSON document: %v", err)
			}
			if doc.OK != tc.ok || len(doc.Services) != len(tc.report.Rows) {
				t.Errorf("JSON ok %v with %d services, want %v with %d", doc.OK, len(doc.Services), tc.ok, len(tc.report.Rows))
			}
		})
	}
}

func TestVersionIn(t *testing.T) {
	for in, want := range map[string]string{
		"nats-server: v2.14.9": "2.14.9",
		"prometheus, version 3.16.0 (branch: HEAD, revision: x)": "3.16.0",
		"nats-server: v2.12.0-RC.1":                              "2.12.0-RC.1",
		"sh: 1: /usr/local/bin/nats-server: not found":           "",
		"go1.26.8 build 1.2":                                     "",
		"":                                                       "",
	} {
		if got := VersionIn(in); got != want {
			t.Errorf("VersionIn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDurationAndBytes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                             "0s",
		59 * time.Second:              "59s",
		61 * time.Second:              "1m1s",
		2*time.Hour + 13*time.Minute:  "2h13m",
		50*time.Hour + 59*time.Minute: "2d2h",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{
		0:          "0 B",
		1023:       "1023 B",
		1024:       "1.0 KiB",
		1536 << 20: "1.5 GiB",
		4 << 30:    "4.0 GiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
