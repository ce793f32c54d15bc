// Unit tests of the filesystem edge that need no mount: the binding check,
// the errno mapping, open-flag bits and caller groups.
import { constants } from 'node:fs';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Fuse } from '../../src/native/binding';
import { describe, expect, it } from 'vitest';
import { CallerResolver, parseStatusGroups } from '../../src/fs/callers';
import { EACCES, EIO, toErrno } from '../../src/fs/errno';
import { accessForOpenFlags } from '../../src/fs/handles';
import { assertPatchedBinding, checkLayout, REQUIRED_PATCH_LEVEL } from '../../src/fs/mount';
import { makeWorkspace, isMounted, run, ROOT, ACLFS } from '../helpers/mounts';

describe('patched fuse-native binding', () => {
  it('is the binary compiled from the patched source, with our patch level', () => {
    expect(Fuse.ACLFS_PATCH_LEVEL).toBe(REQUIRED_PATCH_LEVEL);
    const loaded = Object.keys(require.cache).concat(
      readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((l) => l.split(/\s+/)[5] ?? ''),
    );
    expect(loaded).toContain(path.join(ROOT, 'node_modules', 'fuse-native', 'build', 'Release', 'fuse.node'));
    expect(loaded.some((p) => p.includes('prebuilds'))).toBe(false);
    expect(() => assertPatchedBinding()).not.toThrow();
  });

  it('makes aclfs refuse to mount when the unpatched binding is loaded', async () => {
    const ws = makeWorkspace();
    try {
      const res = await run(process.execPath, ['-r', path.join(__dirname, '..', 'fixtures', 'unpatched-binding.js'), ACLFS, 'mount', ws.src, ws.mnt, '--db', ws.db]);
      expect(res.code).toBe(6);
      expect(res.stderr).toMatch(/^aclfs: fuse-native is not the patched build/);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(isMounted(ws.mnt)).toBe(false);
    } finally {
      ws.cleanup();
    }
  });
});

describe('errno mapping', () => {
  it.each([
    [{ errno: -2, code: 'ENOENT' }, -2],
    [{ errno: -13, code: 'EACCES' }, EACCES],
    [{ code: 'ENOTEMPTY' }, -39],
    [{ errno: 40 }, -40],
    [new Error('plain'), EIO],
    ['a string', EIO],
    [null, EIO],
  ])('%j -> %i', (err, expected) => {
    expect(toErrno(err)).toBe(expected);
  });
});

describe('bits an open needs', () => {
  const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND } = constants;
  it.each([
    ['O_RDONLY', O_RDONLY, 4],
    ['O_WRONLY', O_WRONLY, 2],
    ['O_RDWR', O_RDWR, 6],
    ['O_RDONLY|O_TRUNC', O_RDONLY | O_TRUNC, 6],
    ['O_WRONLY|O_TRUNC', O_WRONLY | O_TRUNC, 2],
    ['O_WRONLY|O_APPEND', O_WRONLY | O_APPEND, 2],
    ['invalid access mode 3', 3, 6],
  ])('%s -> %i', (_name, flags, bits) => {
    expect(accessForOpenFlags(flags)).toBe(bits);
  });
});

describe('caller groups', () => {
  it('parses the Groups line of /proc/<pid>/status', () => {
    expect(parseStatusGroups('Name:\tx\nGroups:\t4 24 100 \nNSpid:\t1\n')).toEqual([4, 24, 100]);
    expect(parseStatusGroups('Groups:\t\n')).toEqual([]);
    expect(() => parseStatusGroups('Name:\tx\n')).toThrow();
    expect(() => parseStatusGroups('Groups:\t4 x\n')).toThrow();
  });

  it('reads real groups, caches them briefly per pid, and refuses a missing identity', () => {
    let reads = 0;
    const resolver = new CallerResolver(() => {
      reads++;
      return 'Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t10 20\n';
    });
    const req = { uid: 5, gid: 6, pid: 1234 };
    expect(resolver.resolve(req, 0)).toEqual({ uid: 5, gid: 6, pid: 1234, groups: [10, 20] });
    resolver.resolve(req, 500);
    expect(reads).toBe(1);
    resolver.resolve(req, 1500);
    expect(reads).toBe(2);
    // A different identity under a reused pid is read afresh.
    resolver.resolve({ uid: 7, gid: 6, pid: 1234 }, 1600);
    expect(reads).toBe(3);
    // pid 0 (another pid namespace) or a process already gone: uid and gid
    // are known, the supplementary groups are not.
    expect(resolver.resolve({ uid: 5, gid: 6, pid: 0 })).toEqual({ uid: 5, gid: 6, pid: 0, groups: null });
    expect(() => resolver.resolve({ uid: -1, gid: 6, pid: 3 })).toThrow(/incomplete caller identity/);
    const gone = new CallerResolver(() => {
      throw new Error('ENOENT');
    });
    expect(gone.resolve(req).groups).toBeNull();
    // A reused pid whose process has other filesystem ids says nothing.
    const reused = new CallerResolver(() => 'Uid:\t9\t9\t9\t9\nGid:\t6\t6\t6\t6\nGroups:\t10\n');
    expect(reused.resolve(req).groups).toBeNull();
    // This very process, with its own filesystem ids (root's or any user's).
    const self = new CallerResolver().resolve({ uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0, pid: process.pid });
    expect(self.groups).toEqual(expect.any(Array));
  });
});

describe('layout checks', () => {
  it('refuses a source and mountpoint that contain each other', () => {
    const ws = makeWorkspace();
    try {
      expect(() => checkLayout(ws.src, path.join(ws.src, 'x'))).toThrow(/must not contain each other/);
      expect(() => checkLayout(ws.dir, ws.mnt)).toThrow(/must not contain each other/);
      expect(() => checkLayout(ws.src, ws.src)).toThrow(/must not contain each other/);
      expect(checkLayout(ws.src, ws.mnt)).toEqual({ source: ws.src, mountpoint: ws.mnt });
      expect(() => checkLayout(path.join(ws.dir, 'missing'), ws.mnt)).toThrow();
    } finally {
      ws.cleanup();
    }
  });
});
