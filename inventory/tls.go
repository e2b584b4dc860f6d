package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TLS is the [tls] section. Each of Clients, Routes and Monitoring turns
// TLS on for one listener; the certificates are shared: one per node,
// whose names (SANs) are the host's name and address and the loopback
// names, signed by one CA.
type TLS struct {
	// Clients requires TLS on the client port.
	Clients bool `toml:"clients"`
	// Routes requires TLS between nodes, each verifying the other's
	// certificate against the CA.
	Routes bool `toml:"routes"`
	// Monitoring serves the monitoring port over https only.
	Monitoring bool `toml:"monitoring"`

	// Dir holds the CA and the node certificates on the control machine
	// (0700; keys 0600). Default "<inventory name>.tls" beside the
	// inventory. Absolute after Load.
	Dir string `toml:"dir"`
	// CACert and CAKey are the operator's own CA (PEM files): natsdeploy
	// signs node certificates with it instead of making one. CAKey may be
	// left out when every host brings its own tls_cert and tls_key.
	CACert string `toml:"ca_cert"`
	CAKey  string `toml:"ca_key"`
	// Trust names more CA certificates (PEM files, one or more each) that
	// every node and client trusts beside the CA: how your own CA is
	// rotated without a moment when a node presents a certificate its
	// peers or clients do not trust yet. Absolute after Load.
	Trust []string `toml:"trust"`

	// ValidFor is the lifetime of a node certificate natsdeploy issues.
	// Default 8760h (a year).
	ValidFor Duration `toml:"valid_for"`
	// RenewBefore: apply issues a new certificate when the current one
	// expires sooner than this (and verify fails for one that does).
	// Default 720h (30 days).
	RenewBefore Duration `toml:"renew_before"`
}

// TLS defaults.
const (
	DefaultTLSValidFor    = Duration(365 * 24 * time.Hour)
	DefaultTLSRenewBefore = Duration(30 * 24 * time.Hour)
	// MinTLSValidFor keeps an issued certificate from being due for
	// renewal the moment it is made.
	MinTLSValidFor = Duration(24 * time.Hour)
)

// On reports whether any listener uses TLS: then every node gets a
// certificate. Safe on a nil *TLS.
func (t *TLS) On() bool { return t != nil && (t.Clients || t.Routes || t.Monitoring) }

// ClientsOn, RoutesOn and MonitoringOn are safe on a nil *TLS.
func (t *TLS) ClientsOn() bool    { return t != nil && t.Clients }
func (t *TLS) RoutesOn() bool     { return t != nil && t.Routes }
func (t *TLS) MonitoringOn() bool { return t != nil && t.Monitoring }

func (v *validator) tlsDefaults() {
	t := v.inv.TLS
	if t == nil {
		return
	}
	if t.Dir == "" {
		t.Dir = filepath.Join(v.inv.Dir, strings.TrimSuffix(filepath.Base(v.inv.Path), ".toml")+".tls")
	} else {
		t.Dir = v.localPath("tls.dir", t.Dir)
	}
	if t.CACert != "" {
		t.CACert = v.localPath("tls.ca_cert", t.CACert)
	}
	if t.CAKey != "" {
		t.CAKey = v.localPath("tls.ca_key", t.CAKey)
	}
	for i, p := range t.Trust {
		if p != "" {
			t.Trust[i] = v.localPath(keyPath("tls.trust", i), p)
		}
	}
	if !v.defined["tls.valid_for"] {
		t.ValidFor = DefaultTLSValidFor
	}
	if !v.defined["tls.renew_before"] {
		t.RenewBefore = DefaultTLSRenewBefore
	}
	for i := range v.inv.Hosts {
		h := &v.inv.Hosts[i]
		if h.TLSCert != "" {
			h.TLSCert = v.localPath(keyPath("hosts", i, "tls_cert"), h.TLSCert)
		}
		if h.TLSKey != "" {
			h.TLSKey = v.localPath(keyPath("hosts", i, "tls_key"), h.TLSKey)
		}
	}
}

func (v *validator) checkTLS() {
	t := v.inv.TLS
	for i, h := range v.inv.Hosts {
		base := keyPath("hosts", i)
		switch {
		case (h.TLSCert == "") != (h.TLSKey == ""):
			k := keyPath(base, "tls_key")
			if h.TLSCert != "" {
				k = keyPath(base, "tls_cert")
			}
			v.add(k, "host %q has only one of tls_cert and tls_key; give both (the certificate and its key), or neither to have natsdeploy issue one", h.Name)
		case h.TLSCert != "" && !t.On():
			v.add(keyPath(base, "tls_cert"), "host %q has a certificate but no listener uses TLS; turn on clients, routes or monitoring in [tls], or remove tls_cert and tls_key", h.Name)
		case h.TLSCert != "" && t.CACert == "":
			v.add(keyPath(base, "tls_cert"), "host %q brings its own certificate, so natsdeploy needs the CA that signed it: set [tls] ca_cert", h.Name)
		case h.TLSCert != "":
			v.checkLocalFile(keyPath(base, "tls_cert"), h.TLSCert, false)
			v.checkLocalFile(keyPath(base, "tls_key"), h.TLSKey, true)
		}
	}
	if t == nil {
		return
	}
	if !t.On() {
		v.add("tls", "turns on no listener; set clients, routes or monitoring to true, or remove [tls]")
	}
	switch {
	case t.CAKey != "" && t.CACert == "":
		v.add("tls.ca_key", "a CA key without its certificate; set ca_cert as well")
	case t.CACert != "" && t.CAKey == "":
		for i, h := range v.inv.Hosts {
			if h.TLSCert == "" {
				v.add("tls.ca_cert", "without ca_key natsdeploy cannot issue a certificate for host %q (hosts[%d]); set ca_key, or give that host tls_cert and tls_key", h.Name, i)
				break
			}
		}
	}
	if t.CACert != "" {
		v.checkLocalFile("tls.ca_cert", t.CACert, false)
	}
	if t.CAKey != "" {
		v.checkLocalFile("tls.ca_key", t.CAKey, true)
	}
	seen := map[string]bool{}
	for i, p := range t.Trust {
		k := keyPath("tls.trust", i)
		switch {
		case p == "":
			v.add(k, "an empty file name; name a CA certificate (PEM) or remove the entry")
		case seen[p]:
			v.add(k, "%s is named twice; remove one", p)
		case p == t.CACert:
			v.add(k, "%s is ca_cert itself, trusted already; remove it from trust", p)
		default:
			v.checkLocalFile(k, p, false)
		}
		seen[p] = true
	}
	if t.ValidFor < MinTLSValidFor {
		v.add("tls.valid_for", "%s is too short; certificates must live at least %s (default %s)", t.ValidFor, MinTLSValidFor, DefaultTLSValidFor)
	} else if t.RenewBefore >= t.ValidFor {
		v.add("tls.renew_before", "%s is not shorter than valid_for (%s): every certificate would be renewed on every apply; write e.g. renew_before = %q", t.RenewBefore, t.ValidFor, DefaultTLSRenewBefore.String())
	}
	if dir := t.Dir; dir != "" {
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			v.add("tls.dir", "%s is not a directory; name a directory for the CA and certificates", dir)
		}
	}
}

// checkLocalFile checks a PEM file the inventory names on the control
// machine: it must be a regular file and, for a key, readable by its
// owner only. Skipped with SkipFileChecks.
func (v *validator) checkLocalFile(key, p string, private bool) {
	if v.opts.SkipFileChecks {
		return
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		v.add(key, "%s cannot be read (%v)", p, unwrapPathError(err))
	case !fi.Mode().IsRegular():
		v.add(key, "%s is not a regular file", p)
	case private && fi.Mode().Perm()&0o077 != 0:
		v.add(key, "%s is readable by others (mode %04o); a private key must be 0600: chmod 600 %s", p, fi.Mode().Perm(), p)
	}
}
