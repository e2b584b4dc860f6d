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
