package grafana

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/roles/grafana/dashboards"
)

// standIn answers like Grafana's HTTP API for the endpoints verify uses.
// It is a stand-in: it proves the client and the checks, not Grafana.
type standIn struct {
	password   string          // the admin password it accepts
	accept     map[string]bool // more passwords it (wrongly) accepts
	database   string          // /api/health's "database"
	dsStatus   string          // the datasource health "status"
	dashboards []string        // uids /api/search lists
	failures   atomic.Int32    // failed logins seen
}

func (s *standIn) handler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health" {
			if s.database != "ok" {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			json.NewEncoder(w).Encode(map[string]string{"database": s.database, "version": "12.4.2"})
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "admin" || (pass != s.password && !s.accept[pass]) {
			s.failures.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Invalid username or password"}`))
			return
		}
		switch {
		case r.URL.Path == "/api/user":
			w.Write([]byte(`{"id":1,"login":"admin"}`))
		case r.URL.Path == "/api/datasources/uid/"+dashboards.DatasourceUID+"/health":
			json.NewEncoder(w).Encode(map[string]string{"status": s.dsStatus, "message": "stand-in says " + s.dsStatus})
		case r.URL.Path == "/api/search" && r.URL.Query().Get("type") == "dash-db":
			var hits []map[string]string
			for _, uid := range s.dashboards {
				hits = append(hits, map[string]string{"uid": uid, "type": "dash-db"})
			}
			json.NewEncoder(w).Encode(hits)
		default:
			t.Errorf("stand-in: unexpected %s", r.URL)
			http.NotFound(w, r)
		}
	})
}

func allUIDs(t *testing.T) []string {
	ds, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, d := range ds {
		uids = append(uids, d.UID)
	}
	return uids
}

func TestVerifyAgainstAStandIn(t *testing.T) {
	settle = 0 // a failing check is final at once
	const pw = "Stored-Passw0rd"
	uids := allUIDs(t)
	healthy := func() *standIn {
		return &standIn{password: pw, database: "ok", dsStatus: "OK", dashboards: uids}
	}
	for _, tc := range []struct {
		name   string
		edit   func(s *standIn)
		stored string
		fail   map[string]string // check -> part of what it saw
	}{
		{name: "healthy", edit: func(*standIn) {}, stored: pw},
		{name: "database failing", edit: func(s *standIn) { s.database = "failing" }, stored: pw,
			fail: map[string]string{"grafana/health": "answered 503"}},
		{name: "datasource cannot reach Prometheus", edit: func(s *standIn) { s.dsStatus = "ERROR" }, stored: pw,
			fail: map[string]string{"grafana/datasource": "stand-in says ERROR"}},
		{name: "a dashboard missing", edit: func(s *standIn) { s.dashboards = uids[1:] }, stored: pw,
			fail: map[string]string{"grafana/dashboards": "not provisioned: " + uids[0]}},
		{name: "seed password accepted", edit: func(s *standIn) { s.accept = map[string]bool{"admin123": true} }, stored: pw,
			fail: map[string]string{"grafana/login": "admin/admin123 is accepted"}},
		{name: "Grafana's default accepted", edit: func(s *standIn) { s.accept = map[string]bool{"admin": true} }, stored: pw,
			fail: map[string]string{"grafana/login": "admin/admin is accepted"}},
		{name: "stored password refused", edit: func(*standIn) {}, stored: "not-what-grafana-has",
			fail: map[string]string{
				"grafana/login":      "the stored password: /api/user answered 401",
				"grafana/datasource": "answered 401",
				"grafana/dashboards": "answered 401",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy()
			tc.edit(s)
			srv := httptest.NewServer(s.handler(t))
			defer srv.Close()
			c := &client{http: srv.Client(), base: srv.URL}
			res := verifyHost(context.Background(), c, "nats-1", tc.stored)
			var names []string
			for _, r := range res {
				names = append(names, r.Check)
				if r.Target != "nats-1" {
					t.Errorf("%s: target %q", r.Check, r.Target)
				}
				want, bad := tc.fail[r.Check]
				switch {
				case bad && r.OK:
					t.Errorf("%s passed, want a failure with %q", r.Check, want)
				case bad && !strings.Contains(r.Seen, want):
					t.Errorf("%s saw %q, want %q", r.Check, r.Seen, want)
				case !bad && !r.OK:
					t.Errorf("%s failed: %s", r.Check, r.Seen)
				}
			}
			if got := strings.Join(names, " "); got != "grafana/health grafana/datasource grafana/dashboards grafana/login" {
				t.Errorf("rows %s", got)
			}
			// Each weak password is tried once, and only after the
			// stored one worked: repeated failures lock the admin out.
			if n := s.failures.Load(); tc.stored == pw && n > 2 {
				t.Errorf("%d failed logins, want at most 2", n)
			}
		})
	}
}

func TestVerifyNotConnected(t *testing.T) {
	res := verifyHost(context.Background(), nil, "nats-1", "pw")
	if len(res) != 4 {
		t.Fatalf("%d rows", len(res))
	}
	for _, r := range res {
		if r.OK || r.Seen != "not connected" {
			t.Errorf("%+v", r)
		}
	}
}

type remote struct{ c *http.Client }

func (remote) Exec(context.Context, string) (string, error) { return "", nil }
func (r remote) HTTPClient() *http.Client                   { return r.c }

func TestReadyGate(t *testing.T) {
	s := &standIn{database: "ok"}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	g := readyGate(srv.Listener.Addr().(*net.TCPAddr).Port)
	n := desired.Node{Name: "nats-1", Remote: remote{&http.Client{Timeout: 5 * time.Second}}}
	if err := g.Check(context.Background(), n); err != nil {
		t.Errorf("healthy: %v", err)
	}
	s.database = "failing"
	if err := g.Check(context.Background(), n); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("failing database: %v", err)
	}
}
