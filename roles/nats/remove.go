package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/health"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

// Scale-in. A NATS cluster remembers its JetStream members: a server that
// is simply stopped stays in the meta group as an offline peer, and the
// replicas it held are not moved. Removing a host from the inventory
// therefore means: check nothing would be lost, stop it, remove it from
// the meta group (which moves its replicas to the members left), and wait
// until every stream is whole again.

var _ role.Remover = Role{}

// removeTimeout bounds the wait for streams to be whole again after a
// peer removal; moving a replica copies the stream.
var removeTimeout = 5 * time.Minute

func members(env role.Env) ([]desired.Node, map[string]bool) {
	var nodes []desired.Node
	in := map[string]bool{}
	for _, h := range env.Inv.NATSHosts() {
		in[h.Name] = true
		if r := env.Remote(h.Name); r != nil {
			nodes = append(nodes, desired.Node{Name: h.Name, Remote: r})
		}
	}
	return nodes, in
}

// Departed reads every inventory node's routes and the meta leader's peers.
// Nodes that do not answer (not installed yet, stopped) tell nothing.
func (Role) Departed(ctx context.Context, env role.Env) ([]role.Departure, error) {
	mon := Monitor(env.Inv, env.TLS)
	nodes, in := members(env)
	addr := map[string]string{}
	var names []string
	add := func(name, ip string) {
		if name == "" || in[name] {
			return
		}
		if _, ok := addr[name]; !ok {
			names = append(names, name)
			addr[name] = ""
		}
		if addr[name] == "" {
			addr[name] = ip
		}
	}
	// Every apply asks this, so the nodes are asked at once; the answers
	// are merged in inventory order.
	type view struct {
		rz  monitor.Routez
		rok bool
		jz  monitor.Jsz
		jok bool
	}
	views := make([]view, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get := mon.Of(n.Remote)
			views[i].rok = monitor.JSON(ctx, get, "/routez", &views[i].rz) == nil
			views[i].jok = monitor.JSON(ctx, get, "/jsz", &views[i].jz) == nil
		}()
	}
	wg.Wait()
	for i, n := range nodes {
		if v := views[i]; v.rok {
			for _, r := range v.rz.Routes {
				add(r.RemoteName, r.IP)
			}
		}
		if v := views[i]; v.jok && v.jz.Meta != nil && v.jz.Meta.Leader == n.Name {
			for _, p := range v.jz.Meta.Replicas {
				add(p.Name, "")
			}
		}
	}
	sort.Strings(names)
	var out []role.Departure
	for _, name := range names {
		out = append(out, role.Departure{Role: Role{}.Name(), Name: name, Address: addr[name], Units: []string{LogService, Service}})
	}
	return out, nil
}

// CheckRemoval refuses a removal after which a stream would have more
// replicas than members left, or would have no replica left at all.
// Streams are read from every member that answers, departing ones
// included: a stream with its only replica on a departing member is seen
// only there.
func (Role) CheckRemoval(ctx context.Context, env role.Env, ds []role.Departure) error {
	mon := Monitor(env.Inv, env.TLS)
	nodes, _ := members(env)
	left := len(env.Inv.NATSHosts())
	going := map[string]bool{}
	for _, d := range ds {
		going[d.Name] = true
		if r := env.Remote(d.Name); r != nil {
			nodes = append(nodes, desired.Node{Name: d.Name, Remote: r})
		} else if d.Address != "" {
			return fmt.Errorf("cannot reach %s (%s) to see which streams it holds; bring it back so its data can be moved, or if it is gone for good, remove its peer by hand (nats server raft peer-remove %s) and apply again", d.Name, d.Address, d.Name)
		}
	}
	var problems []string
	seen := map[string]bool{} // one verdict per stream, from the first node that holds it
	for _, n := range nodes {
		var sz monitor.Streamz
		if err := monitor.JSON(ctx, mon.Of(n.Remote), monitor.StreamsPath, &sz); err != nil {
			return fmt.Errorf("read the streams %s holds: %w", n.Name, err)
		}
		for _, a := range sz.Accounts {
			for _, s := range a.Streams {
				key := a.Name + "/" + s.Name
				if seen[key] {
					continue
				}
				seen[key] = true
				if s.Config != nil && s.Config.Replicas > left {
					problems = append(problems, fmt.Sprintf("stream %s in account %s has %d replicas, and %d members would be left; lower its replicas first (nats stream edit %s --replicas %d)",
						s.Name, a.Name, s.Config.Replicas, left, s.Name, left))
					continue
				}
				if s.Cluster == nil {
					continue
				}
				// The node answering holds a copy itself: /jsz lists only
				// streams it has a replica of, and its replica list leaves
				// it out.
				peers := []string{n.Name, s.Cluster.Leader}
				for _, r := range s.Cluster.Replicas {
					peers = append(peers, r.Name)
				}
				if !slices.ContainsFunc(peers, func(p string) bool { return p != "" && !going[p] }) {
					problems = append(problems, fmt.Sprintf("stream %s in account %s is held only by %s, which would be removed; raise its replicas first so a member that stays holds a copy",
						s.Name, a.Name, strings.Join(peers, ", ")))
				}
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// Remove asks the meta leader, as natsdeploy's own system user, to remove
// each departed peer, then waits until no stream has a replica on one and
// every stream's replicas are current.
func (Role) Remove(ctx context.Context, env role.Env, ds []role.Departure, logf func(string, ...any)) error {
	nodes, _ := members(env)
	if len(nodes) == 0 {
		return errors.New("no member left to ask")
	}
	pw := env.Secrets.Secret(OperatorSlot.Name)
	if pw == "" {
		return fmt.Errorf("no password for natsdeploy's own user (%s): the inventory needs a system account", inventory.OperatorUser)
	}
	var urls []string
	for _, h := range env.Inv.NATSHosts() {
		urls = append(urls, fmt.Sprintf("nats://%s:%d", h.Address, env.Inv.NATS.ClientPort))
	}
	opts := []nats.Option{nats.UserInfo(inventory.OperatorUser, pw), nats.Name("natsdeploy"),
		nats.Timeout(10 * time.Second), nats.MaxReconnects(-1)}
	if env.Inv.TLS.ClientsOn() && env.TLS != nil {
		opts = append(opts, nats.Secure(env.TLS.ClientTLS("")))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return fmt.Errorf("connect as %s to remove peers: %w", inventory.OperatorUser, err)
	}
	defer nc.Close()
	for _, d := range ds {
		req, _ := json.Marshal(map[string]string{"peer": d.Name})
		err := health.Poll(ctx, time.Minute, func() error {
			// Bounded, so a meta group without a leader is asked again
			// rather than waited on forever.
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			msg, err := nc.RequestWithContext(rctx, "$JS.API.SERVER.REMOVE", req)
			if err != nil {
				return err
			}
			var resp struct {
				Success bool `json:"success"`
				Error   *struct {
					Description string `json:"description"`
				} `json:"error"`
			}
			if err := json.Unmarshal(msg.Data, &resp); err != nil {
				return fmt.Errorf("answer %q: %w", msg.Data, err)
			}
			if resp.Error != nil {
				return errors.New(resp.Error.Description)
			}
			if !resp.Success {
				return fmt.Errorf("answer %q", msg.Data)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("remove %s from the JetStream meta group: %w", d.Name, err)
		}
		logf("removed %s from the JetStream meta group", d.Name)
	}
	going := map[string]bool{}
	for _, d := range ds {
		going[d.Name] = true
	}
	err = health.Poll(ctx, removeTimeout, func() error { return streamsWhole(ctx, env, nodes, going) })
	if err != nil {
		return fmt.Errorf("after removing %s: %w", names(ds), err)
	}
	logf("every stream's replicas are on the members left and current")
	return nil
}

func names(ds []role.Departure) string {
	var n []string
	for _, d := range ds {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

// streamsWhole: the meta leader counts no departed peer, and every stream
// the members hold has all its replicas there, current.
func streamsWhole(ctx context.Context, env role.Env, nodes []desired.Node, going map[string]bool) error {
	mon := Monitor(env.Inv, env.TLS)
	for _, n := range nodes {
		get := mon.Of(n.Remote)
		var jz monitor.Jsz
		if err := monitor.JSON(ctx, get, "/jsz", &jz); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if jz.Meta != nil && jz.Meta.Leader == n.Name {
			for _, p := range jz.Meta.Replicas {
				if going[p.Name] {
					return fmt.Errorf("the meta leader still counts %s", p.Name)
				}
			}
		}
		var sz monitor.Streamz
		if err := monitor.JSON(ctx, get, monitor.StreamsPath, &sz); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		for _, a := range sz.Accounts {
			for _, s := range a.Streams {
				if s.Cluster == nil || s.Config == nil || s.Cluster.Leader != n.Name {
					continue // only the stream leader's view counts
				}
				current := 1
				for _, r := range s.Cluster.Replicas {
					if going[r.Name] {
						return fmt.Errorf("stream %s in %s still has a replica on %s", s.Name, a.Name, r.Name)
					}
					if r.Current && !r.Offline {
						current++
					}
				}
				if current < s.Config.Replicas {
					return fmt.Errorf("stream %s in %s has %d of %d replicas current", s.Name, a.Name, current, s.Config.Replicas)
				}
			}
		}
	}
	return nil
}
