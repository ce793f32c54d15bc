#!/usr/bin/env bash
# One command: install, build, and bring up a demo protected mount with
# sample rules, in the foreground (Ctrl-C unmounts). Run as root.
#   /tmp/aclfs-demo/src   the protected directory (the real files)
#   /tmp/aclfs-demo/mnt   the filtered view
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null

demo=${ACLFS_DEMO_DIR:-/tmp/aclfs-demo}
mkdir -p "$demo/src/docs" "$demo/mnt"
chmod 755 "$demo" "$demo/src" "$demo/src/docs" "$demo/mnt"
echo "public notes" > "$demo/src/docs/readme.txt"
echo "only uid 1000 may read this" > "$demo/src/docs/secret.txt"
chmod 644 "$demo/src/docs/"*.txt

cat > "$demo/rules.json" <<'JSON'
{ "version": 1,
  "rules": [
    { "path": "/", "recursive": true, "owner": 0, "defaccess": "r-x", "acl": [] },
    { "path": "/docs/secret.txt", "owner": 0, "defaccess": "---",
      "acl": [ { "user": 1000, "access": "r--" } ] } ] }
JSON
./bin/aclfs import "$demo/rules.json" --db "$demo/db" --replace

cat <<MSG

aclfs demo: $demo/src is served, filtered, at $demo/mnt
try, in another shell:
  setpriv --reuid 1000 --regid 1000 --clear-groups cat $demo/mnt/docs/secret.txt   # allowed
  setpriv --reuid 1001 --regid 1001 --clear-groups cat $demo/mnt/docs/secret.txt   # Permission denied
  setpriv --reuid 1001 --regid 1001 --clear-groups cat $demo/mnt/docs/readme.txt   # allowed
Ctrl-C here unmounts.

MSG
exec ./bin/aclfs mount "$demo/src" "$demo/mnt" --db "$demo/db"
