#!/bin/sh
# Container entrypoint.
#
#   (no arguments) or options only   serve $ACLFS_SOURCE at $ACLFS_MOUNTPOINT:
#                                    `aclfs mount` in the foreground, with the
#                                    options appended (e.g. --default allow,
#                                    --admin-group 1500, --revoke immediate)
#   a command                        run it instead (e.g. aclfs export --db /var/lib/aclfs)
#
# Before mounting, the rules in $ACLFS_RULES (if the file exists) are imported,
# atomically, but only into an empty database: a restarted container keeps the
# rules administrators changed since.
set -eu

case "${1:-}" in
  '' | -*) ;;
  *) exec "$@" ;;
esac

db=${ACLFS_DB:-/var/lib/aclfs}
rules=${ACLFS_RULES:-/etc/aclfs/rules.json}

if [ -f "$rules" ]; then
  # Empty: no database yet (exit 3, not found), or one without rules.
  status=0
  existing=$(aclfs rule ls --db "$db" --limit 1 2>/dev/null) || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
    # Say why, in aclfs's own words, and do not serve a database we cannot read.
    aclfs rule ls --db "$db" --limit 1 >/dev/null || exit $?
  fi
  if [ -z "$existing" ]; then
    echo "aclfs entrypoint: importing initial rules from $rules into the empty database $db" >&2
    aclfs import "$rules" --db "$db"
  else
    echo "aclfs entrypoint: database $db has rules; $rules not imported" >&2
  fi
fi

mnt=${ACLFS_MOUNTPOINT:-/protected}
# A mountpoint inside a volume (e.g. one shared with the host, see docs/operations.md)
# may not exist yet.
[ -d "$mnt" ] || mkdir -p "$mnt"

exec aclfs mount "${ACLFS_SOURCE:-/data}" "$mnt" \
  --db "$db" --socket "${ACLFS_SOCKET:-/run/aclfs/aclfs.sock}" "$@"
