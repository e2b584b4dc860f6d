package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/diff"
	"github.com/natsdeploy/natsdeploy/internal/plan"
	"github.com/natsdeploy/natsdeploy/internal/shell"
)

// PrintPlan writes every host's actions and, for changed text files, a
// short diff with secrets masked. A file a role marks sensitive is never
// shown, nor its hash: only that it changes.
func (s *Session) PrintPlan(ctx context.Context, w io.Writer) {
	for _, t := range s.Targets {
		if t.Plan.Empty() {
			fmt.Fprintf(w, "%s: no changes\n", t.Name)
			continue
		}
		fmt.Fprintf(w, "%s:\n", t.Name)
		for _, line := range t.Plan.Lines() {
			fmt.Fprintf(w, "  %s\n", line)
		}
		for _, c := range t.Plan.Files {
			if !c.Upload || c.Create || c.File.Content == nil {
				continue
			}
			if c.File.Sensitive {
				fmt.Fprintf(w, "  --- %s: changes; it holds secrets, so neither its content nor its hash is shown\n", c.File.Path)
				continue
			}
			old, err := t.Conn.Exec(ctx, "cat "+shell.Quote(c.File.Path))
			if err != nil {
				fmt.Fprintf(w, "  (cannot read current %s: %v)\n", c.File.Path, err)
				continue
			}
			d := diff.Unified(old, string(c.File.Content), 2)
			fmt.Fprintf(w, "  --- %s\n", c.File.Path)
			for _, line := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if reloadRound(s.Targets) != nil {
		fmt.Fprintln(w, "reloadable changes go first, to every node at once; then the restarts roll")
	}
	fmt.Fprintln(w, plan.Summary(s.Plans()))
}
