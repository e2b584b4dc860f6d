package nats

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/role"
	"github.com/natsdeploy/natsdeploy/internal/status"
	"github.com/natsdeploy/natsdeploy/internal/testbin"
)

func (c *realCluster) env(reached ...string) role.Env {
	return role.Env{Inv: c.base, Remote: func(host string) desired.Remote {
		for _, h := range c.base.Hosts {
			if h.Name == host && slices.Contains(reached, host) {
				return loopbackOn(h.Address)
			}
		}
		return nil
	}}
}

func byHost(svcs []status.Service) map[string]status.Service {
	out := map[string]status.Service{}
	for _, s := range svcs {
		out[s.Host] = s
	}
	return out
}

func detail(s status.Service, key string) (status.Detail, bool) {
	for _, d := range s.Details {
		if d.Key == key {
			return d, true
		}
	}
	return status.Detail{}, false
}

// Status against a real three-node cluster: each node's version, route
// peers (the other two), the meta leader all agree on, JetStream use and
// limits, streams and connections; a host not reached gets no row; and a
// node stopped is a problem on its own row and a missing route on the
// others'.
func TestRealStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startRealCluster(t)
	version := strings.TrimPrefix(strings.Fields(run(t, c.bin, "--version"))[1], "v")
	all := []string{"nats-1", "nats-2", "nats-3"}
	ctx := context.Background()

	// Formed, as status sees it: no problems anywhere.
	var svcs []status.Service
	waitFor(t, 60*time.Second, "status without problems", func() error {
		svcs = Role{}.Status(ctx, c.env(all...))
		for _, s := range svcs {
			if len(s.Problems) > 0 {
				return fmt.Errorf("%s: %v", s.Host, s.Problems)
			}
		}
		if len(svcs) != 3 {
			return fmt.Errorf("%d services", len(svcs))
		}
		return nil
	})

	// A stream with data, and a client connected to nats-2, for the
	// counts to show.
	nc, err := nats.Connect(fmt.Sprintf("nats://%s:%d", c.addrs[1], c.ports[0]), nats.UserInfo("admin", testPassword("admin")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// Routes whole is not yet the meta leader counting every peer online:
	// placement of an R3 stream may still be refused for a moment.
	waitFor(t, 30*time.Second, "an R3 stream placed", func() error {
		_, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: "STATUS", Subjects: []string{"status.>"}, Replicas: 3, Storage: jetstream.FileStorage})
		return err
	})
	if _, err := js.Publish(sctx, "status.x", []byte(strings.Repeat("x", 1000))); err != nil {
		t.Fatal(err)
	}

	// Acknowledged by two replicas; the third stores it a moment later.
	var got map[string]status.Service
	waitFor(t, 10*time.Second, "every replica holds the message", func() error {
		svcs = Role{}.Status(ctx, c.env(all...))
		got = byHost(svcs)
		for _, h := range all {
			d, _ := detail(got[h], "jetstream")
			if use, ok := d.Value.(map[string]any); !ok || use["storage"].(uint64) < 1000 {
				return fmt.Errorf("%s jetstream %q", h, d.Text)
			}
		}
		return nil
	})
	leaders := map[string]bool{}
	for i, h := range all {
		s, ok := got[h]
		if !ok {
			t.Fatalf("no row for %s: %+v", h, svcs)
		}
		if s.Unit != Service || s.Version != version || len(s.Problems) > 0 {
			t.Errorf("%s: unit %q version %q problems %v; want %s, %s, none", h, s.Unit, s.Version, s.Problems, Service, version)
		}
		others := slices.Delete(slices.Clone(all), i, i+1)
		if d, _ := detail(s, "routes"); !slices.Equal(d.Value.([]string), others) || d.Text != strings.Join(others, ",") {
			t.Errorf("%s routes %q %v, want %v", h, d.Text, d.Value, others)
		}
		d, _ := detail(s, "meta_leader")
		if !slices.Contains(all, d.Text) {
			t.Errorf("%s meta leader %q", h, d.Text)
		}
		leaders[d.Text] = true
		d, _ = detail(s, "jetstream")
		use := d.Value.(map[string]any)
		if use["max_memory"] != int64(64<<20) || use["max_storage"] != int64(256<<20) ||
			!strings.Contains(d.Text, "of 64.0 MiB") || !strings.Contains(d.Text, "of 256.0 MiB") {
			t.Errorf("%s jetstream %q %v, want the stream's bytes against 64 MiB and 256 MiB", h, d.Text, use)
		}
		if d, _ := detail(s, "streams"); d.Value != 1 {
			t.Errorf("%s streams %v, want the R3 stream", h, d.Value)
		}
		conns, _ := detail(s, "connections")
		if want := map[bool]int{true: 1, false: 0}[h == "nats-2"]; conns.Value != want {
			t.Errorf("%s connections %v, want %d", h, conns.Value, want)
		}
	}
	if len(leaders) != 1 {
		t.Errorf("nodes name different meta leaders: %v", leaders)
	}

	// A host the engine did not reach is left to the engine.
	if svcs := (Role{}).Status(ctx, c.env("nats-1", "nats-2")); len(svcs) != 2 || byHost(svcs)["nats-3"].Host != "" {
		t.Errorf("status of an unreached host: %+v", svcs)
	}

	// nats-3 stopped (its host still reached): its own row says its
	// monitoring does not answer, the others' that their route to it is
	// gone.
	c.nodes[2].stop()
	waitFor(t, 30*time.Second, "the others notice nats-3 is gone", func() error {
		got = byHost(Role{}.Status(ctx, c.env(all...)))
		for _, h := range []string{"nats-1", "nats-2"} {
			if !slices.Contains(got[h].Problems, "no route to nats-3") {
				return fmt.Errorf("%s problems %v", h, got[h].Problems)
			}
		}
		return nil
	})
	if p := got["nats-3"].Problems; len(p) != 1 || !strings.Contains(p[0], "monitoring port does not answer") {
		t.Errorf("nats-3 stopped: problems %v, want one saying its monitoring port does not answer", p)
	}
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// The version commands the nats role gives its unit print something the
// engine finds the version in, with the real binary.
func TestVersionCmdNamesTheVersion(t *testing.T) {
	bin := testbin.NATSServer(t)
	h, err := Desired(fixture(), fixture().Hosts[0], secrets, testBinary)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range h.Units {
		if u.Name != Service {
			continue
		}
		cmd := strings.Replace(u.VersionCmd, BinaryPath, bin, 1)
		if cmd == u.VersionCmd {
			t.Fatalf("version command %q does not run %s", u.VersionCmd, BinaryPath)
		}
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		// "nats-server: v2.14.9"
		f := strings.Fields(string(out))
		if got, want := status.VersionIn(string(out)), strings.TrimPrefix(f[len(f)-1], "v"); got == "" || got != want {
			t.Errorf("%s printed %q: version %q, want %q", cmd, out, got, want)
		}
		if u.Version != "2.14.9" {
			t.Errorf("the unit wants version %q, want the inventory's 2.14.9", u.Version)
		}
		return
	}
	t.Fatal("no nats-server unit")
}
