#!/usr/bin/env bash
# `make image`: builds the OCI image from the Dockerfile with podman (Debian's podman + runc, no daemon)
# and prints its size. IMAGE names it (default localhost/eps-probe-plugin:<package.json version>);
# NODE_IMAGE overrides the base image. Where the Dockerfile's default base cannot be pulled (no
# container registry reachable), hack/build-base.sh builds a local one with the same content.
# The builder's npm registry and CA file (npm's config) reach the build as secrets, never the image.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
export CONTAINERS_CONF="$here/containers.conf"
version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -n1)"
image="${IMAGE:-localhost/eps-probe-plugin:$version}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

bash "$here/apt-install.sh" image podman runc conmon debootstrap libcap2-bin

base="${NODE_IMAGE:-}"
if [[ -z "$base" ]]; then
  base="$(sed -n 's/^ARG NODE_IMAGE=//p' "$root/Dockerfile")"
  if ! podman image exists "$base" && ! timeout 300 podman pull --quiet "$base" >/dev/null 2>&1; then
    echo "[image] $base cannot be pulled; using a local base with the same content" >&2
    started=$SECONDS
    base="$(bash "$here/build-base.sh")"
    echo "[image] local base $base ready in $((SECONDS - started))s" >&2
  fi
fi

secret_args=()
registry="$(npm config get registry)"
# npm trusts its `cafile` or, through Node.js, NODE_EXTRA_CA_CERTS (a TLS-inspecting proxy's CA, say).
cafile="$(npm config get cafile)"
if [[ -z "$cafile" || "$cafile" == null ]]; then cafile="${NODE_EXTRA_CA_CERTS:-}"; fi
{
  echo "registry=$registry"
  if [[ -n "$cafile" && -f "$cafile" ]]; then
    echo "cafile=/run/secrets/npm_ca"
    secret_args+=(--secret "id=npm_ca,src=$cafile")
  fi
} >"$scratch/npmrc"
secret_args+=(--secret "id=npmrc,src=$scratch/npmrc")

echo "[image] building $image on $base" >&2
started=$SECONDS
# Host network: the build's apt-get and npm ci reach the machine's mirrors as the machine does.
podman build --network host --build-arg "NODE_IMAGE=$base" "${secret_args[@]}" -t "$image" "$root" >"$scratch/build.log" 2>&1 \
  || { tail -n 40 "$scratch/build.log" >&2; exit 1; }
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "[image] $image built in $((SECONDS - started))s, $((size / 1000000)) MB" >&2
echo "$image"
