package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/verifycache"
)

// proofSchema changes whenever what a proof means changes (a check's
// samples, its pass text); old proofs then stop matching.
const proofSchema = "1"

// provenChecks are the checks whose outcome is fixed by the config every
// node has loaded, the server version and the inventory's accounts: they
// ask the servers what they allow and which quotas they set, not how the
// cluster is doing now (node/*, cluster/*, system/ping say that, and run
// every time). They are also nearly all of verify's logins, each a bcrypt
// comparison on the server.
var provenChecks = map[string]bool{"permissions": true, "isolation": true, "jetstream": true}

// noteLoaded records that h runs the config on its disk, with the version
// the inventory asks for: both node checks passed. Only a run in which
// every node is recorded may use or keep proofs.
func (v *verifier) noteLoaded(h string, digest, version string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.loaded[h] = digest + " " + version
}

// proofBase is what every proof of this run depends on besides its own
// check: each node's loaded config digest and version, the inventory's
// accounts and TLS, and this build of the verifier. "" when a node was not
// proven to run its deployed config, or no proofs are kept.
func (v *verifier) proofBase() string {
	if v.opts.Proofs == nil {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var nodes []string
	for _, h := range v.hosts {
		l, ok := v.loaded[h.Name]
		if !ok {
			return ""
		}
		nodes = append(nodes, h.Name+" "+l)
	}
	slices.Sort(nodes)
	expect, err := json.Marshal(struct {
		Accounts any
		TLS      any
		Cluster  string
	}{v.inv.Accounts, v.inv.TLS, v.inv.NATS.ClusterName})
	if err != nil {
		return ""
	}
	return verifycache.Hash(append([]string{"natsdeploy-verify", proofSchema, build(), string(expect)}, nodes...)...)
}

// build names this build of natsdeploy, so a new verifier does not trust
// an older one's proofs: the VCS revision where the build has one, and
// the executable's size and time either way (a build from a changed tree
// carries the same revision).
func build() string {
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				b.WriteString(s.Value + " ")
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if st, err := os.Stat(exe); err == nil {
			fmt.Fprintf(&b, "%d %d", st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// proven runs a check that provenChecks names, or takes its outcome from
// an earlier run with the same base. A fresh outcome that passes
// entirely is kept for later runs.
func (v *verifier) proven(base string, j job) job {
	if base == "" || !provenChecks[j.check] {
		return j
	}
	key := verifycache.Hash(base, j.check, j.target)
	run := j.run
	j.run = func(ctx context.Context) []Result {
		if p, ok := v.opts.Proofs.Load(key); ok {
			r := pass(j.check, j.target, fmt.Sprintf("%s (proven %s ago on the config every node runs now; `natsdeploy verify` checks again)",
				p.Seen, v.since(p.At)))
			r.Reused = true
			return []Result{r}
		}
		out := run(ctx)
		if len(out) == 1 && out[0].OK && !out[0].Skipped {
			v.opts.Proofs.Put(key, verifycache.Proof{At: v.now(), Seen: out[0].Seen})
		}
		return out
	}
	return j
}

func (v *verifier) now() time.Time {
	if v.opts.Now != nil {
		return v.opts.Now()
	}
	return time.Now()
}

// since says how long ago t was, to the second.
func (v *verifier) since(t time.Time) string {
	d := v.now().Sub(t).Round(time.Second)
	if d < time.Second {
		return "under a second"
	}
	return d.String()
}
