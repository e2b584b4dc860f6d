package nats

import (
	"context"
	"strings"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/role"
)

// streamJSZ is one node's /jsz with the meta group and one stream, as
// nats-server 2.14 writes them (the answering node is not in the stream's
// replica list).
func streamJSZ(metaLeader, streamLeader string, replicas int, others ...string) string {
	var rs []string
	for _, o := range others {
		rs = append(rs, `{"name":"`+o+`","current":true}`)
	}
	return `{"meta_cluster":{"leader":"` + metaLeader + `","cluster_size":5,"replicas":[{"name":"nats-2","current":true},{"name":"nats-3","current":true},{"name":"nats-4","current":true},{"name":"nats-5","current":true}]},` +
		`"account_details":[{"name":"ADMIN","stream_detail":[{"name":"ORDERS","cluster":{"leader":"` + streamLeader + `","replicas":[` + strings.Join(rs, ",") + `]},"config":{"num_replicas":` + string(rune('0'+replicas)) + `}}]}]}`
}

func TestRemoval(t *testing.T) {
	inv := fixture()
	cases := []struct {
		name    string
		jsz     map[string]string // node -> its /jsz; a node without one holds no stream
		wantErr string
	}{
		{name: "a copy stays on nats-1", jsz: map[string]string{
			"nats-1": streamJSZ("nats-1", "nats-4", 3, "nats-4", "nats-5"),
		}},
		{name: "more replicas than members left", jsz: map[string]string{
			"nats-1": streamJSZ("nats-1", "nats-1", 5, "nats-2", "nats-3", "nats-4", "nats-5"),
		}, wantErr: "stream ORDERS in account ADMIN has 5 replicas, and 3 members would be left; lower its replicas first"},
		{name: "every copy on members going", jsz: map[string]string{
			"nats-4": streamJSZ("nats-1", "nats-4", 2, "nats-5"),
		}, wantErr: "stream ORDERS in account ADMIN is held only by nats-4, nats-4, nats-5, which would be removed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fakes := map[string]*fakeNode{}
			for _, n := range []string{"nats-1", "nats-2", "nats-3", "nats-4", "nats-5"} {
				fakes[n] = newFakeNode(t)
				body, ok := tc.jsz[n]
				if !ok {
					body = `{"meta_cluster":{"leader":"nats-1","replicas":[{"name":"nats-2"},{"name":"nats-3"},{"name":"nats-4"},{"name":"nats-5"}]}}`
				}
				fakes[n].set("/jsz", body)
			}
			fakes["nats-1"].set("/routez", `{"routes":[{"remote_name":"nats-2","ip":"172.31.253.12"},{"remote_name":"nats-4","ip":"172.31.253.14"},{"remote_name":"nats-4","ip":"172.31.253.14"}]}`)
			env := role.Env{Inv: inv, Remote: func(h string) desired.Remote { return fakes[h] }}
			noDepartures := role.Env{Inv: inv, Remote: func(h string) desired.Remote {
				if h == "nats-4" || h == "nats-5" {
					return nil
				}
				return fakes[h]
			}}
			ds, err := Role{}.Departed(context.Background(), noDepartures)
			if err != nil {
				t.Fatal(err)
			}
			// nats-4 is routed to (address known); nats-5 only in the meta
			// leader's peers (down: no address).
			if len(ds) != 2 || ds[0].Name != "nats-4" || ds[0].Address != "172.31.253.14" || ds[1].Name != "nats-5" || ds[1].Address != "" ||
				strings.Join(ds[0].Units, " ") != "nats-server-log.service nats-server.service" {
				t.Fatalf("Departed = %+v", ds)
			}
			err = Role{}.CheckRemoval(context.Background(), env, ds)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// A member that is reachable by address but not by SSH cannot be read, so
// a removal is refused rather than risk the only copy of a stream.
func TestRemovalRefusedWhenDepartingUnreadable(t *testing.T) {
	inv := fixture()
	fn := newFakeNode(t)
	fn.set("/jsz", `{}`)
	env := role.Env{Inv: inv, Remote: func(h string) desired.Remote {
		if h == "nats-4" {
			return nil
		}
		return fn
	}}
	err := Role{}.CheckRemoval(context.Background(), env, []role.Departure{{Role: "nats", Name: "nats-4", Address: "172.31.253.14"}})
	if err == nil || !strings.Contains(err.Error(), "cannot reach nats-4 (172.31.253.14) to see which streams it holds") {
		t.Fatalf("error = %v", err)
	}
}
