#!/usr/bin/env bash
# One command (npm run test:all): install what is needed, build, type-check
# and run every test tier: test/unit, test/mount (real FUSE mounts: root and
# /dev/fuse) and test/system (a loop device, a Docker engine, systemd).
# Extra arguments go to vitest, e.g. a reporter.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Source and tests type-check (strict) before anything runs.
npm run --silent typecheck
exec npx vitest run "$@"
