// Package monitor reads a nats-server's HTTP monitoring endpoints (/healthz,
// /varz, /jsz, /routez, /accountz). It is the one client of that JSON: the
// nats role's gates use it during apply, the verifier after, and status
// whenever asked.
// Endpoints are reached through a Get function, so the same code works over
// a host's SSH connection and over plain HTTP.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
)

// Get fetches a monitoring path such as "/varz" from one server.
type Get func(ctx context.Context, path string) (body []byte, status int, err error)

// Over returns a Get for the monitoring port at base ("http://127.0.0.1:8222").
func Over(c *http.Client, base string) Get {
	return func(ctx context.Context, path string) ([]byte, int, error) {
		return health.Get(ctx, c, base+path)
	}
}

// JSON fetches path and decodes it; a status other than 200 is an error
// that carries the start of the body.
func JSON(ctx context.Context, get Get, path string, out any) error {
	body, status, err := get(ctx, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", path, status, Short(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: decode: %w", path, err)
	}
	return nil
}

// Short squeezes a body onto one short line for a message.
func Short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// Healthz returns nil when /healthz answers 200. Without parameters this is
// the JetStream catch-up gate: a meta leader is known and every local
// replica is current, which is what a rolling restart must wait for.
func Healthz(ctx context.Context, get Get) error {
	body, status, err := get(ctx, "/healthz")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("/healthz answered %d: %s", status, Short(string(body)))
	}
	return nil
}

// Varz is the part of /varz natsdeploy reads.
type Varz struct {
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	ConfigDigest string `json:"config_digest"`
	Connections  int    `json:"connections"` // clients connected now
}

// Routez is the part of /routez natsdeploy reads.
type Routez struct {
	Routes []struct {
		RemoteName string `json:"remote_name"`
		IP         string `json:"ip"`
	} `json:"routes"`
}

// Streamz is /jsz?accounts=true&streams=true&config=true: the streams of
// which this server holds a replica.
type Streamz struct {
	Accounts []struct {
		Name    string         `json:"name"`
		Streams []StreamDetail `json:"stream_detail"`
	} `json:"account_details"`
}

// StreamDetail is one stream as one server sees it.
type StreamDetail struct {
	Name    string `json:"name"`
	Cluster *struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"cluster"`
	Config *struct {
		Replicas int `json:"num_replicas"`
	} `json:"config"`
}

// StreamsPath is the query for Streamz.
const StreamsPath = "/jsz?accounts=true&streams=true&config=true"

// Peers are the servers routed to, by name, sorted, each once: route
// pooling opens several connections per peer.
func (r Routez) Peers() []string {
	var out []string
	for _, rt := range r.Routes {
		if rt.RemoteName != "" && !slices.Contains(out, rt.RemoteName) {
			out = append(out, rt.RemoteName)
		}
	}
	slices.Sort(out)
	return out
}

// Jsz is the part of /jsz natsdeploy reads. Meta is nil when JetStream is
// not clustered.
type Jsz struct {
	Meta *MetaCluster `json:"meta_cluster"`
	// What this server's JetStream holds (bytes), against its limits.
	Memory  uint64 `json:"memory"`
	Storage uint64 `json:"storage"`
	Config  struct {
		MaxMemory  int64 `json:"max_memory"`
		MaxStorage int64 `json:"max_storage"`
	} `json:"config"`
	Streams   int `json:"streams"` // stream replicas on this server
	Consumers int `json:"consumers"`
	Accounts  []struct {
		Name            string `json:"name"`
		ReservedMemory  uint64 `json:"reserved_memory"`
		ReservedStorage uint64 `json:"reserved_storage"`
	} `json:"account_details"`
}

// MetaCluster is the JetStream meta group as one server sees it. Only the
// leader's view of the replicas is authoritative.
type MetaCluster struct {
	Name        string `json:"name"`
	Leader      string `json:"leader"`
	ClusterSize int    `json:"cluster_size"`
	Replicas    []struct {
		Name    string `json:"name"`
		Current bool   `json:"current"`
		Offline bool   `json:"offline"`
	} `json:"replicas"`
}

// Digest returns the digest of the config the server runs ("sha256:...").
func Digest(ctx context.Context, get Get) (string, error) {
	var v Varz
	if err := JSON(ctx, get, "/varz", &v); err != nil {
		return "", err
	}
	if v.ConfigDigest == "" {
		return "", errors.New("no config_digest in /varz (nats-server older than 2.11?)")
	}
	return v.ConfigDigest, nil
}

// SameDigest compares digests as `nats-server -t` and /varz write them.
func SameDigest(a, b string) bool {
	norm := func(d string) string { return strings.TrimPrefix(strings.TrimSpace(d), "sha256:") }
	return norm(a) == norm(b)
}

// MetaSettled returns nil when the meta leader sees all other members of
// the JetStream meta group current and online. names[i] is the server name
// of the node gets[i] reads; only the leader's own view counts (since 2.15
// followers list replicas too, with the other followers not current). A
// restarted node answers /healthz before the leader counts it back in;
// until then new R3 assets cannot be placed, and taking the next node down
// would leave the group one short.
func MetaSettled(ctx context.Context, gets []Get, names []string) error {
	n := len(names)
	var last string
	for i, get := range gets {
		var j Jsz
		if err := JSON(ctx, get, "/jsz", &j); err != nil {
			last = names[i] + ": " + err.Error()
			continue
		}
		if j.Meta == nil || j.Meta.Leader != names[i] {
			continue // a follower's view
		}
		var behind []string
		for _, r := range j.Meta.Replicas {
			if !r.Current || r.Offline {
				behind = append(behind, r.Name)
			}
		}
		if len(j.Meta.Replicas) != n-1 || len(behind) > 0 {
			return fmt.Errorf("meta leader %s sees %d of %d peers, not current: %v", j.Meta.Leader, len(j.Meta.Replicas), n-1, behind)
		}
		return nil
	}
	if last == "" {
		last = "no node reports itself meta leader"
	}
	return fmt.Errorf("JetStream meta group not settled: %s", last)
}

// RoutesWhole returns nil when every node routes to every other, or a
// *desired.Lagging naming the nodes that lack a route, the node missing
// the most routes first: it is the one to restart if they do not come
// back by themselves (both ends of a missing route are named; either may
// be the one that will not reconnect). names[i] is the server name of the node gets[i] reads.
func RoutesWhole(ctx context.Context, gets []Get, names []string) error {
	var problems []string
	missingOf := map[string]int{} // worst first is the order of repair
	for i, get := range gets {
		var rz Routez
		if err := JSON(ctx, get, "/routez", &rz); err != nil {
			missingOf[names[i]] = len(names)
			problems = append(problems, names[i]+": "+err.Error())
			continue
		}
		peers := map[string]bool{}
		for _, r := range rz.Routes {
			peers[r.RemoteName] = true
		}
		var missing []string
		for j, other := range names {
			if j != i && !peers[other] {
				missing = append(missing, other)
			}
		}
		if len(missing) > 0 {
			missingOf[names[i]] = len(missing)
			problems = append(problems, fmt.Sprintf("%s has no route to %s", names[i], strings.Join(missing, ", ")))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	var lagging []string
	for _, n := range names {
		if missingOf[n] > 0 {
			lagging = append(lagging, n)
		}
	}
	// Stable: among equals, inventory order.
	sort.SliceStable(lagging, func(a, b int) bool { return missingOf[lagging[a]] > missingOf[lagging[b]] })
	return &desired.Lagging{Nodes: lagging, Err: errors.New(strings.Join(problems, "; "))}
}

// MetaLeader returns the server name of the JetStream meta leader. names[i]
// is the server name of the node gets[i] reads. A node that reports itself
// leader is believed first; otherwise the leader the answering followers
// name (the leader itself may be the one not answering). "" when there is
// no meta group (a single node) or no leader now. An error only when no
// node answers at all.
func MetaLeader(ctx context.Context, gets []Get, names []string) (string, error) {
	var failed []string
	named := map[string]int{}
	for i, get := range gets {
		var j Jsz
		if err := JSON(ctx, get, "/jsz", &j); err != nil {
			failed = append(failed, names[i]+": "+err.Error())
			continue
		}
		if j.Meta == nil || j.Meta.Leader == "" {
			continue
		}
		if j.Meta.Leader == names[i] {
			return names[i], nil
		}
		named[j.Meta.Leader]++
	}
	if len(failed) == len(gets) && len(gets) > 0 {
		return "", fmt.Errorf("no node answers /jsz: %s", strings.Join(failed, "; "))
	}
	best, votes := "", 0
	// In names' order, so a tie has one answer.
	for _, n := range names {
		if named[n] > votes {
			best, votes = n, named[n]
		}
	}
	return best, nil
}
