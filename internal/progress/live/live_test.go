package live

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/progress"
)

// drawn is the view's output: mpb writes each frame it draws in one
// Write, so a test can wait for a frame to be out.
type drawn struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (d *drawn) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case d.wrote <- struct{}{}:
	default:
	}
	return d.buf.Write(p)
}

func (d *drawn) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}

var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// The live view, drawn into a buffer on demand: each host ends on the
// line the summary gives it, lines for the run as a whole stay above, and
// an upload in progress shows its bytes and rate.
func TestLiveFinalLines(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		colour  bool
		events  []progress.Event
		summary progress.RunSummary
		above   []string // lines printed once, above the view
		hidden  []string // lines never printed
		want    []string // the last frame, colour removed
		mid     string   // a line a mid-run frame must show
	}{
		{
			name:   "apply",
			colour: true,
			events: []progress.Event{
				{Host: "nats-1", Phase: progress.Connect, Kind: progress.Start},
				{Host: "nats-2", Phase: progress.Connect, Kind: progress.Start},
				{Host: "nats-1", Phase: progress.Upload, Kind: progress.Start, Path: "/usr/local/bin/nats-server", Total: 4 << 20},
				{Host: "nats-1", Phase: progress.Upload, Kind: progress.Progress, Path: "/usr/local/bin/nats-server", Bytes: 2 << 20, Total: 4 << 20},
				{Kind: progress.Info, Detail: "reloadable changes go first, to every node at once; then the restarts roll"},
				{Kind: progress.Info, Detail: "a line for --json only", Quiet: true},
				{Host: "nats-2", Kind: progress.Warn, Detail: "warning: could not refresh the lock"},
				{Host: "nats-2", Phase: progress.Reload, Kind: progress.Start, Unit: "nats-server.service", Detail: "reload nats-server.service"},
			},
			mid: "nats-1  uploading /usr/local/bin/nats-server 2.0 MiB of 4.0 MiB, 1.0 MiB/s",
			summary: progress.RunSummary{Command: "apply", OK: true, Elapsed: 3 * time.Second, Hosts: []progress.HostSummary{
				{Host: "nats-1", Files: 1, Restarted: []string{"nats-server.service"}, Elapsed: 2 * time.Second},
				{Host: "nats-2", Reloaded: []string{"nats-server.service"}, Elapsed: time.Second},
			}},
			above:  []string{"reloadable changes go first, to every node at once; then the restarts roll", "[nats-2] warning: could not refresh the lock"},
			hidden: []string{"a line for --json only"},
			want: []string{
				"✓ nats-1  1 file(s) changed; restarted nats-server.service (2s)",
				"✓ nats-2  reloaded nats-server.service (1s)",
			},
		},
		{
			name: "a host fails",
			events: []progress.Event{
				{Host: "nats-1", Phase: progress.Facts, Kind: progress.Start},
				{Host: "nats-2", Phase: progress.Facts, Kind: progress.Fail, Detail: "host nats-2: gather facts: exit 1\nmore"},
			},
			mid: "nats-1  reading facts",
			summary: progress.RunSummary{Command: "apply", Error: "host nats-2: gather facts: exit 1", Hosts: []progress.HostSummary{
				{Host: "nats-1"}, {Host: "nats-2", Failed: true},
			}},
			want: []string{
				"  nats-1  stopped: host nats-2: gather facts: exit 1",
				"✗ nats-2  host nats-2: gather facts: exit 1",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &drawn{wrote: make(chan struct{}, 1)}
			refresh := make(chan any)
			now := t0
			r := New(out, []string{"nats-1", "nats-2"}, Options{Colour: tc.colour, Width: 100, Refresh: refresh, Now: func() time.Time { return now }})
			for _, e := range tc.events {
				r.Event(e)
			}
			now = now.Add(2 * time.Second)
			refresh <- time.Now()
			<-out.wrote
			r.Event(progress.Event{Kind: progress.Summary, Summary: &tc.summary})
			got := out.String()
			if !strings.Contains(sgr.ReplaceAllString(got, ""), tc.mid) {
				t.Errorf("no frame shows %q:\n%q", tc.mid, got)
			}
			if hasSGR := sgr.MatchString(got); hasSGR != tc.colour {
				t.Errorf("colour codes present = %v, want %v:\n%q", hasSGR, tc.colour, got)
			}
			all := strings.Split(sgr.ReplaceAllString(got, ""), "\n")
			summaryAt := -1
			for i, l := range all {
				if strings.HasPrefix(l, "apply summary:") {
					summaryAt = i
				}
			}
			if summaryAt < 0 {
				t.Fatalf("no summary after the view:\n%q", got)
			}
			for _, a := range tc.above {
				if n := strings.Count(got, a+"\n"); n != 1 {
					t.Errorf("%q printed %d times, want once:\n%q", a, n, got)
				}
			}
			for _, h := range tc.hidden {
				if strings.Contains(got, h) {
					t.Errorf("%q printed:\n%q", h, got)
				}
			}
			// Off a terminal mpb does not move the cursor back: frames
			// follow each other, the last one just before the summary.
			frame := all[summaryAt-len(tc.want) : summaryAt]
			var trimmed []string
			for _, l := range frame {
				trimmed = append(trimmed, strings.TrimRight(l, " "))
			}
			if strings.Join(trimmed, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("last frame:\n%s\nwant:\n%s\nall output: %q", strings.Join(trimmed, "\n"), strings.Join(tc.want, "\n"), got)
			}
		})
	}
}

// An upload's bytes are shown in binary units, and its rate only once it
// has run a second.
func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		took        time.Duration
		want        string
	}{
		{1023, 1024, 0, "1023 B of 1.0 KiB"},
		{1 << 20, 3 << 30, 999 * time.Millisecond, "1.0 MiB of 3.0 GiB"},
		{2 << 20, 4 << 20, time.Second, "2.0 MiB of 4.0 MiB, 2.0 MiB/s"},
		{3 << 20, 4 << 20, 2 * time.Second, "3.0 MiB of 4.0 MiB, 1.5 MiB/s"},
		{(1 << 20) - 1, 1 << 40, 0, "1024.0 KiB of 1.0 TiB"},
	} {
		if got := sizes(tc.done, tc.total, tc.took); got != tc.want {
			t.Errorf("sizes(%d, %d, %s) = %q, want %q", tc.done, tc.total, tc.took, got, tc.want)
		}
	}
}

// A host's step says what it waits for, also when the wait is its
// cluster's and not its own unit's.
func TestStepOf(t *testing.T) {
	for _, tc := range []struct {
		e    progress.Event
		want string
	}{
		{progress.Event{Phase: progress.Health, Kind: progress.Start, Unit: "nats-server.service"}, "waiting for nats-server.service to be healthy"},
		{progress.Event{Phase: progress.Settle, Kind: progress.Start, Unit: "nats-server.service"}, "waiting for the nats-server.service cluster to settle"},
		{progress.Event{Phase: progress.Settle, Kind: progress.Done, Unit: "nats-server.service"}, "nats-server.service cluster settled"},
		{progress.Event{Phase: progress.Settle, Kind: progress.Fail, Unit: "nats-server.service", Detail: "no meta leader", Quiet: true}, ""},
	} {
		if got := stepOf(tc.e); got != tc.want {
			t.Errorf("stepOf(%s %s) = %q, want %q", tc.e.Phase, tc.e.Kind, got, tc.want)
		}
	}
}
