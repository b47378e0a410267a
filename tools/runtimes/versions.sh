#!/usr/bin/env bash
# The exact Node.js releases CI tests on, by major: `bash tools/runtimes/versions.sh 22` -> 22.23.5.
# One pin per runtime that cowroot supports (README "Supported Node.js versions", docs/agent.md §1):
#   18.19.0  the oldest the agent runs on: Debian 12's nodejs at its release (Ubuntu 24.04: 18.19.1);
#   18.20.4  Debian 12's nodejs today (bookworm and bookworm-security: 18.20.4+dfsg-1~deb12u*);
#   20.19.2  Debian 13's nodejs (the server and CLI use the machine's node 20, >= 20.19 by engines);
#   22.23.5  the server's and CLI's LTS (node:22-bookworm-slim in deploy/docker/server.Dockerfile).
set -euo pipefail
case "${1:?usage: versions.sh <major or oldest-agent>}" in
  oldest-agent) echo 18.19.0 ;;
  18) echo 18.20.4 ;;
  20) echo 20.19.2 ;;
  22) echo 22.23.5 ;;
  *) echo "versions.sh: no pinned Node.js $1 (cowroot supports 18 for the agent, 20 and 22)" >&2; exit 2 ;;
esac
