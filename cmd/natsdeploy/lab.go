package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/natsdeploy/natsdeploy/internal/atomicfile"
	"github.com/natsdeploy/natsdeploy/internal/vmlab"
)

var labFlags = []cli.Flag{
	&cli.IntFlag{Name: "nodes", Value: 3, Usage: "how many VMs (1, or 3 to 9)"},
	&cli.StringFlag{Name: "key", Value: "~/.ssh/id_ed25519.pub", Usage: "your SSH public key, authorized for the deploy user (the private key beside it goes into the inventory)"},
}

var labCommand = &cli.Command{
	Name:  "lab",
	Usage: "write a test lab on Multipass or Vagrant VMs: VM definitions, inventory, known_hosts and a README",
	Subcommands: []*cli.Command{
		{
			Name:      "multipass",
			Usage:     "write per-VM cloud-init files, an inventory and known_hosts for Multipass",
			ArgsUsage: "DIR",
			Flags:     append([]cli.Flag{&cli.StringFlag{Name: "image", Value: "24.04", Usage: "Multipass image"}}, labFlags...),
			Action:    func(c *cli.Context) error { return labWrite(c, "multipass", c.String("image")) },
		},
		{
			Name:      "vagrant",
			Usage:     "write a Vagrantfile, an inventory and known_hosts for Vagrant",
			ArgsUsage: "DIR",
			Flags:     append([]cli.Flag{&cli.StringFlag{Name: "box", Value: "debian/bookworm64", Usage: "Vagrant box"}}, labFlags...),
			Action:    func(c *cli.Context) error { return labWrite(c, "vagrant", c.String("box")) },
		},
		{
			Name:      "addresses",
			Usage:     "fill a Multipass lab's inventory addresses and known_hosts from multipass info",
			ArgsUsage: "DIR",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "multipass-json", Usage: "read this saved `multipass info --format json` output instead of running multipass"},
			},
			Action: labAddressesCmd,
		},
	},
}

// expandHome expands a leading ~/ as the inventory does.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// identityFile names the private key beside pub as the inventory will: under
// ~ when it is in the home directory, so the lab's inventory still works
// when its directory is copied to another account.
func identityFile(pub string) (string, error) {
	if !strings.HasSuffix(pub, ".pub") {
		return "", fmt.Errorf("--key %s: name the public key file (ending in .pub); its private key beside it goes into the inventory", pub)
	}
	priv, err := filepath.Abs(strings.TrimSuffix(pub, ".pub"))
	if err != nil {
		return "", err
	}
	if home, err := os.UserHomeDir(); err == nil {
		if rel, err := filepath.Rel(home, priv); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return "~/" + filepath.ToSlash(rel), nil
		}
	}
	return priv, nil
}

func labWrite(c *cli.Context, provider, image string) error {
	if c.NArg() != 1 {
		return cli.Exit(fmt.Sprintf("usage: natsdeploy lab %s [flags] DIR", provider), 2)
	}
	dir := c.Args().First()
	pub, err := expandHome(c.String("key"))
	if err != nil {
		return err
	}
	ident, err := identityFile(pub)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	key, err := vmlab.ReadAuthorizedKey(pub)
	if err != nil {
		return cli.Exit(fmt.Sprintf("--key: %v (create a key with ssh-keygen -t ed25519)", err), 2)
	}
	o := vmlab.Options{Nodes: c.Int("nodes"), AuthorizedKey: key, IdentityFile: ident, Image: image}
	var files []vmlab.File
	if provider == "multipass" {
		files, err = vmlab.Multipass(o)
	} else {
		files, err = vmlab.Vagrant(o)
	}
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if err := vmlab.Write(dir, files); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	for _, f := range files {
		fmt.Fprintln(c.App.Writer, filepath.Join(dir, f.Name))
	}
	fmt.Fprintf(c.App.Writer, "wrote a %d-VM %s lab; the commands to boot and deploy it are in %s\n",
		o.Nodes, provider, filepath.Join(dir, "README.md"))
	return nil
}

func labAddressesCmd(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("usage: natsdeploy lab addresses [flags] DIR", 2)
	}
	dir := c.Args().First()
	if _, err := os.Stat(filepath.Join(dir, "Vagrantfile")); err == nil {
		fmt.Fprintf(c.App.Writer, "%s is a Vagrant lab: its addresses are fixed by its Vagrantfile and already in inventory.toml and known_hosts; nothing to do\n", dir)
		return nil
	}
	invPath := filepath.Join(dir, "inventory.toml")
	khPath := filepath.Join(dir, "known_hosts")
	inv, err := os.ReadFile(invPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cli.Exit(fmt.Sprintf("%s: no such file; write the lab first with natsdeploy lab multipass %s", invPath, dir), 2)
		}
		return err
	}
	kh, err := os.ReadFile(khPath)
	if err != nil {
		return err
	}
	names := vmlab.HostNames(string(inv))
	if len(names) == 0 {
		return cli.Exit(fmt.Sprintf("%s names no [[hosts]]", invPath), 2)
	}
	var info []byte
	if p := c.String("multipass-json"); p != "" {
		info, err = os.ReadFile(p)
	} else {
		info, err = runMultipassInfo(c, names)
	}
	if err != nil {
		return err
	}
	addrs, err := vmlab.ParseMultipassInfo(info, names)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	newInv, err := vmlab.SetAddresses(string(inv), addrs)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", invPath, err), 2)
	}
	newKH, err := vmlab.SetKnownHosts(string(kh), addrs)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", khPath, err), 2)
	}
	// known_hosts first: an inventory with addresses but a known_hosts
	// without them would be refused at connect time, the other way round
	// nothing reads the extra addresses.
	if err := atomicfile.Write(khPath, []byte(newKH), 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(invPath, []byte(newInv), 0o644); err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(c.App.Writer, "%s %s\n", n, addrs[n])
	}
	fmt.Fprintf(c.App.Writer, "updated %s and %s; next: natsdeploy apply %s\n", invPath, khPath, invPath)
	return nil
}

func runMultipassInfo(c *cli.Context, names []string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(c.Context, "multipass", vmlab.MultipassInfoArgs(names)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, cli.Exit("multipass is not installed here; run this where the VMs were launched, or pass --multipass-json with its output", 2)
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("multipass %s: %v: %s", strings.Join(vmlab.MultipassInfoArgs(names), " "), err, strings.TrimSpace(stderr.String()))
	}
	// A VM that does not exist makes multipass exit non-zero but still
	// print JSON for the others; the parser names what is missing.
	return out, nil
}
