#!/usr/bin/env bash
# One command: install what is needed, build, and run the whole test suite
# (unit tests and integration tests over real FUSE mounts; needs root and
# /dev/fuse). Extra arguments go to vitest, e.g. a reporter.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Source and tests type-check (strict) before anything runs.
npm run --silent typecheck
exec npx vitest run "$@"
