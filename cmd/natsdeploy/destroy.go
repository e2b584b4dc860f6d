package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

var destroyCommand = &cli.Command{
	Name:      "destroy",
	Usage:     "stop and remove everything natsdeploy installed, keeping the JetStream, Prometheus and Grafana data",
	ArgsUsage: "INVENTORY.toml",
	Description: "Shows what it will remove and keep on each host, then asks: type \"yes\" or the cluster name.\n" +
		"Data directories, and the system users that own them, stay unless --purge-data; apply reinstalls over them.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "purge-data", Usage: "also remove the data directories (JetStream store, logs, Prometheus TSDB, Grafana database) and the system users"},
		&cli.BoolFlag{Name: "yes", Usage: "do not ask; required without a terminal"},
		jsonFlag,
	},
	Action: destroyCmd,
}

// console is where destroy asks; tests replace it.
var console = struct {
	in  io.Reader
	tty func() bool
}{
	in:  os.Stdin,
	tty: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
}

// destroyCmd refuses before connecting when it could not ask and was not
// told --yes: a destroy in a script must say so in the script.
func destroyCmd(c *cli.Context) (err error) {
	inv, err := load(c)
	if err != nil {
		return err
	}
	yes := c.Bool("yes")
	if !yes && !console.tty() {
		return cli.Exit("destroy asks for confirmation, and there is no terminal to ask on: run it in a terminal, or pass --yes to confirm in advance\nnothing was changed", 2)
	}
	v := newView(c, "destroy", inv)
	defer func() { err = v.finish(err) }()
	r, err := connect(c, inv, session{lock: true}, v.Sink)
	if err != nil {
		return err
	}
	defer r.Close()
	v.session(r)
	if err := r.PlanDestroy(c.Context, c.Bool("purge-data")); err != nil {
		return err
	}
	// The list and the question need the screen to themselves.
	v.pause(false)
	out := v.human
	r.PrintDestroy(out)
	nothing := r.NothingToDestroy()
	if !nothing && !yes {
		if !confirm(c.Context, console.in, out, inv.NATS.ClusterName, len(inv.Hosts)) {
			return cli.Exit("not confirmed; nothing was changed", 1)
		}
	}
	v.resume()
	// With nothing of any role left this only clears natsdeploy's own
	// state, which the lock just now recreated: not worth a question.
	if err := r.Destroy(c.Context); err != nil {
		return err
	}
	if nothing {
		return nil
	}
	kept := 0
	for _, t := range r.Teardowns {
		kept += len(t.Kept)
	}
	msg := fmt.Sprintf("destroyed in %s", time.Since(v.start).Round(10*time.Millisecond))
	if kept > 0 {
		msg += fmt.Sprintf("; kept %d data dir(s) and user(s) as listed: `natsdeploy apply %s` installs again over them", kept, c.Args().First())
	}
	v.say("%s", msg)
	return nil
}

// confirm asks for "yes" or the cluster's name on one line; anything else,
// an empty line, end of input or an interrupt is a no. The read runs
// aside so that Ctrl-C (which cancels ctx) ends the wait at once.
func confirm(ctx context.Context, in io.Reader, out io.Writer, cluster string, hosts int) bool {
	fmt.Fprintf(out, "Destroy cluster %s on %d host(s) as shown? Type yes or the cluster name to go ahead: ", cluster, hosts)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		lines <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false
	case line := <-lines:
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(out)
		}
		answer := strings.TrimSpace(line)
		return answer == "yes" || answer == cluster
	}
}
