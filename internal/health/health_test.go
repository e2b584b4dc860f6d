package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOK(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"no meta leader"}`))
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	err := OK(ctx, srv.Client(), srv.URL+"/healthz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no meta leader") {
		t.Fatalf("first OK = %v, want the 503 and its body", err)
	}
	if err := Poll(ctx, 5*time.Second, func() error { return OK(ctx, srv.Client(), srv.URL+"/healthz") }); err != nil {
		t.Fatalf("Poll(OK) = %v", err)
	}
}

func TestPollTimeoutSaysWhy(t *testing.T) {
	start := time.Now()
	err := Poll(context.Background(), 300*time.Millisecond, func() error { return errors.New("still starting") })
	if err == nil || !strings.Contains(err.Error(), "after 300ms: still starting") {
		t.Fatalf("Poll = %v", err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("Poll gave up before its timeout")
	}
}

func TestPollStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Poll(ctx, time.Minute, func() error { return errors.New("down") })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "last: down") {
		t.Fatalf("Poll with a cancelled context = %v", err)
	}
}

// The waits start short and double up to Interval: a service that is up
// a few tens of milliseconds after its start is seen then, not a quarter
// second later, and a slow one is not asked more often than Interval.
func TestPollWaitsGrowToInterval(t *testing.T) {
	var waits []time.Duration
	defer func(orig func(time.Duration) <-chan time.Time) { after = orig }(after)
	after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		ch := make(chan time.Time, 1)
		ch <- time.Now()
		return ch
	}
	tries := 0
	err := Poll(context.Background(), time.Minute, func() error {
		if tries++; tries < 8 {
			return errors.New("starting")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 250 * ms, 250 * ms, 250 * ms}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits = %v, want %v", waits, want)
	}
}

// An error message quotes at most 300 bytes of a body, and a short body
// whole.
func TestTrim(t *testing.T) {
	long := strings.Repeat("x", 301)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no meta leader", "no meta leader"},
		{long[:300], long[:300]},
		{long, long[:300]},
	} {
		if got := Trim([]byte(tc.in)); got != tc.want {
			t.Errorf("Trim(%d bytes) = %d bytes, want %d", len(tc.in), len(got), len(tc.want))
		}
	}
}
