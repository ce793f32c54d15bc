// The native core's own tests: the C unit tests of native/test (no mount,
// no root), plainly, under AddressSanitizer + UndefinedBehaviorSanitizer and
// the threaded one under ThreadSanitizer; and the stat layout, which must be
// the same in native/aclfs.h, in the addon and in src/native/layout.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Fuse } from '../../src/native/binding';
import { STAT, STAT_INTS, STAT_WORDS } from '../../src/native/layout';

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'native');
const RUN = path.join(NATIVE, 'test', 'run.sh');
const UNIT_TESTS = ['names', 'layout', 'allow', 'handles', 'keepcache', 'syscalls', 'locals', 'threads'];
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-native-test-'));

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

/** Runs native/test/run.sh in one mode; its output and exit status. */
function runMode(mode: string): { status: number | null; output: string } {
  const result = spawnSync(RUN, [mode], {
    encoding: 'utf8',
    env: { ...process.env, ACLFS_NATIVE_TEST_OUT: path.join(out, mode) },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('native core unit tests (native/test)', () => {
  it('pass as built plainly', () => {
    const { status, output } = runMode('plain');
    for (const test of UNIT_TESTS) expect(output).toContain(`PASS ${test}_test (plain)`);
    expect(output).not.toContain('FAIL');
    expect(status, output).toBe(0);
  }, 300_000);

  it('pass under AddressSanitizer and UndefinedBehaviorSanitizer', () => {
    const { status, output } = runMode('asan');
    for (const test of UNIT_TESTS) expect(output).toContain(`PASS ${test}_test (asan)`);
    expect(output).not.toMatch(/FAIL|ERROR: AddressSanitizer|runtime error:/);
    expect(status, output).toBe(0);
  }, 300_000);

  it('share their tables between threads without a data race (ThreadSanitizer)', () => {
    const { status, output } = runMode('tsan');
    expect(output).toContain('PASS threads_test (tsan)');
    expect(output).not.toMatch(/FAIL|WARNING: ThreadSanitizer/);
    expect(status, output).toBe(0);
  }, 300_000);
});

describe('the stat layout exists once', () => {
  it('src/native/layout.ts matches native/aclfs.h as compiled', () => {
    const bin = path.join(out, 'layout-print');
    const units = ['layout.c', 'names.c', 'syscalls.c', 'allow.c', 'handles.c', 'keepcache.c'].map((f) => path.join(NATIVE, f));
    execFileSync('cc', ['-std=gnu11', '-pthread', `-I${NATIVE}`, '-o', bin, path.join(NATIVE, 'test', 'layout_test.c'), ...units]);
    const printed = JSON.parse(execFileSync(bin, ['--print'], { encoding: 'utf8' })) as Record<string, number | [number, number]>;
    const { INTS, ...fields } = printed;
    expect(INTS).toBe(STAT_INTS);
    const expected = Object.fromEntries(
      Object.entries(STAT).map(([name, offset]) => [name, [offset, STAT_WORDS[name as keyof typeof STAT]]]),
    );
    expect(fields).toEqual(expected);
  }, 120_000);

  it('the addon exports the same layout', () => {
    expect(Fuse.STAT_INTS).toBe(STAT_INTS);
    expect(Fuse.STAT_LAYOUT).toEqual({ ...STAT, INTS: STAT_INTS });
  });

  it('the fields tile the array', () => {
    const spans = Object.entries(STAT)
      .map(([name, offset]) => ({ offset, words: STAT_WORDS[name as keyof typeof STAT] }))
      .sort((a, b) => a.offset - b.offset);
    let next = 0;
    for (const span of spans) {
      expect(span.offset).toBe(next);
      next = span.offset + span.words;
    }
    expect(next).toBe(STAT_INTS);
  });
});
