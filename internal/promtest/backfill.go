package promtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Series is one synthetic series: its labels (without __name__) and one
// value per step.
type Series struct {
	Labels map[string]string
	Values []float64
}

// Family is every series of one metric name.
type Family struct {
	Name   string
	Series []Series
}

// WriteOpenMetrics writes fams as the OpenMetrics text that promtool tsdb
// create-blocks-from openmetrics reads: sample i of a series at start +
// i*step, timestamps in seconds, and a closing "# EOF".
//
// Each family is declared "# TYPE name unknown": a TYPE line is required,
// and unknown (like gauge) keeps each sample's name exactly as upstream
// exposes it, where an OpenMetrics counter would demand a _total suffix
// that the exporter's and the surveyor's counters do not have. Labels are
// written sorted, and a label whose value is empty is left out, as a scrape
// drops it.
func WriteOpenMetrics(w io.Writer, fams []Family, start time.Time, step time.Duration) error {
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, f := range fams {
		if seen[f.Name] {
			return fmt.Errorf("family %s given twice: OpenMetrics wants each family's samples together", f.Name)
		}
		seen[f.Name] = true
		fmt.Fprintf(&b, "# TYPE %s unknown\n", f.Name)
		for _, s := range f.Series {
			names := make([]string, 0, len(s.Labels))
			for l, v := range s.Labels {
				if v != "" {
					names = append(names, l)
				}
			}
			slices.Sort(names)
			var ls strings.Builder
			for i, l := range names {
				if i > 0 {
					ls.WriteByte(',')
				}
				fmt.Fprintf(&ls, "%s=\"%s\"", l, escape(s.Labels[l]))
			}
			sel := f.Name
			if ls.Len() > 0 {
				sel += "{" + ls.String() + "}"
			}
			for i, v := range s.Values {
				ts := start.Add(time.Duration(i) * step)
				fmt.Fprintf(&b, "%s %s %s\n", sel,
					strconv.FormatFloat(v, 'g', -1, 64),
					strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64))
			}
		}
	}
	b.WriteString("# EOF\n")
	_, err := w.Write(b.Bytes())
	return err
}

func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// Backfill turns OpenMetrics text into TSDB blocks with the real promtool
// (tsdb create-blocks-from openmetrics) and returns the storage directory
// to start Prometheus on (StartWithData).
func Backfill(t testing.TB, openMetrics []byte) string {
	t.Helper()
	tool := Promtool(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "series.om.txt")
	if err := os.WriteFile(in, openMetrics, 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(tool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", in, data).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	return data
}
