package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/contexts"
	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/internal/pki"
	"github.com/natsdeploy/natsdeploy/roles"
)

// contextsCmd writes a natscli context per user. It needs no host: the
// servers and users come from the inventory, the passwords from the
// secrets file (or the environment variables the inventory names).
func contextsCmd(c *cli.Context) error {
	inv, err := load(c)
	if err != nil {
		return err
	}
	sec, err := deploy.OpenSecrets(inv, roles.All)
	if err != nil {
		return secretsProblem(err)
	}
	// A password generated now must be the one later deployed.
	if err := sec.Save(); err != nil {
		return secretsProblem(err)
	}
	dir := c.String("dir")
	if dir == "" {
		if dir, err = contexts.DefaultDir(); err != nil {
			return err
		}
	}
	var ca []byte
	if inv.TLS.ClientsOn() {
		tlsm, err := pki.Open(inv, time.Now())
		if err != nil {
			return secretsProblem(fmt.Errorf("TLS: %w", err))
		}
		// The CA the servers' certificates chain to must be the one on
		// disk, which apply deploys.
		if err := tlsm.Save(); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		ca = tlsm.Trust
	}
	names, err := contexts.WriteTLS(inv, sec, dir, ca)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Println(n)
	}
	if len(names) > 0 {
		fmt.Printf("wrote %d natscli contexts to %s (mode 0600); use: nats --context %s ...\n", len(names), dir, names[0])
	}
	return nil
}
