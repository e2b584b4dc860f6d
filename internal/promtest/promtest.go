// Package promtest runs the real Prometheus and promtool for tests, so that
// PromQL in alert rules and dashboards is checked by Prometheus's own parser
// and not by a look-alike. The binaries come from $PROMETHEUS_BIN and
// $PROMTOOL_BIN (make unit sets both, from the lab's release tarball).
package promtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/testbin"
)

// Promtool finds promtool.
func Promtool(t testing.TB) string { return testbin.Find(t, "PROMTOOL_BIN", "promtool") }

// Server is a Prometheus started for one test, on loopback, with an empty
// scrape configuration and its own storage directory.
type Server struct {
	URL    string
	client *http.Client
}

// Start runs Prometheus until the test ends, on an empty storage directory.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartWithData runs Prometheus until the test ends on the existing storage
// directory data, such as one Backfill wrote; Prometheus may add to it.
func StartWithData(t testing.TB, data string) *Server {
	t.Helper()
	return start(t, data)
}

func start(t testing.TB, data string) *Server {
	t.Helper()
	bin := testbin.Find(t, "PROMETHEUS_BIN", "prometheus")
	dir := t.TempDir()
	if data == "" {
		data = filepath.Join(dir, "data")
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 15s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	s := &Server{URL: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited before it was ready (%v):\n%s", err, logs.String())
		default:
		}
		if resp, err := s.client.Get(s.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus on %s not ready after 60s:\n%s", addr, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr picks a loopback port the kernel says is free. Prometheus cannot
// report a port it picked itself, so this small race is the price.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// APIError is Prometheus's answer to a request it refused, such as a query
// that does not parse (HTTP 400, errorType "bad_data").
type APIError struct {
	Status    int
	ErrorType string
	Message   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.ErrorType, e.Message)
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (s *Server) call(path string, form url.Values) (json.RawMessage, error) {
	resp, err := s.client.PostForm(s.URL+path, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d, not an API answer: %.200s", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK || r.Status != "success" {
		return nil, &APIError{Status: resp.StatusCode, ErrorType: r.ErrorType, Message: r.Error}
	}
	return r.Data, nil
}

// Query runs expr as an instant query now and returns the result's "data".
func (s *Server) Query(expr string) (json.RawMessage, error) {
	return s.call("/api/v1/query", url.Values{"query": {expr}})
}

// Sample is one series of an instant vector: its labels (with __name__
// when the expression keeps it) and its value as Prometheus formats it.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// QueryAt runs expr as an instant query at the time at and returns its
// series; a result that is not an instant vector is an error.
func (s *Server) QueryAt(expr string, at time.Time) ([]Sample, error) {
	data, err := s.call("/api/v1/query", url.Values{
		"query": {expr},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	})
	if err != nil {
		return nil, err
	}
	var r struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", r.ResultType)
	}
	var out []Sample
	if err := json.Unmarshal(r.Result, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Parse parses expr with Prometheus's own parser (/api/v1/parse_query) and
// returns what the expression reads: every selected metric name with the
// label names its matchers use, and the label names it groups or matches on.
func (s *Server) Parse(expr string) (Use, error) {
	data, err := s.call("/api/v1/parse_query", url.Values{"query": {expr}})
	if err != nil {
		return Use{}, err
	}
	var ast any
	if err := json.Unmarshal(data, &ast); err != nil {
		return Use{}, err
	}
	u := Use{Metrics: map[string][]string{}}
	u.walk(ast)
	for m, ls := range u.Metrics {
		slices.Sort(ls)
		u.Metrics[m] = slices.Compact(ls)
	}
	slices.Sort(u.Grouping)
	u.Grouping = slices.Compact(u.Grouping)
	return u, nil
}

// Use is what one PromQL expression reads.
type Use struct {
	// Metrics maps each selected metric name to the label names its
	// matchers use (without __name__).
	Metrics map[string][]string
	// Grouping holds the labels of by (...), on (...), ignoring (...) and
	// group_left/right (...).
	Grouping []string
	// Unnamed counts selectors with no metric name.
	Unnamed int
}

func (u *Use) walk(node any) {
	switch n := node.(type) {
	case []any:
		for _, c := range n {
			u.walk(c)
		}
	case map[string]any:
		switch n["type"] {
		case "vectorSelector", "matrixSelector":
			name, _ := n["name"].(string)
			var labels []string
			ms, _ := n["matchers"].([]any)
			for _, m := range ms {
				mm, _ := m.(map[string]any)
				l, _ := mm["name"].(string)
				if l == "__name__" {
					if name == "" && mm["type"] == "=" {
						name, _ = mm["value"].(string)
					}
					continue
				}
				labels = append(labels, l)
			}
			if name == "" {
				u.Unnamed++
				return
			}
			u.Metrics[name] = append(u.Metrics[name], labels...)
			return
		case "aggregation":
			u.Grouping = append(u.Grouping, strs(n["grouping"])...)
		case "binaryExpr":
			if m, ok := n["matching"].(map[string]any); ok {
				u.Grouping = append(u.Grouping, strs(m["labels"])...)
				u.Grouping = append(u.Grouping, strs(m["include"])...)
			}
		}
		for k, v := range n {
			if k != "matchers" {
				u.walk(v)
			}
		}
	}
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Catalog is the committed list of metric names natsdeploy's rules and
// dashboards may use, each with where upstream defines it and the labels
// upstream sets on it (Prometheus adds instance and job to every series).
type Catalog map[string]CatalogEntry

// CatalogEntry is one line of the catalogue.
type CatalogEntry struct {
	Source, File string
	Labels       []string
}

// ScrapeLabels are the labels Prometheus itself puts on every scraped series.
var ScrapeLabels = []string{"instance", "job"}

// LoadCatalog reads lines "name source upstream-file label,label,...",
// where the label field is "-" for none; # starts a comment.
func LoadCatalog(path string) (Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := Catalog{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 fields (name source file labels), got %d", path, i+1, len(f))
		}
		if _, dup := c[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", path, i+1, f[0])
		}
		e := CatalogEntry{Source: f[1], File: f[2]}
		if f[3] != "-" {
			e.Labels = strings.Split(f[3], ",")
		}
		c[f[0]] = e
	}
	return c, nil
}

// Check reports every metric u reads that the catalogue lacks, every label
// matched on a metric that does not carry it, and every grouping label that
// none of the expression's metrics carries.
func (c Catalog) Check(u Use) []string {
	var problems []string
	carried := map[string]bool{}
	for _, l := range ScrapeLabels {
		carried[l] = true
	}
	names := make([]string, 0, len(u.Metrics))
	for m := range u.Metrics {
		names = append(names, m)
	}
	slices.Sort(names)
	for _, m := range names {
		e, ok := c[m]
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %s is not in the catalogue of upstream names", m))
			continue
		}
		for _, l := range e.Labels {
			carried[l] = true
		}
		for _, l := range u.Metrics[m] {
			if !slices.Contains(e.Labels, l) && !slices.Contains(ScrapeLabels, l) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (upstream sets %v)", m, l, e.Labels))
			}
		}
	}
	for _, l := range u.Grouping {
		if !carried[l] {
			problems = append(problems, fmt.Sprintf("grouping label %q is on none of %v", l, names))
		}
	}
	if u.Unnamed > 0 {
		problems = append(problems, "a selector without a metric name")
	}
	return problems
}
