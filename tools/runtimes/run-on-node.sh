#!/usr/bin/env bash
# Runs cowroot's tests on the Node.js releases it supports besides the machine's own node 20, which
# `npm test` covers (README "Supported Node.js versions"). Each runtime comes from the npm registry
# (install-node.sh, cached in /var/cache/cowroot/node); jest runs under it as `<node> node_modules/.bin/jest`
# with that node first on PATH, so what the tests spawn runs on it too.
#   npm run test:runtimes [-- plan ...]     plans (default: all, in this order):
#   server-22      server and CLI unit + integration suites on Node 22 LTS
#   agent-18       the agent's, device core's and protocol's suites on Node 18.20 (Debian 12 today), in
#                  process; without the suites that start the fleet server in the same process
#                  (agent-server.int-spec.ts, mqtt/mqtt-link.int-spec.ts): the server needs Node 20
#                  (NestJS 11; on 18 `crypto is not defined` at boot)
#   bundle-18.19   the shipped bundle's own tests (bundle.int-spec.ts, unit-flags.int-spec.ts) with the
#                  bundle on Node 18.19.0, the oldest supported agent runtime; jest and its broker stay on
#                  the machine's node: aedes cannot load on 18.19 (import attributes came in 18.20)
#   bundle-20.19   the same on Node 20.19.2 (Debian 13)
#   bundle-22      the same on Node 22 LTS (Alpine 3.21, and the server's runtime)
#   refuse-old     the bundle on Node 12, 14 and 16 (Debian 11, Ubuntu 22.04, Yocto kirkstone) must exit 1
#                  with the one line naming the version it needs
# Environment as for npm test (TEST_DATABASE_URL, COWROOT_REQUIRE_PRIVILEGED). Prints each plan's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tools/runtimes
plans=("$@")
[ ${#plans[@]} -gt 0 ] || plans=(server-22 agent-18 bundle-18.19 bundle-20.19 bundle-22 refuse-old)
export NODE_OPTIONS=--experimental-vm-modules

node_for() { bash "$here/install-node.sh" "$1"; }

# jest under <node>: run_jest <node> <jest args...>
run_jest() {
  local node=$1
  shift
  PATH="$(dirname "$node"):$PATH" "$node" node_modules/.bin/jest --runInBand "$@"
}

run_plan() {
  case "$1" in
    server-22)
      run_jest "$(node_for "$(bash "$here/versions.sh" 22)")" apps/server apps/cli
      ;;
    agent-18)
      run_jest "$(node_for "$(bash "$here/versions.sh" 18)")" apps/agent libs/device libs/protocol \
        --testPathIgnorePatterns 'apps/agent/src/(agent-server|mqtt/mqtt-link)\.int-spec\.ts$'
      ;;
    bundle-18.19 | bundle-20.19 | bundle-22)
      local version
      case "$1" in
        bundle-18.19) version=$(bash "$here/versions.sh" oldest-agent) ;;
        bundle-20.19) version=$(bash "$here/versions.sh" 20) ;;
        bundle-22) version=$(bash "$here/versions.sh" 22) ;;
      esac
      COWROOT_TEST_AGENT_NODE=$(node_for "$version") run_jest "$(command -v node)" \
        apps/agent/src/bundle.int-spec.ts apps/agent/src/runtime/unit-flags.int-spec.ts
      ;;
    refuse-old)
      local bundle minimum version out status
      bundle=$(mktemp -d)/cowroot-agent.js
      node tools/bundle.mjs apps/agent/src/main.ts "$bundle" --executable
      minimum=$(bash "$here/versions.sh" oldest-agent)
      for version in 12.22.12 14.21.3 16.20.2; do
        status=0
        out=$("$(node_for "$version")" "$bundle" --version 2>&1) || status=$?
        expected="cowroot-agent: needs Node.js $minimum or newer, found Node.js v$version; install a newer nodejs (docs/agent.md §1)"
        if [ "$status" -ne 1 ] || [ "$out" != "$expected" ]; then
          printf 'refuse-old: node %s: exit %s, printed:\n%s\nexpected exit 1 and:\n%s\n' "$version" "$status" "$out" "$expected" >&2
          rm -rf "$(dirname "$bundle")"
          return 1
        fi
        echo "refuse-old: node $version refused with exit 1: $out"
      done
      rm -rf "$(dirname "$bundle")"
      ;;
    *)
      echo "run-on-node.sh: unknown plan $1 (server-22 agent-18 bundle-18.19 bundle-20.19 bundle-22 refuse-old)" >&2
      return 2
      ;;
  esac
}

failed=()
for plan in "${plans[@]}"; do
  echo "== runtimes: $plan"
  started=$(date +%s)
  status=0
  run_plan "$plan" || status=$?
  echo "== runtimes: $plan $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s"
  [ "$status" -eq 0 ] || failed+=("$plan")
done
[ ${#failed[@]} -eq 0 ] || { echo "runtimes: failed: ${failed[*]}" >&2; exit 1; }
