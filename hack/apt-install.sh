#!/usr/bin/env bash
# Installs those of the given Debian packages that are missing: hack/apt-install.sh TAG PACKAGE...
# (TAG prefixes its lines). Debian's packages start their daemons on install where an init system
# runs; tests and benchmarks start copies of their own. A policy-rc.d that answers 101 ("action
# forbidden") keeps invoke-rc.d and deb-systemd-invoke from starting anything, so nothing has to be
# stopped afterwards. A policy the machine already has is put back as it was.
set -euo pipefail
tag="$1"
shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "[$tag] apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
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
printf '#!/bin/sh\n# hack/apt-install.sh: no service starts while it installs packages.\nexit 101\n' >"$policy"
chmod 755 "$policy"
# Another apt run (a second make target) may hold the lock: wait for it rather than fail.
install=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}")
"${install[@]}" >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && "${install[@]}" >/dev/null; }
restore_policy
echo "[$tag] installed in ${SECONDS}s" >&2
