package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Plain writes one line per event that has one, as natsdeploy always has:
// "[host] line", or the line alone for the run as a whole. For logs, pipes
// and terminals that cannot redraw.
type Plain struct {
	mu  sync.Mutex
	out io.Writer
}

// NewPlain writes to out.
func NewPlain(out io.Writer) *Plain { return &Plain{out: out} }

func (p *Plain) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case e.Kind == Summary && e.Summary != nil:
		// A write error here has nowhere better to go than the run's
		// own error, which the caller already has.
		_ = e.Summary.WriteText(p.out)
	case e.Quiet || e.Kind == Progress || e.Detail == "":
	case e.Host != "":
		fmt.Fprintf(p.out, "[%s] %s\n", e.Host, e.Detail)
	default:
		fmt.Fprintln(p.out, e.Detail)
	}
}

// JSON writes every event as one JSON object per line, for machines; see
// the README's Output section for the schema.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON writes to out.
func NewJSON(out io.Writer) *JSON { return &JSON{enc: json.NewEncoder(out)} }

type jsonHost struct {
	Host      string   `json:"host"`
	Status    string   `json:"status"` // changed, unchanged, failed
	Files     int      `json:"files_changed"`
	Started   []string `json:"started"`
	Reloaded  []string `json:"reloaded"`
	Restarted []string `json:"restarted"`
	Removed   []string `json:"removed_roles,omitempty"`
	ElapsedMS int64    `json:"elapsed_ms"`
}

type jsonSummary struct {
	Time      time.Time  `json:"time"`
	Kind      Kind       `json:"event"`
	Command   string     `json:"command"`
	OK        bool       `json:"ok"`
	Error     string     `json:"error,omitempty"`
	Planned   bool       `json:"planned,omitempty"`
	ElapsedMS int64      `json:"elapsed_ms"`
	Hosts     []jsonHost `json:"hosts"`
}

type jsonEvent struct {
	Event
	Report json.RawMessage `json:"report,omitempty"`
}

func (j *JSON) Event(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var v any = jsonEvent{Event: e, Report: e.Report}
	if e.Kind == Summary && e.Summary != nil {
		v = summaryJSON(e.Time, *e.Summary)
	}
	// As for Plain: a broken stdout is the caller's to notice.
	_ = j.enc.Encode(v)
}

func summaryJSON(at time.Time, s RunSummary) jsonSummary {
	out := jsonSummary{Time: at, Kind: Summary, Command: s.Command, OK: s.OK, Error: s.Error, Planned: s.Planned,
		ElapsedMS: s.Elapsed.Milliseconds(), Hosts: []jsonHost{}}
	list := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	for _, h := range s.Hosts {
		status := "unchanged"
		switch {
		case h.Failed:
			status = "failed"
		case h.Changed():
			status = "changed"
		}
		out.Hosts = append(out.Hosts, jsonHost{Host: h.Host, Status: status, Files: h.Files,
			Started: list(h.Started), Reloaded: list(h.Reloaded), Restarted: list(h.Restarted), Removed: h.Removed,
			ElapsedMS: h.Elapsed.Milliseconds()})
	}
	return out
}

// Mode is how a run shows its progress.
type Mode int

const (
	PlainMode Mode = iota
	LiveMode
	JSONMode
)

func (m Mode) String() string {
	return [...]string{"plain", "live", "json"}[m]
}

// Choose picks the mode for a run: JSON when asked for; the live view only
// on a terminal that can redraw (TERM=dumb cannot); plain lines otherwise.
// colour is false whenever NO_COLOR is set to anything (no-color.org).
func Choose(asJSON, terminal bool, getenv func(string) string) (m Mode, colour bool) {
	switch {
	case asJSON:
		return JSONMode, false
	case !terminal || getenv("TERM") == "dumb":
		return PlainMode, false
	}
	return LiveMode, getenv("NO_COLOR") == ""
}
