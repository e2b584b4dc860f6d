package deploy

import (
	"context"
	"fmt"
	"sync"

	"github.com/natsdeploy/natsdeploy/internal/lock"
)

// Cleared is what ClearLocks found and did on one host.
type Cleared struct {
	Host    string
	Locked  bool
	Holder  lock.Holder // when Locked
	Removed bool
	// Live: the holder is a process of this machine that still runs.
	Live bool
	Err  error // not reached, or a command failed
}

// Done reports whether the host is now free of any lock.
func (c Cleared) Done() bool { return c.Err == nil && (!c.Locked || c.Removed) }

func (c Cleared) String() string {
	switch {
	case c.Err != nil:
		return fmt.Sprintf("%s: %v; its lock, if any, is left", c.Host, c.Err)
	case !c.Locked:
		return c.Host + ": not locked"
	case c.Removed && c.Live:
		return fmt.Sprintf("%s: removed the lock of %s, although that process still runs on this machine (--force)", c.Host, c.Holder)
	case c.Removed:
		return fmt.Sprintf("%s: removed the lock of %s", c.Host, c.Holder)
	case c.Live:
		return fmt.Sprintf("%s: lock of %s NOT removed: that process still runs on this machine, most likely an apply in progress "+
			"(it keeps its lock fresh); let it finish or stop it, or use --force to remove the lock anyway", c.Host, c.Holder)
	}
	return fmt.Sprintf("%s: lock of %s NOT removed: it changed while we looked (released, or taken by another run); run unlock again to see", c.Host, c.Holder)
}

// ClearLocks reads the lock on every host, in parallel, and removes it,
// unless its holder is a process of this machine that still runs and
// force is false: that is most likely an apply in progress, which keeps
// its lock fresh, and pulling the lock from under it would let another run
// change the hosts at the same time. A lock on another machine cannot be
// checked from here; its holder was shown. Results are in inventory order;
// a host in s.Unreachable is one saying why.
func (s *Session) ClearLocks(ctx context.Context, force bool) []Cleared {
	out := make([]Cleared, len(s.Inv.Hosts))
	var wg sync.WaitGroup
	for i, h := range s.Inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Cleared{Host: h.Name}
			defer func() { out[i] = c }()
			conn, ok := s.Conns[h.Name]
			if !ok {
				c.Err = fmt.Errorf("not connected")
				if err := s.Unreachable[h.Name]; err != nil {
					c.Err = fmt.Errorf("cannot connect: %w", err)
				}
				return
			}
			c.Holder, c.Locked, c.Err = lock.Read(ctx, h.Name, conn)
			if c.Err != nil || !c.Locked {
				return
			}
			c.Live = lock.LiveHere(c.Holder, s.me)
			if c.Live && !force {
				return
			}
			c.Removed, c.Err = lock.Remove(ctx, h.Name, conn, c.Holder)
		}()
	}
	wg.Wait()
	return out
}
