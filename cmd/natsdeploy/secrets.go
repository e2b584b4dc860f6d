package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/deploy"
	"github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles"
	"github.com/natsdeploy/natsdeploy/roles/grafana"
	"github.com/natsdeploy/natsdeploy/roles/nats"
)

var secretsCommand = &cli.Command{
	Name:  "secrets",
	Usage: "encrypt the secrets file, or rotate one generated password",
	Subcommands: []*cli.Command{
		{
			Name:      "encrypt",
			Usage:     "encrypt the plain-text secrets file as the inventory's [secrets] table says",
			ArgsUsage: "INVENTORY.toml",
			Description: "Rewrites the secrets file, same content, as an age file (mode 0600, atomically), after reading the\n" +
				"encrypted copy back. Contacts no host. A file already encrypted is left as it is.",
			Action: secretsEncryptCmd,
		},
		{
			Name:      "rotate",
			Usage:     "generate a new password for one user (or --route, --grafana), save it, then roll it out as apply does (by reload)",
			ArgsUsage: "[USER] INVENTORY.toml",
			Description: "Only that password changes in the secrets file; it is saved before any host is touched, so a rollout that\n" +
				"fails is finished by apply. The rollout is apply's own, so anything else the inventory changes goes out with it:\n" +
				"run plan first if unsure. A password the inventory takes from password_env is not natsdeploy's to rotate.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "route", Usage: "rotate the cluster route user's password"},
				&cli.BoolFlag{Name: "grafana", Usage: "rotate the Grafana admin password"},
				&cli.BoolFlag{Name: "no-verify", Usage: "skip the post-deploy verifier"},
			},
			Action: secretsRotateCmd,
		},
	},
}

// positional checks a subcommand's arguments: n of them, none a flag
// (cli stops reading flags at the first argument).
func positional(c *cli.Context, n int, usage string) error {
	args := c.Args().Slice()
	for i, a := range args {
		if i > 0 && strings.HasPrefix(a, "-") {
			return cli.Exit(fmt.Sprintf("usage: natsdeploy secrets %s: %s comes after %s; put flags before it", usage, a, args[0]), 2)
		}
	}
	if len(args) != n {
		return cli.Exit("usage: natsdeploy secrets "+usage, 2)
	}
	return nil
}

func secretsEncryptCmd(c *cli.Context) error {
	if err := positional(c, 1, "encrypt INVENTORY.toml"); err != nil {
		return err
	}
	inv, err := loadPath(c.Args().First())
	if err != nil {
		return err
	}
	done, err := secrets.Encrypt(inv)
	if err != nil {
		return secretsProblem(err)
	}
	if !done {
		fmt.Fprintf(c.App.Writer, "secrets file %s is encrypted already; nothing was changed\n", inv.SecretsFile)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "encrypted secrets file %s (age, encrypt = %q, mode 0600)\n", inv.SecretsFile, inv.Secrets.Encrypt)
	return nil
}

// rotation is what secrets rotate replaces.
type rotation struct {
	what string // for messages
	do   func(*secrets.Store) error
}

// chooseRotation resolves the command line into one password, before any
// file is opened: a wrong name is a usage error that changes nothing.
func chooseRotation(c *cli.Context, inv *inventory.Inventory, user string) (rotation, error) {
	route, graf := c.Bool("route"), c.Bool("grafana")
	switch {
	case route && graf, (route || graf) && user != "":
		return rotation{}, cli.Exit("secrets rotate: name one password: a USER, --route or --grafana\nnothing was changed", 2)
	case route:
		return rotation{what: fmt.Sprintf("the route user %q's password", inv.NATS.RouteUser), do: (*secrets.Store).RotateRoute}, nil
	case graf:
		if inv.Monitoring == nil || !inv.Monitoring.Grafana.On() {
			return rotation{}, cli.Exit("secrets rotate --grafana: the inventory deploys no Grafana\nnothing was changed", 2)
		}
		return rotation{what: "the Grafana admin password", do: func(s *secrets.Store) error { return s.RotateSecret(grafana.SecretAdmin) }}, nil
	}
	var known []string
	for _, a := range inv.Accounts {
		for _, u := range a.Users {
			if u.Name == user {
				return rotation{what: fmt.Sprintf("user %q's password (account %s)", u.Name, a.Name), do: func(s *secrets.Store) error { return s.RotateUser(a.Name, u.Name) }}, nil
			}
			known = append(known, u.Name)
		}
	}
	// The users natsdeploy adds to the system account are rotated like
	// any other: their passwords are generated into the same file.
	if inv.SystemAccount() != nil {
		known = append(known, inventory.OperatorUser)
		if user == inventory.OperatorUser {
			return rotation{what: fmt.Sprintf("user %q's password", user), do: func(s *secrets.Store) error { return s.RotateSecret(nats.OperatorSlot.Name) }}, nil
		}
	}
	if inv.RunsSurveyor() {
		known = append(known, inventory.SurveyorUser)
		if user == inventory.SurveyorUser {
			return rotation{what: fmt.Sprintf("user %q's password", user), do: func(s *secrets.Store) error { return s.RotateSecret(nats.SurveyorSlot.Name) }}, nil
		}
	}
	slices.Sort(known)
	return rotation{}, cli.Exit(fmt.Sprintf("secrets rotate: the inventory has no user %q; its users are %s (or use --route, --grafana)\nnothing was changed",
		user, strings.Join(known, ", ")), 2)
}

// secretsRotateCmd: resolve, rotate in memory, then hand over to apply's
// own path, which saves the file before it connects.
func secretsRotateCmd(c *cli.Context) (err error) {
	n, usage := 2, "rotate [flags] USER INVENTORY.toml"
	if c.Bool("route") || c.Bool("grafana") {
		n, usage = 1, "rotate --route|--grafana INVENTORY.toml"
	}
	if err := positional(c, n, usage); err != nil {
		return err
	}
	args := c.Args().Slice()
	inv, err := loadPath(args[n-1])
	if err != nil {
		return err
	}
	user := ""
	if n == 2 {
		user = args[0]
	}
	rot, err := chooseRotation(c, inv, user)
	if err != nil {
		return err
	}
	sec, err := deploy.OpenSecrets(inv, roles.All)
	if err != nil {
		return secretsProblem(err)
	}
	if err := rot.do(sec); err != nil {
		return secretsProblem(err)
	}
	return rollOut(c, inv, session{lock: true, gather: true, sec: sec}, rollout{
		what: "the new password", savedIn: inv.SecretsFile,
		said: fmt.Sprintf("rotated %s: saved in %s; rolling it out as apply does", rot.what, inv.SecretsFile),
		// Not saved when connect failed before it could: the file and
		// the hosts are as they were.
		unsaved: sec.Changed,
	})
}

// rollout is a change already saved on this machine (a rotated secret, a
// CA rotation step) that apply's own path rolls out.
type rollout struct {
	what, savedIn string      // "the new password", and the file that keeps it
	said          string      // what is rolled out, said before it is
	next          string      // the user's next step once rolled out, if any
	unsaved       func() bool // the change is not saved yet (connect did not get that far)
}

// rollOut connects as apply does and rolls ro out through applyOpen; on
// failure it says where the change is kept and how to finish it.
func rollOut(c *cli.Context, inv *inventory.Inventory, s session, ro rollout) (err error) {
	v := newView(c, "apply", inv)
	defer func() { err = v.finish(err) }()
	r, err := connect(c, inv, s, v.Sink)
	if err != nil {
		if ro.unsaved != nil && ro.unsaved() {
			return err
		}
		return fmt.Errorf("%w\n%s is saved in %s; run `natsdeploy apply %s` to roll it out", err, ro.what, ro.savedIn, inv.Path)
	}
	defer r.Close()
	v.session(r)
	v.say("%s", ro.said)
	if err := applyOpen(c, r, v, false, c.Bool("no-verify")); err != nil {
		return fmt.Errorf("%w\n%s is saved in %s; once fixed, `natsdeploy apply %s` finishes rolling it out", err, ro.what, ro.savedIn, inv.Path)
	}
	if ro.next != "" {
		v.say("next: %s", ro.next)
	}
	return nil
}
