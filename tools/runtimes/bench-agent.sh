#!/usr/bin/env bash
# npm run bench:agent-runtimes — the agent's receive bench (apps/agent/bench/receive.bench.ts) once per
# supported Node.js: the bench and the bundled agent it starts run on that node, the agent with the node
# flags of its systemd unit. Prints each run's table (receive ratio against zstd | btrfs receive, idle and
# peak RSS), then one summary line per node. Needs root, loop devices, btrfs-progs, libubootenv-tool, zstd.
#   bash tools/runtimes/bench-agent.sh [sizes MiB, default 100]     (BENCH_ROUNDS as for bench:agent, default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${1:-100}
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
npm run --silent build:agent
node tools/bundle.mjs apps/agent/bench/receive.bench.ts dist/bench/agent-receive.js
nodes=("$(bash tools/runtimes/versions.sh oldest-agent)" "$(bash tools/runtimes/versions.sh 18)"
  "$(bash tools/runtimes/versions.sh 20)" "$(bash tools/runtimes/versions.sh 22)")
summary=()
for version in "${nodes[@]}"; do
  node=$(bash tools/runtimes/install-node.sh "$version")
  echo "== node $version"
  out=$("$node" dist/bench/agent-receive.js dist/cowroot-agent.js "$sizes" | tee /dev/stderr)
  summary+=("node $version: $(grep -E '^ +[0-9]+ MiB ' <<<"$out" | sed -E 's/ +/ /g' | paste -sd ';')")
done
echo "== agent receive and RSS per node (medians of $BENCH_ROUNDS rounds; columns as above)"
printf '%s\n' "${summary[@]}"
