#!/usr/bin/env bash
# Time and size of a factory image on real loop devices (root): a release of a copy of /usr/bin
# (~0.5 GB) imaged with the x86 virtual-device board profile (1 GiB disk). Prints the image build time,
# the image size against the bmap's mapped size, and flashing onto a file the way a line would: the
# whole image with dd (the baseline) against bmaptool copy (mapped blocks only), with their ratio.
#   npm run bench:factory
set -euo pipefail
cd "$(dirname "$0")/../../.."
npm run -s build:release >/dev/null
tool=$PWD/dist/cowroot-release.js
work=$(mktemp -d /tmp/cowroot-factory-bench.XXXXXX)
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
mkdir -p "$rootfs/boot" "$rootfs/usr" "$rootfs/etc/cowroot/required.d" "$rootfs/etc/cowroot/wanted.d"
cp -a /usr/bin "$rootfs/usr/bin"
head -c 8M /dev/urandom >"$rootfs/boot/vmlinuz-6.1.0-bench"
head -c 20M /dev/urandom >"$rootfs/boot/initrd.img-6.1.0-bench"
node "$tool" keygen --out "$work/key" >/dev/null
node "$tool" build --rootfs "$rootfs" --pool "$work/pool" --name bench --version 1 --arch x86 \
  --key "$work/key.key" --out "$work/out" >/dev/null
openssl rand -hex 24 >"$work/credential"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
start=$(date +%s%N)
node "$tool" image --release "$work/out" --board deploy/release/boards/qemu-x86-vdev.json --image "$work/dev.img" \
  --release-key "$work/key.pub" --device-id bench-1 --credential-file "$work/credential" \
  --mqtt-url mqtt://127.0.0.1:1883 --http-url http://127.0.0.1:3000 >/dev/null
image_ms=$(ms "$start")
stream=$(stat -c %s "$work/out/bench-1-full.btrfs.zst")
size=$(sed -n 's:.*<ImageSize> *\([0-9]*\) *</ImageSize>.*:\1:p' "$work/dev.img.bmap")
blocks=$(sed -n 's:.*<MappedBlocksCount> *\([0-9]*\) *</MappedBlocksCount>.*:\1:p' "$work/dev.img.bmap")
block=$(sed -n 's:.*<BlockSize> *\([0-9]*\) *</BlockSize>.*:\1:p' "$work/dev.img.bmap")
mapped=$((blocks * block))
echo "rootfs $(du -sh "$rootfs" | cut -f1), full stream $stream bytes (zstd)"
echo "image build: $image_ms ms"
echo "image size: $size bytes; bmap mapped: $mapped bytes"
awk -v m="$mapped" -v s="$size" 'BEGIN { printf "ratio mapped/image: %.4f\n", m / s }'

sync
start=$(date +%s%N)
dd if="$work/dev.img" of="$work/card-dd.img" bs=4M conv=fsync status=none
dd_ms=$(ms "$start")
rm -f "$work/card-dd.img"
sync
start=$(date +%s%N)
bmaptool -q copy "$work/dev.img" "$work/card-bmap.img"
sync -f "$work/card-bmap.img"
bmap_ms=$(ms "$start")
echo "flash with dd (baseline, whole image): $dd_ms ms"
echo "flash with bmaptool (mapped blocks):   $bmap_ms ms"
awk -v b="$bmap_ms" -v d="$dd_ms" 'BEGIN { printf "ratio bmaptool/dd: %.3f\n", b / d }'
