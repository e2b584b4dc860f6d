//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

// withoutMonitoring drops the [monitoring] section and everything after it
// (lab.toml ends with it): the NATS cluster alone.
func withoutMonitoring(s string) string {
	if i := strings.Index(s, "\n[monitoring]"); i >= 0 {
		return s[:i+1]
	}
	return s
}

// BenchmarkNoopApply measures what an operator waits for when nothing has
// changed: validate, connect to 3 hosts, lock, facts, plan, unlock; for
// the NATS cluster alone and for the whole stack the lab enables (one
// facts command per host either way). Compare the two with
// `make bench`: the whole stack must stay within 1.3x of NATS alone.
func BenchmarkNoopApply(b *testing.B) {
	b.Run("nats", func(b *testing.B) { benchNoop(b, writeInventory(b, "bench-nats", withoutMonitoring)) })
	b.Run("stack", func(b *testing.B) { benchNoop(b, writeInventory(b, "bench")) })
}

func benchNoop(b *testing.B, inv string) {
	if out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput(); err != nil {
		b.Fatalf("first apply: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "nothing to do") {
			b.Fatalf("no-op apply: %v\n%s", err, out)
		}
	}
}

// BenchmarkVerify measures the full post-deploy verifier on the lab.
func BenchmarkVerify(b *testing.B) {
	inv := writeInventory(b, "bench")
	if out, err := exec.Command(binary, "apply", "--no-verify", inv).CombinedOutput(); err != nil {
		b.Fatalf("apply: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command(binary, "verify", inv).CombinedOutput(); err != nil {
			b.Fatalf("verify: %v\n%s", err, out)
		}
	}
}

// TestBenchLab is `make bench`'s table: on the lab grown to each size of
// NATSDEPLOY_BENCH_SIZES (default "3 6 9" in the Makefile), the median
// over NATSDEPLOY_BENCH_RUNS runs (default 5) of
//
//   - fresh apply: every host reset bare (lab.ResetN), then
//     `apply --no-verify` with the artifact mirror already on this machine;
//   - no-op apply, with --no-verify and as by default (with verify);
//   - plan, verify and a rolling restart (`natsdeploy restart`);
//
// beside two floors measured in the same run with OpenSSH and nothing
// else: the SSH floor (one connection per host, all at once, hashing the
// managed files with sudo and asking systemd) and the upload floor (each
// host's bytes of a fresh apply sent at once through `ssh host 'cat >
// /tmp/...'`). Every natsdeploy figure is shown as a ratio to the floor at
// the same size: fresh apply to the upload floor, the rest to the SSH floor.
//
// Per host it counts, from outside natsdeploy: SSH connections opened (the
// "Accepted publickey" lines of each host's sshd in its journal), bytes
// received on the host's network interface (rx_bytes: SSH framing and
// cluster traffic included, so an upper bound), and for the commands that
// have --json the file bytes uploaded (apply's upload events).
//
// With NATSDEPLOY_BENCH_DIR set, every natsdeploy run's output is kept
// there. It skips unless NATSDEPLOY_BENCH_SIZES is set, so `make e2e` does not
// run it. The lab is left at 3 bare hosts by TestMain.
func TestBenchLab(t *testing.T) {
	env := os.Getenv("NATSDEPLOY_BENCH_SIZES")
	if env == "" {
		t.Skip("NATSDEPLOY_BENCH_SIZES not set (make bench sets it)")
	}
	runs := 5
	if s := os.Getenv("NATSDEPLOY_BENCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("NATSDEPLOY_BENCH_RUNS=%q: want a number of runs >= 1", s)
		}
		runs = n
	}
	var sizes []int
	for _, f := range strings.Fields(env) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > lab.MaxHosts {
			t.Fatalf("NATSDEPLOY_BENCH_SIZES=%q: want numbers of hosts from 1 to %d", env, lab.MaxHosts)
		}
		sizes = append(sizes, n)
	}
	var all []benchRow
	for _, n := range sizes {
		load := loadAvg()
		rows := benchSize(t, n, runs)
		fmt.Printf("\nbench: %d hosts, median of %d runs (load average of this machine before %s, after %s)\n", n, runs, load, loadAvg())
		printBenchTable(os.Stdout, rows)
		all = append(all, rows...)
	}
	fmt.Printf("\nbench: all sizes, median of %d runs (%s, %d CPUs)\n", runs, time.Now().Format("2006-01-02"), runtime.NumCPU())
	printBenchTable(os.Stdout, all)
}

// benchRow is one line of the table: one operation at one size.
type benchRow struct {
	hosts   int
	op      string
	samples []benchSample
	floor   string        // the floor this row is a ratio to ("" for a floor)
	floorD  time.Duration // that floor's median
	note    string
}

// benchSample is one timed run and what the hosts saw of it.
type benchSample struct {
	d      time.Duration
	conns  map[string]int   // SSH connections accepted, per host
	rx     map[string]int64 // bytes received on eth0, per host
	up     map[string]int64 // file bytes uploaded (--json events), per host; nil: not known
	events []benchEvent
}

// benchEvent is the part of a --json event the table uses.
type benchEvent struct {
	Time  time.Time `json:"time"`
	Host  string    `json:"host"`
	Phase string    `json:"phase"`
	Event string    `json:"event"`
	Path  string    `json:"path"`
	Unit  string    `json:"unit"`
	Bytes int64     `json:"bytes"`
}

func benchSize(t *testing.T, n, runs int) []benchRow {
	t.Helper()
	hosts := lab.HostsN(n)
	var more strings.Builder
	for _, h := range hosts[min(n, lab.DefaultHosts):] {
		fmt.Fprintf(&more, "[[hosts]]\nname = %q\naddress = %q\n\n", h.Name, h.Address)
	}
	edits := []func(string) string{}
	if n > lab.DefaultHosts {
		edits = append(edits, replace("# ---- Tenants", more.String()+"# ---- Tenants"))
	}
	if n < lab.DefaultHosts {
		t.Fatalf("bench: %d hosts: the lab inventory names %d, fewer is not supported", n, lab.DefaultHosts)
	}
	inv := writeInventory(t, fmt.Sprintf("bench-%d", n), edits...)

	row := func(op string) *benchRow { return &benchRow{hosts: n, op: op} }
	fresh, upFloor := row("fresh apply --no-verify"), row("upload floor (ssh cat)")
	for i := 0; i < runs; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if _, err := lab.ResetN(ctx, n); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		fresh.add(benchRun(t, hosts, binary, "apply", "--no-verify", "--json", inv))
	}
	// Each artifact is sent to a host once: no path uploaded twice, and
	// no host receiving much more than its files (rx counts SSH framing
	// and the new cluster's own traffic too).
	for _, s := range fresh.samples {
		if err := sentOnce(s); err != nil {
			t.Errorf("%d hosts: fresh apply: %v", n, err)
		}
	}
	// The upload floor sends each host what the median fresh apply sent it.
	want := fresh.median().up
	for i := 0; i < runs; i++ {
		upFloor.add(benchUploadFloor(t, hosts, want))
	}

	sshFloor := row("ssh floor (hash+is-active)")
	noop, noopVerify, plan, verify, restart := row("no-op apply --no-verify"), row("no-op apply (with verify)"), row("plan"), row("verify"), row("restart (rolling)")
	// Interleaved, so that whatever else the machine does spreads evenly.
	for i := 0; i < runs; i++ {
		sshFloor.add(benchSSHFloor(t, hosts))
		noop.add(benchRun(t, hosts, binary, "apply", "--no-verify", "--json", inv))
		noopVerify.add(benchRun(t, hosts, binary, "apply", "--json", inv))
		plan.add(benchRun(t, hosts, binary, "plan", "--json", inv))
		verify.add(benchRun(t, hosts, binary, "verify", inv))
	}
	for _, s := range noop.samples {
		if up := sum(s.up); up != 0 {
			t.Errorf("%d hosts: no-op apply uploaded %d bytes", n, up)
		}
	}
	for i := 0; i < runs; i++ {
		restart.add(benchRun(t, hosts, binary, "restart", "--json", inv))
	}

	for _, r := range []*benchRow{noop, noopVerify, plan, verify, restart} {
		r.floor, r.floorD = "ssh", sshFloor.median().d
	}
	fresh.floor, fresh.floorD = "upload", upFloor.median().d
	// What bounds a fresh apply: the slowest host's upload (the floor sends
	// all at once, so its wall time is the slowest host's) plus the
	// longest start of one unit, from the median run's events.
	start, unit := startSpan(fresh.median().events)
	med, lo, hi := runByRun(fresh.samples, upFloor.fastest().d)
	before, up, after := aroundUploads(fresh.median().events, unit)
	fresh.note = fmt.Sprintf("bound %s = upload floor %s + %s start %s; x%.2f of it; run by run, on the fastest floor: x%.2f (x%.2f..x%.2f); median run: %s before the first upload, uploads %s, %s from the last byte to the start",
		secs(upFloor.median().d+start), secs(upFloor.median().d), strings.TrimSuffix(unit, ".service"), secs(start),
		float64(fresh.median().d)/float64(upFloor.median().d+start), med, lo, hi, secs(before), secs(up), secs(after))
	if n == lab.DefaultHosts {
		goal := "met"
		if noopVerify.median().d > 2*time.Second {
			goal = "NOT met"
		}
		noopVerify.note = "goal <= 2 s on 3 hosts: " + goal
	}
	goal := "met"
	if float64(noop.median().d) > 1.2*float64(sshFloor.median().d) {
		goal = "NOT met"
	}
	noop.note = "goal <= 1.2x ssh floor: " + goal
	return []benchRow{*sshFloor, *upFloor, *fresh, *noop, *noopVerify, *plan, *verify, *restart}
}

// benchRuns numbers the outputs NATSDEPLOY_BENCH_DIR keeps.
var benchRuns int

// benchRun runs natsdeploy once, timed, with the hosts' counters read
// before and after; stdout's JSON events (when --json) give the uploads.
func benchRun(t *testing.T, hosts []lab.Host, name string, args ...string) benchSample {
	t.Helper()
	before := readCounters(t, hosts)
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("natsdeploy %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	s := benchSample{d: d}
	s.conns, s.rx = counterDelta(before, readCounters(t, hosts))
	if dir := os.Getenv("NATSDEPLOY_BENCH_DIR"); dir != "" {
		// Each run's output kept for a closer look: NN-<hosts>h-<args>.out.
		benchRuns++
		name := fmt.Sprintf("%03d-%dh-%s.out", benchRuns, len(hosts), strings.Join(args[:len(args)-1], ""))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), append(stdout.Bytes(), stderr.Bytes()...), 0o644)
		}
	}
	if slices.Contains(args, "--json") {
		s.up = map[string]int64{}
		for _, h := range hosts {
			s.up[h.Name] = 0
		}
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var e benchEvent
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			s.events = append(s.events, e)
			if e.Phase == "upload" && e.Event == "done" && e.Host != "" {
				s.up[e.Host] += e.Bytes
			}
		}
	}
	return s
}

// sshArgs logs in to h as the lab's user with the lab's key and
// known_hosts, and nothing of this machine's ssh configuration.
func sshArgs(h lab.Host, remote string) []string {
	dir := filepath.Join(root, ".lab")
	return []string{"-F", "/dev/null", "-i", filepath.Join(dir, "id_ed25519"), "-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", lab.User + "@" + h.Address, remote}
}

// benchSSHFloor: one OpenSSH connection per host, all at once, each
// hashing the managed config and unit files with sudo and asking systemd,
// as a no-op apply's one facts command must at the least. Binaries are not
// hashed: natsdeploy keeps their sums in a cache on the host, and hashing
// them here would only make the floor easier to meet.
func benchSSHFloor(t *testing.T, hosts []lab.Host) benchSample {
	t.Helper()
	const remote = `sudo sh -c 'sha256sum /etc/nats/* /etc/systemd/system/nats-server*.service ` +
		`/etc/prometheus/* /etc/prometheus/*/* /etc/systemd/system/prometheus.service >/dev/null 2>&1'; ` +
		`systemctl is-active nats-server.service`
	before := readCounters(t, hosts)
	t0 := time.Now()
	errs := parallel(hosts, func(h lab.Host) error {
		out, err := exec.Command("ssh", sshArgs(h, remote)...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "active" {
			return fmt.Errorf("%s: %v: %s", h.Name, err, out)
		}
		return nil
	})
	d := time.Since(t0)
	if errs != nil {
		t.Fatal(errs)
	}
	s := benchSample{d: d}
	s.conns, s.rx = counterDelta(before, readCounters(t, hosts))
	return s
}

// benchUploadFloor sends each host its bytes (random, so nothing on the
// way can compress them) through `cat > /tmp/...`, all hosts at once.
func benchUploadFloor(t *testing.T, hosts []lab.Host, bytesPerHost map[string]int64) benchSample {
	t.Helper()
	before := readCounters(t, hosts)
	t0 := time.Now()
	errs := parallel(hosts, func(h lab.Host) error {
		cmd := exec.Command("ssh", sshArgs(h, "cat > /tmp/natsdeploy-bench-upload && rm -f /tmp/natsdeploy-bench-upload")...)
		cmd.Stdin = io.LimitReader(rand.NewChaCha8([32]byte{}), bytesPerHost[h.Name])
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", h.Name, err, out)
		}
		return nil
	})
	d := time.Since(t0)
	if errs != nil {
		t.Fatal(errs)
	}
	s := benchSample{d: d, up: bytesPerHost}
	s.conns, s.rx = counterDelta(before, readCounters(t, hosts))
	return s
}

// parallel runs f for every host at once and joins their errors.
func parallel(hosts []lab.Host, f func(lab.Host) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(h)
		}()
	}
	wg.Wait()
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if msgs == nil {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

type hostCounters struct {
	conns int
	rx    int64
}

// readCounters reads, out of band (docker exec), each host's count of SSH
// logins its sshd logged and the bytes its network interface received.
func readCounters(t *testing.T, hosts []lab.Host) map[string]hostCounters {
	t.Helper()
	const script = `journalctl --sync 2>/dev/null; cat /sys/class/net/eth0/statistics/rx_bytes; ` +
		`journalctl -q -o cat --no-pager _COMM=sshd | grep -c '^Accepted publickey for ' || true`
	var mu sync.Mutex
	out := map[string]hostCounters{}
	err := parallel(hosts, func(h lab.Host) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		o, err := lab.Exec(ctx, h.Container, "sh", "-c", script)
		if err != nil {
			return err
		}
		f := strings.Fields(o)
		if len(f) != 2 {
			return fmt.Errorf("%s: counters: unexpected %q", h.Name, o)
		}
		rx, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: counters: unexpected %q", h.Name, o)
		}
		mu.Lock()
		out[h.Name] = hostCounters{conns: c, rx: rx}
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func counterDelta(before, after map[string]hostCounters) (map[string]int, map[string]int64) {
	conns, rx := map[string]int{}, map[string]int64{}
	for h, a := range after {
		conns[h] = a.conns - before[h].conns
		rx[h] = a.rx - before[h].rx
	}
	return conns, rx
}

// startSpan is the longest one unit took to start, from its first start
// on any host to its last host running and healthy (the "start" phase of
// the events) or, for a clustered unit, to its cluster settled (the
// "settle" phase: the JetStream meta group counting every member in,
// which at 9 hosts comes seconds after the last member answers
// healthy), and that unit. The units of different roles start one
// after the other but overlap the uploads of the roles after them, so
// the bound counts one unit's start, not the sum.
func startSpan(events []benchEvent) (time.Duration, string) {
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, e := range events {
		if (e.Phase != "start" && e.Phase != "settle") || e.Unit == "" {
			continue
		}
		if _, ok := first[e.Unit]; !ok && e.Phase == "start" && e.Event == "start" {
			first[e.Unit] = e.Time
		}
		if e.Event == "done" && e.Time.After(last[e.Unit]) {
			last[e.Unit] = e.Time
		}
	}
	var worst time.Duration
	var unit string
	for u, f := range first {
		if d := last[u].Sub(f); d > worst {
			worst, unit = d, u
		}
	}
	return worst, unit
}

// sentOnce fails a run in which a host was sent the same path twice, or
// received over 3% (and 2 MB) more on eth0 than its files' bytes.
func sentOnce(s benchSample) error {
	seen := map[string]bool{}
	var errs []error
	for _, e := range s.events {
		if e.Phase != "upload" || e.Event != "done" {
			continue
		}
		k := e.Host + " " + e.Path
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: %s uploaded twice", e.Host, e.Path))
		}
		seen[k] = true
	}
	for h, up := range s.up {
		if rx := s.rx[h]; float64(rx) > float64(up)*1.03+2<<20 {
			errs = append(errs, fmt.Errorf("%s: received %s for %s of files", h, size(rx), size(up)))
		}
	}
	return errors.Join(errs...)
}

// aroundUploads splits a run at its uploads: before is from the run's
// first event to the first upload, up from there to the last upload
// done on any host, after from that to the first start of unit. What a
// fresh apply costs beyond its bound is before and after: connecting,
// facts and the lock; installing, validating and committing.
func aroundUploads(events []benchEvent, unit string) (before, up, after time.Duration) {
	var first, upStart, upDone, started time.Time
	for _, e := range events {
		if first.IsZero() {
			first = e.Time
		}
		switch {
		case e.Phase == "upload" && e.Event == "start" && upStart.IsZero():
			upStart = e.Time
		case e.Phase == "upload" && e.Event == "done" && e.Time.After(upDone):
			upDone = e.Time
		case e.Phase == "start" && e.Event == "start" && e.Unit == unit && started.IsZero():
			started = e.Time
		}
	}
	if upStart.IsZero() || started.IsZero() {
		return 0, 0, 0
	}
	return upStart.Sub(first), upDone.Sub(upStart), started.Sub(upDone)
}

// runByRun is each fresh apply's time over its own bound (floor plus the
// longest start of one unit in that run): median, lowest and highest.
// The median run's ratio alone moves with the election's luck of that
// one run and with the floor's own spread; this does not.
func runByRun(samples []benchSample, floor time.Duration) (med, lo, hi float64) {
	var rs []float64
	for _, s := range samples {
		start, _ := startSpan(s.events)
		rs = append(rs, float64(s.d)/float64(floor+start))
	}
	slices.Sort(rs)
	return rs[(len(rs)-1)/2], rs[0], rs[len(rs)-1]
}

// fastest is the sample of least duration.
func (r *benchRow) fastest() benchSample {
	return slices.MinFunc(r.samples, func(a, b benchSample) int { return int(a.d - b.d) })
}

// add records a sample and prints it at once, so that a run cut short
// still leaves its figures so far.
func (r *benchRow) add(s benchSample) {
	r.samples = append(r.samples, s)
	one := benchRow{samples: []benchSample{s}}
	fmt.Printf("bench: %d hosts: %s, run %d: %s, ssh/host %s, uploaded/host %s, rx/host %s\n", r.hosts, r.op, len(r.samples), secs(s.d),
		perHost(&one, func(s benchSample) map[string]int { return s.conns }, strconv.Itoa),
		perHost(&one, func(s benchSample) map[string]int64 { return s.up }, size),
		perHost(&one, func(s benchSample) map[string]int64 { return s.rx }, size))
}

// median is the sample of median duration (the lower middle one of an
// even count); its counters go with it.
func (r *benchRow) median() benchSample {
	s := slices.Clone(r.samples)
	slices.SortFunc(s, func(a, b benchSample) int { return int(a.d - b.d) })
	return s[(len(s)-1)/2]
}

// perHost is the range over hosts of each host's median over runs.
func perHost[V int | int64](r *benchRow, get func(benchSample) map[string]V, format func(V) string) string {
	var meds []V
	hosts := map[string]bool{}
	for _, s := range r.samples {
		m := get(s)
		if m == nil {
			return "-"
		}
		for h := range m {
			hosts[h] = true
		}
	}
	for h := range hosts {
		var vs []V
		for _, s := range r.samples {
			vs = append(vs, get(s)[h])
		}
		slices.Sort(vs)
		meds = append(meds, vs[(len(vs)-1)/2])
	}
	if len(meds) == 0 {
		return "-"
	}
	lo, hi := slices.Min(meds), slices.Max(meds)
	if lo == hi {
		return format(lo)
	}
	return format(lo) + ".." + format(hi)
}

func printBenchTable(w io.Writer, rows []benchRow) {
	fmt.Fprintf(w, "%-5s  %-27s  %7s  %15s  %7s  %-14s  %-9s  %-17s  %-17s  %s\n",
		"hosts", "operation", "median", "min..max", "floor", "ratio", "ssh/host", "uploaded/host", "rx/host", "note")
	for _, r := range rows {
		ds := make([]time.Duration, len(r.samples))
		for i, s := range r.samples {
			ds[i] = s.d
		}
		floor, ratio := "", ""
		if r.floor != "" {
			floor = secs(r.floorD)
			ratio = fmt.Sprintf("%.2fx %s", float64(r.median().d)/float64(r.floorD), r.floor)
		}
		fmt.Fprintf(w, "%-5d  %-27s  %7s  %15s  %7s  %-14s  %-9s  %-17s  %-17s  %s\n",
			r.hosts, r.op, secs(r.median().d), secs(slices.Min(ds))+".."+secs(slices.Max(ds)), floor, ratio,
			perHost(&r, func(s benchSample) map[string]int { return s.conns }, strconv.Itoa),
			perHost(&r, func(s benchSample) map[string]int64 { return s.up }, size),
			perHost(&r, func(s benchSample) map[string]int64 { return s.rx }, size),
			r.note)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func sum(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

// loadAvg is this machine's 1-minute load average, which the lab's hosts
// share with everything else running here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// The fresh-apply note's split of a run: the first upload and the last
// upload done on any host bound the uploads; the cold start is the
// unit's first start, not another unit's.
func TestAroundUploads(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	at := func(ms int, host, phase, event, unit string) benchEvent {
		return benchEvent{Time: t0.Add(time.Duration(ms) * time.Millisecond), Host: host, Phase: phase, Event: event, Unit: unit}
	}
	events := []benchEvent{
		at(0, "nats-1", "connect", "start", ""),
		at(240, "nats-2", "upload", "start", ""),
		at(250, "nats-1", "upload", "start", ""),
		at(600, "nats-2", "upload", "done", ""),
		at(1780, "nats-1", "upload", "done", ""),
		at(1700, "nats-3", "upload", "done", ""),
		at(2000, "nats-1", "start", "start", "prometheus.service"),
		at(2130, "nats-1", "start", "start", "nats-server.service"),
		at(2140, "nats-2", "start", "start", "nats-server.service"),
		at(3200, "nats-2", "start", "done", "nats-server.service"),
	}
	if d, u := startSpan(events); d != 1070*time.Millisecond || u != "nats-server.service" {
		t.Errorf("startSpan = %s %s, want 1.07s nats-server.service (its first start to its last healthy)", d, u)
	}
	settled := append(slices.Clone(events), at(3900, "nats-1", "settle", "done", "nats-server.service"), at(3900, "nats-2", "settle", "done", "nats-server.service"))
	if d, u := startSpan(settled); d != 1770*time.Millisecond || u != "nats-server.service" {
		t.Errorf("startSpan with the cluster's settle = %s %s, want 1.77s nats-server.service (to the cluster settled)", d, u)
	}
	once := benchSample{events: []benchEvent{
		{Host: "nats-1", Phase: "upload", Event: "done", Path: "/usr/local/bin/nats-server"},
		{Host: "nats-2", Phase: "upload", Event: "done", Path: "/usr/local/bin/nats-server"},
	}, up: map[string]int64{"nats-1": 100 << 20, "nats-2": 100 << 20}, rx: map[string]int64{"nats-1": 102 << 20, "nats-2": 100 << 20}}
	if err := sentOnce(once); err != nil {
		t.Errorf("each path once, rx within 3%%: %v", err)
	}
	once.events = append(once.events, benchEvent{Host: "nats-2", Phase: "upload", Event: "done", Path: "/usr/local/bin/nats-server"})
	once.rx["nats-1"] = 200 << 20
	if err := sentOnce(once); err == nil || !strings.Contains(err.Error(), "nats-2: /usr/local/bin/nats-server uploaded twice") || !strings.Contains(err.Error(), "nats-1: received") {
		t.Errorf("a path sent twice and a host receiving double: %v", err)
	}
	before, up, after := aroundUploads(events, "nats-server.service")
	if before != 240*time.Millisecond || up != 1540*time.Millisecond || after != 350*time.Millisecond {
		t.Errorf("aroundUploads = %s, %s, %s; want 240ms, 1.54s, 350ms", before, up, after)
	}
	if b, u, a := aroundUploads(events[:5], "nats-server.service"); b != 0 || u != 0 || a != 0 {
		t.Errorf("a run that never started the unit: %s, %s, %s; want zeros", b, u, a)
	}
}
