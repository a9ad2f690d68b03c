#!/usr/bin/env bash
# The project-local IPFS node (js-ipfs 0.66, Kubo RPC API), offline and on loopback only.
#   tools/ipfs/ipfs.sh install                 install js-ipfs into tools/ipfs/node_modules
#   tools/ipfs/ipfs.sh start REPO [API_PORT]   run a daemon in the foreground with its repo in REPO
# Python code starts nodes through exchange.node.IpfsNode (free ports, readiness, clean stop).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  install)
    # `npm install`, not `npm ci` (the lockfile misses an optional git dependency); the overrides
    # in package.json pin the libp2p transports that keep the offline daemon from hanging.
    cd "$HERE" && npm install --no-audit --no-fund --loglevel=error
    ;;
  start)
    repo="${2:?usage: ipfs.sh start REPO [API_PORT]}"
    mkdir -p "$repo"
    repo="$(cd "$repo" && pwd)"
    export API_PORT="${3:-5001}" GATEWAY_PORT="$(free_port)" RPC_PORT="$(free_port)" SWARM_PORT="$(free_port)"
    sed -e "s/\${API_PORT}/$API_PORT/" -e "s/\${GATEWAY_PORT}/$GATEWAY_PORT/" \
        -e "s/\${RPC_PORT}/$RPC_PORT/" -e "s/\${SWARM_PORT}/$SWARM_PORT/" \
        "$HERE/config.template.json" > "$repo.init-config.json"
    export IPFS_PATH="$repo/repo"
    export NODE_OPTIONS="${NODE_OPTIONS:-} --require $HERE/polyfill.cjs"  # Node 20 lacks Promise.withResolvers
    exec node "$HERE/node_modules/ipfs/src/cli.js" daemon --offline \
      --init-profile test --init-config "$repo.init-config.json"
    ;;
  *)
    echo "usage: $0 install | start REPO [API_PORT]" >&2
    exit 2
    ;;
esac
