#!/usr/bin/env bash
# Size and time of a release build on a real btrfs (root, loop devices): a rootfs made of a copy of
# /usr/bin (~0.5 GB), released as 1, then changed a little (1 MiB rewritten in the largest binary, two
# files in /etc) and released as 2 with --base 1 --delta-from 1. Prints the full stream (the baseline),
# the incremental stream and their ratio, and the build times.
#   bash deploy/release/bench/incremental-size.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
npm run -s build:release >/dev/null
tool=dist/cowroot-release.js
work=$(mktemp -d /tmp/cowroot-release-bench.XXXXXX)
dev=
cleanup() {
  umount "$work/pool" 2>/dev/null || true
  [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s 3G "$work/pool.img"
mkfs.btrfs -q -f "$work/pool.img" >/dev/null 2>&1
dev=$(losetup --find --show "$work/pool.img")
mkdir "$work/pool"
mount "$dev" "$work/pool"

rootfs=$work/rootfs
mkdir -p "$rootfs/boot" "$rootfs/usr" "$rootfs/etc"
cp -a /usr/bin "$rootfs/usr/bin"
printf 'device\n' >"$rootfs/etc/hostname"
head -c 8M /dev/urandom >"$rootfs/boot/vmlinuz-6.1.0-bench"
head -c 20M /dev/urandom >"$rootfs/boot/initrd.img-6.1.0-bench"
node "$tool" keygen --out "$work/key" >/dev/null

seconds() { local start=$1; echo "$(( ($(date +%s%N) - start) / 1000000 )) ms"; }
start=$(date +%s%N)
node "$tool" build --rootfs "$rootfs" --pool "$work/pool" --name bench --version 1 --arch x86 \
  --key "$work/key.key" --out "$work/out1" >/dev/null
echo "release 1 (full stream): $(seconds "$start") for $(du -sh "$rootfs" | cut -f1) rootfs"

largest=$(ls -S "$rootfs/usr/bin" | sed -n 1p)
head -c 1M /dev/urandom | dd of="$rootfs/usr/bin/$largest" bs=1M seek=1 conv=notrunc status=none
printf 'device-2\n' >"$rootfs/etc/hostname"
printf 'new\n' >"$rootfs/etc/new-file"
start=$(date +%s%N)
node "$tool" build --rootfs "$rootfs" --pool "$work/pool" --name bench --version 2 --arch x86 \
  --key "$work/key.key" --out "$work/out2" --base bench@1 --delta-from bench@1 >/dev/null
echo "release 2 (full + incremental streams): $(seconds "$start")"

full=$(stat -c %s "$work/out2/bench-2-full.btrfs.zst")
incremental=$(stat -c %s "$work/out2/bench-2-from-1.btrfs.zst")
echo "full stream (baseline): $full bytes"
echo "incremental stream:     $incremental bytes (1 MiB rewritten in $largest + 2 files in /etc)"
awk -v i="$incremental" -v f="$full" 'BEGIN { printf "ratio incremental/full: %.4f\n", i / f }'
