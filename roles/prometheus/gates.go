package prometheus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
)

func base(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// readyGate: /-/ready answers 200 once the TSDB is open and the config
// loaded.
func readyGate(port int) *desired.Gate {
	return &desired.Gate{
		Desc: "/-/ready",
		Check: func(ctx context.Context, n desired.Node) error {
			return health.OK(ctx, n.Remote.HTTPClient(), base(port)+"/-/ready")
		},
	}
}

// The metrics Prometheus keeps about its own config reloads. A SIGHUP with
// a config it refuses only logs an error and sets the first to 0, so these
// are the proof a reload took.
const (
	reloadOK   = "prometheus_config_last_reload_successful"
	reloadTime = "prometheus_config_last_reload_success_timestamp_seconds"
)

// reloadGate: before the reload, note the time of the last successful one;
// after it, the last reload must have succeeded, and later than that.
func reloadGate(port int) *desired.ReloadGate {
	return &desired.ReloadGate{
		Desc: "reload metrics",
		Want: func(ctx context.Context, n desired.Node) (string, error) {
			m, err := reloadMetrics(ctx, n.Remote.HTTPClient(), port)
			if err != nil {
				return "", err
			}
			return "last success after " + strconv.FormatFloat(m.time, 'f', -1, 64), nil
		},
		Check: func(ctx context.Context, n desired.Node, want string) error {
			before, err := strconv.ParseFloat(strings.TrimPrefix(want, "last success after "), 64)
			if err != nil {
				return fmt.Errorf("reload gate: %q: %w", want, err)
			}
			m, err := reloadMetrics(ctx, n.Remote.HTTPClient(), port)
			if err != nil {
				return err
			}
			if m.ok != 1 {
				return fmt.Errorf("%s is %v: Prometheus refused the new config (its journal says why)", reloadOK, m.ok)
			}
			if m.time <= before {
				return fmt.Errorf("%s is still %v: no reload yet", reloadTime, m.time)
			}
			return nil
		},
	}
}

type reloadState struct{ ok, time float64 }

func reloadMetrics(ctx context.Context, c *http.Client, port int) (reloadState, error) {
	body, code, err := health.Get(ctx, c, base(port)+"/metrics")
	if err != nil {
		return reloadState{}, err
	}
	if code != http.StatusOK {
		return reloadState{}, fmt.Errorf("/metrics answered %d: %s", code, health.Trim(body))
	}
	var s reloadState
	var okSeen, timeSeen bool
	if s.ok, okSeen = metricValue(body, reloadOK); !okSeen {
		return s, errors.New("no " + reloadOK + " in /metrics")
	}
	if s.time, timeSeen = metricValue(body, reloadTime); !timeSeen {
		return s, errors.New("no " + reloadTime + " in /metrics")
	}
	return s, nil
}

// metricValue finds an unlabelled sample in the text exposition format.
func metricValue(body []byte, name string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}
