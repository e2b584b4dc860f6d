#!/bin/sh
# Managed by natsdeploy; local changes are overwritten by the next apply.
#
# unpack.sh TARBALL DIR [CHECK]
#
# Unpacks a verified Grafana release tarball into DIR, the folder of its
# version, unless DIR is already complete (holds CHECK, default bin/grafana)
# and was unpacked from this very tarball (its sha256 is kept in DIR).
# grafana.service runs it before every start, so an unchanged tarball is
# never unpacked twice, and a new one (a new version, or another build of
# the same version) is.
#
# The tree is unpacked beside DIR and renamed into place, so DIR is either
# absent or complete, even after a crash halfway. The top folder of the
# tarball is stripped: its name differs between releases.
set -eu
tarball=$1
dir=$2
check=${3:-bin/grafana}

sum=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ -f "$dir/$check" ] && [ "$(cat "$dir/.natsdeploy-tarball.sha256" 2>/dev/null)" = "$sum" ]; then
	exit 0
fi
parent=$(dirname "$dir")
tmp=$(mktemp -d "$parent/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp" --strip-components=1 --no-same-owner
if [ ! -f "$tmp/$check" ]; then
	echo "unpack.sh: $tarball has no $check below its top folder; is it a Grafana release tarball?" >&2
	exit 1
fi
echo "$sum" >"$tmp/.natsdeploy-tarball.sha256"
chmod 0755 "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"

# Only the version being started is kept: earlier versions' folders and
# tarballs would otherwise pile up with each upgrade.
for old in "$parent"/[0-9]* "$parent"/grafana-*.tar.gz; do
	case $old in
	"$dir" | "$tarball") ;;
	*) if [ -e "$old" ]; then rm -rf "$old"; fi ;;
	esac
done
