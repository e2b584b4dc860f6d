// Command natsdeploy turns bare Linux hosts into a NATS JetStream cluster
// over SSH, from one TOML inventory. This file is wiring only; the work is
// in internal/deploy and the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/apply"
	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "natsdeploy:", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "natsdeploy",
		Usage:   "deploy a NATS JetStream cluster to bare Linux hosts over SSH",
		Version: version,
		Commands: []*cli.Command{
			{
				Name:      "apply",
				Usage:     "make the hosts match the inventory, then verify",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "no-verify", Usage: "skip the post-deploy verifier"},
				},
				Action: applyCmd,
			},
			{
				Name:      "plan",
				Usage:     "show what apply would change on each host, changing nothing",
				ArgsUsage: "INVENTORY.toml",
				Action:    planCmd,
			},
			{
				Name:      "verify",
				Usage:     "check the live cluster and every account permission against the inventory",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
				},
				Action: verifyCmd,
			},
			{
				Name:      "contexts",
				Usage:     "write a natscli context for every user of the inventory",
				ArgsUsage: "INVENTORY.toml",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "where to write them (default: natscli's context dir)"},
				},
				Action: contextsCmd,
			},
		},
	}
}

// load reads and validates the inventory; problems exit with status 2
// before any network traffic.
func load(c *cli.Context) (*inventory.Inventory, error) {
	if c.NArg() != 1 {
		return nil, cli.Exit(fmt.Sprintf("usage: natsdeploy %s INVENTORY.toml", c.Command.Name), 2)
	}
	inv, err := inventory.Load(c.Args().First())
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%v\nnothing was changed", err), 2)
	}
	return inv, nil
}

// open loads the inventory, connects to every host and, when gather is
// set, reads their facts and computes the plan.
func open(c *cli.Context, lock, gather bool) (*deploy.Run, error) {
	inv, err := load(c)
	if err != nil {
		return nil, err
	}
	r, err := deploy.Connect(c.Context, inv, os.Stdout)
	if err != nil {
		return nil, err
	}
	if lock {
		if err := r.Lock(c.Context); err != nil {
			r.Close()
			return nil, err
		}
	}
	if !gather {
		return r, nil
	}
	if err := r.Gather(c.Context); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func applyCmd(c *cli.Context) error {
	start := time.Now()
	r, err := open(c, true, true)
	if err != nil {
		return err
	}
	defer r.Close()
	changed, err := r.Apply(c.Context, apply.DefaultTimeouts)
	if err != nil {
		return err
	}
	if changed {
		fmt.Printf("applied in %s\n", time.Since(start).Round(10*time.Millisecond))
	} else {
		fmt.Printf("nothing to do: %d host(s) already as the inventory says; nothing uploaded, nothing restarted (%s)\n",
			len(r.Targets), time.Since(start).Round(10*time.Millisecond))
	}
	r.Unlock(c.Context)
	if c.Bool("no-verify") {
		return nil
	}
	return runVerify(c.Context, r, false)
}

func planCmd(c *cli.Context) error {
	r, err := open(c, false, true)
	if err != nil {
		return err
	}
	defer r.Close()
	r.PrintPlan(c.Context, os.Stdout)
	return nil
}

func verifyCmd(c *cli.Context) error {
	r, err := open(c, false, false)
	if err != nil {
		return err
	}
	defer r.Close()
	return runVerify(c.Context, r, c.Bool("json"))
}
