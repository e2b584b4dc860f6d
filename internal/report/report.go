// Package report is the verifier's output: one result per check and
// target, shown as a table for a person or as JSON for machines. Roles add
// their own checks; the engine adds the ones every role shares.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the outcome of one check on one target.
type Result struct {
	Check  string // e.g. "node/version", "permissions"
	Target string // a host, an account, "ACCOUNT/user", ...
	OK     bool
	// Skipped marks a check that could not be run; Seen says why. A skipped
	// result is neither OK nor a failure.
	Skipped bool
	// Expected is what the inventory asks for; Seen what the cluster did.
	// For a passing check Seen summarises what was observed.
	Expected string
	Seen     string
	Duration time.Duration
	// Reused marks a pass taken from an earlier run's proof for the same
	// config instead of checked again; Seen says when it was proven.
	Reused bool
}

// Report is the outcome of a whole verification, in a stable order: the
// engine's host checks, then each role's checks in registry order.
type Report struct {
	Results []Result
	Elapsed time.Duration
}

// Failed is the number of failed (not skipped) results.
func (r Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.OK && !res.Skipped {
			n++
		}
	}
	return n
}

func (r Report) Count() (ok, failed, skipped int) {
	for _, res := range r.Results {
		switch {
		case res.Skipped:
			skipped++
		case res.OK:
			ok++
		default:
			failed++
		}
	}
	return ok, failed, skipped
}

// Reused is the number of passes taken from an earlier run's proof.
func (r Report) Reused() int {
	n := 0
	for _, res := range r.Results {
		if res.Reused {
			n++
		}
	}
	return n
}

// Status is the word a result is shown with: "ok", "FAIL" or "skip".
func (r Result) Status() string {
	switch {
	case r.Skipped:
		return "skip"
	case r.OK:
		return "ok"
	}
	return "FAIL"
}

// Detail is what the table shows: what was seen for a pass or a skip, and
// "expected X, saw Y" for a failure.
func (r Result) Detail() string {
	if r.OK || r.Skipped {
		return r.Seen
	}
	return fmt.Sprintf("expected %s, saw %s", r.Expected, r.Seen)
}

// WriteText writes the report as a table (CHECK, TARGET, RESULT, DETAIL)
// and a summary line.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tRESULT\tDETAIL")
	for _, res := range r.Results {
		// Keep one row per result: a multi-line detail would break the
		// columns.
		detail := strings.ReplaceAll(res.Detail(), "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Check, res.Target, res.Status(), detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	ok, failed, skipped := r.Count()
	verdict := "verify passed"
	if failed > 0 {
		verdict = "verify FAILED"
	}
	reused := ""
	if n := r.Reused(); n > 0 {
		reused = fmt.Sprintf(" (%d of them proven by an earlier run on the same config)", n)
	}
	_, err := fmt.Fprintf(w, "\n%s: %d ok%s, %d failed, %d skipped in %s\n", verdict, ok, reused, failed, skipped, r.Elapsed.Round(10*time.Millisecond))
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

type jsonResult struct {
	Check      string  `json:"check"`
	Target     string  `json:"target"`
	Result     string  `json:"result"` // ok, fail, skip
	OK         bool    `json:"ok"`
	Skipped    bool    `json:"skipped,omitempty"`
	Reused     bool    `json:"reused,omitempty"`
	Expected   string  `json:"expected,omitempty"`
	Seen       string  `json:"seen,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

type jsonReport struct {
	OK        bool         `json:"ok"`
	Passed    int          `json:"passed"`
	Failed    int          `json:"failed"`
	Skipped   int          `json:"skipped"`
	Reused    int          `json:"reused,omitempty"`
	ElapsedMS float64      `json:"elapsed_ms"`
	Results   []jsonResult `json:"results"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON gives the machine form: a summary and every result, with
// "result" one of "ok", "fail", "skip".
func (r Report) MarshalJSON() ([]byte, error) {
	ok, failed, skipped := r.Count()
	jr := jsonReport{OK: failed == 0, Passed: ok, Failed: failed, Skipped: skipped, Reused: r.Reused(),
		ElapsedMS: ms(r.Elapsed), Results: make([]jsonResult, 0, len(r.Results))}
	for _, res := range r.Results {
		jr.Results = append(jr.Results, jsonResult{
			Check: res.Check, Target: res.Target, Result: strings.ToLower(res.Status()),
			OK: res.OK, Skipped: res.Skipped, Reused: res.Reused, Expected: res.Expected, Seen: res.Seen, DurationMS: ms(res.Duration),
		})
	}
	return json.Marshal(jr)
}

// WriteJSON writes the report as indented JSON (see MarshalJSON).
func (r Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
