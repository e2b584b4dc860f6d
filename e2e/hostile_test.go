//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/lab"
)

// Hostile environments (issue 9, the hosts' side): each a host that is
// wrong in some way natsdeploy must notice. Each case asserts the exit
// status the README promises, a message naming the host and what to do,
// and that no host changed: the same files, owners, modes and PIDs, and no
// staging leftovers. Where a change cannot be avoided (a run that fails
// after staging began), the next apply converges.

// snapshot is what a refused apply must leave as it was on every host:
// everything natsdeploy installs or stages (content, owner, mode), its
// users, and its services' state and PIDs; and no run lock left behind.
// The rest of /var/lib/natsdeploy is left out: the facts' hash cache is
// natsdeploy's own.
func snapshot(t *testing.T, hosts []lab.Host) map[string]string {
	t.Helper()
	const cmd = `for d in /etc/nats /etc/prometheus /usr/local/bin /etc/systemd/system /var/lib/nats /var/log/nats /var/lib/prometheus; do
	[ -e "$d" ] || { echo "absent $d"; continue; }
	find "$d" -path /var/lib/nats/jetstream -prune -o -path /var/lib/prometheus/data -prune -o -path /var/log/nats -prune -o -path /var/lib/prometheus -prune -o -printf '%y %m %u:%g %p %l\n'
done | sort
find /etc/nats /etc/prometheus /usr/local/bin /etc/systemd/system -type f -exec sha256sum {} + 2>/dev/null | sort
getent passwd nats prometheus || true
test -e /var/lib/natsdeploy/lock && echo "run lock left: $(cat /var/lib/natsdeploy/lock)"
systemctl show -p Id,ActiveState,MainPID nats-server.service nats-server-log.service prometheus.service 2>/dev/null || echo no systemctl`
	out := map[string]string{}
	for _, h := range hosts {
		out[h.Name] = hostExec(t, h, cmd)
	}
	return out
}

// sameSnapshot fails the test for every host whose snapshot changed.
func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	for h, b := range before {
		if after[h] != b {
			t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", h, b, after[h])
		}
	}
}

// noLeftovers fails the test for any staged file an apply left on a host.
func noLeftovers(t *testing.T, hosts []lab.Host) {
	t.Helper()
	for _, h := range hosts {
		got := hostExec(t, h, `find /etc /usr/local/bin /var/lib /home /root \( -name '*.natsdeploy-new' -o -name '.natsdeploy-stage' -o -name '*.natsdeploy-tmp' \) -print 2>/dev/null; `+
			`find /home/*/.natsdeploy-staging /root/.natsdeploy-staging -mindepth 1 -print 2>/dev/null; true`)
		if got != "" {
			t.Errorf("%s: staging leftovers:\n%s", h.Name, got)
		}
	}
}

// bare resets the lab: every top-level test here starts from bare hosts,
// whatever ran before it in this process.
func bare(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := lab.Reset(ctx); err != nil {
		t.Fatal(err)
	}
}

// natsdeployEnv runs the binary with extra environment and no controlling
// terminal (a new session), as in CI or cron.
func natsdeployEnv(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	return runNatsdeploy(t, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}, args...)
}

// knownHostsCopy copies the lab's known_hosts into dir (edited by edit)
// and returns an inventory edit pointing at the copy.
func knownHostsCopy(t *testing.T, name string, edit func(string) string) func(string) string {
	t.Helper()
	orig := filepath.Join(root, ".lab", "known_hosts")
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(workDir, name+".known_hosts")
	if err := os.WriteFile(p, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return replace(fmt.Sprintf("known_hosts = %q", orig), fmt.Sprintf("known_hosts = %q", p))
}

// hostKeyLine is host h's line in the lab's known_hosts.
func hostKeyLine(t *testing.T, known string, h lab.Host) string {
	t.Helper()
	for _, l := range strings.Split(known, "\n") {
		if strings.HasPrefix(l, h.Address+" ") {
			return l
		}
	}
	t.Fatalf("no known_hosts line for %s", h.Address)
	return ""
}

// artifactCopy copies the lab's artifact dir (symlinks for everything but
// nats-server v2.14.9, whose files are copied to be damaged by damage) and
// returns an inventory edit pointing nats.artifact_dir at it.
func artifactCopy(t *testing.T, name string, damage func(dir string)) func(string) string {
	t.Helper()
	orig := filepath.Join(root, ".lab", "artifacts")
	dst := filepath.Join(workDir, name+".artifacts")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(orig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "nats-server", "v2.14.9"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "nats-server" {
			if err := os.Symlink(filepath.Join(orig, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	rel := filepath.Join("nats-server", "v2.14.9")
	files, err := os.ReadDir(filepath.Join(orig, rel))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		// The release files only: not the extracted binary or the
		// checksum caches, so that everything is read afresh.
		if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(orig, rel, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	damage(filepath.Join(dst, rel))
	return replace(fmt.Sprintf("artifact_dir = %q", orig), fmt.Sprintf("artifact_dir = %q", dst))
}

// tarball is the nats-server release archive in dir.
func tarball(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "nats-server-v2.14.9-linux-*.tar.gz"))
	if err != nil || len(m) != 1 {
		t.Fatalf("nats-server tarball in %s: %v %v", dir, m, err)
	}
	return m[0]
}

// truncate cuts the tarball in dir to half, and with fixSums also rewrites
// SHA256SUMS to match (a mirror filled from a broken download).
func truncate(t *testing.T, dir string, fixSums bool) {
	t.Helper()
	p := tarball(t, dir)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)/2]
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !fixSums {
		return
	}
	sum := sha256.Sum256(b)
	line := hex.EncodeToString(sum[:]) + "  " + filepath.Base(p) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

const sudoUser = "ops"

// sudoUserOn makes a user on h that logs in with the lab's key and whose
// sudo asks for password pw.
func sudoUserOn(t *testing.T, h lab.Host, pw string) {
	t.Helper()
	hostExec(t, h, `set -e
id `+sudoUser+` >/dev/null 2>&1 || useradd --create-home --shell /bin/bash `+sudoUser+`
printf '%s:%s\n' `+sudoUser+` '`+pw+`' | chpasswd
install -d -m 0700 -o `+sudoUser+` -g `+sudoUser+` /home/`+sudoUser+`/.ssh
install -m 0600 -o `+sudoUser+` -g `+sudoUser+` /home/deploy/.ssh/authorized_keys /home/`+sudoUser+`/.ssh/authorized_keys
printf '%s ALL=(ALL) ALL\n' `+sudoUser+` > /etc/sudoers.d/`+sudoUser+`
chmod 0440 /etc/sudoers.d/`+sudoUser+`
visudo -cqf /etc/sudoers.d/`+sudoUser+`
su -s /bin/sh -c 'sudo -n true' `+sudoUser+` 2>/dev/null && { echo "sudo does not ask"; exit 1; } || true`)
}

// TestHostileRefused: on bare hosts, environments natsdeploy must refuse
// before it changes anything on any host.
func TestHostileRefused(t *testing.T) {
	bare(t)
	hosts := lab.Hosts()
	n1, n2, n3 := hosts[0], hosts[1], hosts[2]
	known, err := os.ReadFile(filepath.Join(root, ".lab", "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	// Passwordless sudo stays the lab's; this user's sudo asks.
	sudoUserOn(t, n2, "hostile-sudo-pw-0xC0FFEE")

	cases := []struct {
		name  string
		setup func(t *testing.T)
		undo  func(t *testing.T)
		edits func(t *testing.T) []func(string) string
		env   []string
		code  int
		want  []string // in the output, all of them
		never []string // nowhere in the output
		once  string   // in the output exactly once
	}{
		{
			name: "port in use",
			// A service of the host's own, not natsdeploy's, on the
			// client port.
			setup: func(t *testing.T) {
				hostExec(t, n2, "systemd-run --unit hostile-port --quiet systemd-socket-activate -l 4222 /bin/cat && sleep 0.5 && ss -Htln 'sport = :4222' | grep -q 4222")
			},
			undo: func(t *testing.T) { hostExec(t, n2, "systemctl stop hostile-port") },
			code: 1,
			want: []string{"host nats-2 (172.31.253.12): port 4222 (nats.client_port) is already in use by", "hostile-port.service",
				"stop it there, or set nats.client_port to a free port", "nothing was changed on any host"},
		},
		{
			name: "port in use outside any unit",
			setup: func(t *testing.T) {
				hostExec(t, n3, "setsid sh -c 'echo $$ > /run/hostile-port.pid; exec systemd-socket-activate -l 8222 /bin/cat' </dev/null >/dev/null 2>&1 & sleep 0.5; ss -Htln 'sport = :8222' | grep -q 8222")
			},
			undo: func(t *testing.T) { hostExec(t, n3, "kill $(cat /run/hostile-port.pid); rm -f /run/hostile-port.pid") },
			code: 1,
			want: []string{"host nats-3 (172.31.253.13): port 8222 (nats.http_port) is already in use by systemd-socket-activate (pid ", "outside any systemd unit", "nothing was changed on any host"},
		},
		{
			name: "wrong host key",
			// nats-3's known_hosts line holds nats-1's key.
			edits: func(t *testing.T) []func(string) string {
				bad := strings.Replace(hostKeyLine(t, string(known), n1), n1.Address, n3.Address, 1)
				return []func(string) string{knownHostsCopy(t, "wrongkey", replace(hostKeyLine(t, string(known), n3), bad))}
			},
			code: 1,
			want: []string{"host nats-3", "SHA256:", "nothing was changed on any host"},
		},
		{
			name: "no systemd",
			// systemctl gone, as on a host run by another init: the
			// facts see no systemd.
			setup: func(t *testing.T) { hostExec(t, n3, "mv /usr/bin/systemctl /usr/bin/systemctl.hidden") },
			undo:  func(t *testing.T) { hostExec(t, n3, "mv /usr/bin/systemctl.hidden /usr/bin/systemctl") },
			code:  1,
			want:  []string{"host nats-3", "systemd not found; natsdeploy runs every service as a systemd unit", "nothing was changed on any host"},
		},
		{
			name: "artifact with a wrong checksum",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{artifactCopy(t, "badsum", func(dir string) {
					b, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
					if err != nil {
						t.Fatal(err)
					}
					s := string(b)
					flip := "0"
					if s[0] == '0' {
						flip = "1"
					}
					if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(flip+s[1:]), 0o644); err != nil {
						t.Fatal(err)
					}
				})}
			},
			// The control machine's own file, like a bad inventory: exit 2,
			// said once however many hosts need it.
			code: 2,
			want: []string{"checksum mismatch", "delete the file and fetch it again", "nothing was changed on any host"},
			once: "checksum mismatch",
		},
		{
			name: "truncated tarball",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{artifactCopy(t, "truncated", func(dir string) { truncate(t, dir, false) })}
			},
			code: 2,
			want: []string{"checksum mismatch"},
			once: "checksum mismatch",
		},
		{
			name: "truncated tarball with a matching checksum file",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{artifactCopy(t, "truncated-summed", func(dir string) { truncate(t, dir, true) })}
			},
			code: 2,
			want: []string{"nats-server v2.14.9", "unexpected EOF", "nothing was changed on any host"},
			once: "unexpected EOF",
		},
		{
			name: "sudo asks a password, no terminal",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{replace(`address = "172.31.253.12"`, `address = "172.31.253.12"`+"\n"+`ssh_user = "`+sudoUser+`"`)}
			},
			code:  1,
			want:  []string{"host nats-2", "needs a sudo password", "set sudo_password_env in [ssh]", "nothing was changed on any host"},
			never: []string{"hostile-sudo-pw-0xC0FFEE"},
		},
		{
			name: "sudo password wrong",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{
					replace(`address = "172.31.253.12"`, `address = "172.31.253.12"`+"\n"+`ssh_user = "`+sudoUser+`"`),
					replace("[ssh]\n", "[ssh]\nsudo_password_env = \"HOSTILE_SUDO_PW\"\n"),
				}
			},
			env:   []string{"HOSTILE_SUDO_PW=not-the-password-0xBAD"},
			code:  1,
			want:  []string{"host nats-2", "sudo refused the password given for " + sudoUser, "nothing was changed on any host"},
			never: []string{"hostile-sudo-pw-0xC0FFEE", "not-the-password-0xBAD"},
		},
		{
			name: "jump host refuses the user",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{replace(`address = "172.31.253.13"`, `address = "172.31.253.13"`+"\n"+`jump = "nobody-here@172.31.253.11"`)}
			},
			code: 1,
			want: []string{"host nats-3", "172.31.253.11", "nobody-here", "nothing was changed on any host"},
		},
		{
			name: "jump host port closed",
			edits: func(t *testing.T) []func(string) string {
				return []func(string) string{replace(`address = "172.31.253.13"`, `address = "172.31.253.13"`+"\n"+`jump = "deploy@172.31.253.11:2222"`)}
			},
			code: 1,
			want: []string{"host nats-3", "172.31.253.11:2222", "nothing was changed on any host"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup(t)
			}
			if c.undo != nil {
				defer c.undo(t)
			}
			var edits []func(string) string
			if c.edits != nil {
				edits = c.edits(t)
			}
			inv := writeInventory(t, "hostile-"+strings.ReplaceAll(c.name, " ", "-"), edits...)
			before := snapshot(t, hosts)
			out, code := natsdeployEnv(t, c.env, "apply", inv)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if c.once != "" && strings.Count(out, c.once) != 1 {
				t.Errorf("output says %q %d times, want once", c.once, strings.Count(out, c.once))
			}
			for _, w := range c.never {
				if strings.Contains(out, w) {
					t.Errorf("output shows %q", w)
				}
			}
			sameSnapshot(t, before, snapshot(t, hosts))
			noLeftovers(t, hosts)
		})
	}
}

// watchCmdlines samples every process's command line on h until stop
// exists, counting the samples, those that showed the secret in
// secretFile, and those that caught a sudo running: proof that the list
// was looked at while natsdeploy worked there. It returns a function that
// stops it and reports "SAMPLES HITS SUDO".
func watchCmdlines(t *testing.T, h lab.Host, secretFile string) func() (samples, hits, sudo int) {
	t.Helper()
	const stop = "/run/hostile-watch-stop"
	hostExec(t, h, "rm -f "+stop)
	done := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := lab.Exec(ctx, h.Container, "sh", "-c", `s=0; hits=0; sudo=0
while [ ! -e `+stop+` ]; do
	all=$(for p in /proc/[0-9]*; do tr '\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done)
	s=$((s+1))
	if printf '%s\n' "$all" | grep -q -F -f `+secretFile+`; then hits=$((hits+1)); fi
	if printf '%s\n' "$all" | grep -q '^sudo '; then sudo=$((sudo+1)); fi
done
echo "$s $hits $sudo"`)
		if err != nil {
			out = "error: " + err.Error() + " " + out
		}
		done <- strings.TrimSpace(out)
	}()
	return func() (samples, hits, sudo int) {
		hostExec(t, h, "touch "+stop)
		out := <-done
		if _, err := fmt.Sscan(out, &samples, &hits, &sudo); err != nil {
			t.Fatalf("%s: process watcher: %q: %v", h.Name, out, err)
		}
		return samples, hits, sudo
	}
}

// TestHostileConverge: hostile hosts natsdeploy works with (a jump host, a
// sudo that wants a password) or gets through (a full disk, a slow and
// lossy network) without leaving anything half done.
func TestHostileConverge(t *testing.T) {
	bare(t)
	hosts := lab.Hosts()
	n1, n2, n3 := hosts[0], hosts[1], hosts[2]
	const pw = "converge-sudo-pw-0xF00D"
	const pwFile = "/root/.hostile-pw"
	sudoUserOn(t, n2, pw)
	hostExec(t, n2, "umask 077; printf '%s\\n' '"+pw+"' > "+pwFile)
	env := []string{"HOSTILE_SUDO_PW=" + pw}
	// nats-2 and nats-3 are reached through nats-1; nats-2 as a user whose
	// sudo asks for its password.
	edits := []func(string) string{
		replace("[ssh]\n", "[ssh]\nsudo_password_env = \"HOSTILE_SUDO_PW\"\n"),
		replace(`address = "172.31.253.12"`, `address = "172.31.253.12"`+"\n"+`ssh_user = "`+sudoUser+`"`+"\n"+`jump = "deploy@172.31.253.11"`),
		replace(`address = "172.31.253.13"`, `address = "172.31.253.13"`+"\n"+`jump = "deploy@172.31.253.11"`),
	}
	base := writeInventory(t, "hostile-base", edits...)
	with := func(name string, more ...func(string) string) string {
		return writeInventory(t, name, append(append([]func(string) string{}, edits...), more...)...)
	}

	t.Run("jump host and sudo password: apply converges", func(t *testing.T) {
		stop := watchCmdlines(t, n2, pwFile)
		out, code := natsdeployEnv(t, env, "apply", base)
		samples, hits, sudo := stop()
		t.Logf("nats-2 process list: %d samples during the apply, %d with sudo running, %d showing the password", samples, sudo, hits)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		if strings.Contains(out, pw) {
			t.Error("the sudo password is in natsdeploy's output")
		}
		if hits != 0 {
			t.Errorf("the sudo password was in nats-2's process list in %d of %d samples", hits, samples)
		}
		if sudo == 0 {
			t.Errorf("no sample of %d caught a sudo running: the process list check proves nothing", samples)
		}
		if got := hostExec(t, n2, "journalctl --no-pager -o cat | grep -c -F -f "+pwFile+" || true"); got != "0" {
			t.Errorf("the sudo password is in nats-2's journal %s time(s)", got)
		}
		// Through the bastion: sshd on nats-2 and nats-3 saw the
		// logins come from nats-1.
		for _, c := range []struct {
			h    lab.Host
			user string
		}{{n2, sudoUser}, {n3, "deploy"}} {
			if got := hostExec(t, c.h, "journalctl --no-pager -o cat -u ssh | grep -c 'Accepted publickey for "+c.user+" from "+n1.Address+" ' || true"); got == "0" {
				t.Errorf("%s: no login of %s from %s in sshd's journal", c.h.Name, c.user, n1.Address)
			}
		}
		checkCluster(t, hosts)
		noLeftovers(t, hosts)
	})

	t.Run("re-apply: nothing to do, its own ports are no clash", func(t *testing.T) {
		before, snap := pids(t), snapshot(t, hosts)
		out, code := natsdeployEnv(t, env, "apply", "--no-verify", base)
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Fatalf("exit %d, want 0 and nothing to do", code)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed: %v -> %v", before, after)
		}
		sameSnapshot(t, snap, snapshot(t, hosts))
	})

	t.Run("full disk on nats-2 while staging", func(t *testing.T) {
		// /etc/nats on a tmpfs holding the same files, then filled.
		hostExec(t, n2, `set -e
mkdir -p /root/hostile-etc-nats && cp -a /etc/nats/. /root/hostile-etc-nats/
m=$(stat -c %a /etc/nats); u=$(stat -c %u /etc/nats); g=$(stat -c %g /etc/nats)
mount -t tmpfs -o size=512k,mode=$m,uid=$u,gid=$g hostile-full /etc/nats
cp -a /root/hostile-etc-nats/. /etc/nats/
dd if=/dev/zero of=/etc/nats/zz-filler bs=4k 2>/dev/null || true
test "$(df --output=avail /etc/nats | tail -n 1 | tr -d ' ')" -eq 0`)
		changed := with("hostile-full", replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`))
		before, snap := pids(t), snapshot(t, hosts)
		out, code := natsdeployEnv(t, env, "apply", "--no-verify", changed)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, w := range []string{"host nats-2", "no file was swapped in on any host"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
		after := snapshot(t, hosts)
		for _, h := range hosts {
			if h == n2 {
				// The filler is the test's own.
				continue
			}
			if after[h.Name] != snap[h.Name] {
				t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", h.Name, snap[h.Name], after[h.Name])
			}
		}
		if got := hostExec(t, n2, "cd /etc/nats && sha256sum $(ls | grep -v zz-filler) | sort"); got != hostExec(t, n2, "cd /root/hostile-etc-nats && sha256sum * | sort") {
			t.Errorf("nats-2's /etc/nats changed:\n%s", got)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed: %v -> %v", before, after)
		}
		noLeftovers(t, hosts)

		// Space back: the tmpfs goes (nats-server's own mount namespace,
		// made when it started, never saw it), leaving /etc/nats as it
		// was, which nothing changed.
		hostExec(t, n2, "umount /etc/nats")
		out, code = natsdeployEnv(t, env, "apply", "--no-verify", changed)
		if code != 0 || !strings.Contains(out, "reload confirmed") {
			t.Fatalf("apply after freeing space: exit %d, want 0 with the reload confirmed", code)
		}
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed on a reload: %v -> %v", before, after)
		}
		noLeftovers(t, hosts)
	})

	// This lab machine's kernel has no sch_netem, so the hostile network
	// is made of what it has: a token bucket (sch_tbf) at 8 Mbit/s on both
	// ends of nats-3's link (its eth0, and the host's veth toward it), and
	// that link flapping, down 2 s in every 6, while apply runs.
	t.Run("slow, flapping network on nats-3", func(t *testing.T) {
		if _, err := exec.LookPath("tc"); err != nil {
			t.Skip("tc (iproute2) is not installed on this machine")
		}
		veth := hostVeth(t, n3)
		const tbf = "root tbf rate 8mbit burst 32kbit latency 500ms"
		hostExec(t, n3, "tc qdisc add dev eth0 "+tbf)
		if out, err := exec.Command("sh", "-c", "tc qdisc add dev "+veth+" "+tbf).CombinedOutput(); err != nil {
			hostExec(t, n3, "tc qdisc del dev eth0 root")
			t.Fatalf("shape %s: %v\n%s", veth, err, out)
		}
		unshape := func() {
			_ = exec.Command("tc", "qdisc", "del", "dev", veth, "root").Run()
			_, _ = lab.Exec(context.Background(), n3.Container, "tc", "qdisc", "del", "dev", "eth0", "root")
		}
		defer unshape()
		stop, flapped := make(chan struct{}), make(chan int)
		go func() {
			n := 0
			defer func() { flapped <- n }()
			for {
				select {
				case <-stop:
					return
				case <-time.After(4 * time.Second):
				}
				_ = exec.Command("ip", "link", "set", veth, "down").Run()
				n++
				time.Sleep(2 * time.Second)
				_ = exec.Command("ip", "link", "set", veth, "up").Run()
			}
		}()
		changed := with("hostile-slow",
			replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "tools.dev.*"`),
			replace(`"prod.*", "logs.prod.*"`, `"prod.*", "tools.prod.*", "logs.prod.*"`))
		start := time.Now()
		out, code := natsdeployEnv(t, env, "apply", "--no-verify", changed)
		close(stop)
		flaps := <-flapped
		_ = exec.Command("ip", "link", "set", veth, "up").Run()
		t.Logf("apply over a slow link that went down %d times: exit %d in %s", flaps, code, time.Since(start).Round(time.Second))
		if flaps == 0 {
			t.Errorf("the link never went down during the apply: the test proved nothing about flapping")
		}
		switch code {
		case 0:
			// A reload (the suite's converged cluster) or a whole install
			// (this subtest run alone, on bare hosts).
			if !strings.Contains(out, "applied in") {
				t.Errorf("exit 0 without saying it applied")
			}
		case 1:
			// Stopped cleanly: it says so; what it owed is recorded and the
			// next apply finishes it.
			if !strings.Contains(out, "nothing was changed on any host") && !strings.Contains(out, "run apply again to finish") &&
				!strings.Contains(out, "no file was swapped in on any host") {
				t.Errorf("exit 1 without saying what state the hosts are in")
			}
		default:
			t.Fatalf("exit %d, want 0 or 1", code)
		}
		unshape()
		if _, code := natsdeployEnv(t, env, "apply", "--no-verify", changed); code != 0 {
			t.Fatalf("apply with the network back: exit %d, want 0", code)
		}
		out, code = natsdeployEnv(t, env, "plan", changed)
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Errorf("plan after: exit %d, want 0 and nothing to do", code)
		}
		checkCluster(t, hosts)
		noLeftovers(t, hosts)
	})

	t.Run("host key changes between runs", func(t *testing.T) {
		t.Cleanup(func() {
			if err := lab.WriteKnownHosts(context.Background()); err != nil {
				t.Error(err)
			}
		})
		hostExec(t, n3, "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q >/dev/null 2>&1 || ssh-keygen -A >/dev/null; systemctl restart ssh")
		changed := with("hostile-hostkey", replace(`"dev.*", "logs.dev.*", "metrics.dev.*"`, `"dev.*", "logs.dev.*", "metrics.dev.*", "keys.dev.*"`))
		before, snap := pids(t), snapshot(t, hosts)
		out, code := natsdeployEnv(t, env, "apply", changed)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if !strings.Contains(out, "host nats-3") || strings.Count(out, "SHA256:") < 2 || !strings.Contains(out, "nothing was changed on any host") {
			t.Errorf("want nats-3 named with both fingerprints and nothing changed")
		}
		sameSnapshot(t, snap, snapshot(t, hosts))
		if after := pids(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("PIDs changed: %v -> %v", before, after)
		}
		noLeftovers(t, hosts)
	})
}

// hostVeth names this machine's end of h's eth0: the interface whose
// index is the container's eth0 iflink.
func hostVeth(t *testing.T, h lab.Host) string {
	t.Helper()
	idx := hostExec(t, h, "cat /sys/class/net/eth0/iflink")
	links, err := filepath.Glob("/sys/class/net/*/ifindex")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if b, err := os.ReadFile(l); err == nil && strings.TrimSpace(string(b)) == idx {
			return filepath.Base(filepath.Dir(l))
		}
	}
	t.Fatalf("%s: no interface here with index %s (its eth0's peer)", h.Name, idx)
	return ""
}
