package verify

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
)

// Zero or negative options take the documented defaults; set ones are
// kept.
func TestNewVerifierDefaults(t *testing.T) {
	inv := testInventory("2.14.9", 4222, 6222, 8222)
	defaults := Options{Parallel: 8, Logins: 4, CheckTimeout: 15 * time.Second, ConnectTimeout: 5 * time.Second,
		ConnectBackoff: 500 * time.Millisecond, QuietWindow: 300 * time.Millisecond}
	set := Options{Parallel: 2, Logins: 1, CheckTimeout: time.Second, ConnectTimeout: 2 * time.Second,
		ConnectBackoff: time.Millisecond, QuietWindow: 3 * time.Millisecond}
	negative := Options{Parallel: -1, Logins: -1, CheckTimeout: -1, ConnectTimeout: -1, ConnectBackoff: -1, QuietWindow: -1}
	tests := []struct {
		name string
		give Options
		want Options
	}{
		{"zero", Options{}, defaults},
		{"negative", negative, defaults},
		{"set", set, set},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.give
			o.Inventory = inv
			v := newVerifier(o)
			got := v.opts
			if got.Parallel != tc.want.Parallel || got.Logins != tc.want.Logins || got.CheckTimeout != tc.want.CheckTimeout ||
				got.ConnectTimeout != tc.want.ConnectTimeout || got.ConnectBackoff != tc.want.ConnectBackoff || got.QuietWindow != tc.want.QuietWindow {
				t.Errorf("options %+v, want %+v", got, tc.want)
			}
			if cap(v.logins) != tc.want.Logins {
				t.Errorf("%d login slots, want %d", cap(v.logins), tc.want.Logins)
			}
			if u := got.NATSURL(inv.Hosts[1]); u != "nats://127.0.0.2:4222" {
				t.Errorf("NATSURL = %q", u)
			}
			if p, ok := got.Probe.(*HTTPProbe); !ok || p.Port != 8222 {
				t.Errorf("probe %#v, want HTTPProbe on 8222", got.Probe)
			}
		})
	}
}

// runJob turns what a check does wrong into a failed row and times every
// row the check did not time itself.
func TestRunJob(t *testing.T) {
	tests := []struct {
		name string
		run  func(ctx context.Context) []Result
		want []string // check target status seen-prefix
		// keep is a row's own duration, which must survive
		keep time.Duration
	}{
		{"rows timed", func(context.Context) []Result {
			return []Result{pass("c", "t", "fine"), {Check: "c", Target: "t2", OK: true, Seen: "own", Duration: time.Hour}}
		}, []string{"c t ok fine", "c t2 ok own"}, time.Hour},
		{"no rows", func(context.Context) []Result { return nil },
			[]string{"job target FAIL check produced none"}, 0},
		{"panic", func(context.Context) []Result { panic("boom") },
			[]string{"job target FAIL internal error: boom"}, 0},
		{"deadline given", func(ctx context.Context) []Result {
			if _, ok := ctx.Deadline(); !ok {
				return []Result{fail("c", "t", "a deadline", "none")}
			}
			<-ctx.Done()
			return []Result{pass("c", "t", ctx.Err().Error())}
		}, []string{"c t ok context deadline exceeded"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := runJob(context.Background(), job{"job", "target", tc.run}, 20*time.Millisecond)
			if len(out) != len(tc.want) {
				t.Fatalf("rows %+v, want %v", out, tc.want)
			}
			for i, r := range out {
				if got := r.Check + " " + r.Target + " " + r.Status() + " " + r.Seen; !strings.HasPrefix(got, tc.want[i]) {
					t.Errorf("row %d: %q, want prefix %q", i, got, tc.want[i])
				}
				if r.Duration <= 0 {
					t.Errorf("row %d: duration %v", i, r.Duration)
				}
			}
			if tc.keep != 0 && out[len(out)-1].Duration != tc.keep {
				t.Errorf("own duration replaced: %v", out[len(out)-1].Duration)
			}
		})
	}
}

// runJobs returns rows in job order, not in the order the jobs finish.
func TestRunJobs(t *testing.T) {
	const n = 6
	v := newVerifier(Options{Inventory: testInventory("2.14.9", 1, 2, 3), Parallel: n})
	// Each job waits for the next one to finish: the last finishes first.
	done := make([]chan struct{}, n+1)
	for i := range done {
		done[i] = make(chan struct{})
	}
	close(done[n])
	var jobs []job
	for i := range n {
		name := string(rune('a' + i))
		jobs = append(jobs, job{"j", name, func(context.Context) []Result {
			<-done[i+1]
			close(done[i])
			return []Result{pass("j", name, "")}
		}})
	}
	var got []string
	for _, r := range v.runJobs(context.Background(), jobs) {
		got = append(got, r.Target)
	}
	if strings.Join(got, "") != "abcdef" {
		t.Errorf("order %v", got)
	}
}

// A login that fails for want of a server is tried connectTries times
// with the pause doubling from ConnectBackoff between tries, and none
// after the last. The gaps between attempts must be at least the pauses
// (100, 200, 400, 800ms here); the whole must stay under 3s, which
// leaves a loaded machine 1.5s of slack and still catches a pause after
// the last try (1.6s more) or a schedule four times as long.
func TestConnectBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan time.Time, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- time.Now()
			c.Close() // the handshake fails at once: not a refusal
		}
	}()
	inv := testInventory("2.14.9", 1, 2, 3)
	v := newVerifier(Options{Inventory: inv, ConnectTimeout: time.Second, ConnectBackoff: 100 * time.Millisecond,
		NATSURL: func(inventory.Host) string { return "nats://" + ln.Addr().String() }})
	start := time.Now()
	_, err = v.connect(inv.Hosts[0], "dev-user", "x")
	took := time.Since(start)
	if !couldNotCheck(err) {
		t.Fatalf("err = %v, want a could-not-check connection error", err)
	}
	if took >= 3*time.Second {
		t.Errorf("took %s, want the pauses 100+200+400+800ms and no more", took)
	}
	if len(accepted) != connectTries {
		t.Fatalf("%d attempts, want %d", len(accepted), connectTries)
	}
	prev := <-accepted
	for i := range connectTries - 1 {
		at := <-accepted
		// 90%: the accept times are taken a little after each dial.
		if want := 90 * time.Millisecond << i; at.Sub(prev) < want {
			t.Errorf("pause %d: %s, want at least %s", i+1, at.Sub(prev), want)
		}
		prev = at
	}
}
