// The native core under AddressSanitizer and UndefinedBehaviorSanitizer in
// real mounts: scripts/test-sanitize.js builds a second addon with both
// sanitizers and runs mount tests (security, fast path, ops, passthrough) with every Node
// process loading it. It fails on a failed test or on any sanitizer report,
// even one from a daemon nobody waited for; here that run is one test of the
// suite, so CI counts it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';

const ROOT = path.resolve(__dirname, '..', '..');

describeWithFuse('mount tests with the sanitized addon (ASan + UBSan)', () => {
  it('pass, and no sanitizer reports anything', async () => {
    // Asynchronously: a worker blocked for minutes would stop answering vitest.
    const run = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'test-sanitize.js')], {
        cwd: ROOT,
        // The inner run is a vitest of its own, not a worker of this one.
        env: { ...process.env, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, output }));
    });
    const output = run.output;
    expect(output).toMatch(/aclfs test:sanitize: running test\/mount\/security\.test\.ts/);
    expect(output).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
    expect(output).toContain('aclfs test:sanitize: passed, no sanitizer report');
    expect(run.status, output.slice(-4000)).toBe(0);
  }, 900_000);
});
