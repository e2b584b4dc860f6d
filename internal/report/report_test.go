package report

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestReportText(t *testing.T) {
	rep := Report{Elapsed: 1234 * time.Millisecond, Results: []Result{
		{Check: "node/health", Target: "nats-1", OK: true, Seen: "/healthz 200"},
		{Check: "permissions", Target: "DEV/dev-user", Expected: "publish to dev.a.b (one token deeper than dev.*) refused on nats-2", Seen: "accepted"},
		{Check: "node/service", Target: "nats-1", Skipped: true, Seen: "not supported"},
	}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `CHECK         TARGET        RESULT  DETAIL
node/health   nats-1        ok      /healthz 200
permissions   DEV/dev-user  FAIL    expected publish to dev.a.b (one token deeper than dev.*) refused on nats-2, saw accepted
node/service  nats-1        skip    not supported

verify FAILED: 1 ok, 1 failed, 1 skipped in 1.23s
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if rep.Failed() != 1 {
		t.Errorf("Failed() = %d, want 1", rep.Failed())
	}
}

func TestReportJSON(t *testing.T) {
	rep := Report{Results: []Result{
		{Check: "node/health", Target: "nats-1", OK: true, Seen: "/healthz 200", Duration: 1500 * time.Microsecond},
		{Check: "jetstream", Target: "DEV", Expected: "limits a", Seen: "limits b"},
		{Check: "node/digest", Target: "nats-1", Skipped: true, Seen: "no digest"},
	}}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK      bool `json:"ok"`
		Passed  int  `json:"passed"`
		Failed  int  `json:"failed"`
		Skipped int  `json:"skipped"`
		Results []struct {
			Check, Target, Result, Expected, Seen string
			OK                                    bool
			Skipped                               bool
			DurationMS                            float64 `json:"duration_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.OK || got.Passed != 1 || got.Failed != 1 || got.Skipped != 1 || len(got.Results) != 3 {
		t.Errorf("summary wrong: %+v", got)
	}
	r := got.Results[1]
	if r.Result != "fail" || r.Expected != "limits a" || r.Seen != "limits b" || r.OK {
		t.Errorf("failed result: %+v", r)
	}
	if got.Results[0].DurationMS != 1.5 || got.Results[2].Result != "skip" {
		t.Errorf("results: %+v", got.Results)
	}
}

// Passes taken from an earlier run's proof count as passes, and both
// forms say how many there were.
func TestReportReused(t *testing.T) {
	rep := Report{Elapsed: time.Second, Results: []Result{
		{Check: "node/health", Target: "nats-1", OK: true, Seen: "/healthz 200"},
		{Check: "permissions", Target: "A/u", OK: true, Reused: true, Seen: "fine (proven 1m ago ...)"},
		{Check: "isolation", Target: "A", OK: true, Reused: true, Seen: "fine"},
	}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "\nverify passed: 3 ok (2 of them proven by an earlier run on the same config), 0 failed, 0 skipped in 1s\n"; !bytes.HasSuffix(b.Bytes(), []byte(want)) {
		t.Errorf("got:\n%s\nwant it to end with:%s", b.String(), want)
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Passed, Reused int
		Results        []struct{ Reused bool }
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Passed != 3 || got.Reused != 2 || got.Results[0].Reused || !got.Results[1].Reused {
		t.Errorf("JSON: %+v\n%s", got, b.String())
	}
}
