// The security tests again, with every daemon they start serving file data
// by FUSE passthrough (ACLFS_TEST_DATA_PATH, see test/helpers/mounts.ts):
// links, renames, special files, xattrs, odd names, descriptor floods and
// files swapped behind the mount are decided the same whichever way the
// data then flows. Run as one test of the suite, so CI counts it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';

const ROOT = path.resolve(__dirname, '..', '..');

describeWithFuse('the security tests with --data passthrough', () => {
  it('pass', async () => {
    // Asynchronously: a worker blocked for minutes would stop answering vitest.
    const run = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/mount/security.test.ts'], {
        cwd: ROOT,
        // The inner run is a vitest of its own, not a worker of this one.
        env: { ...process.env, ACLFS_TEST_DATA_PATH: 'passthrough', NO_COLOR: '1', FORCE_COLOR: undefined, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, output }));
    });
    expect(run.output).toMatch(/Tests +\d+ passed/);
    expect(run.output).not.toMatch(/skipped|failed/);
    expect(run.status, run.output.slice(-4000)).toBe(0);
  }, 600_000);
});
