#!/usr/bin/env bash
# Makes a stand-in for `node:20-bookworm-slim` where Docker Hub cannot be
# reached: a minimal Debian bookworm (debootstrap, from the Debian mirror this
# machine's apt uses) plus this machine's own Node 20 (/usr/bin/node, npm
# under /usr/lib/node_modules/npm, headers under /usr/include/node), imported
# with `docker import`. Prints the image tag on stdout; pass it to the build
# as `--build-arg BASE=<tag>`.
#
# The stand-in also carries this machine's npm global config (/usr/etc/npmrc)
# and CA bundle, because npm here reaches the registry through an
# intercepting proxy whose CA only that bundle trusts. The official image
# needs neither.
#
# Cached: the imported image is reused while the engine still has it, and the
# root filesystem is kept as a tarball under $ACLFS_STANDIN_CACHE (default
# /var/cache/aclfs-test) so a fresh engine re-imports it in seconds instead of
# running debootstrap again. The tag names the Node version, so a Node
# upgrade makes a new stand-in.
#
# Needs root, debootstrap and a running Docker engine.
set -euo pipefail

cache=${ACLFS_STANDIN_CACHE:-/var/cache/aclfs-test}
node_version=$(node -p 'process.version')
key="bookworm-node${node_version#v}"
tag="aclfs-standin-base:${key}"
tarball="$cache/standin-${key}.tar.gz"

log() { printf 'standin-base: %s\n' "$*" >&2; }

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "reusing image $tag"
  echo "$tag"
  exit 0
fi

import_tarball() {
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' \
    "$tarball" "$tag" >/dev/null
}

if [[ -s $tarball ]]; then
  log "importing cached root filesystem $tarball"
  import_tarball
  echo "$tag"
  exit 0
fi

# The Debian mirror this machine's apt uses (deb822 "URIs:" or a one-line
# "deb URL bookworm main"), so debootstrap goes where apt-get already goes.
mirror=$(
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '
      /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
      /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
    ' || true
)
mirror=${mirror:-http://deb.debian.org/debian}

for f in /usr/bin/node /usr/lib/node_modules/npm/bin/npm-cli.js /usr/include/node/node_api.h; do
  [[ -e $f ]] || { log "this machine's Node is not where expected: $f is missing"; exit 1; }
done

work=$(mktemp -d /tmp/aclfs-standin.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}

log "adding this machine's Node $node_version, npm and headers"
cp -a /usr/bin/node "$root/usr/bin/node"
mkdir -p "$root/usr/lib/node_modules" "$root/usr/include"
cp -a /usr/lib/node_modules/npm "$root/usr/lib/node_modules/npm"
cp -a /usr/include/node "$root/usr/include/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
if [[ -f /usr/etc/npmrc ]]; then
  mkdir -p "$root/usr/etc"
  cp /usr/etc/npmrc "$root/usr/etc/npmrc"
fi
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi

# Like the official slim images: no package lists or downloaded packages
# (a Dockerfile must run apt-get update itself).
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

chroot "$root" /usr/bin/node -e 'process.exit(0)' || { log "node does not run in the stand-in root"; exit 1; }

mkdir -p "$cache"
tar -C "$root" --numeric-owner -czf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
log "cached root filesystem at $tarball ($(du -h "$tarball" | cut -f1))"
import_tarball
echo "$tag"
