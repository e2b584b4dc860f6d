// Package live shows a run on a terminal: one line per host, redrawn in
// place by mpb, saying what natsdeploy is doing there now. It is apart
// from package progress so that only the command links the terminal
// library; the engine knows nothing of it.
package live

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/natsdeploy/natsdeploy/internal/progress"
)

// Options tune the view; the zero value suits a terminal.
type Options struct {
	Colour bool
	// Width of a line; 0 lets mpb ask the terminal.
	Width int
	// Refresh, when set, redraws on each receive instead of on mpb's
	// timer: tests draw exactly when they want.
	Refresh <-chan any
	// Now is the clock for upload rates; time.Now when nil.
	Now func() time.Time
}

// Renderer is the live view of one phase of a run. Close it before
// writing anything else to its output.
type Renderer struct {
	p     *mpb.Progress
	opt   Options
	mu    sync.Mutex
	hosts map[string]*host
	order []string
	bars  map[string]*mpb.Bar
	width int
	out   io.Writer
	once  sync.Once
}

type host struct {
	step     string
	state    string // "", "done", "failed"
	upStart  time.Time
	up, upOf int64
}

// New starts the view with a line for each host, in the order given.
func New(out io.Writer, hosts []string, opt Options) *Renderer {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opts := []mpb.ContainerOption{mpb.WithOutput(out), mpb.WithRefreshRate(120 * time.Millisecond)}
	if opt.Width > 0 {
		opts = append(opts, mpb.WithWidth(opt.Width))
	}
	if opt.Refresh != nil {
		opts = append(opts, mpb.WithManualRefresh(opt.Refresh))
	} else {
		// The caller chose the live view for out; mpb would otherwise draw
		// nothing to a writer it cannot tell is a terminal (a wrapper).
		opts = append(opts, mpb.WithAutoRefresh())
	}
	r := &Renderer{p: mpb.New(opts...), opt: opt, out: out, hosts: map[string]*host{}, bars: map[string]*mpb.Bar{}}
	for _, h := range hosts {
		r.width = max(r.width, runewidth.StringWidth(h))
	}
	for _, h := range hosts {
		r.add(h)
	}
	return r
}

// add gives a host its line; the bar is only a line of text, so its
// total is a placeholder that Close completes.
func (r *Renderer) add(name string) {
	r.hosts[name] = &host{step: "waiting"}
	r.order = append(r.order, name)
	r.bars[name] = r.p.New(1, mpb.NopStyle(),
		// Two decorators: mpb cuts a line too wide for the terminal (a
		// wrapped line would break the redraw) and drops colour from what
		// it cuts, so the coloured mark stands apart from the text.
		mpb.PrependDecorators(
			decor.Any(func(decor.Statistics) string { return r.mark(name) }),
			decor.Any(func(decor.Statistics) string { return r.line(name) })))
}

// Event updates the host's line; a line for the run as a whole, or a
// warning, is printed above the host lines, where it stays.
func (r *Renderer) Event(e progress.Event) {
	if e.Kind == progress.Summary {
		r.finish(e.Summary)
		return
	}
	if e.Host == "" || e.Kind == progress.Warn {
		if e.Detail != "" && !e.Quiet {
			line := e.Detail
			if e.Host != "" {
				line = "[" + e.Host + "] " + line
			}
			// mpb returns an error only once the view is closed; a line
			// then has no view to go above.
			_, _ = r.p.Write([]byte(line + "\n"))
		}
		if e.Host == "" {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.hosts[e.Host]
	if !ok || h.state != "" {
		return
	}
	if e.Kind == progress.Fail {
		h.state, h.step = "failed", firstLine(e.Detail)
		return
	}
	if e.Phase == progress.Upload {
		switch e.Kind {
		case progress.Start:
			h.upStart, h.up, h.upOf = r.opt.Now(), 0, e.Total
		case progress.Progress:
			h.up, h.upOf = e.Bytes, e.Total
		}
	}
	if s := stepOf(e); s != "" {
		h.step = s
	}
}

// stepOf says what a host is doing, going by the event that just came.
func stepOf(e progress.Event) string {
	switch {
	case e.Phase == progress.Upload && e.Kind != progress.Done:
		return "uploading " + e.Path
	case e.Kind == progress.Start:
		switch e.Phase {
		case progress.Connect:
			return "connecting"
		case progress.Lock:
			return "taking the run lock"
		case progress.Facts:
			return "reading facts"
		case progress.Validate:
			return "validating " + e.Detail
		case progress.Commit:
			return "swapping files in"
		case progress.Starting:
			return "starting " + e.Unit
		case progress.Reload:
			return "reloading " + e.Unit
		case progress.Restart:
			return "restarting " + e.Unit
		case progress.Health:
			return "waiting for " + e.Unit + " to be healthy"
		case progress.Settle:
			return "waiting for the " + e.Unit + " cluster to settle"
		case progress.Remove:
			return "removing role " + e.Role
		}
	case e.Kind == progress.Done:
		switch e.Phase {
		case progress.Connect:
			return "connected"
		case progress.Facts:
			return "facts read"
		case progress.Starting, progress.Restart:
			return e.Unit + " running and healthy"
		case progress.Reload:
			return e.Unit + " reloaded"
		case progress.Settle:
			return e.Unit + " cluster settled"
		case progress.Remove:
			return "removed role " + e.Role
		}
	}
	if e.Detail != "" && !e.Quiet {
		return e.Detail
	}
	return ""
}

// mark is a host's state at a glance: nothing while busy, then a tick or
// a cross.
func (r *Renderer) mark(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.hosts[name].state {
	case "done":
		return r.paint("32", "✓ ")
	case "failed":
		return r.paint("31", "✗ ")
	}
	return "  "
}

// line is a host's name and step as drawn now.
func (r *Renderer) line(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[name]
	step := h.step
	if h.upOf > 0 && strings.HasPrefix(step, "uploading ") {
		step += " " + sizes(h.up, h.upOf, r.opt.Now().Sub(h.upStart))
	}
	return fmt.Sprintf("%s  %s", runewidth.FillRight(name, r.width), step)
}

func (r *Renderer) paint(sgr, s string) string {
	if !r.opt.Colour {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

// sizes is an upload's progress: bytes so far, of how many, and the rate
// once it has run long enough for a rate to mean something.
func sizes(done, total int64, took time.Duration) string {
	s := fmt.Sprintf("%s of %s", size(done), size(total))
	if took >= time.Second {
		s += fmt.Sprintf(", %s/s", size(int64(float64(done)/took.Seconds())))
	}
	return s
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	d, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		d *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(d), "KMGTPE"[exp])
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// finish settles the view, then writes the summary under it.
func (r *Renderer) finish(s *progress.RunSummary) {
	r.Settle(s)
	if s != nil {
		// Below the host lines, now still: the view is closed.
		_ = s.WriteText(r.out)
	}
}

// Settle gives every host its last line from s (so far: a run that goes
// on to print something else, such as apply's verify table), then closes
// the view.
func (r *Renderer) Settle(s *progress.RunSummary) {
	r.mu.Lock()
	if s != nil {
		for _, hs := range s.Hosts {
			h, ok := r.hosts[hs.Host]
			if !ok {
				continue
			}
			switch {
			case hs.Failed || h.state == "failed":
				if h.state != "failed" {
					h.step = "failed"
				}
				h.state = "failed"
			case !s.OK && !hs.Changed():
				h.state, h.step = "", "stopped: "+s.Error
			default:
				h.state, h.step = "done", hs.Describe(s.Planned)
			}
		}
	}
	r.mu.Unlock()
	r.Close()
}

// Close draws every line a last time and stops the view; the lines stay.
// Safe to call more than once.
func (r *Renderer) Close() {
	r.once.Do(func() {
		for _, name := range r.order {
			// Completing the bar is what makes mpb draw its final frame.
			r.bars[name].SetTotal(1, true)
		}
		r.p.Wait()
	})
}
