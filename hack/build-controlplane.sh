#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into a versioned cache directory.
# Only the first run pays the build; later runs find the binaries and return at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${EPS_CACHE_DIR:-$HOME/.cache/eps-probe-plugin}"
bin="$cache/controlplane-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/kubectl" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
progress() { echo "[controlplane] $*" >&2; }
start=$(date +%s)
ticker() { while sleep 30; do progress "still building ($(( $(date +%s) - start ))s elapsed)..."; done; }
ticker & tick=$!
trap 'kill $tick 2>/dev/null || true' EXIT

work="$(mktemp -d)"
trap 'kill $tick 2>/dev/null || true; rm -rf "$work"' EXIT

if [[ ! -x "$bin/etcd" ]]; then
  progress "building etcd $ETCD_VERSION (first run only)"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init eps-probe-plugin/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  go build -trimpath -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
fi

if [[ ! -x "$bin/kube-apiserver" || ! -x "$bin/kubectl" ]]; then
  progress "building kube-apiserver and kubectl $KUBERNETES_VERSION (first run only; takes several minutes)"
  mkdir -p "$work/apiserver" && cd "$work/apiserver"
  kmod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module eps-probe-plugin/kube-apiserver"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # kubernetes requires its staging modules at v0.0.0 and its own replace lines do not apply
    # to a downstream module, so every staging module it lists is pinned here.
    grep -E '^\s+k8s.io/\S+ v0\.0\.0$' "$kmod" | awk -v v="$KUBERNETES_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  go mod tidy >/dev/null 2>&1 || true
  echo 'package main' > tools.go
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" >/dev/null 2>&1 || true
  go get "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION" >/dev/null 2>&1 || true
  rm tools.go
  go build -trimpath -ldflags="-s -w" -o "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
  # A kubectl of the same version for tests and the demo: the machine's may be missing or old.
  go build -trimpath -ldflags="-s -w" -o "$bin/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  mv "$bin/kubectl.tmp" "$bin/kubectl"
fi
progress "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
