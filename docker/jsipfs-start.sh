#!/bin/sh
# js-ipfs offline with its repo in /data/ipfs: the API on the container network (port 5001), the
# gateway, RPC and swarm on the container's loopback only, no bootstrap peers, no MDNS.
set -eu
export IPFS_PATH=/data/ipfs/repo
export NODE_OPTIONS="${NODE_OPTIONS:-} --require /opt/ipfs/polyfill.cjs"  # Promise.withResolvers
# Debian's node 18 needs its flag for the global CustomEvent that libp2p dispatches (node 19+ has it)
exec node --experimental-global-customevent /opt/ipfs/node_modules/ipfs/src/cli.js daemon --offline \
  --init-profile test --init-config /opt/ipfs/jsipfs-config.json
