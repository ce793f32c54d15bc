#!/usr/bin/env bash
# Installs what aclfs needs on a Debian/Ubuntu machine and builds it:
# Debian's fuse + libfuse2 (the FUSE runtime), a C toolchain for compiling the
# patched fuse-native, bindfs (the C peer the benchmark compares against),
# then `npm ci` (which patches and compiles fuse-native) and the TypeScript
# build. Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in fuse libfuse2 bindfs util-linux g++ make python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [[ ! -e /dev/fuse ]]; then
  echo "setup: warning: /dev/fuse is missing; mounting will fail (in Docker: --device /dev/fuse --cap-add SYS_ADMIN)" >&2
fi

npm ci --no-audit --no-fund
npm run build
