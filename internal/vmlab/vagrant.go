package vmlab

import (
	"fmt"
	"strings"
)

// VagrantAddress is the i-th node's fixed address (counted from 1), in
// 192.168.56.0/21: the only range VirtualBox 6.1.28 and later accept for a
// host-only network without extra configuration.
func VagrantAddress(i int) string { return fmt.Sprintf("192.168.56.%d", 10+i) }

// HostKeyName is where a Vagrant lab keeps a VM's private host key, for the
// provisioner to install.
func HostKeyName(name string) string { return "host-keys/" + name }

// Vagrant returns the files of a Vagrant lab.
func Vagrant(o Options) ([]File, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	keys, err := o.hostKeys()
	if err != nil {
		return nil, err
	}
	addrs := make([]string, o.Nodes)
	var files []File
	for i, k := range keys {
		addrs[i] = VagrantAddress(i + 1)
		name := NodeName(i + 1)
		files = append(files,
			File{Name: HostKeyName(name), Data: []byte(k.Private), Mode: 0o600},
			File{Name: HostKeyName(name) + ".pub", Data: []byte(k.Public + "\n"), Mode: 0o644},
		)
	}
	header := "# Addresses are fixed by the Vagrantfile's private network.\n"
	files = append(files,
		File{Name: "Vagrantfile", Data: vagrantfile(o, addrs), Mode: 0o644},
		File{Name: "inventory.toml", Data: inventoryText(o, "vagrant", header, addrs), Mode: 0o644},
		File{Name: "known_hosts", Data: knownHosts(keys, addrs), Mode: 0o644},
		File{Name: "README.md", Data: vagrantReadme(o), Mode: 0o644},
	)
	return files, nil
}

func vagrantfile(o Options, addrs []string) []byte {
	var nodes strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&nodes, "  %q => %q,\n", NodeName(i+1), a)
	}
	return []byte(fmt.Sprintf(`# -*- mode: ruby -*-
# Written by natsdeploy lab vagrant: %d VMs for natsdeploy (see README.md).

NODES = {
%s}.freeze

DEPLOY_USER = %q
DEPLOY_KEY = %q

# Creates the deploy user with the key and passwordless sudo, and installs
# the host key generated with this file (host-keys/NAME), the only one the
# VM then offers, so that known_hosts holds it before the VM ever boots.
PROVISION = <<~'SHELL'
  set -eu
  id "$DEPLOY_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$DEPLOY_USER"
  home=$(getent passwd "$DEPLOY_USER" | cut -d: -f6)
  install -d -m 0700 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$home/.ssh"
  printf '%%s\n' "$DEPLOY_KEY" > "$home/.ssh/authorized_keys"
  chown "$DEPLOY_USER:$DEPLOY_USER" "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
  printf '%%s ALL=(ALL) NOPASSWD:ALL\n' "$DEPLOY_USER" > /etc/sudoers.d/90-natsdeploy-lab
  chmod 0440 /etc/sudoers.d/90-natsdeploy-lab
  visudo -cf /etc/sudoers.d/90-natsdeploy-lab
  command -v sshd >/dev/null || { apt-get update -q && apt-get install -y -q openssh-server; }
  rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
  printf '%%s\n' "$HOST_KEY" > /etc/ssh/ssh_host_ed25519_key
  printf '%%s\n' "$HOST_KEY_PUB" > /etc/ssh/ssh_host_ed25519_key.pub
  chmod 0600 /etc/ssh/ssh_host_ed25519_key
  chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub
  systemctl restart ssh
SHELL

Vagrant.configure("2") do |config|
  config.vm.box = %q
  NODES.each do |name, ip|
    config.vm.define name do |node|
      node.vm.hostname = name
      node.vm.network "private_network", ip: ip
      node.vm.provider "virtualbox" do |vb|
        vb.memory = 1024
        vb.cpus = 1
      end
      node.vm.provision "shell", inline: PROVISION, env: {
        "DEPLOY_USER" => DEPLOY_USER,
        "DEPLOY_KEY" => DEPLOY_KEY,
        "HOST_KEY" => File.read(File.join(__dir__, "host-keys", name)).strip,
        "HOST_KEY_PUB" => File.read(File.join(__dir__, "host-keys", name + ".pub")).strip,
      }
    end
  end
end
`, o.Nodes, nodes.String(), User, o.AuthorizedKey, o.Image))
}

func vagrantReadme(o Options) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# natsdeploy lab on Vagrant (%d VMs, box %s)

Written by `+"`natsdeploy lab vagrant`"+`. Run these from this directory.

1. Boot the VMs (each gets the deploy user, your key and its own SSH host
   key from the Vagrantfile's provisioner):

`+"```sh\nvagrant up\n```"+`

2. Deploy (the addresses are fixed by the Vagrantfile and already in the
   inventory: there is nothing to look up):

`+"```sh\nnatsdeploy apply inventory.toml\n```"+`

known_hosts already holds each VM's host key: they were generated with
these files (host-keys/, the private ones mode 0600) and installed by the
provisioner, so no key is trusted on first contact.

To remove the lab:

`+"```sh\nvagrant destroy -f\n```\n", o.Nodes, o.Image)
	return []byte(b.String())
}
