#!/usr/bin/env bash
# Power cut at every write (docs/boot-safety.md). Needs root, loop devices, qemu-system-i386, btrfs-progs,
# mtools (tools/vdev/build-artifacts.sh installs the rest).
#   tools/powercut/run.sh                                  # every flow, the full run
#   tools/powercut/run.sh --flow install-full --state 60   # one state alone
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundle=$(mktemp -d /tmp/cowroot-powercut.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
node "$repo/tools/bundle.mjs" "$here/main.ts" "$bundle/powercut.cjs"
node "$bundle/powercut.cjs" --tools-dir "$repo/tools" "$@"
