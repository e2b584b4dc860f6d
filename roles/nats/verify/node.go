package verify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/monitor"
)

// getJSON reads a monitoring endpoint of h through the probe.
func (v *verifier) getJSON(ctx context.Context, h inventory.Host, path string, out any) error {
	return monitor.JSON(ctx, v.monitorOf(h), path, out)
}

func (v *verifier) monitorOf(h inventory.Host) monitor.Get {
	return func(ctx context.Context, path string) ([]byte, int, error) {
		return v.opts.Probe.HTTPGet(ctx, h, path)
	}
}

// checkNode: health, identity and version, config digest, service state
// and routes of one node. Each is a round trip of its own (HTTP through
// the probe, or a command on the host) and none needs another's answer,
// so they all go at once.
func (v *verifier) checkNode(ctx context.Context, h inventory.Host) []Result {
	var (
		wg       sync.WaitGroup
		service  Result
		routes   Result
		vz       monitor.Varz
		vzErr    error
		disk     string
		diskErr  error
		noDigest = v.opts.ExpectedDigest == nil
	)
	start := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	start(func() { service = v.checkService(ctx, h) })
	start(func() { routes = v.checkRoutes(ctx, h) })
	start(func() { vzErr = v.getJSON(ctx, h, "/varz", &vz) })
	if !noDigest {
		start(func() { disk, diskErr = v.opts.ExpectedDigest(ctx, h) })
	}
	body, status, err := v.opts.Probe.HTTPGet(ctx, h, "/healthz")
	wg.Wait()

	var out []Result
	switch {
	case err != nil:
		// Monitoring does not answer; if the client port is dead too, the
		// node is down and the remaining checks leave it out.
		if derr := v.dialClient(ctx, h); derr != nil {
			v.markDown(h, err.Error())
			out = append(out, fail("node/health", h.Name, "/healthz 200", err.Error()+"; client port: "+derr.Error()))
			// The service manager may still answer (and say why it is
			// down); the rest needs the node.
			out = append(out, service)
			for _, c := range []string{"node/version", "node/digest", "cluster/routes"} {
				out = append(out, fail(c, h.Name, "an answer from "+h.Name, "not checked: node down, see node/health"))
			}
			return out
		}
		out = append(out, fail("node/health", h.Name, "/healthz 200", err.Error()))
	case status != 200:
		out = append(out, fail("node/health", h.Name, "/healthz 200", fmt.Sprintf("%d %s", status, monitor.Short(string(body)))))
	default:
		out = append(out, pass("node/health", h.Name, "/healthz 200"))
	}

	want := fmt.Sprintf("nats-server %s named %s", v.inv.NATS.Version, h.Name)
	version := fail("node/version", h.Name, want, "")
	if vzErr != nil {
		version.Seen = vzErr.Error()
	} else {
		seen := fmt.Sprintf("nats-server %s named %s", vz.Version, vz.ServerName)
		if strings.TrimPrefix(vz.Version, "v") == strings.TrimPrefix(v.inv.NATS.Version, "v") && vz.ServerName == h.Name {
			version = pass("node/version", h.Name, seen)
		} else {
			version.Seen = seen
		}
	}
	digest := checkDigest(h, noDigest, disk, diskErr, vz, vzErr)
	if digest.OK && version.OK {
		v.noteLoaded(h.Name, vz.ConfigDigest, vz.Version)
	}
	return append(out, version, digest, service, routes)
}

// checkDigest: the running config is the one on disk, whose digest is
// disk (or why it could not be read). A node whose expected digest cannot
// be read fails with the reason; only a verifier given no way to read it
// (noDigest) skips.
func checkDigest(h inventory.Host, noDigest bool, disk string, diskErr error, vz monitor.Varz, vzErr error) Result {
	switch {
	case noDigest:
		return skip("node/digest", h.Name, "no way to read the config digest on disk was given")
	case diskErr != nil:
		return fail("node/digest", h.Name, "the digest of the config on disk", diskErr.Error())
	case vzErr != nil:
		return fail("node/digest", h.Name, "config_digest "+disk, vzErr.Error())
	case vz.ConfigDigest == "":
		return fail("node/digest", h.Name, "config_digest "+disk, "no config_digest in /varz (nats-server older than 2.11?)")
	case !monitor.SameDigest(vz.ConfigDigest, disk):
		return fail("node/digest", h.Name, "config_digest "+disk,
			vz.ConfigDigest+" (the running config is not the one deployed: a reload failed or the file was changed)")
	}
	return pass("node/digest", h.Name, "running the deployed config "+abbrev(vz.ConfigDigest))
}

func (v *verifier) checkService(ctx context.Context, h inventory.Host) Result {
	active, state, err := v.opts.Probe.ServiceActive(ctx, h)
	switch {
	case errors.Is(err, ErrUnsupported):
		return skip("node/service", h.Name, err.Error())
	case err != nil:
		return fail("node/service", h.Name, "nats-server.service active", err.Error())
	case !active:
		return fail("node/service", h.Name, "nats-server.service active", state)
	}
	return pass("node/service", h.Name, "nats-server.service "+state)
}

// abbrev shortens a digest for a passing row; failures show it whole.
func abbrev(d string) string {
	if len(d) > 19 {
		return d[:19] + "..."
	}
	return d
}

// dialClient opens and closes a TCP connection to the node's client port.
func (v *verifier) dialClient(ctx context.Context, h inventory.Host) error {
	u, err := url.Parse(v.opts.NATSURL(h))
	if err != nil {
		return fmt.Errorf("client URL: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	return c.Close()
}

// checkRoutes compares the set of distinct peers a node has routes to with
// every other host. Connections are not counted: route pooling opens
// several per peer.
func (v *verifier) checkRoutes(ctx context.Context, h inventory.Host) Result {
	var want []string
	for _, o := range v.hosts {
		if o.Name != h.Name {
			want = append(want, o.Name)
		}
	}
	expected := "routes to " + list(want)
	var rz monitor.Routez
	if err := v.getJSON(ctx, h, "/routez", &rz); err != nil {
		return fail("cluster/routes", h.Name, expected, err.Error())
	}
	seen := rz.Peers()
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		return fail("cluster/routes", h.Name, expected, "routes to "+list(seen))
	}
	return pass("cluster/routes", h.Name, fmt.Sprintf("routes to %s (%d connections)", list(seen), len(rz.Routes)))
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkMeta: every node sees the same JetStream meta leader and a meta
// group of the inventory's size.
func (v *verifier) checkMeta(ctx context.Context) []Result {
	n := len(v.hosts)
	expected := fmt.Sprintf("one meta leader seen by all %d nodes, cluster_size %d", n, n)
	views := make([]string, len(v.hosts))
	leaders := map[string]bool{}
	ok := true
	v.mu.Lock()
	down := maps.Clone(v.down)
	v.mu.Unlock()
	for i, h := range v.hosts {
		if _, isDown := down[h.Name]; isDown {
			views[i] = h.Name + ": down (see node/health)"
			ok = false
			continue
		}
		var j monitor.Jsz
		if err := v.getJSON(ctx, h, "/jsz", &j); err != nil {
			views[i] = h.Name + ": " + err.Error()
			ok = false
			continue
		}
		if j.Meta == nil {
			views[i] = h.Name + ": no meta_cluster (JetStream not clustered)"
			ok = false
			continue
		}
		leader := j.Meta.Leader
		if leader == "" {
			leader = "(none)"
			ok = false
		}
		leaders[leader] = true
		if j.Meta.ClusterSize != n {
			ok = false
		}
		views[i] = fmt.Sprintf("%s: leader %s, size %d", h.Name, leader, j.Meta.ClusterSize)
	}
	if !ok || len(leaders) != 1 {
		return []Result{fail("cluster/meta", "cluster", expected, strings.Join(views, "; "))}
	}
	var leader string
	for l := range leaders {
		leader = l
	}
	return []Result{pass("cluster/meta", "cluster", fmt.Sprintf("leader %s seen by all %d nodes, cluster_size %d", leader, n, n))}
}
