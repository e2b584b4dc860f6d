package apply

import (
	"context"
	"slices"
	"sync"
)

// Waves splits the targets into one part per role, in the order of
// roles (names; a role not named goes after them, in the order its units
// first appear), each part holding every target (a host without that
// role's units gets an empty plan). The first part also carries the
// users, directories and files of no unit. The order is the roles', not
// the hosts': a monitoring host listed first must not put the surveyor
// before the NATS it needs.
//
// Apply stages, commits and runs the handlers of one wave after the
// other, so the roles are not tied to each other: a NATS reload does not
// wait for Prometheus' 250 MB to arrive. The price is that a role whose
// files are rejected leaves the roles before it applied; its own files,
// on every host, stay all or nothing.
func Waves(targets []Target, roles []string) [][]Target {
	var order []string
	units := map[string]map[string]bool{}
	for _, u := range unitsOf(targets) {
		if units[u.Role] == nil {
			units[u.Role] = map[string]bool{}
			order = append(order, u.Role)
		}
		units[u.Role][u.Name] = true
	}
	if len(order) <= 1 {
		return [][]Target{targets}
	}
	rank := func(r string) int {
		if i := slices.Index(roles, r); i >= 0 {
			return i
		}
		return len(roles)
	}
	slices.SortStableFunc(order, func(a, b string) int { return rank(a) - rank(b) })
	waves := make([][]Target, len(order))
	for i, r := range order {
		for _, t := range targets {
			t.Plan = t.Plan.Only(units[r], i == 0)
			t.Desired = t.Desired.Only(units[r], i == 0)
			waves[i] = append(waves[i], t)
		}
	}
	return waves
}

// Pipeline stages waves of targets with each host's files sent ahead:
// from the start, every host receives the files of every wave, one wave
// after the other, while earlier waves are validated, committed and
// started. A wave's Stage then only waits for its own files.
type Pipeline struct {
	hosts map[string]*ahead
}

// ahead is one host's share of a Pipeline.
type ahead struct {
	cancel   context.CancelFunc
	prepared chan struct{} // closed when prepare has returned
	prepErr  error
	sending  chan struct{} // closed when the sender has stopped
	waves    []*aheadWave
}

type aheadWave struct {
	batch     Batch         // nil: the conn cannot batch; Stage uploads
	sent      chan struct{} // closed when the wave's sends have ended
	err       error
	installed bool
}

// SendAhead starts, on every host of the waves (all with the same hosts
// in the same order, as Waves returns them), the command that creates
// the users and directories of every wave, and beside it the sends of
// every wave's files, in wave order. A failed prepare stops the sends.
// Close ends what is still going and removes what was sent and not
// installed.
func SendAhead(ctx context.Context, waves [][]Target) *Pipeline {
	p := &Pipeline{hosts: map[string]*ahead{}}
	if len(waves) == 0 {
		return p
	}
	for j, first := range waves[0] {
		sctx, cancel := context.WithCancel(ctx)
		a := &ahead{cancel: cancel, prepared: make(chan struct{}), sending: make(chan struct{})}
		p.hosts[first.Name] = a
		var groups []validateGroup
		for _, w := range waves {
			groups = append(groups, groupsToValidate(w[j])...)
		}
		bc, batching := first.Conn.(Batcher)
		for range waves {
			w := &aheadWave{sent: make(chan struct{})}
			if batching {
				w.batch = bc.NewBatch()
			}
			a.waves = append(a.waves, w)
		}
		go func() {
			a.prepErr = prepare(ctx, first, groups)
			if a.prepErr != nil {
				cancel()
			}
			close(a.prepared)
		}()
		go func() {
			defer close(a.sending)
			var err error
			for i, w := range a.waves {
				if err == nil && w.batch != nil {
					err = uploadAll(sctx, waves[i][j], w.batch.Send)
				}
				// A wave after a failed one is not sent: its stage
				// reports the failure that stopped it.
				w.err = err
				close(w.sent)
			}
		}()
	}
	return p
}

// Stage stages t's part of wave i: it waits for the host's users and
// directories and the wave's files, installs those (or uploads them, on
// a conn that cannot batch) and validates the wave's config groups.
// Nothing it does changes what a running service sees; on a validation
// failure it removes what it staged.
func (p *Pipeline) Stage(ctx context.Context, t Target, i int) error {
	a := p.hosts[t.Name]
	if err := Until(ctx, a.prepared); err != nil {
		return err
	}
	if a.prepErr != nil {
		return a.prepErr
	}
	w := a.waves[i]
	if w.batch == nil {
		if err := uploadAll(ctx, t, t.Conn.Upload); err != nil {
			return err
		}
	} else {
		if err := Until(ctx, w.sent); err != nil {
			return err
		}
		if w.err != nil {
			return w.err
		}
		w.installed = true
		if err := w.batch.Install(ctx); err != nil {
			return onHost(t.Name, "stage files", err)
		}
	}
	return validateAll(ctx, t)
}

// ColdClusterStart reports whether the targets start a clustered unit
// (one with a cluster gate) that is not running.
func ColdClusterStart(targets []Target) bool {
	for _, t := range targets {
		for _, name := range t.Plan.Start {
			if u, ok := unitOf(t, name); ok && u.Settled != nil {
				return true
			}
		}
	}
	return false
}

// Until waits for ch to be closed, or ctx to end.
func Until(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the sends still going, waits for them and for every
// prepare, and removes the files sent and never installed.
func (p *Pipeline) Close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, a := range p.hosts {
		a.cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-a.sending
			<-a.prepared
			for _, w := range a.waves {
				if w.batch != nil && !w.installed {
					w.batch.Discard(ctx)
				}
			}
		}()
	}
	wg.Wait()
}
