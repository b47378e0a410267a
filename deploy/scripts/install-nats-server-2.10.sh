#!/usr/bin/env bash
# nats-server 2.10 beside Debian bookworm's 2.9 (the system package and its service on 4222 stay as they
# are): NATS 2.10 reworked the MQTT session handling that limits the cluster mode on 2.9 (docs/scale-out.md).
# The .deb comes from Debian trixie through apt itself, with a private configuration (its own sources
# list, lists and cache under $NATS210_APT_DIR), so apt verifies the signed Release, the Packages index
# and the .deb's hash exactly as for an install, and the system's sources never see trixie. The package is
# unpacked, not installed: its binary depends only on libc6 >= 2.34 (bookworm has 2.36).
# Idempotent: does nothing when $NATS210_PREFIX already holds a 2.10 binary. Called by install-system-deps.sh.
set -euo pipefail
prefix=${NATS210_PREFIX:-/opt/cowroot/nats-server-2.10}
apt_dir=${NATS210_APT_DIR:-/var/cache/cowroot/apt-trixie}
binary="$prefix/usr/sbin/nats-server"

version_of() { "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}//p'; }

if [ -x "$binary" ] && [[ "$(version_of "$binary")" == 2.10.* ]]; then
  echo "nats-server $(version_of "$binary") present at $binary"
  exit 0
fi

mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
cat >"$apt_dir/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
apt_options=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::State::status=/dev/null"
  # the download goes to a directory of root's; apt's _apt sandbox user could not write there
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
)
apt-get "${apt_options[@]}" update -qq
(cd "$apt_dir/download" && rm -f nats-server_*.deb && apt-get "${apt_options[@]}" download nats-server/trixie)
deb=$(ls "$apt_dir/download"/nats-server_*.deb)
staging="$prefix.new"
rm -rf "$staging"
mkdir -p "$staging"
dpkg-deb -x "$deb" "$staging"
version=$(version_of "$staging/usr/sbin/nats-server")
if [[ "$version" != 2.10.* ]]; then
  echo "install-nats-server-2.10.sh: trixie's nats-server is '$version', not 2.10 ($deb)" >&2
  rm -rf "$staging"
  exit 1
fi
rm -rf "$prefix"
mv "$staging" "$prefix"
echo "nats-server $version installed at $binary (from $(basename "$deb"), Debian trixie)"
