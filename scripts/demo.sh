#!/usr/bin/env bash
# One command: install, build, and bring up a demo protected mount with
# sample rules, in the foreground (Ctrl-C, or SIGTERM, unmounts). Run as root.
#   /tmp/aclfs-demo/src   the protected directory (the real files)
#   /tmp/aclfs-demo/mnt   the filtered view
#   /tmp/aclfs-demo/db    the rule database
# Each step prints one line; what is already done (packages, node_modules,
# the build, the demo files and rules) is skipped, so a second run comes up
# in seconds. When the mount answers it prints what to try, and serves.
# ACLFS_DEMO_DIR chooses another directory; ACLFS_DEMO_SOCKET another admin
# socket (default: the daemon's, /run/aclfs/aclfs.sock).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

echo "demo: setting up (scripts/setup.sh: packages, node_modules, build)"
./scripts/setup.sh

demo=${ACLFS_DEMO_DIR:-/tmp/aclfs-demo}
socket_opt=()
[[ -n ${ACLFS_DEMO_SOCKET:-} ]] && socket_opt=(--socket "$ACLFS_DEMO_SOCKET")

mkdir -p "$demo/src/docs" "$demo/mnt"
chmod 755 "$demo" "$demo/src" "$demo/src/docs" "$demo/mnt"
if [[ -e $demo/src/docs/readme.txt && -e $demo/src/docs/secret.txt ]]; then
  echo "demo: files in $demo/src are present (skipping)"
else
  echo "demo: creating files in $demo/src"
  echo "public notes" > "$demo/src/docs/readme.txt"
  echo "only uid 1000 may read this" > "$demo/src/docs/secret.txt"
  chmod 644 "$demo/src/docs/"*.txt
fi

if [[ -e $demo/db ]]; then
  echo "demo: rule database $demo/db is present (skipping import; rm -rf $demo to start over)"
else
  echo "demo: importing the demo rules into $demo/db"
  cat > "$demo/rules.json" <<'JSON'
{ "version": 1,
  "rules": [
    { "path": "/", "recursive": true, "owner": 0, "defaccess": "r-x", "acl": [] },
    { "path": "/docs/secret.txt", "owner": 0, "defaccess": "---",
      "acl": [ { "user": 1000, "access": "r--" } ] } ] }
JSON
  ./bin/aclfs import "$demo/rules.json" --db "$demo/db" --replace
fi

echo "demo: mounting $demo/src at $demo/mnt"
./bin/aclfs mount "$demo/src" "$demo/mnt" --db "$demo/db" "${socket_opt[@]}" &
daemon=$!
# Without job control a background command ignores SIGINT, so Ctrl-C here
# is passed on as SIGTERM: the daemon unmounts and exits either way.
trap 'kill -TERM "$daemon" 2>/dev/null || true' INT TERM

until ./bin/aclfs status "${socket_opt[@]}" > /dev/null 2>&1 && mountpoint -q "$demo/mnt"; do
  if ! kill -0 "$daemon" 2>/dev/null; then
    wait "$daemon" && code=0 || code=$?
    echo "demo: aclfs mount exited ($code) before the mount was ready; its reason is above" >&2
    exit "$code"
  fi
  sleep 0.2
done
echo "demo: mounted; aclfs mount is pid $daemon"

# The commands exactly as typed: `aclfs` when it is this checkout's on PATH.
aclfs=$repo/bin/aclfs
if on_path=$(command -v aclfs) && [[ $(realpath "$on_path") == $(realpath "$aclfs") ]]; then aclfs=aclfs; fi
sock=${socket_opt[*]:+ ${socket_opt[*]}}
cat <<MSG

aclfs demo: $demo/src is served, filtered, at $demo/mnt
try, in another shell (as root):
  setpriv --reuid 1000 --regid 1000 --clear-groups cat $demo/mnt/docs/secret.txt   # allowed
  setpriv --reuid 1001 --regid 1001 --clear-groups cat $demo/mnt/docs/secret.txt   # Permission denied
  setpriv --reuid 1001 --regid 1001 --clear-groups cat $demo/mnt/docs/readme.txt   # allowed
  $aclfs check --uid 1001 --gid 1001 --groups '' --access r /docs/secret.txt$sock   # deny (exit 1), and why
  $aclfs audit$sock   # the denial, as recorded
  $aclfs rule ls$sock   # the rules
Ctrl-C here unmounts.

MSG

code=0
while kill -0 "$daemon" 2>/dev/null; do
  # A trapped signal ends the wait early; wait again for the daemon itself.
  wait "$daemon" && code=0 || code=$?
done
exit "$code"
