#!/usr/bin/env bash
# Debian packages that the device side, the boot chain and their tests use. Idempotent: does nothing
# when every package is present already.
set -euo pipefail
packages=(
  # device side: btrfs, the u-boot env, release streams
  btrfs-progs u-boot-tools libubootenv-tool zstd rsync
  # factory images: the .bmap next to each image (cowroot-release image, docs/factory.md)
  bmap-tools
  # test certificates for mqtts:// and https:// (apps/agent/src/tls.int-spec.ts)
  openssl
  # a third-party MQTT client: the broker's MQTT 5 refusal (apps/server/src/mqtt/ingest-hardening.int-spec.ts)
  mosquitto-clients
  # psql runs docker-compose's role script in apps/server/src/database/audit-role.int-spec.ts
  postgresql-client
  # the virtual device: QEMU, disk images, the guest's initramfs
  qemu-system-x86 qemu-utils dosfstools mtools fdisk busybox-static cpio kmod
  # building u-boot 2023.01 from Debian's source package (tools/vdev/build-artifacts.sh)
  build-essential bc bison flex libssl-dev uuid-dev libgnutls28-dev swig dpkg-dev
  python3-dev python3-setuptools python3-pyelftools
  # the arm64 virtual device (tools/vdev, board arm64): u-boot cross-built for QEMU virt, and QEMU for it
  gcc-aarch64-linux-gnu qemu-system-arm
  # the arm64 Debian guest's rootfs (build-debian-rootfs.sh arm64): mmdebstrap runs the arm64 maintainer
  # scripts and update-initramfs through qemu-user, registered with binfmt_misc; arch-test checks it works
  qemu-user-static binfmt-support arch-test
  # the cluster broker mode and its tests: NATS with JetStream and the MQTT listener (tools/nats)
  nats-server
  # npm run bench:delta: Debian images from the archive, and the whole-image diff it compares with
  mmdebstrap debootstrap xdelta3
  # the virtual device's Debian guest (tools/vdev/debian-device.int-spec.ts): the rootfs from the archive
  # (mmdebstrap, above), and socat behind QEMU's guestfwd, one per guest connection to the host's loopback
  socat
  # the dashboard's end-to-end tests drive a real browser through playwright-core (apps/web/e2e)
  chromium
)
# binfmt_misc handlers live in the kernel, not the package: a container or a fresh boot may have the
# packages and no handler registered yet (the filesystem unmounted, or binfmt-support's service not run)
register_binfmt() {
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
  arch-test arm64 >/dev/null || { echo "install-system-deps.sh: arm64 binaries still do not run here (arch-test arm64)" >&2; exit 1; }
}
# nats-server 2.10 from Debian trixie beside the 2.9 package above, unpacked into /opt/cowroot (tools/nats
# runs its tests on it when present), with its own private apt configuration
install_nats_210() { "$(dirname "$0")/install-nats-server-2.10.sh"; }
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  register_binfmt
  install_nats_210
  echo "system packages present"
  exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
register_binfmt
install_nats_210
