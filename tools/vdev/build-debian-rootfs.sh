#!/usr/bin/env bash
# Builds (or reuses from the cache) a Debian bookworm rootfs for the virtual device's "real" guest: systemd,
# Debian's nodejs for the bundled agent, btrfs-progs, the u-boot env tools, initramfs-tools and the Debian
# kernel. Minimal otherwise (minbase, no recommends). The cowroot parts (agent, units, initramfs hook) are
# NOT in it: tools/vdev/debian-rootfs.ts installs them into a copy, so a change to the agent does not rebuild
# this tarball.
# Usage: build-debian-rootfs.sh [amd64|arm64]   (default amd64)
# Cache: ${COWROOT_CACHE_DIR:-/var/cache/cowroot}/debian-<arch>-<hash>/rootfs.tar, keyed on this script (it
# holds the package list and the mmdebstrap options) and the arch. The archive moves on, so a cached tar is
# the archive of the day it was built; delete the directory to refresh it.
# Prints nothing on stdout but the final "rootfs_tar=<path>" line.
set -euo pipefail
arch=${1:-amd64}
case "$arch" in
  amd64) kernel=linux-image-amd64 ;;
  arm64) kernel=linux-image-arm64 ;;
  *) echo "build-debian-rootfs.sh: unknown arch '$arch' (amd64 or arm64)" >&2; exit 2 ;;
esac
mirror=${COWROOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(systemd systemd-sysv udev dbus nodejs btrfs-progs u-boot-tools libubootenv-tool initramfs-tools
  "$kernel" zstd ca-certificates kmod iproute2 procps)
key=$( (cat "$0"; echo "$arch $mirror ${packages[*]}") | sha256sum | cut -c1-12)
dir=${COWROOT_CACHE_DIR:-/var/cache/cowroot}/debian-$arch-$key
log() { echo "[debian-rootfs] $*" >&2; }
# a foreign arch runs its maintainer scripts through qemu-user (binfmt_misc): without it mmdebstrap fails
# deep in dpkg --configure, so say what is missing first (deploy/scripts/install-system-deps.sh sets it up)
if [ "$arch" != "$(dpkg --print-architecture)" ] && ! arch-test "$arch" >/dev/null 2>&1; then
  echo "build-debian-rootfs.sh: this host cannot run $arch binaries (arch-test $arch failed): install qemu-user-static binfmt-support arch-test and run update-binfmts --enable qemu-${arch/arm64/aarch64}" >&2
  exit 1
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ ! -s "$dir/rootfs.tar" ]; then
  started=$(date +%s)
  log "mmdebstrap bookworm $arch: ${packages[*]}"
  include=$(IFS=,; echo "${packages[*]}")
  # --variant=apt: essential + apt, nothing of priority important; the include list is the rest.
  # The kernel's postinst and initramfs-tools' trigger each build an initrd with Debian's MODULES=most,
  # which installCowroot (debian-rootfs.ts) replaces with its own MODULES=list one: under qemu-user (arm64)
  # those two runs were most of a 34 min build (as ps showed it). A build-time MODULES=list makes them cheap; the hooks
  # write it once the essential packages are in and take it out before the tarball is made.
  conf=etc/initramfs-tools/conf.d/zz-rootfs-build.conf
  mmdebstrap --quiet --variant=apt --arch="$arch" --include="$include" \
    --essential-hook="mkdir -p \"\$1/${conf%/*}\" && echo MODULES=list >\"\$1/$conf\"" \
    --customize-hook="rm -f \"\$1/$conf\"" \
    --aptopt='APT::Install-Recommends "false"' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --format=tar bookworm "$dir/rootfs.tar.part" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb ${mirror%/debian}/debian-security bookworm-security main" >&2
  mv "$dir/rootfs.tar.part" "$dir/rootfs.tar"
  log "built in $(( $(date +%s) - started )) s ($(du -m "$dir/rootfs.tar" | cut -f1) MiB)"
fi
echo "rootfs_tar=$dir/rootfs.tar"
