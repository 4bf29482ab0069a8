#!/usr/bin/env bash
# Installs what tests, demo and benchmarks need on a fresh machine: Debian packages, Node.js 24,
# npm packages, and the control-plane binaries (built once, then cached).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

packages=(iproute2 iptables openssl libcap2-bin prometheus fping prometheus-blackbox-exporter chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[deps] apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Debian's packages start their daemons on install where an init system runs; tests and benchmarks
  # start copies of their own. A policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d
  # and deb-systemd-invoke from starting anything, so nothing has to be stopped afterwards. A policy
  # the machine already has is put back as it was.
  policy=/usr/sbin/policy-rc.d
  saved_policy=""
  if [[ -e "$policy" ]]; then
    saved_policy="$(mktemp)"
    cp -p "$policy" "$saved_policy"
  fi
  restore_policy() {
    if [[ -n "$saved_policy" ]]; then mv "$saved_policy" "$policy"; else rm -f "$policy"; fi
    trap - EXIT INT TERM
  }
  trap restore_policy EXIT
  trap 'exit 130' INT TERM
  printf '#!/bin/sh\n# hack/ensure-deps.sh: no service starts while it installs packages.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  restore_policy
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
