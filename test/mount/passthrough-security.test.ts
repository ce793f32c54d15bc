// The security tests again, with every daemon they start serving file data
// by FUSE passthrough (ACLFS_TEST_DATA_PATH, see test/helpers/mounts.ts):
// links, renames, special files, xattrs, odd names, descriptor floods and
// files swapped behind the mount are decided the same whichever way the
// data then flows. Run as one test of the suite, so CI counts it.
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ROOT, runNode } from '../helpers/mounts';

describeWithFuse('the security tests with --data passthrough', () => {
  it('pass', async () => {
    const run = await runNode([path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/mount/security.test.ts'], {
      ACLFS_TEST_DATA_PATH: 'passthrough',
      NO_COLOR: '1',
      FORCE_COLOR: undefined,
    });
    expect(run.output).toMatch(/Tests +\d+ passed/);
    expect(run.output).not.toMatch(/skipped|failed/);
    expect(run.status, run.output.slice(-4000)).toBe(0);
  }, 600_000);
});
