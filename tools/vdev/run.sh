#!/usr/bin/env bash
# Boot the cowroot virtual device by hand and watch its serial console (docs/boot-chain.md).
#   tools/vdev/run.sh --fresh                        # new disk, normal boot of snapshot 1
#   tools/vdev/run.sh --request 2 --control confirm  # try snapshot 2, the guest confirms it
#   tools/vdev/run.sh                                # next boot: u-boot accepts snapshot 2
#   tools/vdev/run.sh --board arm64 --fresh          # the same on QEMU virt arm64 (bootm of uImage + uInitrd)
# Needs root (loop devices for the disk assembly), qemu-system-i386 / -aarch64, btrfs-progs (build-artifacts.sh
# installs the rest). Quit QEMU with Ctrl-A X.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundle=$(mktemp -d /tmp/cowroot-vdev-run.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
node "$repo/tools/bundle.mjs" "$here/run.ts" "$bundle/run.cjs"
node "$bundle/run.cjs" --tools-dir "$here" "$@"
