package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/roles/grafana"
)

var dashboardsCommand = &cli.Command{
	Name:      "dashboards",
	Usage:     "write natsdeploy's Grafana dashboards and provisioning files for your own Grafana",
	ArgsUsage: "[INVENTORY.toml]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Required: true, Usage: "folder to write them into"},
		&cli.StringFlag{Name: "prometheus-url", Usage: "Prometheus as your Grafana reaches it (default: the inventory's monitoring host, else http://127.0.0.1:9090)"},
	},
	Action: dashboardsCmd,
}

// dashboardsCmd needs no host: with an inventory it only takes the
// Prometheus address from it.
func dashboardsCmd(c *cli.Context) error {
	url := "http://127.0.0.1:9090"
	if c.NArg() > 1 {
		return cli.Exit("usage: natsdeploy dashboards --out DIR [INVENTORY.toml]", 2)
	}
	if c.NArg() == 1 {
		inv, err := load(c)
		if err != nil {
			return err
		}
		if h, ok := inv.MonitoringHost(); ok {
			url = "http://" + net.JoinHostPort(h.Address, strconv.Itoa(inv.Monitoring.Prometheus.Port))
		}
	}
	if u := c.String("prometheus-url"); u != "" {
		url = u
	}
	paths, err := grafana.WriteDashboards(c.String("out"), url)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(c.App.Writer, p)
	}
	fmt.Fprintf(c.App.Writer, "wrote %d files; point Grafana's [paths] provisioning at %s/provisioning, or copy the two YAML files into yours (datasource: %s)\n",
		len(paths), c.String("out"), url)
	return nil
}
