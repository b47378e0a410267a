#!/usr/bin/env bash
# Debian packages that the device side, the boot chain and their tests use. Idempotent: does nothing
# when every package is present already.
set -euo pipefail
packages=(
  btrfs-progs u-boot-tools libubootenv-tool zstd rsync
  qemu-system-x86 qemu-utils dosfstools mtools busybox-static cpio kmod
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present"
  exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
