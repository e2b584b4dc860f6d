// Package progress carries what a run does, host by host, from the engine
// to whoever watches it. The engine only ever calls Sink.Event; renderers
// (plain lines, JSON lines, and the live terminal view in progress/live)
// turn events into output. Nothing flows back: a renderer cannot slow or
// change a run beyond the time it takes to write.
//
// Events carry host names, phases, unit and file paths, sizes and the
// human lines natsdeploy has always printed; never file contents or
// passwords, so every renderer may show all of an event.
package progress

import (
	"strings"
	"sync"
	"time"
)

// Kind is what an event says about its phase.
type Kind string

const (
	Start    Kind = "start"
	Progress Kind = "progress" // an upload's bytes so far
	Done     Kind = "done"
	Fail     Kind = "fail"
	Info     Kind = "info" // a line of the run's log
	Warn     Kind = "warn"
	Summary  Kind = "summary" // the last event of a run: Event.Summary
)

// Phase names a step of a run.
type Phase string

const (
	Connect  Phase = "connect"
	Lock     Phase = "lock"
	Facts    Phase = "facts"
	Plan     Phase = "plan"
	Upload   Phase = "upload"
	Validate Phase = "validate"
	Commit   Phase = "commit"
	Starting Phase = "start" // a stopped unit started
	Reload   Phase = "reload"
	Restart  Phase = "restart"
	Health   Phase = "health" // waiting for a unit to be ready
	Settle   Phase = "settle" // waiting for a unit's cluster to count every member in
	Remove   Phase = "remove" // destroy: a role taken off a host
	Verify   Phase = "verify"
)

// Event is one thing that happened in a run.
type Event struct {
	Time  time.Time `json:"time"`
	Host  string    `json:"host,omitempty"` // empty: the run as a whole
	Phase Phase     `json:"phase,omitempty"`
	Kind  Kind      `json:"event"`
	// Detail is a line for a person. For an event that is not Quiet it is
	// the very line natsdeploy printed before it had events, which
	// scripts and the e2e tests look for.
	Detail string `json:"detail,omitempty"`
	Path   string `json:"path,omitempty"` // the file an upload or commit concerns
	Unit   string `json:"unit,omitempty"` // the systemd unit a handler concerns
	Role   string `json:"role,omitempty"` // the role destroy removes
	Bytes  int64  `json:"bytes,omitempty"`
	Total  int64  `json:"total,omitempty"`
	// Quiet events had no line before events existed; the plain renderer
	// leaves them out so plain output stays as it was.
	Quiet bool `json:"-"`
	// Summary is set on the Summary event only.
	Summary *RunSummary `json:"-"`
	// Report is a machine form to pass through (verify's JSON report).
	Report []byte `json:"-"`
}

// Sink receives a run's events. Implementations must be safe for
// concurrent use: hosts work in parallel.
type Sink interface {
	Event(Event)
}

// SinkFunc lets a function be a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Event(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Tee sends every event to each sink in turn.
func Tee(sinks ...Sink) Sink {
	return SinkFunc(func(e Event) {
		for _, s := range sinks {
			s.Event(e)
		}
	})
}

// Stamp sets the time of events that have none; the engine leaves it
// unset so that tests can script exact sequences.
func Stamp(next Sink, now func() time.Time) Sink {
	return SinkFunc(func(e Event) {
		if e.Time.IsZero() {
			e.Time = now()
		}
		next.Event(e)
	})
}

// Switch forwards to a sink that can be replaced between phases of a run
// (destroy stops the live view to ask for confirmation, then starts a new
// one).
type Switch struct {
	mu   sync.Mutex
	next Sink
}

// NewSwitch starts with next.
func NewSwitch(next Sink) *Switch { return &Switch{next: next} }

func (s *Switch) Event(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next.Event(e)
}

// Set replaces where events go from now on.
func (s *Switch) Set(next Sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = next
}

// Redact replaces every secret in events' text (the detail, the summary's
// error) before they go on: an error can quote a command's output, and
// that output must not carry a password to the screen or a JSON log.
func Redact(next Sink, secrets []string) Sink {
	return SinkFunc(func(e Event) {
		e.Detail = RedactText(e.Detail, secrets)
		if e.Summary != nil {
			s := *e.Summary
			s.Error = RedactText(s.Error, secrets)
			e.Summary = &s
		}
		next.Event(e)
	})
}

// minSecret: shorter values are not secrets the inventory would accept,
// and replacing them would mangle ordinary words.
const minSecret = 8

// RedactText replaces each of secrets found in s with "[redacted]".
func RedactText(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
