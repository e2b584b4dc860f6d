package progress

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// RunSummary is what a run did, host by host: the closing summary.
type RunSummary struct {
	Command string
	OK      bool
	Error   string // the first line of why the run failed
	Elapsed time.Duration
	// Planned: the counts are what apply would do (plan), not what was
	// done.
	Planned bool
	Hosts   []HostSummary
}

// HostSummary is one host's part of a run.
type HostSummary struct {
	Host string
	// Files created or changed (content, owner or mode), counted when
	// swapped in: a run that failed before committing changed none.
	Files     int
	Started   []string // units
	Reloaded  []string
	Restarted []string
	Removed   []string // roles destroy removed
	// Elapsed is the time from the host's first event to its last: how
	// long the run was busy with it, waits for other hosts included.
	Elapsed time.Duration
	Failed  bool
}

// Changed reports whether anything was done on the host.
func (h HostSummary) Changed() bool {
	return h.Files > 0 || len(h.Started)+len(h.Reloaded)+len(h.Restarted)+len(h.Removed) > 0
}

// Tally is a Sink that counts what each host had done, for the closing
// summary. It only reads events: the summary comes from the same stream
// the person watched.
type Tally struct {
	mu    sync.Mutex
	hosts map[string]*tallyHost
}

type tallyHost struct {
	first, last        time.Time
	files              map[string]bool
	started, reloaded  []string
	restarted, removed []string
	failed             bool
}

// NewTally starts an empty tally.
func NewTally() *Tally { return &Tally{hosts: map[string]*tallyHost{}} }

func (t *Tally) Event(e Event) {
	if e.Host == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[e.Host]
	if h == nil {
		h = &tallyHost{files: map[string]bool{}}
		t.hosts[e.Host] = h
	}
	if !e.Time.IsZero() {
		if h.first.IsZero() {
			h.first = e.Time
		}
		h.last = e.Time
	}
	add := func(list *[]string, s string) {
		if s != "" && !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	switch {
	case e.Kind == Fail:
		h.failed = true
	case e.Kind != Done:
	case e.Phase == Commit && e.Path != "":
		h.files[e.Path] = true
	case e.Phase == Starting:
		add(&h.started, e.Unit)
	case e.Phase == Reload:
		add(&h.reloaded, e.Unit)
	case e.Phase == Restart:
		add(&h.restarted, e.Unit)
	case e.Phase == Remove:
		add(&h.removed, e.Role)
	}
}

// Summary is the run's summary, with hosts in the order given (the
// inventory's); err is how the run ended.
func (t *Tally) Summary(command string, hosts []string, elapsed time.Duration, err error) RunSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := RunSummary{Command: command, OK: err == nil, Elapsed: elapsed}
	if err != nil {
		s.Error, _, _ = strings.Cut(err.Error(), "\n")
	}
	for _, name := range hosts {
		hs := HostSummary{Host: name}
		if h := t.hosts[name]; h != nil {
			hs.Files = len(h.files)
			hs.Started, hs.Reloaded, hs.Restarted, hs.Removed = h.started, h.reloaded, h.restarted, h.removed
			hs.Elapsed = h.last.Sub(h.first)
			hs.Failed = h.failed
		}
		s.Hosts = append(s.Hosts, hs)
	}
	return s
}

// Lines is the summary for a person, one line per host and a total.
func (s RunSummary) Lines() []string {
	var out []string
	width := 0
	for _, h := range s.Hosts {
		width = max(width, len(h.Host))
	}
	for _, h := range s.Hosts {
		out = append(out, fmt.Sprintf("  %-*s  %s", width, h.Host, h.Describe(s.Planned)))
	}
	verdict := "done"
	if !s.OK {
		verdict = "FAILED"
	}
	return append([]string{fmt.Sprintf("%s summary: %s in %s", s.Command, verdict, round(s.Elapsed))}, out...)
}

// Describe says what happened on the host in one line: counts first,
// units after, the time last.
func (h HostSummary) Describe(planned bool) string {
	var parts []string
	if h.Failed {
		parts = append(parts, "FAILED")
	}
	verb := func(done, would string) string {
		if planned {
			return would
		}
		return done
	}
	if h.Files > 0 {
		parts = append(parts, fmt.Sprintf("%d file(s) %s", h.Files, verb("changed", "to change")))
	}
	for _, u := range []struct {
		done, would string
		units       []string
	}{
		{"started", "to start", h.Started},
		{"reloaded", "to reload", h.Reloaded},
		{"restarted", "to restart", h.Restarted},
		{"removed role", "to remove role", h.Removed},
	} {
		if len(u.units) > 0 {
			parts = append(parts, verb(u.done, u.would)+" "+strings.Join(u.units, ", "))
		}
	}
	if !h.Changed() && !h.Failed {
		parts = append(parts, verb("no change", "nothing to do"))
	}
	text := strings.Join(parts, "; ")
	if !planned {
		text += " (" + round(h.Elapsed).String() + ")"
	}
	return text
}

// WriteText writes Lines.
func (s RunSummary) WriteText(w io.Writer) error {
	for _, l := range s.Lines() {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
