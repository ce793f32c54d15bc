import { defineConfig } from 'vitest/config';

// Three tiers, one folder each, by what the machine must give them:
//   test/unit/    nothing: any user, no mount            (npm test)
//   test/mount/   root and /dev/fuse: real FUSE mounts, daemons, the admin
//                 socket handed to its group              (npm run test:mount)
//   test/system/  root and more: a loop device, a Docker engine, systemd
//                                                         (npm run test:system)
// `npm run test:all` (scripts/test.sh, as root) sets up, type-checks and runs
// all three. Outside CI a test whose facility is missing is skipped with the
// reason (test/helpers/facilities.ts); under CI=true it runs and fails.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests mount real FUSE filesystems and start daemons; running
    // files in parallel on a 2-core machine only adds noise and timeouts.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
