package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/golden"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// script is an apply as the engine reports it: two hosts connect and read
// facts, one uploads and reloads, a lock warning, a line for the run as a
// whole. Times are fixed so the output is exact.
func script() []Event {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return []Event{
		{Time: at(0), Host: "nats-1", Phase: Connect, Kind: Start, Quiet: true},
		{Time: at(0), Host: "nats-2", Phase: Connect, Kind: Start, Quiet: true},
		{Time: at(120), Host: "nats-1", Phase: Connect, Kind: Done, Quiet: true},
		{Time: at(130), Host: "nats-2", Phase: Connect, Kind: Done, Quiet: true},
		{Time: at(200), Host: "nats-1", Phase: Facts, Kind: Start, Quiet: true},
		{Time: at(300), Host: "nats-1", Phase: Facts, Kind: Done, Quiet: true},
		{Time: at(310), Host: "nats-1", Phase: Plan, Kind: Info, Detail: "update /etc/nats/accounts.conf (sha256 1a2b3c4d → 5e6f7a8b)"},
		{Time: at(400), Host: "nats-1", Phase: Upload, Kind: Start, Path: "/etc/nats/accounts.conf", Total: 2048, Quiet: true},
		{Time: at(450), Host: "nats-1", Phase: Upload, Kind: Progress, Path: "/etc/nats/accounts.conf", Bytes: 1024, Total: 2048, Quiet: true},
		{Time: at(500), Host: "nats-1", Phase: Upload, Kind: Done, Path: "/etc/nats/accounts.conf", Bytes: 2048, Total: 2048, Quiet: true},
		{Time: at(600), Host: "nats-1", Phase: Commit, Kind: Done, Path: "/etc/nats/accounts.conf", Quiet: true},
		{Time: at(700), Host: "nats-1", Phase: Reload, Kind: Start, Unit: "nats-server.service", Detail: "reload nats-server.service"},
		{Time: at(900), Host: "nats-1", Phase: Reload, Kind: Done, Unit: "nats-server.service", Detail: "reload confirmed: config_digest sha256:abc"},
		{Time: at(950), Host: "nats-2", Kind: Warn, Detail: "warning: lock refresh failed"},
		{Time: at(1000), Kind: Info, Detail: "nats-server.service settled after the reload: every node routes to every other"},
	}
}

func runScript(sink Sink, tally *Tally, err error) {
	for _, e := range script() {
		sink.Event(e)
		tally.Event(e)
	}
	s := tally.Summary("apply", []string{"nats-1", "nats-2"}, 1500*time.Millisecond, err)
	sink.Event(Event{Time: t0.Add(1500 * time.Millisecond), Kind: Summary, Summary: &s})
}

func TestRenderers(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(*bytes.Buffer) Sink
		err  error
	}{
		{"plain.golden", func(b *bytes.Buffer) Sink { return NewPlain(b) }, nil},
		{"plain-failed.golden", func(b *bytes.Buffer) Sink { return NewPlain(b) }, errors.New("host nats-2: reload nats-server.service: exit 1\n  last lines from nats-2: ...")},
		{"json.golden", func(b *bytes.Buffer) Sink { return NewJSON(b) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			runScript(tc.new(&b), NewTally(), tc.err)
			golden.Check(t, filepath.Join("testdata", tc.name), b.Bytes())
		})
	}
}

// Every line of the JSON renderer is one JSON object with the fields the
// README documents, and the last one is the summary.
func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	runScript(NewJSON(&b), NewTally(), nil)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(script())+1 {
		t.Fatalf("%d lines for %d events and a summary", len(lines), len(script()))
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, l)
		}
		if _, ok := m["time"].(string); !ok {
			t.Errorf("line %d has no time: %s", i+1, l)
		}
		if _, ok := m["event"].(string); !ok {
			t.Errorf("line %d has no event: %s", i+1, l)
		}
		if _, ok := m["Quiet"]; ok {
			t.Errorf("line %d leaks an internal field: %s", i+1, l)
		}
	}
	var sum struct {
		Event   string `json:"event"`
		Command string `json:"command"`
		OK      bool   `json:"ok"`
		Hosts   []struct {
			Host      string   `json:"host"`
			Status    string   `json:"status"`
			Files     int      `json:"files_changed"`
			Reloaded  []string `json:"reloaded"`
			ElapsedMS int64    `json:"elapsed_ms"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Event != "summary" || sum.Command != "apply" || !sum.OK || len(sum.Hosts) != 2 {
		t.Fatalf("summary: %+v", sum)
	}
	if h := sum.Hosts[0]; h.Host != "nats-1" || h.Status != "changed" || h.Files != 1 || len(h.Reloaded) != 1 || h.ElapsedMS != 900 {
		t.Errorf("nats-1: %+v", h)
	}
	if h := sum.Hosts[1]; h.Status != "unchanged" || h.Files != 0 || h.ElapsedMS != 950 {
		t.Errorf("nats-2: %+v", h)
	}
}

func TestTally(t *testing.T) {
	tl := NewTally()
	for _, e := range []Event{
		{Time: t0, Host: "a", Phase: Upload, Kind: Done, Path: "/x"}, // not committed: no change yet
		{Time: t0, Host: "a", Phase: Commit, Kind: Done, Path: "/x"},
		{Time: t0, Host: "a", Phase: Commit, Kind: Done, Path: "/x"}, // a second round: still one file
		{Time: t0, Host: "a", Phase: Commit, Kind: Done, Path: "/y"},
		{Time: t0, Host: "a", Phase: Restart, Kind: Start, Unit: "u"}, // started, not done
		{Time: t0, Host: "b", Phase: Restart, Kind: Done, Unit: "u"},
		{Time: t0, Host: "b", Phase: Starting, Kind: Done, Unit: "v"},
		{Time: t0.Add(time.Second), Host: "b", Phase: Remove, Kind: Done, Role: "nats"},
		{Time: t0, Host: "c", Phase: Facts, Kind: Fail, Detail: "boom"},
	} {
		tl.Event(e)
	}
	s := tl.Summary("x", []string{"a", "b", "c", "d"}, time.Second, nil)
	want := []string{
		"x summary: done in 1s",
		"  a  2 file(s) changed (0s)",
		"  b  started v; restarted u; removed role nats (1s)",
		"  c  FAILED (0s)",
		"  d  no change (0s)",
	}
	if got := s.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		json     bool
		terminal bool
		env      map[string]string
		mode     Mode
		colour   bool
	}{
		{"terminal", false, true, map[string]string{"TERM": "xterm-256color"}, LiveMode, true},
		{"NO_COLOR set", false, true, map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, LiveMode, false},
		{"NO_COLOR empty counts as unset", false, true, map[string]string{"TERM": "xterm", "NO_COLOR": ""}, LiveMode, true},
		{"TERM=dumb", false, true, map[string]string{"TERM": "dumb"}, PlainMode, false},
		{"pipe", false, false, map[string]string{"TERM": "xterm"}, PlainMode, false},
		{"--json on a terminal", true, true, map[string]string{"TERM": "xterm"}, JSONMode, false},
		{"--json in a pipe", true, false, nil, JSONMode, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, c := Choose(tc.json, tc.terminal, func(k string) string { return tc.env[k] })
			if m != tc.mode || c != tc.colour {
				t.Errorf("got %s colour=%v, want %s colour=%v", m, c, tc.mode, tc.colour)
			}
		})
	}
}

// Switch sends to the sink set last, and Stamp fills only missing times.
func TestSwitchAndStamp(t *testing.T) {
	var a, b []Event
	sw := NewSwitch(SinkFunc(func(e Event) { a = append(a, e) }))
	s := Stamp(sw, func() time.Time { return t0 })
	s.Event(Event{Kind: Info})
	sw.Set(SinkFunc(func(e Event) { b = append(b, e) }))
	s.Event(Event{Kind: Info, Time: t0.Add(time.Hour)})
	if len(a) != 1 || len(b) != 1 || !a[0].Time.Equal(t0) || !b[0].Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("a=%v b=%v", a, b)
	}
}

// A secret in an event's text or the summary's error is replaced before
// any renderer sees it; short values are left alone.
func TestRedact(t *testing.T) {
	var got []Event
	s := Redact(SinkFunc(func(e Event) { got = append(got, e) }), []string{"s3cr3t-password-1", "", "abc"})
	s.Event(Event{Detail: "nats-server -t: bad url nats://route:s3cr3t-password-1@x (abc)"})
	s.Event(Event{Kind: Summary, Summary: &RunSummary{Error: "host a: s3cr3t-password-1"}})
	if got[0].Detail != "nats-server -t: bad url nats://route:[redacted]@x (abc)" {
		t.Errorf("detail: %q", got[0].Detail)
	}
	if got[1].Summary.Error != "host a: [redacted]" {
		t.Errorf("summary error: %q", got[1].Summary.Error)
	}
}

// A host changed when any one kind of change was done to it, whatever
// else was or was not.
func TestHostSummaryChanged(t *testing.T) {
	for _, tc := range []struct {
		h    HostSummary
		want bool
	}{
		{HostSummary{}, false},
		{HostSummary{Files: 1}, true},
		{HostSummary{Started: []string{"a"}, Reloaded: []string{"b"}}, true},
		{HostSummary{Reloaded: []string{"b"}, Restarted: []string{"c"}}, true},
		{HostSummary{Restarted: []string{"c"}, Removed: []string{"nats"}}, true},
		{HostSummary{Started: []string{"a"}, Removed: []string{"nats"}}, true},
	} {
		if got := tc.h.Changed(); got != tc.want {
			t.Errorf("%+v: Changed = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// The summary's times are rounded to 10 ms: a person reads 1.23s, not
// 1.234567891s.
func TestSummaryRoundsTimes(t *testing.T) {
	tl := NewTally()
	tl.Event(Event{Time: t0, Host: "a", Phase: Commit, Kind: Done, Path: "/x"})
	tl.Event(Event{Time: t0.Add(1234567891 * time.Nanosecond), Host: "a", Phase: Commit, Kind: Done, Path: "/y"})
	got := strings.Join(tl.Summary("apply", []string{"a"}, 2345678912*time.Nanosecond, nil).Lines(), "\n")
	want := "apply summary: done in 2.35s\n  a  2 file(s) changed (1.23s)"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A secret as short as the shortest the inventory accepts is redacted;
// a shorter value is not a secret and stays.
func TestRedactShortest(t *testing.T) {
	short := strings.Repeat("x", minSecret-1)
	exact := strings.Repeat("y", minSecret)
	if got := RedactText("a "+exact+" b "+short, []string{exact, short}); got != "a [redacted] b "+short {
		t.Errorf("RedactText = %q", got)
	}
}
