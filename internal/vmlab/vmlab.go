// Package vmlab writes what it takes to boot a natsdeploy test lab on
// Multipass or Vagrant VMs: per-VM cloud-init user-data or a Vagrantfile,
// a matching inventory, a known_hosts file and a README with the commands.
//
// Every VM's SSH host key is generated here, before the VM exists, and
// handed to it at boot (cloud-init's ssh_keys, or the Vagrant provisioner).
// natsdeploy therefore knows each host key in advance and never has to
// trust a key on first contact.
package vmlab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// User is the deploy user the VMs are given. natsdeploy refuses a user
// named natsdeploy (its own service user), so the lab cannot use that.
const User = "deploy"

// Options say what lab to write.
type Options struct {
	Nodes int
	// AuthorizedKey is the user's public key, one authorized_keys line.
	AuthorizedKey string
	// IdentityFile is the private key beside it, as the inventory names it
	// (absolute or ~/...).
	IdentityFile string
	// Image is the Multipass image or the Vagrant box.
	Image string
	// HostKey makes a VM's SSH host key; nil generates a fresh ed25519 key.
	// Tests set it so golden files do not change from run to run.
	HostKey func(name string) (HostKey, error)
}

// HostKey is one VM's SSH host key pair in OpenSSH's file formats.
type HostKey struct {
	Private string // "-----BEGIN OPENSSH PRIVATE KEY-----\n..."
	Public  string // "ssh-ed25519 AAAA..." without comment
}

// File is one generated file, its name relative to the lab directory.
type File struct {
	Name string
	Data []byte
	Mode os.FileMode
}

// NewHostKey generates an ed25519 host key pair from r.
func NewHostKey(r io.Reader, comment string) (HostKey, error) {
	pub, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return HostKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return HostKey{}, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return HostKey{}, err
	}
	return HostKey{
		Private: string(pem.EncodeToMemory(block)),
		Public:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))),
	}, nil
}

// ReadAuthorizedKey reads a public key file and returns its one key line,
// refusing a private key given by mistake.
func ReadAuthorizedKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if strings.Contains(string(data), "PRIVATE KEY") {
		return "", fmt.Errorf("%s is a private key; name the public one (%s.pub)", path, path)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(data); err != nil {
		return "", fmt.Errorf("%s: not an SSH public key: %v", path, err)
	}
	line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)[0])
	return line, nil
}

// NodeName is the i-th node's name, counted from 1.
func NodeName(i int) string { return fmt.Sprintf("nats-%d", i) }

func (o Options) check() error {
	if o.Nodes != 1 && (o.Nodes < 3 || o.Nodes > 9) {
		// 1, or 3 or more is NATS's quorum rule; 9 keeps the addresses
		// and VM names within what the lab was sized for.
		return fmt.Errorf("--nodes %d: a lab has 1 node or 3 to 9 (a cluster of 2 has no quorum after one loss)", o.Nodes)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(o.AuthorizedKey)); err != nil {
		return fmt.Errorf("authorized key: %v", err)
	}
	if strings.ContainsAny(o.AuthorizedKey, "\n\"'\\") {
		// The key is quoted into YAML, Ruby and shell: one plain line only.
		return fmt.Errorf("authorized key: must be one line without quotes or backslashes")
	}
	if o.Image == "" || strings.ContainsAny(o.Image, " \"'\\\n") {
		return fmt.Errorf("image %q: must be one word", o.Image)
	}
	return nil
}

func (o Options) hostKeys() ([]HostKey, error) {
	gen := o.HostKey
	if gen == nil {
		gen = func(name string) (HostKey, error) { return NewHostKey(rand.Reader, "root@"+name) }
	}
	keys := make([]HostKey, o.Nodes)
	for i := range keys {
		k, err := gen(NodeName(i + 1))
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
}

// knownHosts lists each VM under its name and, once known, its address:
// `lab addresses` adds the address to each line, keeping the key.
func knownHosts(keys []HostKey, addrs []string) []byte {
	var b strings.Builder
	b.WriteString("# Written by natsdeploy lab: each VM's host key, generated before it booted.\n")
	for i, k := range keys {
		host := NodeName(i + 1)
		if i < len(addrs) && addrs[i] != "" {
			host += "," + addrs[i]
		}
		fmt.Fprintf(&b, "%s %s\n", host, k.Public)
	}
	return []byte(b.String())
}

// Write writes files into dir, creating it. An existing file is refused
// rather than overwritten: a lab's host keys and inventory must not change
// under VMs that already run with them.
func Write(dir string, files []File) error {
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil {
			return fmt.Errorf("%s already exists; remove it or choose another directory (its VMs may run with its host keys)", filepath.Join(dir, f.Name))
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return err
		}
	}
	return nil
}
