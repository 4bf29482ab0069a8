#!/usr/bin/env bash
# Installs what tests, demo and benchmarks need on a fresh machine: Debian packages, Node.js 24,
# npm packages, and the control-plane binaries (built once, then cached).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

bash "$here/apt-install.sh" deps iproute2 iptables openssl libcap2-bin prometheus fping prometheus-blackbox-exporter chromium

node_dir="$(bash "$here/ensure-node.sh")"
export PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir"
stamp="$root/node_modules/.installed-lock"
if [[ ! -f "$stamp" || "$root/package-lock.json" -nt "$stamp" ]]; then
  echo "[deps] npm ci" >&2
  (cd "$root" && npm ci --no-audit --no-fund >/dev/null)
  touch "$stamp"
fi
bash "$here/build-controlplane.sh" >/dev/null
