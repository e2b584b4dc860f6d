package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/internal/progress"
	"github.com/natsdeploy/natsdeploy/internal/progress/live"
	"github.com/natsdeploy/natsdeploy/inventory"
)

var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "write one JSON event per line to stdout, and nothing else there (see the README's Output section)"}

// view is how one command shows its run: it owns the renderer the
// engine's events end in, and the tally the closing summary comes from.
type view struct {
	command string
	mode    progress.Mode
	colour  bool
	start   time.Time
	hosts   []string
	stdout  io.Writer
	// human is where text for a person goes that is not an event (plan's
	// diffs, destroy's list, verify's table): stdout, or stderr with
	// --json so stdout stays JSON alone.
	human   io.Writer
	tally   *progress.Tally
	sw      *progress.Switch
	live    *live.Renderer // the current live view, if any
	secrets []string
	// Sink is what the engine reports to.
	Sink progress.Sink
}

// getenv is the environment the mode is chosen by; tests replace it.
var getenv = os.Getenv

// isTerminal reports whether w is a terminal; tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newView(c *cli.Context, command string, inv *inventory.Inventory) *view {
	out := c.App.Writer
	asJSON := c.Bool("json")
	mode, colour := progress.Choose(asJSON, isTerminal(out), getenv)
	v := &view{command: command, mode: mode, colour: colour, start: time.Now(), stdout: out, human: out, tally: progress.NewTally()}
	if mode == progress.JSONMode {
		v.human = c.App.ErrWriter
	}
	for _, h := range inv.Hosts {
		v.hosts = append(v.hosts, h.Name)
	}
	v.sw = progress.NewSwitch(v.renderer())
	v.Sink = progress.Stamp(progress.Tee(v.tally, v.sw), time.Now)
	return v
}

// renderer makes a renderer for the mode; a live view starts drawing at
// once.
func (v *view) renderer() progress.Sink {
	switch v.mode {
	case progress.JSONMode:
		return progress.NewJSON(v.stdout)
	case progress.LiveMode:
		v.live = live.New(v.stdout, v.hosts, live.Options{Colour: v.colour})
		return v.live
	}
	return progress.NewPlain(v.stdout)
}

// say reports a line about the run as a whole.
func (v *view) say(format string, args ...any) {
	v.Sink.Event(progress.Event{Kind: progress.Info, Detail: strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")})
}

// session remembers the session's secrets, to keep them out of the
// summary's error too.
func (v *view) session(r *deploy.Session) {
	if r != nil && r.Secrets != nil {
		v.secrets = r.Secrets.Values()
	}
}

// pause stops a live view so that the command can write to stdout (a
// table, a question); events meanwhile are plain lines. settle gives
// each host its final line first (the run's work is done).
func (v *view) pause(settle bool) {
	if v.live == nil {
		return
	}
	if settle {
		s := v.tally.Summary(v.command, v.hosts, time.Since(v.start), nil)
		v.live.Settle(&s)
	} else {
		v.live.Close()
	}
	v.live = nil
	v.sw.Set(progress.NewPlain(v.stdout))
}

// resume starts a new live view after pause.
func (v *view) resume() {
	if v.mode == progress.LiveMode && v.live == nil {
		v.sw.Set(v.renderer())
	}
}

// finish ends the run with its summary and returns err unchanged.
func (v *view) finish(err error) error {
	return v.finishWith(v.tally.Summary(v.command, v.hosts, time.Since(v.start), err), err)
}

// finishWith ends the run with the summary given (plan's is what would be
// done, not what was).
func (v *view) finishWith(s progress.RunSummary, err error) error {
	s.Error = progress.RedactText(s.Error, v.secrets)
	v.Sink.Event(progress.Event{Kind: progress.Summary, Summary: &s})
	if v.live != nil {
		// The summary closed it; Close again is harmless, and covers a
		// renderer that never saw the summary.
		v.live.Close()
	}
	return err
}
