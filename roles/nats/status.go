package nats

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

var _ role.Statuser = Role{}

// Status: each node as its monitoring port tells it, through the host's
// SSH connection, all nodes at once: the version it runs, its route peers,
// the JetStream meta leader, JetStream use against the server's limits,
// the streams it holds and its client connections. A node with a route
// missing, no meta leader, or failing /healthz has a problem.
func (r Role) Status(ctx context.Context, env role.Env) []status.Service {
	hosts := r.Hosts(env.Inv)
	out := make([]*status.Service, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		rem := env.Remote(h.Name)
		if rem == nil {
			continue // not reached: the engine says so
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := nodeStatus(ctx, Monitor(env.Inv, env.TLS).Of(rem), h, hosts)
			out[i] = &svc
		}()
	}
	wg.Wait()
	var svcs []status.Service
	for _, s := range out {
		if s != nil {
			svcs = append(svcs, *s)
		}
	}
	return svcs
}

// nodeStatus reads /varz, /routez, /jsz and /healthz of the node on h at
// once (a node that hangs costs one timeout, not four); hosts are all the
// cluster's nodes.
func nodeStatus(ctx context.Context, get monitor.Get, h inventory.Host, hosts []inventory.Host) status.Service {
	svc := status.Service{Host: h.Name, Unit: Service}
	var (
		vz                         monitor.Varz
		rz                         monitor.Routez
		jz                         monitor.Jsz
		vzErr, rzErr, jzErr, hzErr error
		wg                         sync.WaitGroup
	)
	for _, f := range []func(){
		func() { vzErr = monitor.JSON(ctx, get, "/varz", &vz) },
		func() { rzErr = monitor.JSON(ctx, get, "/routez", &rz) },
		func() { jzErr = monitor.JSON(ctx, get, "/jsz", &jz) },
		func() { hzErr = monitor.Healthz(ctx, get) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	if vzErr != nil && rzErr != nil && jzErr != nil && hzErr != nil {
		// One reason is enough: they all failed the same way.
		svc.Problems = append(svc.Problems, "monitoring port does not answer: "+vzErr.Error())
		return svc
	}

	if vzErr != nil {
		svc.Problems = append(svc.Problems, vzErr.Error())
	} else {
		svc.Version = strings.TrimPrefix(vz.Version, "v")
		if vz.ServerName != h.Name {
			svc.Problems = append(svc.Problems, fmt.Sprintf("server_name is %q, want %q (run apply)", vz.ServerName, h.Name))
		}
	}

	var others []string
	for _, o := range hosts {
		if o.Name != h.Name {
			others = append(others, o.Name)
		}
	}
	slices.Sort(others)
	if rzErr != nil {
		svc.Problems = append(svc.Problems, rzErr.Error())
	} else {
		peers := rz.Peers()
		svc.Details = append(svc.Details, status.Detail{Key: "routes", Text: orNone(strings.Join(peers, ",")), Value: nonNil(peers)})
		for _, o := range others {
			if !slices.Contains(peers, o) {
				svc.Problems = append(svc.Problems, "no route to "+o)
			}
		}
		for _, p := range peers {
			if !slices.Contains(others, p) {
				svc.Problems = append(svc.Problems, "routes to "+p+", which is not in the inventory")
			}
		}
	}

	if jzErr != nil {
		svc.Problems = append(svc.Problems, jzErr.Error())
	} else {
		// A single node runs JetStream standalone: no meta group.
		if len(hosts) > 1 {
			leader := ""
			if jz.Meta != nil {
				leader = jz.Meta.Leader
			}
			svc.Details = append(svc.Details, status.Detail{Key: "meta_leader", Text: orNone(leader), Value: leader})
			if leader == "" {
				svc.Problems = append(svc.Problems, "no JetStream meta leader")
			}
		}
		svc.Details = append(svc.Details,
			status.Detail{Key: "jetstream",
				Text: fmt.Sprintf("memory %s of %s, file %s of %s",
					status.Bytes(jz.Memory), status.Bytes(uint64(max(jz.Config.MaxMemory, 0))),
					status.Bytes(jz.Storage), status.Bytes(uint64(max(jz.Config.MaxStorage, 0)))),
				Value: map[string]any{"memory": jz.Memory, "max_memory": jz.Config.MaxMemory, "storage": jz.Storage, "max_storage": jz.Config.MaxStorage}},
			status.Detail{Key: "streams", Text: fmt.Sprint(jz.Streams), Value: jz.Streams})
	}
	if vzErr == nil {
		svc.Details = append(svc.Details, status.Detail{Key: "connections", Text: fmt.Sprint(vz.Connections), Value: vz.Connections})
	}
	if hzErr != nil {
		svc.Problems = append(svc.Problems, hzErr.Error())
	}
	return svc
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// nonNil makes "no peers" an empty JSON list rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
