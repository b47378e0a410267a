#!/usr/bin/env bash
# Builds the server exactly as deploy/docker/server.Dockerfile's build stage does, without a Docker
# engine: every COPY of that stage copies the same paths from the repository into an empty directory,
# every RUN runs there, in order, under the Node.js major of the stage's `FROM node:<major>-…` image
# (installed from the npm registry by tools/runtimes/install-node.sh). So a build that needs a file the
# Dockerfile never copies (tools/, a test fixture) fails here as it fails in `docker compose up`. Then the
# pruned result is started like the runtime stage's CMD, on embedded PGlite, until /readyz answers 200.
#   bash deploy/docker/check-build.sh [Dockerfile]      (KEEP=1 keeps the build directory)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
dockerfile=${1:-deploy/docker/server.Dockerfile}
work=$(mktemp -d /tmp/cowroot-docker-build.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ "${KEEP:-}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# the build stage: from the first FROM to the next one
mapfile -t stage < <(awk '/^FROM /{n++} n==1' "$dockerfile")
major=$(sed -nE '1s/^FROM node:([0-9]+)[-.].*/\1/p' <<<"${stage[0]}")
[ -n "$major" ] || { echo "check-build: the build stage is not FROM node:<major>-…: ${stage[0]}" >&2; exit 1; }
version=$(bash tools/runtimes/versions.sh "$major")
node_bin=$(dirname "$(bash tools/runtimes/install-node.sh "$version")")
echo "check-build: $dockerfile build stage on node $version ($node_bin)"

workdir=/
for line in "${stage[@]}"; do
  read -r op rest <<<"$line" || true
  case "$op" in
    WORKDIR) workdir=$rest ;;
    COPY)
      read -ra args <<<"$rest"
      dest=${args[-1]}
      [[ "$dest" = /* ]] || dest="$workdir/$dest"
      for src in "${args[@]:0:${#args[@]}-1}"; do
        [ -e "$repo/$src" ] || { echo "check-build: COPY $src: no such file in the repository" >&2; exit 1; }
        if [[ "$dest" = */ ]]; then target="$work$dest$(basename "$src")"; else target="$work$dest"; fi
        mkdir -p "$(dirname "$target")"
        cp -a "$repo/$src" "$target"
      done
      ;;
    RUN)
      echo "check-build: RUN $rest"
      (cd "$work$workdir" && PATH="$node_bin:$PATH" bash -euo pipefail -c "$rest")
      ;;
    FROM | '' | '#'*) ;;
    *) echo "check-build: $op is not understood here; teach check-build.sh what docker does with it" >&2; exit 1 ;;
  esac
done

# the runtime stage runs `node dist/apps/server/src/main.js` from what the build stage left
app="$work$workdir"
[ -f "$app/dist/apps/server/src/main.js" ] || { echo "check-build: no dist/apps/server/src/main.js" >&2; exit 1; }
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
(cd "$app" && exec env -i PATH="$node_bin:/usr/bin:/bin" NODE_ENV=production DATA_DIR="$work/data" HTTP_HOST=127.0.0.1 \
  HTTP_PORT="$port" MQTT_HOST=127.0.0.1 MQTT_PORT=0 COWROOT_ADMIN_TOKEN=check-build-admin-token-0123 \
  node dist/apps/server/src/main.js >"$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    echo "check-build: the built server answers /readyz on node $version"
    exit 0
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
echo "check-build: the built server did not become ready; its log:" >&2
cat "$work/server.log" >&2
exit 1
