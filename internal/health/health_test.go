package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitHealthyAndDigest(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/healthz":
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}`))
				return
			}
			w.Write([]byte(`{"status":"ok"}`))
		case "/varz":
			w.Write([]byte(`{"server_name":"nats-1","version":"2.14.9","config_digest":"sha256:abc"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := WaitHealthy(ctx, srv.Client(), srv.URL+"/healthz", 5*time.Second); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if err := WaitDigest(ctx, srv.Client(), srv.URL+"/varz", "sha256:abc", time.Second); err != nil {
		t.Fatalf("WaitDigest: %v", err)
	}
	err := WaitDigest(ctx, srv.Client(), srv.URL+"/varz", "sha256:other", 600*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `config_digest is "sha256:abc", want "sha256:other"`) {
		t.Fatalf("WaitDigest mismatch error = %v", err)
	}
}

func TestWaitHealthyTimeoutSaysWhy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"no meta leader"}`))
	}))
	defer srv.Close()
	err := WaitHealthy(context.Background(), srv.Client(), srv.URL+"/healthz", 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no meta leader") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error = %v", err)
	}
}

func TestMetaSettled(t *testing.T) {
	// Followers (2.15+) list replicas too, seeing each other as not current.
	follower := `{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n2","current":true},{"name":"n3","current":false}]}}`
	names := []string{"n1", "n2", "n3"}
	serve := func(body *atomic.Value) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body.Load().(string)))
		}))
	}
	var f1, leader, f3 atomic.Value
	f1.Store(follower)
	f3.Store(follower)
	leader.Store(`{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n1","current":true},{"name":"n3","current":false,"offline":true}]}}`)
	var clients []*http.Client
	var urls []string
	for _, v := range []*atomic.Value{&f1, &leader, &f3} {
		s := serve(v)
		defer s.Close()
		clients = append(clients, s.Client())
		urls = append(urls, s.URL+"/jsz")
	}
	err := MetaSettled(context.Background(), clients, urls, names)
	if err == nil || !strings.Contains(err.Error(), "not current: [n3]") {
		t.Fatalf("MetaSettled with n3 offline = %v", err)
	}
	leader.Store(`{"meta_cluster":{"leader":"n2","cluster_size":3,"replicas":[{"name":"n1","current":true},{"name":"n3","current":true}]}}`)
	if err := WaitMetaSettled(context.Background(), clients, urls, names, time.Second); err != nil {
		t.Fatalf("settled cluster: %v", err)
	}
	// Mid-election: every node names a leader that is not itself.
	for _, v := range []*atomic.Value{&f1, &leader, &f3} {
		v.Store(`{"meta_cluster":{"leader":"n9","cluster_size":3}}`)
	}
	if err := MetaSettled(context.Background(), clients, urls, names); err == nil || !strings.Contains(err.Error(), "no node reports itself meta leader") {
		t.Fatalf("no leader: %v", err)
	}
}
