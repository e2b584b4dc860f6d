package vmlab

import (
	"fmt"
	"strings"
)

// UserDataName is the cloud-init user-data file of one Multipass VM. Each VM
// has its own because each carries its own host key.
func UserDataName(name string) string { return "cloud-init-" + name + ".yaml" }

// Multipass returns the files of a Multipass lab.
func Multipass(o Options) ([]File, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	keys, err := o.hostKeys()
	if err != nil {
		return nil, err
	}
	var files []File
	addrs := make([]string, o.Nodes)
	for i, k := range keys {
		name := NodeName(i + 1)
		addrs[i] = Placeholder(name)
		// 0600: it holds the VM's private host key.
		files = append(files, File{Name: UserDataName(name), Data: userData(o, name, k), Mode: 0o600})
	}
	header := "# Addresses are placeholders until `natsdeploy lab addresses DIR` reads them\n# from `multipass info`.\n"
	files = append(files,
		File{Name: "inventory.toml", Data: inventoryText(o, "multipass", header, addrs), Mode: 0o644},
		File{Name: "known_hosts", Data: knownHosts(keys, nil), Mode: 0o644},
		File{Name: "README.md", Data: multipassReadme(o), Mode: 0o644},
	)
	return files, nil
}

// userData creates the deploy user and installs the VM's host key; nothing
// else. "default" keeps the image's own user, which `multipass shell` logs
// in as.
func userData(o Options, name string, k HostKey) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `#cloud-config
# %s: written by natsdeploy lab multipass. Holds this VM's private SSH host
# key: keep it as private as the key itself.
users:
  - default
  - name: %s
    shell: /bin/bash
    lock_passwd: true
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys:
      - %q
ssh_pwauth: false
packages:
  - openssh-server
# The host key natsdeploy's known_hosts already holds. Only ed25519 (the
# image's keys deleted, no other type generated): a host that also offered
# keys made at boot could present one natsdeploy does not know.
ssh_deletekeys: true
ssh_genkeytypes: [ed25519]
ssh_keys:
  ed25519_private: |
`, name, User, o.AuthorizedKey)
	for _, line := range strings.Split(strings.TrimRight(k.Private, "\n"), "\n") {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	fmt.Fprintf(&b, "  ed25519_public: %q\n", k.Public)
	return []byte(b.String())
}

func multipassReadme(o Options) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# natsdeploy lab on Multipass (%d VMs, image %s)

Written by `+"`natsdeploy lab multipass`"+`. Run these from this directory; on Linux
it must be under your home directory, as Multipass's snap cannot read
files elsewhere (/tmp included).

1. Boot the VMs (each gets the deploy user, your key and its own SSH host
   key from its cloud-init file):

`+"```sh\n", o.Nodes, o.Image)
	for i := 1; i <= o.Nodes; i++ {
		n := NodeName(i)
		fmt.Fprintf(&b, "multipass launch %s --name %s --cpus 1 --memory 1G --disk 5G --cloud-init %s\n", o.Image, n, UserDataName(n))
	}
	b.WriteString("```\n\n")
	b.WriteString(`2. Fill in the inventory's addresses and known_hosts from ` + "`multipass info`" + `:

` + "```sh\nnatsdeploy lab addresses .\n```" + `

3. Deploy:

` + "```sh\nnatsdeploy apply inventory.toml\n```" + `

known_hosts already holds each VM's host key: they were generated with
these files and put on the VMs by cloud-init, so no key is trusted on first
contact. The cloud-init files hold those private host keys (mode 0600).

To remove the lab:

` + "```sh\nmultipass delete --purge")
	for i := 1; i <= o.Nodes; i++ {
		b.WriteString(" " + NodeName(i))
	}
	b.WriteString("\n```\n")
	return []byte(b.String())
}
