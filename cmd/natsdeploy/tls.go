package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/pki"
)

var tlsCommand = &cli.Command{
	Name:  "tls",
	Usage: "TLS material natsdeploy keeps for the cluster",
	Subcommands: []*cli.Command{
		{
			Name:      "rotate-ca",
			Usage:     "replace natsdeploy's CA in two steps, each rolled out as apply does (by reload)",
			ArgsUsage: "INVENTORY.toml",
			Description: "Without --finish: makes the next CA and rolls out a CA bundle holding both, while every certificate is still\n" +
				"signed by the current one. Then give your clients the new bundle (natsdeploy contexts writes it) and run\n" +
				"rotate-ca --finish: the next CA becomes the current one, every node gets a certificate from it, and the old\n" +
				"CA stays trusted until it expires. Neither step restarts a node. The rollout is apply's own, so anything else\n" +
				"the inventory changes goes out with it: run plan first if unsure.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "finish", Usage: "switch to the next CA made by an earlier rotate-ca"},
				&cli.BoolFlag{Name: "no-verify", Usage: "skip the post-deploy verifier"},
			},
			Action: rotateCACmd,
		},
	},
}

func rotateCACmd(c *cli.Context) (err error) {
	args := c.Args().Slice()
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return cli.Exit("usage: natsdeploy tls rotate-ca [--finish] [--no-verify] INVENTORY.toml (flags before the inventory)", 2)
	}
	inv, err := loadPath(args[0])
	if err != nil {
		return err
	}
	step, next := "started: the next CA is trusted beside the current one", "give clients the new bundle (natsdeploy contexts), then run natsdeploy tls rotate-ca --finish "+inv.Path
	if c.Bool("finish") {
		err = pki.FinishRotation(inv)
		step, next = "finished: the next CA is now the current one; the old one stays trusted until it expires", ""
	} else {
		err = pki.StartRotation(inv, time.Now())
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("rotate-ca: %v\nnothing was changed", err), 2)
	}
	return rollOut(c, inv, session{lock: true, gather: true}, rollout{
		what: "the CA rotation", savedIn: inv.TLS.Dir,
		said: "CA rotation " + step + "; rolling it out as apply does", next: next,
	})
}
