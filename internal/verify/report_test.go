package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
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

// fakeProbe answers for a node that is down on both ports.
type fakeProbe struct{}

func (fakeProbe) HTTPGet(context.Context, inventory.Host, string) ([]byte, int, error) {
	return nil, 0, errors.New("connection refused")
}

func (fakeProbe) ServiceActive(context.Context, inventory.Host) (bool, string, error) {
	return false, "inactive", nil
}

// With nothing reachable, Run still returns a complete report quickly: every
// check fails with a reason, none hangs, nothing panics.
func TestRunNothingReachable(t *testing.T) {
	inv := testInventory("2.14.9", 1, 2, 3) // ports nothing listens on
	start := time.Now()
	rep := Run(context.Background(), Options{Inventory: inv, Passwords: mapPasswords{"DEV/dev-user": "x"}, Probe: fakeProbe{},
		ConnectTimeout: 500 * time.Millisecond, CheckTimeout: 3 * time.Second})
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())
	if rep.Failed() == 0 {
		t.Fatal("nothing reachable, yet no failure")
	}
	wantFailure(t, rep, "node/service", "n1", "expected nats-server.service active, saw inactive")
	wantFailure(t, rep, "node/health", "n2", "connection refused")
	wantFailure(t, rep, "permissions", "DEV/dev-user", "every node is down")
	wantFailure(t, rep, "permissions", "PROD/prod-user", "no password known for PROD/prod-user")
	wantFailure(t, rep, "jetstream", "SYS", "every node is down")
	for _, r := range rep.Results {
		if strings.Contains(r.Seen, "internal error") {
			t.Errorf("panic in %s: %s", r.Check, r.Seen)
		}
	}
}

func TestRunWithoutInventory(t *testing.T) {
	rep := Run(context.Background(), Options{})
	if rep.Failed() != 1 {
		t.Errorf("want one failure, got %+v", rep.Results)
	}
}
