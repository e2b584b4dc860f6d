package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/internal/verify"
)

// runVerify checks the live cluster and prints the report; any failure is
// a non-zero exit.
func runVerify(ctx context.Context, r *deploy.Run, asJSON bool) error {
	if !asJSON {
		fmt.Println("verifying the cluster against the inventory...")
	}
	rep := verify.Run(ctx, verify.Options{
		Inventory:       r.Inv,
		Passwords:       r.Secrets,
		Probe:           deploy.Probe{Run: r},
		ExpectedDigests: r.ExpectedDigests(ctx),
	})
	rep.Results = append(r.ConfigChecks(ctx), rep.Results...)
	var err error
	if asJSON {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		return err
	}
	if n := rep.Failed(); n > 0 {
		return cli.Exit(fmt.Sprintf("verify: %d check(s) failed", n), 1)
	}
	return nil
}
