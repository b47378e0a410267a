#!/usr/bin/env bash
# The streams disk of the power-cut flows (the guest's "download" source, /dev/vdb, never logged):
#   4-full          a full send stream of release 4 (snapshot 1 + release file + a 2 MiB payload)
#   5-incremental   release 5 sent with release 4 as its parent (the payload changed, a file added)
#   7-full          the same bytes as 4-full, for the receive that is cut short (GC flow)
# Built from snapshot 1 of the base disk on a scratch copy of its btrfs partition, so the streams carry
# the same kernel, initrd and guest as the device. Layout: the first 4 KiB list "name offset_mib length".
# Usage: make-streams.sh BASE_DISK OUT_IMAGE
set -euo pipefail
base=$1 out=$2
work=$(mktemp -d /tmp/cowroot-powercut-streams.XXXXXX)
mnt=$work/mnt
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || umount -l "$mnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT
read -r start size < <(sfdisk -J "$base" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][1]; print(p["start"], p["size"])')
dd if="$base" of="$work/pool.img" bs=512 skip="$start" count="$size" conv=sparse status=none
mkdir -p "$mnt"
# a copy of the device's pool has the device's fsid: a fresh one keeps the host from confusing the two
btrfstune -f -u "$work/pool.img" >/dev/null 2>&1 || true
mount -o loop "$work/pool.img" "$mnt"
mkdir "$mnt/build"
btrfs -q subvolume snapshot "$mnt/snapshots/1" "$mnt/build/4"
echo 4 >"$mnt/build/4/etc/cowroot-release"
mkdir -p "$mnt/build/4/usr/share/cowroot"
head -c 2M /dev/urandom >"$mnt/build/4/usr/share/cowroot/payload"
btrfs property set -ts "$mnt/build/4" ro true
btrfs -q send -f "$work/4-full" "$mnt/build/4"
btrfs -q subvolume snapshot "$mnt/build/4" "$mnt/build/5"
echo 5 >"$mnt/build/5/etc/cowroot-release"
head -c 1M /dev/urandom | dd of="$mnt/build/5/usr/share/cowroot/payload" bs=1M seek=1 conv=notrunc status=none
echo "added in release 5" >"$mnt/build/5/usr/share/cowroot/release-5-notes"
btrfs property set -ts "$mnt/build/5" ro true
btrfs -q send -p "$mnt/build/4" -f "$work/5-incremental" "$mnt/build/5"
umount "$mnt"

: >"$work/header"
offset=1
truncate -s 1M "$work/streams.img"
for name in 4-full 5-incremental; do
  length=$(stat -c %s "$work/$name")
  echo "$name $offset $length" >>"$work/header"
  [ "$name" = 4-full ] && echo "7-full $offset $length" >>"$work/header"
  cat "$work/$name" >>"$work/streams.img"
  offset=$(( offset + (length + 1048575) / 1048576 ))
  truncate -s "${offset}M" "$work/streams.img"
done
dd if="$work/header" of="$work/streams.img" conv=notrunc status=none
mv "$work/streams.img" "$out"
cat "$work/header" >&2
