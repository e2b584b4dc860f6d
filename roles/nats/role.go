package nats

import (
	"context"
	"crypto/tls"
	"fmt"
	"path"
	"strings"

	"github.com/natsdeploy/natsdeploy/internal/artifact"
	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/report"
	"github.com/natsdeploy/natsdeploy/internal/role"
	secretstore "github.com/natsdeploy/natsdeploy/internal/secrets"
	"github.com/natsdeploy/natsdeploy/inventory"
	"github.com/natsdeploy/natsdeploy/roles/nats/verify"
)

// Role is the NATS cluster: one nats-server per NATS host.
type Role struct{}

var _ role.Role = Role{}

// ReleaseURL is where nats-server releases are published; a release's
// files are at ReleaseURL/vX.Y.Z/NAME.
const ReleaseURL = "https://github.com/nats-io/nats-server/releases/download"

// ArtifactName is the artifact's name in role.Input.Artifacts.
const ArtifactName = "nats-server"

func (Role) Name() string { return "nats" }

func (Role) Hosts(inv *inventory.Inventory) []inventory.Host { return inv.NATSHosts() }

// Artifacts: the nats-server release archive for arch. Layout under
// artifact_dir, the same as below the release URL:
//
//	nats-server/vX.Y.Z/nats-server-vX.Y.Z-linux-ARCH.tar.gz
//	nats-server/vX.Y.Z/SHA256SUMS
func (Role) Artifacts(inv *inventory.Inventory, arch string) ([]artifact.Release, error) {
	v := strings.TrimPrefix(inv.NATS.Version, "v")
	a, err := artifact.GoArch(arch)
	if err != nil {
		return nil, fmt.Errorf("nats-server v%s: %w", v, err)
	}
	url := ReleaseURL
	if inv.NATS.DownloadURL != nil {
		url = *inv.NATS.DownloadURL
	}
	tag := "v" + v
	base := fmt.Sprintf("nats-server-%s-linux-%s", tag, a)
	return []artifact.Release{{
		Dir:     inv.NATS.ArtifactDir,
		BaseURL: url,
		Name:    ArtifactName,
		Tag:     tag,
		Version: v,
		Asset:   base + ".tar.gz",
		Sums:    "SHA256SUMS",
		Member:  base + "/nats-server",
		Target:  "linux-" + a,
		Hint:    "https://github.com/nats-io/nats-server/releases/tag/" + tag,
		Setting: "nats.download_url",
	}}, nil
}

// Secrets: the users' and the route's passwords are the store's own; the
// surveyor's user, when the surveyor runs, needs its slot.
func (Role) Secrets(inv *inventory.Inventory) []secretstore.Slot {
	var slots []secretstore.Slot
	if inv.SystemAccount() != nil {
		slots = append(slots, OperatorSlot)
	}
	if inv.RunsSurveyor() {
		slots = append(slots, SurveyorSlot)
	}
	return slots
}

func (Role) Desired(in role.Input) (desired.Host, error) {
	b := in.Binary(ArtifactName, in.Inv.NATS.Version)
	var sec Secrets = in.Secrets
	if in.Secrets == nil {
		sec = claimsOnly{}
	}
	return DesiredTLS(in.Inv, in.Host, sec, Artifact{Path: b.Path, SHA256: b.SHA256, Version: b.Version}, in.TLS)
}

// claimsOnly stands in for the secrets store when the engine renders only
// to see what each role claims on a host, before any secret is resolved.
type claimsOnly struct{}

const placeholderHash = "$2a$11$natsdeploy.placeholder.not.a.real.hash.xxxxxxxxxxxxx"

func (claimsOnly) BcryptHash(string, string) (string, error) { return placeholderHash, nil }
func (claimsOnly) RouteBcryptHash() (string, error)          { return placeholderHash, nil }
func (claimsOnly) RoutePassword() string                     { return "-" }
func (claimsOnly) SecretBcrypt(string) (string, error)       { return placeholderHash, nil }

// Verify runs the cluster verifier: nodes, routes, the JetStream meta
// group, a replicated stream, every user's permissions, isolation,
// quotas and the system account.
func (r Role) Verify(ctx context.Context, env role.Env) []report.Result {
	// The TLS checks need no login: they run beside the verifier rather
	// than after it.
	tlsDone := make(chan []report.Result, 1)
	go func() { tlsDone <- verifyTLS(ctx, env) }()
	rep := verify.Run(ctx, verify.Options{
		Inventory: env.Inv,
		Passwords: env.Secrets,
		Probe:     probe{env: env},
		TLS:       clientTLS(env),
		Proofs:    env.Proofs,
		ExpectedDigest: func(ctx context.Context, h inventory.Host) (string, error) {
			rem := env.Remote(h.Name)
			if rem == nil {
				return "", fmt.Errorf("host %s: not connected", h.Name)
			}
			return DiskDigest(ctx, rem, path.Join(env.Inv.NATS.ConfigDir, ConfigFile))
		},
	})
	return append(rep.Results, <-tlsDone...)
}

// probe lets the verifier see each node through its SSH connection: the
// monitoring endpoint on the host's loopback and the unit's state, so
// neither port 8222 nor systemd has to be reachable from here.
type probe struct{ env role.Env }

func (p probe) HTTPGet(ctx context.Context, h inventory.Host, path string) ([]byte, int, error) {
	rem := p.env.Remote(h.Name)
	if rem == nil {
		return nil, 0, fmt.Errorf("host %s: not connected", h.Name)
	}
	return Monitor(p.env.Inv, p.env.TLS).Of(rem)(ctx, path)
}

func (p probe) ServiceActive(ctx context.Context, h inventory.Host) (bool, string, error) {
	rem := p.env.Remote(h.Name)
	if rem == nil {
		return false, "", fmt.Errorf("host %s: not connected", h.Name)
	}
	// is-active exits non-zero for anything but active; its output is
	// the answer either way.
	out, err := rem.Exec(ctx, "systemctl is-active "+Service+" || true")
	if err != nil {
		return false, "", err
	}
	state := strings.TrimSpace(out)
	return state == "active", state, nil
}

// clientTLS is how the verifier's clients trust the nodes, or nil when the
// client port is plaintext.
func clientTLS(env role.Env) *tls.Config {
	if !env.Inv.TLS.ClientsOn() || env.TLS == nil {
		return nil
	}
	return env.TLS.ClientTLS("")
}
