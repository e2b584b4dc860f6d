#!/usr/bin/env bash
# natsdeploy's built-in test lab: three Debian 12 hosts running systemd and
# sshd, each in a Docker container on a private network, plus the offline
# artifacts (nats-server release tarballs) and the developer tools.
#
#   lab.sh deps           install docker.io, debootstrap, openssh-client (only if missing)
#   lab.sh tools          natscli and staticcheck into bin/tools (only if missing)
#   lab.sh tools-mutate   gremlins (mutation testing) into bin/tools (only if missing)
#   lab.sh docker-start   start dockerd in the background if no daemon answers
#   lab.sh docker-stop    stop the dockerd that docker-start started (and only that one)
#   lab.sh image          build the base image with debootstrap (reused when present)
#   lab.sh artifacts      nats-server and Prometheus release tarballs + checksums under .lab/artifacts
#   lab.sh up             create missing hosts, keep running healthy ones
#   lab.sh reset          recreate every host from the image (a clean slate)
#   lab.sh down           remove the hosts and the network (the image is kept)
#   lab.sh known-hosts    rewrite .lab/known_hosts from the containers' host keys
#   lab.sh check          ssh into every host as deploy, strict host key checking
#   lab.sh status         show the hosts
#
# Everything the lab makes lives in .lab/ at the repository root (git-ignored):
# the SSH key pair (id_ed25519), known_hosts, artifacts/, dockerd.log/.pid.
# The only addresses the lab talks to are its own containers' (172.31.253.0/24).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_DIR=${NATSDEPLOY_LAB_DIR:-$ROOT/.lab}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

# Fixed lab facts; inventory/lab.toml and internal/lab/lab.go use the same.
NET=natsdeploy-lab
SUBNET=172.31.253.0/24
GATEWAY=172.31.253.1
# Bump the -vN suffix whenever the recipe in build_image changes.
IMAGE=natsdeploy-lab:bookworm-v1
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,sudo,curl
# The lab has 3 hosts unless NATSDEPLOY_LAB_HOSTS says otherwise (1 to 9:
# nats-N at 172.31.253.1N); `up` with a smaller number removes the hosts
# beyond it.
MAX_HOSTS=9
LAB_HOSTS=${NATSDEPLOY_LAB_HOSTS:-3}
[[ $LAB_HOSTS =~ ^[1-9]$ ]] || { echo "lab: error: NATSDEPLOY_LAB_HOSTS=$LAB_HOSTS: want a number of hosts from 1 to $MAX_HOSTS" >&2; exit 2; }
NAMES=() ADDRS=()
for ((i = 1; i <= LAB_HOSTS; i++)); do
	NAMES+=("nats-$i")
	ADDRS+=("172.31.253.1$i")
done
LABEL=io.natsdeploy.lab
USER_NAME=deploy

NATS_SERVER_VERSIONS=(2.14.9 2.15.2)
# Prometheus 3.Y.Z is Go module github.com/prometheus/prometheus v0.3YY.Z.
PROMETHEUS_VERSION=3.16.0
PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_MODULE_VERSION=v0.316.0
# Built artifacts survive a fresh clone here (CI clones anew each run, but
# keeps the Go caches): a cold Prometheus build takes minutes. Bump the -rN
# suffix whenever the Prometheus recipe in build_prometheus changes.
ARTIFACT_CACHE=${NATSDEPLOY_ARTIFACT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/natsdeploy/lab-artifacts}
PROMETHEUS_RECIPE=r1
NATSCLI=github.com/nats-io/natscli/nats@v0.5.0
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GREMLINS=github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0

KEY=$LAB_DIR/id_ed25519
KNOWN_HOSTS=$LAB_DIR/known_hosts
BOOT_TIMEOUT=${NATSDEPLOY_LAB_BOOT_TIMEOUT:-90}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

container() { printf 'natsdeploy-lab-%s' "${1#nats-}"; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# ---------------------------------------------------------------- deps/tools

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# cloud-init and ruby check the files `natsdeploy lab multipass|vagrant`
# writes (cloud-init schema, ruby -c): the unit tests skip without them.
cmd_deps() {
	local want=(docker.io debootstrap openssh-client cloud-init ruby) missing=() p
	for p in "${want[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "apt packages present: ${want[*]}"
		return
	fi
	say "installing apt packages: ${missing[*]}"
	$SUDO apt-get update -q
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# go_tool BIN MODULE@VERSION: install into bin/tools unless that exact
# module version is already there.
go_tool() {
	local bin=$1 pkg=$2 dir=$ROOT/bin/tools
	local path=${pkg%@*} version=${pkg#*@}
	if [ -x "$dir/$bin" ] && "$GO" version -m "$dir/$bin" 2>/dev/null |
		awk -v v="$version" '$1 == "mod" && $3 == v { found = 1 } END { exit !found }'; then
		say "bin/tools/$bin $version present"
		return
	fi
	say "go install $pkg -> bin/tools/$bin"
	mkdir -p "$dir"
	(cd "$dir" && GOBIN=$dir GOFLAGS=-buildvcs=false "$GO" install "$path@$version")
}

cmd_tools() {
	go_tool nats "$NATSCLI"
	go_tool staticcheck "$STATICCHECK"
}

# Mutation testing (make mutate) only: not part of the everyday tools.
cmd_tools_mutate() {
	go_tool gremlins "$GREMLINS"
}

# ---------------------------------------------------------------- dockerd

docker_up() { docker info >/dev/null 2>&1; }

cmd_docker_start() {
	if docker_up; then
		say "docker daemon is running"
		return
	fi
	command -v dockerd >/dev/null || die "dockerd not found: run 'make deps' (apt-get install docker.io)"
	mkdir -p "$LAB_DIR"
	say "starting dockerd in the background (log: .lab/dockerd.log)"
	# setsid: its own session, so the daemon outlives this shell and its
	# process group. Every descriptor beyond stderr is closed first: a
	# daemon that inherits one holds it for its whole life, such as the
	# lock file of a `flock` this ran under, which then never frees.
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
		done
		exec setsid nohup dockerd >"$LAB_DIR/dockerd.log" 2>&1 </dev/null
	) &
	local i
	for i in $(seq 1 120); do
		if docker_up; then
			# dockerd writes its own pid; remember it as the one we started.
			cp /var/run/docker.pid "$LAB_DIR/dockerd.pid" 2>/dev/null || echo $! >"$LAB_DIR/dockerd.pid"
			say "docker daemon up after $((i / 2))s (pid $(cat "$LAB_DIR/dockerd.pid"))"
			return
		fi
		sleep 0.5
	done
	tail -n 30 "$LAB_DIR/dockerd.log" >&2 || true
	die "docker daemon did not answer within 60s (see .lab/dockerd.log)"
}

cmd_docker_stop() {
	local pidfile=$LAB_DIR/dockerd.pid pid
	if [ ! -s "$pidfile" ]; then
		say "no dockerd started by the lab: leaving the docker daemon alone"
		return
	fi
	pid=$(cat "$pidfile")
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
		say "dockerd (pid $pid) is gone already"
		rm -f "$pidfile"
		return
	fi
	say "stopping the dockerd the lab started (pid $pid)"
	kill -TERM "$pid"
	local i
	for i in $(seq 1 60); do
		[ -d "/proc/$pid" ] || break
		sleep 0.5
	done
	if [ -d "/proc/$pid" ]; then
		say "dockerd still running after 30s: SIGKILL"
		kill -KILL "$pid" || true
	fi
	rm -f "$pidfile"
}

need_docker() {
	docker_up || die "no docker daemon answers: run 'make docker' (or 'make deps docker' on a fresh machine)"
}

# ---------------------------------------------------------------- image

# apt_mirror prints the Debian mirror this machine's own apt sources use, so
# that no host name is written into the project. NATSDEPLOY_LAB_MIRROR wins.
apt_mirror() {
	if [ -n "${NATSDEPLOY_LAB_MIRROR:-}" ]; then
		echo "$NATSDEPLOY_LAB_MIRROR"
		return
	fi
	local f uri=
	# deb822 files: the first enabled "deb" stanza whose Suites has $SUITE
	# (exactly: not bookworm-security), else any deb stanza not a security one.
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk -v suite="$SUITE" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; suites = ""; uris = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					line = $i
					if (line ~ /^[ \t]*#/) continue
					if (match(line, /^[A-Za-z-]+:/)) {
						key = tolower(substr(line, 1, RLENGTH - 1))
						val = substr(line, RLENGTH + 1)
						gsub(/^[ \t]+|[ \t]+$/, "", val)
						if (key == "types") types = val
						else if (key == "suites") suites = val
						else if (key == "uris") uris = val
						else if (key == "enabled") enabled = tolower(val)
					}
				}
				if (enabled == "no" || (" " types " ") !~ / deb /) next
				split(uris, u, /[ \t]+/)
				n = split(suites, s, /[ \t]+/)
				for (j = 1; j <= n; j++) if (s[j] == suite && exact == "") exact = u[1]
				if (fallback == "" && uris !~ /security/) fallback = u[1]
			}
			END { if (exact != "") print exact; else if (fallback != "") print fallback }
		' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ]; then
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -r "$f" ] || continue
			uri=$(awk -v suite="$SUITE" '
				$1 != "deb" { next }
				{ i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } }
				$(i + 1) == suite && exact == "" { exact = $i }
				fallback == "" && $i !~ /security/ { fallback = $i }
				END { if (exact != "") print exact; else if (fallback != "") print fallback }
			' "$f")
			[ -n "$uri" ] && break
		done
	fi
	[ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/}: set NATSDEPLOY_LAB_MIRROR"
	echo "$uri"
}

image_present() { docker image inspect "$IMAGE" >/dev/null 2>&1; }

cmd_image() {
	need_docker
	if image_present; then
		say "lab image $IMAGE present"
		return
	fi
	command -v debootstrap >/dev/null || die "debootstrap not found: run 'make deps'"
	mkdir -p "$LAB_DIR"
	local mirror rootfs
	mirror=$(apt_mirror)
	rootfs=$(mktemp -d /var/tmp/natsdeploy-lab-rootfs.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$rootfs'" EXIT
	say "debootstrap $SUITE from $mirror (about a minute)"
	$SUDO debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" \
		>"$LAB_DIR/debootstrap.log" 2>&1 || {
		tail -n 40 "$LAB_DIR/debootstrap.log" >&2
		die "debootstrap failed (full log: .lab/debootstrap.log)"
	}
	say "customizing the root filesystem"
	# Each container gets its own machine-id (systemd makes one at boot when
	# the file is empty) and its own SSH host keys (made by 'lab.sh up').
	# (dbus's copy must not survive: systemd would take it for every host.)
	$SUDO truncate -s 0 "$rootfs/etc/machine-id"
	$SUDO ln -sfn /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
	$SUDO rm -f "$rootfs"/etc/ssh/ssh_host_*
	# No consoles, no kernel-side units, and no timers that would reach out
	# to a mirror (the lab's hosts are offline, like the real ones may be).
	local unit
	for unit in getty@tty1.service console-getty.service serial-getty@.service \
		systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
		sys-kernel-tracing.mount systemd-journald-audit.socket systemd-firstboot.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer; do
		$SUDO ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
	done
	# First boot of each container: its own SSH host keys, before sshd starts
	# (the image ships none, so no two hosts ever share a key).
	$SUDO tee "$rootfs/etc/systemd/system/natsdeploy-lab-host-keys.service" >/dev/null <<-'EOF'
		[Unit]
		Description=natsdeploy lab: generate this host's own SSH host keys
		Before=ssh.service
		ConditionPathExists=!/etc/ssh/.natsdeploy-lab-host-keys

		[Service]
		Type=oneshot
		ExecStart=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*; ssh-keygen -A; touch /etc/ssh/.natsdeploy-lab-host-keys'

		[Install]
		WantedBy=multi-user.target
	EOF
	$SUDO mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
	$SUDO ln -sfn ../natsdeploy-lab-host-keys.service \
		"$rootfs/etc/systemd/system/multi-user.target.wants/natsdeploy-lab-host-keys.service"
	$SUDO tee "$rootfs/etc/ssh/sshd_config.d/natsdeploy-lab.conf" >/dev/null <<-'EOF'
		# natsdeploy lab: key authentication only, no reverse DNS look-ups.
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UseDNS no
	EOF
	$SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	say "docker import -> $IMAGE"
	$SUDO tar -C "$rootfs" --numeric-owner -c . |
		docker import -c 'CMD ["/sbin/init"]' -c "LABEL $LABEL=image" -m "natsdeploy lab: debootstrap $SUITE minbase + $PACKAGES" - "$IMAGE" >/dev/null
	rm -rf "$rootfs"
	trap - EXIT
	say "lab image $IMAGE built ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'))"
}

# ---------------------------------------------------------------- artifacts

cmd_artifacts() {
	local arch v
	arch=$("$GO" env GOARCH)
	for v in "${NATS_SERVER_VERSIONS[@]}"; do
		local name="nats-server-v$v-linux-$arch"
		local dir="$LAB_DIR/artifacts/nats-server/v$v"
		if [ -s "$dir/$name.tar.gz" ] && [ -s "$dir/SHA256SUMS" ]; then
			say "artifact $name.tar.gz present"
			continue
		fi
		say "building nats-server v$v from the Go module proxy -> .lab/artifacts/nats-server/v$v/"
		local work
		work=$(mktemp -d)
		mkdir -p "$work/bin" "$work/$name" "$dir"
		(cd "$work" && CGO_ENABLED=0 GOBIN="$work/bin" GOFLAGS=-buildvcs=false \
			"$GO" install -trimpath "github.com/nats-io/nats-server/v2@v$v")
		install -m 0755 "$work/bin/nats-server" "$work/$name/nats-server"
		# Byte-stable tarball: sorted names, fixed owner and time, no gzip name.
		tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -c "$name" |
			gzip -n -9 >"$work/$name.tar.gz"
		mv "$work/$name.tar.gz" "$dir/$name.tar.gz"
		(cd "$dir" && sha256sum "$name.tar.gz" >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
		rm -rf "$work"
		note "$(cat "$dir/SHA256SUMS")"
	done
	prometheus_artifact "$arch"
}

# sums_ok DIR SUMS FILE: FILE is in DIR and DIR/SUMS has its matching sha256.
sums_ok() {
	local dir=$1 sums=$2 file=$3
	[ -s "$dir/$file" ] && [ -s "$dir/$sums" ] &&
		(cd "$dir" && grep -E "^[0-9a-f]{64}  $file\$" "$sums" | sha256sum --check --status -)
}

# prometheus_artifact ARCH: .lab/artifacts/prometheus/vX/ in the release
# layout, taken from the lab's artifact cache when a checked copy is there,
# else built from the Go module proxy (and then cached).
prometheus_artifact() {
	local arch=$1
	local name="prometheus-$PROMETHEUS_VERSION.linux-$arch"
	local dir="$LAB_DIR/artifacts/prometheus/v$PROMETHEUS_VERSION"
	local cache="$ARTIFACT_CACHE/prometheus/v$PROMETHEUS_VERSION-$PROMETHEUS_RECIPE"
	if sums_ok "$dir" sha256sums.txt "$name.tar.gz"; then
		say "artifact $name.tar.gz present"
		return
	fi
	mkdir -p "$dir"
	if [ -e "$dir/$name.tar.gz" ]; then
		note ".lab/artifacts/prometheus/v$PROMETHEUS_VERSION/$name.tar.gz fails its checksum: replacing it"
	fi
	if sums_ok "$cache" sha256sums.txt "$name.tar.gz"; then
		say "artifact $name.tar.gz copied from the lab artifact cache ($cache)"
	else
		if [ -e "$cache/$name.tar.gz" ]; then
			note "cached $name.tar.gz fails its checksum: building it again"
		fi
		say "building Prometheus $PROMETHEUS_VERSION ($PROMETHEUS_MODULE@$PROMETHEUS_MODULE_VERSION) from the Go module proxy"
		note "6 minutes or more on 2 cores with cold Go caches; cached afterwards in $cache"
		local start=$SECONDS
		build_prometheus "$arch" "$name" "$cache"
		note "built in $((SECONDS - start))s"
	fi
	cp "$cache/$name.tar.gz" "$dir/.$name.tar.gz.tmp"
	mv "$dir/.$name.tar.gz.tmp" "$dir/$name.tar.gz"
	cp "$cache/sha256sums.txt" "$dir/.sha256sums.txt.tmp"
	mv "$dir/.sha256sums.txt.tmp" "$dir/sha256sums.txt"
	sums_ok "$dir" sha256sums.txt "$name.tar.gz" || die "$dir/$name.tar.gz fails its checksum after copying"
	note "$(cat "$dir/sha256sums.txt")"
}

# build_prometheus ARCH NAME CACHE: NAME.tar.gz and sha256sums.txt into CACHE.
build_prometheus() {
	local arch=$1 name=$2 cache=$3 work src
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	mkdir -p "$work/bin" "$work/$name" "$cache"
	# What official builds stamp in (--version, prometheus_build_info); the
	# build user and date are fixed so that the binary is byte-stable.
	local v=github.com/prometheus/common/version
	local ldflags="-X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=HEAD -X $v.BuildUser=natsdeploy-lab -X $v.BuildDate=19700101-00:00:00"
	(cd "$work" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOBIN="$work/bin" GOFLAGS=-buildvcs=false \
		"$GO" install -trimpath -tags netgo -ldflags "$ldflags" \
		"$PROMETHEUS_MODULE/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
		"$PROMETHEUS_MODULE/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
	install -m 0755 "$work/bin/prometheus" "$work/bin/promtool" "$work/$name/"
	# The release's other files come from the module's own source tree.
	src=$(cd "$work" && "$GO" mod download -json "$PROMETHEUS_MODULE@$PROMETHEUS_MODULE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || die "module source of $PROMETHEUS_MODULE@$PROMETHEUS_MODULE_VERSION not found"
	install -m 0644 "$src/LICENSE" "$src/NOTICE" "$work/$name/"
	install -m 0644 "$src/documentation/examples/prometheus.yml" "$work/$name/prometheus.yml"
	# Byte-stable tarball: sorted names, fixed owner and time, no gzip name.
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -c "$name" |
		gzip -n -9 >"$work/$name.tar.gz"
	(cd "$work" && sha256sum "$name.tar.gz" >sha256sums.txt)
	# Into the cache atomically, the tarball before its checksum file, so a
	# half-written cache entry is never taken for a good one.
	cp "$work/$name.tar.gz" "$cache/.$name.tar.gz.tmp"
	mv "$cache/.$name.tar.gz.tmp" "$cache/$name.tar.gz"
	cp "$work/sha256sums.txt" "$cache/.sha256sums.txt.tmp"
	mv "$cache/.sha256sums.txt.tmp" "$cache/sha256sums.txt"
	rm -rf "$work"
	trap - EXIT
}

# ---------------------------------------------------------------- hosts

ensure_key() {
	mkdir -p "$LAB_DIR"
	chmod 0700 "$LAB_DIR"
	if [ ! -s "$KEY" ] || [ ! -s "$KEY.pub" ]; then
		say "generating the lab's SSH key .lab/id_ed25519"
		rm -f "$KEY" "$KEY.pub"
		ssh-keygen -q -t ed25519 -N '' -C "natsdeploy-lab" -f "$KEY"
	fi
	chmod 0600 "$KEY"
}

ensure_network() {
	local have
	if have=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}} internal={{.Internal}}' "$NET" 2>/dev/null); then
		[ "$have" = "$SUBNET internal=true" ] ||
			die "docker network $NET exists as '$have', want '$SUBNET internal=true': run 'make lab-down'"
		return
	fi
	say "creating docker network $NET ($SUBNET)"
	# --internal: the hosts reach each other and this machine, nothing else.
	docker network create --driver bridge --internal --subnet "$SUBNET" --gateway "$GATEWAY" \
		--label "$LABEL=network" "$NET" >/dev/null
}

run_container() {
	local name=$1 addr=$2 c
	c=$(container "$name")
	local hosts=() i
	for i in "${!NAMES[@]}"; do
		[ "${NAMES[$i]}" = "$name" ] || hosts+=(--add-host "${NAMES[$i]}:${ADDRS[$i]}")
	done
	say "starting $c ($name, $addr)"
	# --stop-signal: systemd as PID 1 shuts down cleanly on SIGRTMIN+3
	# (SIGTERM would only make it re-execute itself).
	local args=(--name "$c" --hostname "$name" --network "$NET" --ip "$addr" "${hosts[@]}"
		--cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined
		--tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:rw
		-e container=docker --stop-signal SIGRTMIN+3 --label "$LABEL=host"
		"$IMAGE" /sbin/init)
	if ! docker run -d "${args[@]}" >/dev/null; then
		# A daemon that was killed can leave a stale endpoint of that name
		# on the network: drop it and try once more.
		note "$c: retrying after removing a stale network endpoint"
		docker rm -f -v "$c" >/dev/null 2>&1 || true
		docker network disconnect --force "$NET" "$c" >/dev/null 2>&1 || true
		docker run -d "${args[@]}" >/dev/null
	fi
}

# wait_booted CONTAINER: until systemd says running (or degraded: then the
# failed units are printed).
wait_booted() {
	local c=$1 state='' end=$((SECONDS + BOOT_TIMEOUT))
	while [ $SECONDS -lt $end ]; do
		state=$(docker exec "$c" systemctl is-system-running 2>/dev/null || true)
		case $state in
		running)
			note "$c: systemd running"
			return 0
			;;
		degraded)
			note "$c: systemd degraded; failed units:"
			docker exec "$c" systemctl --failed --no-legend --plain | sed 's/^/      /'
			return 0
			;;
		esac
		sleep 0.3
	done
	docker logs --tail 30 "$c" >&2 || true
	die "$c: systemd not up after ${BOOT_TIMEOUT}s (last state: '${state:-none}')"
}

# setup CONTAINER: own host keys (once), user deploy with passwordless sudo,
# the lab key as its authorized key. Idempotent.
setup_host() {
	local c=$1
	docker exec -i -e PUBKEY="$(cat "$KEY.pub")" -e LAB_USER="$USER_NAME" "$c" bash -euo pipefail -s <<-'EOF'
		# The image's first-boot unit made this host's own keys; should it
		# not have, make them here (once: known_hosts must stay valid).
		if [ ! -e /etc/ssh/.natsdeploy-lab-host-keys ] || [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then
			rm -f /etc/ssh/ssh_host_*
			ssh-keygen -A >/dev/null
			touch /etc/ssh/.natsdeploy-lab-host-keys
			systemctl reset-failed ssh.service || true
			systemctl restart ssh.service
		fi
		if ! id "$LAB_USER" >/dev/null 2>&1; then
			useradd --create-home --shell /bin/bash "$LAB_USER"
			usermod -p '*' "$LAB_USER"   # no password, but not locked
		fi
		home=$(getent passwd "$LAB_USER" | cut -d: -f6)
		install -d -m 0700 -o "$LAB_USER" -g "$LAB_USER" "$home/.ssh"
		# Add this checkout's key; keep others' (two clones may share one lab).
		ak=$home/.ssh/authorized_keys
		if ! grep -qxF "$PUBKEY" "$ak" 2>/dev/null; then
			{ cat "$ak" 2>/dev/null || true; printf '%s\n' "$PUBKEY"; } >"$ak.new"
			mv "$ak.new" "$ak"
		fi
		chown "$LAB_USER:$LAB_USER" "$ak"
		chmod 0600 "$ak"
		printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$LAB_USER" >/etc/sudoers.d/.deploy.new
		chmod 0440 /etc/sudoers.d/.deploy.new
		visudo -cqf /etc/sudoers.d/.deploy.new
		mv /etc/sudoers.d/.deploy.new "/etc/sudoers.d/$LAB_USER"
		if ! systemctl is-active --quiet ssh.service; then
			systemctl reset-failed ssh.service || true
			systemctl start ssh.service
		fi
	EOF
	note "$c: host keys, user $USER_NAME, sudo, authorized_keys ready"
}

cmd_known_hosts() {
	need_docker
	local tmp=$KNOWN_HOSTS.tmp i c pub
	mkdir -p "$LAB_DIR"
	: >"$tmp"
	for i in "${!NAMES[@]}"; do
		c=$(container "${NAMES[$i]}")
		pub=$(docker exec "$c" cat /etc/ssh/ssh_host_ed25519_key.pub) ||
			die "$c: cannot read its ed25519 host key"
		awk -v addr="${ADDRS[$i]}" 'NF >= 2 { print addr, $1, $2 }' <<<"$pub" >>"$tmp"
	done
	mv "$tmp" "$KNOWN_HOSTS"
	say "wrote .lab/known_hosts (host keys read through docker exec)"
}

ssh_lab() {
	local addr=$1
	shift
	ssh -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
		-o ConnectTimeout=5 -o LogLevel=ERROR "$USER_NAME@$addr" "$@"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/22" 2>/dev/null; }

cmd_check() {
	local i addr out end
	for i in "${!NAMES[@]}"; do
		addr=${ADDRS[$i]}
		end=$((SECONDS + 30))
		until port_open "$addr"; do
			[ $SECONDS -lt $end ] || die "${NAMES[$i]} ($addr): port 22 does not answer"
			sleep 0.3
		done
		end=$((SECONDS + 20))
		# shellcheck disable=SC2016 # expanded on the host, not here
		until out=$(ssh_lab "$addr" 'sudo -n true && echo "$(hostname) sudo=ok systemd=$(systemctl is-system-running)"' 2>&1); do
			[ $SECONDS -lt $end ] || die "${NAMES[$i]} ($addr): ssh as $USER_NAME failed: $out"
			sleep 0.5
		done
		note "ssh $USER_NAME@$addr: $out"
	done
	say "lab is up: ${NAMES[*]} at ${ADDRS[*]}"
}

# healthy CONTAINER ADDR: running, from the current image, on the lab
# network at its address, and systemd up.
healthy() {
	local c=$1 addr=$2 info want state
	info=$(docker inspect -f '{{.State.Running}} {{.Image}} {{with index .NetworkSettings.Networks "'"$NET"'"}}{{.IPAddress}}{{end}}' "$c" 2>/dev/null) || return 1
	want=$(docker image inspect -f '{{.Id}}' "$IMAGE")
	[ "$info" = "true $want $addr" ] || return 1
	state=$(docker exec "$c" systemctl is-system-running 2>/dev/null || true)
	[ "$state" = running ] || [ "$state" = degraded ]
}

cmd_up() {
	local reset=${1:-}
	need_docker
	image_present || die "lab image $IMAGE missing: run 'make lab-image'"
	ensure_key
	ensure_network
	local i c
	for i in "${!NAMES[@]}"; do
		c=$(container "${NAMES[$i]}")
		if [ -z "$reset" ] && healthy "$c" "${ADDRS[$i]}"; then
			say "$c is running and healthy: kept"
		else
			if docker inspect "$c" >/dev/null 2>&1; then
				say "removing $c${reset:+ (reset)}"
				docker rm -f -v "$c" >/dev/null
			fi
			run_container "${NAMES[$i]}" "${ADDRS[$i]}"
		fi
	done
	for ((i = LAB_HOSTS + 1; i <= MAX_HOSTS; i++)); do
		c=$(container "nats-$i")
		if docker inspect "$c" >/dev/null 2>&1; then
			say "removing $c (the lab has $LAB_HOSTS hosts)"
			docker rm -f -v "$c" >/dev/null
		fi
	done
	for i in "${!NAMES[@]}"; do
		c=$(container "${NAMES[$i]}")
		wait_booted "$c"
		setup_host "$c"
	done
	cmd_known_hosts
	cmd_check
}

cmd_down() {
	if ! docker_up; then
		say "no docker daemon answers: nothing to remove"
		return
	fi
	local i c
	for ((i = 1; i <= MAX_HOSTS; i++)); do
		c=$(container "nats-$i")
		if docker inspect "$c" >/dev/null 2>&1; then
			say "removing $c"
			docker rm -f -v "$c" >/dev/null
		fi
	done
	if docker network inspect "$NET" >/dev/null 2>&1; then
		say "removing docker network $NET"
		docker network rm "$NET" >/dev/null
	fi
	say "lab is down (image $IMAGE kept; 'docker rmi $IMAGE' removes it)"
}

cmd_status() {
	need_docker
	docker ps -a --filter "label=$LABEL=host" \
		--format 'table {{.Names}}\t{{.Status}}\t{{.Image}}'
}

case ${1:-} in
deps) cmd_deps ;;
tools) cmd_tools ;;
tools-mutate) cmd_tools_mutate ;;
docker-start) cmd_docker_start ;;
docker-stop) cmd_docker_stop ;;
image) cmd_image ;;
artifacts) cmd_artifacts ;;
up) cmd_up ;;
reset) cmd_up reset ;;
down) cmd_down ;;
known-hosts) cmd_known_hosts ;;
check) cmd_check ;;
status) cmd_status ;;
mirror) apt_mirror ;;
*)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
