#!/usr/bin/env bash
# Installs what tests, demo and benchmarks need on a fresh machine: Debian packages, Node.js 24,
# npm packages, and the control-plane binaries (built once, then cached).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

packages=(iproute2 iptables openssl libcap2-bin prometheus fping prometheus-blackbox-exporter)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[deps] apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  # Debian's packages start their daemons where an init system runs; ours start their own copies.
  pkill -x prometheus 2>/dev/null || true
  pkill -f prometheus-blackbox-exporter 2>/dev/null || true
  pkill -f prometheus-node-exporter 2>/dev/null || true
fi

node_dir="$(bash "$here/ensure-node.sh")"
export PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir"
stamp="$root/node_modules/.installed-lock"
if [[ ! -f "$stamp" || "$root/package-lock.json" -nt "$stamp" ]]; then
  echo "[deps] npm ci" >&2
  (cd "$root" && npm ci --no-audit --no-fund >/dev/null)
  touch "$stamp"
fi
bash "$here/build-controlplane.sh" >/dev/null
