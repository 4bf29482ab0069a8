#!/bin/sh
# Compiles the probe benchmarks and runs one inside a throwaway network namespace (unshare -n): its
# loopback is private, 127.64.0.0/16 is dropped there to make timeouts, and it vanishes on exit.
# Usage: bench/probe-run.sh engine|compare [args...]   (as root)
set -eu
cd "$(dirname "$0")/.."
npx tsc -p bench/tsconfig.probe.json
name=$1
shift
exec unshare -n sh -c '
  ip link set lo up
  iptables -w -I INPUT -d 127.64.0.0/16 -j DROP
  exec node ".tmp/bench/bench/probe-$0.js" "$@"' "$name" "$@"
