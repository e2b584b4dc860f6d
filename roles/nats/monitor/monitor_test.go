package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthzAndDigest(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			if !healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}`))
				return
			}
			w.Write([]byte(`{"status":"ok"}`))
		case "/varz":
			w.Write([]byte(`{"server_name":"nats-1","version":"2.14.9","config_digest":"sha256:abc"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	get := Over(srv.Client(), srv.URL)
	err := Healthz(ctx, get)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "meta leader") {
		t.Fatalf("Healthz while unavailable = %v, want the 503 and why", err)
	}
	healthy.Store(true)
	if err := Healthz(ctx, get); err != nil {
		t.Fatalf("Healthz = %v", err)
	}
	d, err := Digest(ctx, get)
	if err != nil || d != "sha256:abc" {
		t.Fatalf("Digest = %q, %v", d, err)
	}
	if !SameDigest(d, "abc") || SameDigest(d, "sha256:abd") {
		t.Fatalf("SameDigest does not compare the hex part")
	}
	var v Varz
	if err := JSON(ctx, get, "/nope", &v); err == nil || !strings.Contains(err.Error(), "/nope answered 404") {
		t.Fatalf("JSON on 404 = %v", err)
	}
}

func TestDigestMissing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"server_name":"nats-1","version":"2.10.0"}`))
	}))
	defer srv.Close()
	if _, err := Digest(context.Background(), Over(srv.Client(), srv.URL)); err == nil || !strings.Contains(err.Error(), "no config_digest") {
		t.Fatalf("Digest without config_digest = %v", err)
	}
}

func TestMetaSettled(t *testing.T) {
	// Followers (2.15+) list replicas too, seeing each other as not current.
	follower := `{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n2","current":true},{"name":"n3","current":false}]}}`
	names := []string{"n1", "n2", "n3"}
	var f1, leader, f3 atomic.Value
	f1.Store(follower)
	f3.Store(follower)
	leader.Store(`{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n1","current":true},{"name":"n3","current":false,"offline":true}]}}`)
	var gets []Get
	for _, v := range []*atomic.Value{&f1, &leader, &f3} {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(v.Load().(string)))
		}))
		defer s.Close()
		gets = append(gets, Over(s.Client(), s.URL))
	}
	ctx := context.Background()
	err := MetaSettled(ctx, gets, names)
	if err == nil || !strings.Contains(err.Error(), "not current: [n3]") {
		t.Fatalf("MetaSettled with n3 offline = %v", err)
	}
	leader.Store(`{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n1","current":true}]}}`)
	if err := MetaSettled(ctx, gets, names); err == nil || !strings.Contains(err.Error(), "sees 1 of 2 peers") {
		t.Fatalf("MetaSettled with a peer missing = %v", err)
	}
	leader.Store(`{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n1","current":true},{"name":"n3","current":true}]}}`)
	if err := MetaSettled(ctx, gets, names); err != nil {
		t.Fatalf("settled cluster: %v", err)
	}
	// Mid-election: every node names a leader that is not itself.
	for _, v := range []*atomic.Value{&f1, &leader, &f3} {
		v.Store(`{"meta_cluster":{"leader":"n9","cluster_size":3}}`)
	}
	if err := MetaSettled(ctx, gets, names); err == nil || !strings.Contains(err.Error(), "no node reports itself meta leader") {
		t.Fatalf("no leader: %v", err)
	}
}

func TestMetaLeader(t *testing.T) {
	const down = "" // the node does not answer /jsz
	tests := []struct {
		name    string
		jsz     [3]string // what nats-1..3 answer
		want    string
		wantErr string
	}{
		{"leader says so", [3]string{
			`{"meta_cluster":{"leader":"nats-3"}}`,
			`{"meta_cluster":{"leader":"nats-3"}}`,
			`{"meta_cluster":{"leader":"nats-3"}}`,
		}, "nats-3", ""},
		// Followers' stale views lose to the leader's own word.
		{"leader's own word wins", [3]string{
			`{"meta_cluster":{"leader":"nats-3"}}`,
			`{"meta_cluster":{"leader":"nats-2"}}`,
			`{"meta_cluster":{"leader":"nats-1"}}`,
		}, "nats-2", ""},
		{"leader not answering, followers name it", [3]string{
			`{"meta_cluster":{"leader":"nats-2"}}`,
			down,
			`{"meta_cluster":{"leader":"nats-2"}}`,
		}, "nats-2", ""},
		// Mid-election: one answer, whatever the order of the replies.
		{"followers disagree: a tie goes to inventory order", [3]string{
			down,
			`{"meta_cluster":{"leader":"nats-3"}}`,
			`{"meta_cluster":{"leader":"nats-1"}}`,
		}, "nats-1", ""},
		{"no leader elected", [3]string{
			`{"meta_cluster":{"leader":""}}`,
			`{"meta_cluster":{}}`,
			`{"meta_cluster":{"leader":""}}`,
		}, "", ""},
		{"not clustered", [3]string{`{}`, `{}`, `{}`}, "", ""},
		{"nobody answers", [3]string{down, down, down}, "", "no node answers /jsz: nats-1: /jsz answered 503"},
	}
	names := []string{"nats-1", "nats-2", "nats-3"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gets []Get
			for _, body := range tc.jsz {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/jsz" || body == down {
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					w.Write([]byte(body))
				}))
				t.Cleanup(srv.Close)
				gets = append(gets, Over(srv.Client(), srv.URL))
			}
			got, err := MetaLeader(context.Background(), gets, names)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("MetaLeader = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MetaLeader = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRoutezPeers(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"routes":[]}`, ""},
		// Pooled routes: several connections per peer, and one not yet
		// named (a route still connecting).
		{`{"routes":[{"remote_name":"nats-3"},{"remote_name":"nats-2"},{"remote_name":"nats-3"},{"remote_name":""},{"remote_name":"nats-2"}]}`, "nats-2,nats-3"},
	} {
		var r Routez
		if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(r.Peers(), ","); got != tc.want {
			t.Errorf("Peers() of %s = %q, want %q", tc.body, got, tc.want)
		}
	}
}
