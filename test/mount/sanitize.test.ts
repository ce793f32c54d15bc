// The native core under AddressSanitizer and UndefinedBehaviorSanitizer in
// real mounts: scripts/test-sanitize.js builds a second addon with both
// sanitizers and runs mount tests (security, fast path, ops, passthrough) with every Node
// process loading it. It fails on a failed test or on any sanitizer report,
// even one from a daemon nobody waited for; here that run is one test of the
// suite, so CI counts it.
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ROOT, runNode } from '../helpers/mounts';

describeWithFuse('mount tests with the sanitized addon (ASan + UBSan)', () => {
  it('pass, and no sanitizer reports anything', async () => {
    const run = await runNode([path.join(ROOT, 'scripts', 'test-sanitize.js')]);
    const output = run.output;
    expect(output).toMatch(/aclfs test:sanitize: running test\/mount\/security\.test\.ts/);
    expect(output).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
    expect(output).toContain('aclfs test:sanitize: passed, no sanitizer report');
    expect(run.status, output.slice(-4000)).toBe(0);
  }, 900_000);
});
