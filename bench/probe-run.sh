#!/bin/sh
# Compiles the probe benchmarks and runs one inside a throwaway network namespace (unshare -n): its
# loopback is private, 127.64.0.0/16 is dropped there to make timeouts, and it vanishes on exit.
# `compare` also gets a veth to a second namespace (eps-bench-tgt) whose loopback answers for
# 10.233.97.0-10.233.110.255 and which drops 10.233.111.0/24; meanwhile the root namespace
# blackholes the whole 10.233.96.0/20, so nothing of it can leave the machine. Both go on exit.
# With MEMORY_LIMIT_MIB=N the run is in a memory cgroup limited to N MiB, as the DaemonSet's
# `limits.memory` puts the agent (V8 then sizes its heap to the limit); the group's peak is printed.
# The listener child, a stand-in for remote pods, is kept out of that group.
# Usage: [MEMORY_LIMIT_MIB=256] bench/probe-run.sh engine|compare [args...]   (as root)
set -eu
cd "$(dirname "$0")/.."
# One run at a time: two would share eps-bench-tgt and the blackhole route, and spoil each other.
exec 9>/tmp/eps-probe-bench.lock
flock 9
npx tsc -p bench/tsconfig.probe.json
# src/native-addon.ts loads ../build/Release/syn.node: from .tmp/bench/src, the repository's build/.
ln -sfn ../../build .tmp/bench/build
name=$1
shift
cgroup=
cleanup_net() {
  ip netns del eps-bench-tgt 2>/dev/null || true
  ip route del blackhole 10.233.96.0/20 2>/dev/null || true
}
cleanup() {
  cleanup_net
  if [ -n "$cgroup" ]; then rmdir "$cgroup" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -n "${MEMORY_LIMIT_MIB:-}" ]; then
  # A child of this script's own memory cgroup, which keeps the listener (see above).
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    base=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
    limit_file=memory.max
  else
    base=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
    limit_file=memory.limit_in_bytes
  fi
  cgroup=$base/eps-bench-$$
  mkdir "$cgroup"
  echo $((MEMORY_LIMIT_MIB * 1048576)) >"$cgroup/$limit_file"
  export LISTENER_CGROUP_PROCS="$base/cgroup.procs"
fi
if [ "$name" = compare ]; then
  cleanup_net
  ip route add blackhole 10.233.96.0/20
  ip netns add eps-bench-tgt
  ip netns exec eps-bench-tgt sh -c '
    ip link set lo up
    for n in $(seq 97 111); do ip addr add 10.233.$n.0/24 dev lo; done
    iptables -w -I INPUT -d 10.233.111.0/24 -j DROP'
fi
CGROUP=$cgroup unshare -n sh -c '
  if [ -n "$CGROUP" ]; then echo $$ >"$CGROUP/cgroup.procs"; fi
  ip link set lo up
  iptables -w -I INPUT -d 127.64.0.0/16 -j DROP
  if [ "$0" = compare ]; then
    ip link add eps-bench0 type veth peer name eps-bench1 netns eps-bench-tgt
    ip netns exec eps-bench-tgt sh -c "ip addr add 10.233.96.2/30 dev eps-bench1 && ip link set eps-bench1 up"
    ip addr add 10.233.96.1/30 dev eps-bench0
    ip link set eps-bench0 up
    ip route add 10.233.96.0/20 via 10.233.96.2
  fi
  exec node ".tmp/bench/bench/probe-$0.js" "$@"' "$name" "$@"
if [ -n "$cgroup" ]; then
  peak=$(cat "$cgroup/memory.peak" 2>/dev/null || cat "$cgroup/memory.max_usage_in_bytes")
  echo "memory cgroup limit ${MEMORY_LIMIT_MIB} MiB: peak usage $((peak / 1048576)) MiB"
fi
