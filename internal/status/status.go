// Package status is what `natsdeploy status` shows: one row per service
// on every host (and one for a host that could not be reached), as a table
// for a person or as one JSON document for machines. The engine fills in
// what it sees of every unit (state, uptime, version, config in sync);
// roles add their own details and problems (Service). Nothing here talks
// to a host.
package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// Service is what a role sees of one of its services on one host, beyond
// what the engine sees of every unit.
type Service struct {
	Host string
	Unit string
	// Version of the program as it runs, when the role can ask it; it
	// replaces what the installed binary says (a program not restarted
	// since an upgrade still runs the old one).
	Version  string
	Details  []Detail
	Problems []string
}

// Detail is one thing a role reports about a service: Text for a person,
// Value (anything encoding/json takes) for machines, under Key.
type Detail struct {
	Key   string // JSON key, snake_case: "meta_leader"
	Text  string
	Value any
}

// Row is one service on one host, or a host that was not reached (Unit
// empty, Reachable false).
type Row struct {
	Host      string
	Role      string
	Unit      string
	Reachable bool
	State     string // systemctl is-active: active, inactive, failed, ...
	Enabled   bool
	// Uptime is how long the unit has been active (UptimeKnown).
	Uptime      time.Duration
	UptimeKnown bool
	Version     string // "" when unknown
	WantVersion string // what the inventory asks for; "" when not checked
	// ConfigOK says the service's rendered files on the host are as the
	// inventory renders them; Config says what was seen.
	ConfigOK bool
	Config   string
	Details  []Detail
	Problems []string
}

// OK is true for a reached service with nothing wrong.
func (r Row) OK() bool { return r.Reachable && len(r.Problems) == 0 }

// Report is the status of every host, in inventory order.
type Report struct {
	Rows    []Row
	Elapsed time.Duration
}

// OK is true when every service is up and in sync.
func (r Report) OK() bool {
	for _, row := range r.Rows {
		if !row.OK() {
			return false
		}
	}
	return true
}

// Problems is the number of problems over every row, an unreached host
// counting one.
func (r Report) Problems() int {
	n := 0
	for _, row := range r.Rows {
		n += len(row.Problems)
		if !row.Reachable && len(row.Problems) == 0 {
			n++
		}
	}
	return n
}

var versionRe = regexp.MustCompile(`\bv?([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?)`)

// VersionIn finds the first x.y.z version (without a leading "v") in what
// a program printed about itself ("nats-server: v2.14.9", "prometheus,
// version 3.16.0 (branch: HEAD)"); "" when there is none.
func VersionIn(text string) string {
	m := versionRe.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

// Duration shows an uptime the way a person reads one: the two largest
// units ("3d4h", "2h13m", "45s").
func Duration(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

// Bytes shows a size in binary units with one decimal ("1.5 GiB").
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cells are a row's table columns after HOST and SERVICE.
func (r Row) cells() (state, uptime, version, config, detail string) {
	if !r.Reachable {
		return "unreachable", "-", "-", "-", ""
	}
	state = orDash(r.State)
	if r.State != "" && !r.Enabled {
		state += " (disabled)"
	}
	uptime = "-"
	if r.UptimeKnown && r.State == "active" {
		uptime = Duration(r.Uptime)
	}
	version = orDash(r.Version)
	if r.WantVersion != "" && r.Version != r.WantVersion {
		version += " (want " + r.WantVersion + ")"
	}
	switch {
	case r.Config == "":
		config = "-" // not compared
	case r.ConfigOK:
		config = "in sync"
	default:
		config = "DIFFERS"
	}
	parts := make([]string, 0, len(r.Details))
	for _, d := range r.Details {
		parts = append(parts, strings.ReplaceAll(d.Key, "_", " ")+" "+d.Text)
	}
	return state, uptime, version, config, strings.Join(parts, "; ")
}

// WriteText writes the table, then every problem, then a verdict line.
func (r Report) WriteText(w io.Writer) error {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSERVICE\tSTATE\tUPTIME\tVERSION\tCONFIG\tDETAIL")
	for _, row := range r.Rows {
		state, uptime, version, config, detail := row.cells()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Host, orDash(row.Unit), state, uptime, version, config, detail)
	}
	tw.Flush()
	var b strings.Builder
	// tabwriter pads an empty last cell too.
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		b.WriteString(strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			b.WriteString("\n")
		}
	}
	var bad []string // hosts with a problem, in order
	services, hosts := 0, map[string]bool{}
	for _, row := range r.Rows {
		hosts[row.Host] = true
		if row.Unit != "" {
			services++
		}
		if row.OK() {
			continue
		}
		if len(bad) == 0 {
			b.WriteString("\nproblems:\n")
		}
		if len(bad) == 0 || bad[len(bad)-1] != row.Host {
			bad = append(bad, row.Host)
		}
		where := row.Host
		if row.Unit != "" {
			where += " " + row.Unit
		}
		problems := row.Problems
		if len(problems) == 0 {
			problems = []string{"not reached"}
		}
		for _, p := range problems {
			fmt.Fprintf(&b, "  %s: %s\n", where, strings.ReplaceAll(p, "\n", "\n    "))
		}
	}
	elapsed := r.Elapsed.Round(10 * time.Millisecond)
	if n := r.Problems(); n > 0 {
		fmt.Fprintf(&b, "\nstatus: %d problem(s) on %s (%s)\n", n, strings.Join(bad, ", "), elapsed)
	} else {
		fmt.Fprintf(&b, "\nstatus: all %d services on %d hosts up and in sync (%s)\n", services, len(hosts), elapsed)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

type jsonRow struct {
	Host          string         `json:"host"`
	Role          string         `json:"role,omitempty"`
	Service       string         `json:"service,omitempty"`
	OK            bool           `json:"ok"`
	Reachable     bool           `json:"reachable"`
	State         string         `json:"state,omitempty"`
	Enabled       bool           `json:"enabled"`
	UptimeSeconds *int64         `json:"uptime_seconds,omitempty"`
	Version       string         `json:"version,omitempty"`
	WantVersion   string         `json:"want_version,omitempty"`
	ConfigInSync  bool           `json:"config_in_sync"`
	Config        string         `json:"config,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
	Problems      []string       `json:"problems"`
}

type jsonReport struct {
	OK        bool      `json:"ok"`
	Problems  int       `json:"problems"`
	ElapsedMS float64   `json:"elapsed_ms"`
	Services  []jsonRow `json:"services"`
}

// MarshalJSON gives the machine form: a verdict and every row, each
// role's details under "details" by their keys.
func (r Report) MarshalJSON() ([]byte, error) {
	jr := jsonReport{OK: r.OK(), Problems: r.Problems(), ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000,
		Services: make([]jsonRow, 0, len(r.Rows))}
	for _, row := range r.Rows {
		j := jsonRow{Host: row.Host, Role: row.Role, Service: row.Unit, OK: row.OK(), Reachable: row.Reachable,
			State: row.State, Enabled: row.Enabled, Version: row.Version, WantVersion: row.WantVersion,
			ConfigInSync: row.ConfigOK, Config: row.Config, Problems: row.Problems}
		if j.Problems == nil {
			j.Problems = []string{}
		}
		if row.UptimeKnown && row.State == "active" {
			secs := int64(row.Uptime / time.Second)
			j.UptimeSeconds = &secs
		}
		if len(row.Details) > 0 {
			j.Details = map[string]any{}
			for _, d := range row.Details {
				j.Details[d.Key] = d.Value
			}
		}
		jr.Services = append(jr.Services, j)
	}
	return json.Marshal(jr)
}

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}
