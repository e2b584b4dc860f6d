package apply

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/progress"
)

type eventLog struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *eventLog) Event(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Staging and committing a file that holds a secret reports its path and
// size, never its content; the commit counts it as changed; the steps'
// events name the host.
func TestStageCommitEvents(t *testing.T) {
	const secret = "route-password-Kx81-not-for-eyes"
	targets, _, _ := newCluster(t, 1)
	tg := targets[0]
	rec := &eventLog{}
	tg.Events = rec
	routes := desired.File{Path: "/etc/nats/routes.conf", Content: []byte("routes = [nats://route:" + secret + "@10.0.0.2:6222]\n"),
		Mode: 0o640, Owner: "root", Group: "nats", Sensitive: true, Service: "nats-server.service", OnChange: desired.Reload}
	tg.Desired.Files = []desired.File{routes}
	tg.Plan.Files = []plan.FileChange{{File: routes, Upload: true}}
	if err := Stage(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if err := Commit(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rec.events)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "routes = ") {
		t.Errorf("file content in the events: %s", b)
	}
	var kinds []string
	for _, e := range rec.events {
		if e.Host != tg.Name {
			t.Errorf("event without its host: %+v", e)
		}
		kinds = append(kinds, string(e.Phase)+"/"+string(e.Kind))
	}
	// The first read is reported at once; the next not within 250ms.
	want := "upload/start upload/progress upload/done commit/start commit/done"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if up := rec.events[2]; up.Path != routes.Path || up.Bytes != int64(len(routes.Content)) || up.Total != up.Bytes {
		t.Errorf("upload done: %+v", up)
	}
	tally := progress.NewTally()
	for _, e := range rec.events {
		tally.Event(e)
	}
	if s := tally.Summary("apply", []string{tg.Name}, 0, nil); s.Hosts[0].Files != 1 {
		t.Errorf("files changed = %d, want 1", s.Hosts[0].Files)
	}
}

// With a sink, a step's line goes there (the plain renderer prints it)
// and not also through logf: no line twice.
func TestSayGoesOneWay(t *testing.T) {
	var lines []string
	logf := func(host, format string, args ...any) { lines = append(lines, host) }
	tg := Target{Name: "h"}
	say(tg, logf, progress.Event{Phase: progress.Reload, Kind: progress.Start}, "reload %s", "u")
	rec := &eventLog{}
	tg.Events = rec
	say(tg, logf, progress.Event{Phase: progress.Reload, Kind: progress.Start}, "reload %s", "u")
	if len(lines) != 1 || len(rec.events) != 1 || rec.events[0].Detail != "reload u" || rec.events[0].Quiet {
		t.Errorf("logf lines %v, events %+v", lines, rec.events)
	}
}

// all copies the events recorded so far.
func (r *eventLog) all() []progress.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]progress.Event(nil), r.events...)
}
