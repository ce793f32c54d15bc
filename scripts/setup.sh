#!/usr/bin/env bash
# Installs what aclfs needs on a Debian/Ubuntu machine and builds it:
# Debian's fuse + libfuse2 (the FUSE runtime), a C toolchain for compiling the
# patched fuse-native, bindfs (the C peer the benchmark compares against),
# etcd-server and etcd-client (the fleet sync tests' etcd; as root only),
# then `npm ci` (which patches and compiles fuse-native) and the TypeScript
# build. Safe to run again: each step says what it does, or why it is
# skipped: packages already installed; `npm ci` when node_modules was
# installed from the same package-lock.json, patch, native/ and Node
# (scripts/install-stamp.js); the build when dist/ is newer than every source.
# --force runs `npm ci` and the build regardless.
set -euo pipefail
cd "$(dirname "$0")/.."
force=0
[[ ${1:-} == --force ]] && force=1

need=()
for pkg in fuse libfuse2 bindfs util-linux g++ make python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
# etcd and etcdctl, for the fleet sync tests (test/mount/fleet-sync.test.ts
# runs a real etcd on loopback): installed when root; without root a missing
# one only skips those tests outside CI.
for pkg in etcd-server etcd-client; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    if [[ $(id -u) -eq 0 ]]; then
      need+=("$pkg")
    else
      echo "setup: $pkg is not installed: the fleet sync tests will be skipped (as root: apt-get install $pkg)" >&2
    fi
  fi
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
else
  echo "setup: Debian packages present (skipping apt-get)"
fi

if [[ ! -e /dev/fuse ]]; then
  echo "setup: warning: /dev/fuse is missing; mounting will fail (in Docker: --device /dev/fuse --cap-add SYS_ADMIN)" >&2
fi

why=
if ((force)); then
  why='--force'
elif [[ ! -d node_modules ]]; then
  why='no node_modules'
else
  why=$(node scripts/install-stamp.js check) || true
fi
if [[ -z $why ]]; then
  echo "setup: node_modules is up to date with package-lock.json (skipping npm ci)"
else
  echo "setup: npm ci ($why; patches and compiles fuse-native, about a minute)"
  npm ci --no-audit --no-fund
fi

# The build is current when dist/main.js is newer than every source and the
# compiler's configuration.
if ((!force)) && [[ -e dist/main.js ]] && [[ -z $(find src tsconfig.json package-lock.json -newer dist/main.js -print -quit) ]]; then
  echo "setup: dist/ is newer than src/ (skipping npm run build)"
else
  echo "setup: npm run build (TypeScript to dist/)"
  npm run --silent build
fi
