// POSIX details that FUSE passthroughs commonly get wrong, each checked on a
// real mount against the backing directory: attributes seen through one
// hard-link name after a change through another, one-sided utimensat,
// ctime on metadata changes, and errno values of the error cases. Every test
// here mounts, so under CI (root, /dev/fuse) none may be skipped.
import { appendFileSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, truncateSync, unlinkSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, Daemon, makeWorkspace, requireFuse, run, runAs, type Identity, type Workspace } from '../helpers/mounts';

const PYTHON = '/usr/bin/python3';
const ALICE: Identity = { uid: 2411, gid: 2411, groups: [3411] };
const TEAM = 3411;

// "/" and everything below: readable by all, writable by Alice only.
const RULES = {
  version: 1,
  rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [{ user: ALICE.uid, access: 'rwx' }] }],
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nsStat = (p: string): BigIntStats => lstatSync(p, { bigint: true });

/** Runs a command as Alice; it must succeed silently. */
async function asAlice(cmd: string, args: readonly string[]): Promise<void> {
  const res = await runAs(ALICE, cmd, args);
  expect(res, `${cmd} ${args.join(' ')}`).toMatchObject({ code: 0, stderr: '' });
}

/**
 * Runs the named error cases under a base directory and prints, as JSON,
 * each case's outcome: "OK" or the errno name. One process runs them all.
 */
const PROBE = String.raw`
import errno, json, os, sys
base = sys.argv[1]
p = lambda *n: os.path.join(base, *n)
LONG = 'n' * 256
def opened(path, flags):
    os.close(os.open(path, flags, 0o644))
CASES = {
    'stat a file (control)': lambda: os.stat(p('file')),
    'rmdir a non-empty directory': lambda: os.rmdir(p('full')),
    'rename a directory onto a non-empty one': lambda: os.rename(p('empty'), p('full')),
    'mkdir over a directory': lambda: os.mkdir(p('full')),
    'mkdir over a file': lambda: os.mkdir(p('file')),
    'link onto an existing name': lambda: os.link(p('file'), p('other')),
    'symlink onto an existing name': lambda: os.symlink('x', p('other')),
    'mkfifo onto an existing name': lambda: os.mkfifo(p('other')),
    'create O_EXCL an existing file': lambda: opened(p('file'), os.O_CREAT | os.O_EXCL | os.O_WRONLY),
    'stat a path through a file': lambda: os.stat(p('file', 'x')),
    'create a path through a file': lambda: opened(p('file', 'x'), os.O_CREAT | os.O_WRONLY),
    'mkdir a path through a file': lambda: os.mkdir(p('file', 'x')),
    'rmdir a file': lambda: os.rmdir(p('file')),
    'list a file as a directory': lambda: os.listdir(p('file')),
    'rename a directory onto a file': lambda: os.rename(p('empty'), p('file')),
    'open a directory write-only': lambda: opened(p('empty'), os.O_WRONLY),
    'open a directory read-write': lambda: opened(p('empty'), os.O_RDWR),
    'unlink a directory': lambda: os.unlink(p('empty')),
    'rename a file onto a directory': lambda: os.rename(p('file'), p('empty')),
    'create a 256-byte name': lambda: opened(p(LONG), os.O_CREAT | os.O_WRONLY),
    'stat a 256-byte name': lambda: os.stat(p(LONG)),
    'mkdir a 256-byte name': lambda: os.mkdir(p(LONG)),
    'symlink at a 256-byte name': lambda: os.symlink('file', p(LONG)),
    'rename to a 256-byte name': lambda: os.rename(p('file'), p(LONG)),
    'open a symlink loop': lambda: opened(p('loop'), os.O_RDONLY),
    'stat a symlink loop': lambda: os.stat(p('loop')),
    'stat through a two-link loop': lambda: os.stat(p('ping', 'x')),
    'open a symlink with O_NOFOLLOW': lambda: opened(p('tofile'), os.O_RDONLY | os.O_NOFOLLOW),
    'rename onto another filesystem': lambda: os.rename(p('file'), p('sub', 'file')),
    'link onto another filesystem': lambda: os.link(p('file'), p('sub', 'file')),
}
out = {}
for name in sys.argv[2:]:
    try:
        CASES[name]()
        out[name] = 'OK'
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
`;

/** The cases of PROBE by the errno Linux gives on a plain directory. */
const ERROR_CASES: Record<string, readonly string[]> = {
  ENOTEMPTY: ['rmdir a non-empty directory', 'rename a directory onto a non-empty one'],
  EEXIST: [
    'mkdir over a directory',
    'mkdir over a file',
    'link onto an existing name',
    'symlink onto an existing name',
    'mkfifo onto an existing name',
    'create O_EXCL an existing file',
  ],
  ENOTDIR: [
    'stat a path through a file',
    'create a path through a file',
    'mkdir a path through a file',
    'rmdir a file',
    'list a file as a directory',
    'rename a directory onto a file',
  ],
  EISDIR: ['open a directory write-only', 'open a directory read-write', 'unlink a directory', 'rename a file onto a directory'],
  ENAMETOOLONG: ['create a 256-byte name', 'stat a 256-byte name', 'mkdir a 256-byte name', 'symlink at a 256-byte name', 'rename to a 256-byte name'],
  ELOOP: ['open a symlink loop', 'stat a symlink loop', 'stat through a two-link loop', 'open a symlink with O_NOFOLLOW'],
  EXDEV: ['rename onto another filesystem', 'link onto another filesystem'],
};

describeWithFuse('POSIX details through the mount', () => {
  let ws: Workspace;
  let daemon: Daemon;
  let seq = 0;

  /** A fresh directory of Alice's: [path in the mount, path in SRC]. */
  const aliceDir = async (): Promise<[string, string]> => {
    const name = `d${++seq}`;
    await asAlice('mkdir', [path.join(ws.mnt, 'alice', name)]);
    return [path.join(ws.mnt, 'alice', name), path.join(ws.src, 'alice', name)];
  };

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    mkdirSync(path.join(ws.src, 'alice'), { mode: 0o755 });
    chownSync(path.join(ws.src, 'alice'), ALICE.uid, ALICE.gid);
    const res = await aclfs(['import', '-', '--db', ws.db], { input: JSON.stringify(RULES) });
    expect(res).toMatchObject({ code: 0, stderr: '' });
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  // libfuse 2 keeps a node, and the kernel an inode with its own attribute
  // cache, per name: a change through one hard link must not leave another
  // showing stale attributes (the mount sets attr_timeout=0). Each test
  // stats the other name first, so a cache would hold the old values, and
  // checks it again right after the change, well within libfuse's default
  // 1 s attribute timeout.
  describe('hard links: a change through one name shows through another at once', () => {
    /** Alice's file `a` with a second name `b`, both already stat'ed. */
    const linked = async (): Promise<{ a: string; b: string; srcA: string }> => {
      const [dir, srcDir] = await aliceDir();
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      await asAlice('sh', ['-c', `echo first > "${a}" && chmod 644 "${a}" && ln "${a}" "${b}"`]);
      expect(nsStat(b).ino).toBe(nsStat(a).ino);
      expect(nsStat(b).nlink).toBe(2n);
      return { a, b, srcA: path.join(srcDir, 'a') };
    };

    it('chmod', async () => {
      const { a, b, srcA } = await linked();
      expect(nsStat(b).mode & 0o7777n).toBe(0o644n);
      chmodSync(a, 0o600);
      expect(nsStat(b).mode & 0o7777n).toBe(0o600n);
      expect(nsStat(b).ctimeNs).toBe(nsStat(srcA).ctimeNs);
    });

    it('chown', async () => {
      const { a, b } = await linked();
      expect(nsStat(b).uid).toBe(BigInt(ALICE.uid));
      chownSync(a, 2412, TEAM);
      const st = nsStat(b);
      expect([st.uid, st.gid]).toEqual([2412n, BigInt(TEAM)]);
    });

    it('write and truncate', async () => {
      const { a, b, srcA } = await linked();
      const before = nsStat(b);
      expect(before.size).toBe(6n);
      await sleep(20);
      appendFileSync(a, 'second\n');
      const after = nsStat(b);
      expect(after.size).toBe(13n);
      expect(after.mtimeNs).toBeGreaterThan(before.mtimeNs);
      expect(after.mtimeNs).toBe(nsStat(srcA).mtimeNs);
      expect(readFileSync(b, 'utf8')).toBe('first\nsecond\n');
      truncateSync(a, 3);
      expect(nsStat(b).size).toBe(3n);
      expect(readFileSync(b, 'utf8')).toBe('fir');
    });

    it('link and unlink change nlink', async () => {
      const { a, b } = await linked();
      const c = path.join(path.dirname(a), 'c');
      linkSync(a, c);
      expect(nsStat(b).nlink).toBe(3n);
      unlinkSync(c);
      expect(nsStat(b).nlink).toBe(2n);
      unlinkSync(a);
      expect(nsStat(b).nlink).toBe(1n);
    });
  });

  // libfuse 2 passes UTIME_OMIT to the filesystem only when it declares it
  // can take it; otherwise the omitted time is overwritten. touch -a / -m
  // call utimensat with the other time UTIME_OMIT.
  describe('one-sided utimensat changes exactly that time', () => {
    const ATIME = 1_300_000_000_111_111_111n;
    const MTIME = 1_400_000_000_222_222_222n;
    const NEW = 1_600_000_000_123_456_789n;
    const touchDate = (ns: bigint): string => `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;

    /** Alice's file (or symlink) with known atime and mtime, set through the mount. */
    const withTimes = async (kind: 'file' | 'symlink'): Promise<{ f: string; src: string }> => {
      const [dir, srcDir] = await aliceDir();
      const f = path.join(dir, kind);
      await asAlice('sh', ['-c', kind === 'file' ? `echo x > "${f}"` : `ln -s target "${f}"`]);
      await asAlice(PYTHON, ['-c', `import os; os.utime(${JSON.stringify(f)}, ns=(${ATIME}, ${MTIME}), follow_symlinks=False)`]);
      const st = nsStat(f);
      expect([st.atimeNs, st.mtimeNs]).toEqual([ATIME, MTIME]);
      return { f, src: path.join(srcDir, kind) };
    };

    const expectTimes = (paths: readonly string[], atime: bigint, mtime: bigint): void => {
      for (const p of paths) {
        const st = nsStat(p);
        expect([st.atimeNs, st.mtimeNs], p).toEqual([atime, mtime]);
      }
    };

    it('atime only (touch -a -d)', async () => {
      const { f, src } = await withTimes('file');
      await asAlice('touch', ['-a', '-d', touchDate(NEW), f]);
      expectTimes([f, src], NEW, MTIME);
    });

    it('mtime only (touch -m -d)', async () => {
      const { f, src } = await withTimes('file');
      await asAlice('touch', ['-m', '-d', touchDate(NEW), f]);
      expectTimes([f, src], ATIME, NEW);
    });

    it('atime to now only (touch -a: UTIME_NOW with UTIME_OMIT)', async () => {
      const { f, src } = await withTimes('file');
      const t0 = BigInt(Date.now() - 1000) * 1_000_000n;
      await asAlice('touch', ['-a', f]);
      for (const p of [f, src]) {
        const st = nsStat(p);
        expect(st.atimeNs).toBeGreaterThan(t0);
        expect(st.mtimeNs).toBe(MTIME);
      }
    });

    it('mtime only on a symlink itself (touch -h -m -d)', async () => {
      const { f, src } = await withTimes('symlink');
      await asAlice('touch', ['-h', '-m', '-d', touchDate(NEW), f]);
      expectTimes([f, src], ATIME, NEW);
    });
  });

  describe('ctime moves on rename, link, chmod and chown', () => {
    /** Runs `change` (as Alice) on a fresh file and returns ctime before and after. */
    const ctimeAround = async (change: (file: string, dir: string) => Promise<string>): Promise<void> => {
      const [dir, srcDir] = await aliceDir();
      const file = path.join(dir, 'f');
      await asAlice('sh', ['-c', `echo x > "${file}"`]);
      const before = nsStat(file).ctimeNs;
      await sleep(20);
      const after = await change(file, dir);
      const st = nsStat(after);
      expect(st.ctimeNs).toBeGreaterThan(before);
      // Through the mount exactly as on disk.
      expect(st.ctimeNs).toBe(nsStat(path.join(srcDir, path.relative(dir, after))).ctimeNs);
    };

    it('rename', () =>
      ctimeAround(async (file, dir) => {
        await asAlice('mv', [file, path.join(dir, 'g')]);
        return path.join(dir, 'g');
      }));

    it('link', () =>
      ctimeAround(async (file, dir) => {
        await asAlice('ln', [file, path.join(dir, 'h')]);
        return file;
      }));

    it('chmod', () =>
      ctimeAround(async (file) => {
        await asAlice('chmod', ['600', file]);
        return file;
      }));

    it('chown (to a group of the owner)', () =>
      ctimeAround(async (file) => {
        await asAlice('chgrp', [String(TEAM), file]);
        expect(nsStat(file).gid).toBe(BigInt(TEAM));
        return file;
      }));
  });

  // The same error cases, run by Alice directly on the backing directory and
  // through the mount, must fail with the same errno, the one Linux gives.
  describe('errno values match the plain directory', () => {
    let plain: string;
    let mounted: string;

    beforeAll(async () => {
      [mounted, plain] = await aliceDir();
      // Made directly in SRC: the fixture is what the plain run sees too.
      const sh = [
        'set -e',
        'cd "$1"',
        'echo data > file && echo data > other',
        'mkdir empty full sub && echo x > full/x',
        'ln -s loop loop && ln -s pong ping && ln -s ping pong && ln -s file tofile',
      ].join('\n');
      expect(await runAs(ALICE, 'sh', ['-c', sh, 'sh', plain])).toMatchObject({ code: 0, stderr: '' });
    });

    const probe = async (base: string, cases: readonly string[]): Promise<Record<string, string>> => {
      const res = await runAs(ALICE, PYTHON, ['-c', PROBE, base, ...cases]);
      expect(res.stderr).toBe('');
      return JSON.parse(res.stdout) as Record<string, string>;
    };

    /** Probes both ways; the plain directory first, so it is never changed by a wrong mount. */
    const compare = async (errno: string, cases: readonly string[]): Promise<void> => {
      const expected = Object.fromEntries(cases.map((c) => [c, errno]));
      expect(await probe(plain, cases)).toEqual(expected);
      expect(await probe(mounted, cases)).toEqual(expected);
    };

    it('a control case succeeds both ways', async () => {
      expect(await probe(plain, ['stat a file (control)'])).toEqual({ 'stat a file (control)': 'OK' });
      expect(await probe(mounted, ['stat a file (control)'])).toEqual({ 'stat a file (control)': 'OK' });
    });

    for (const [errno, cases] of Object.entries(ERROR_CASES)) {
      if (errno === 'EXDEV') continue;
      it(`${errno}: ${cases.join('; ')}`, () => compare(errno, cases));
    }

    it(`EXDEV: ${ERROR_CASES.EXDEV!.join('; ')} (a tmpfs mounted inside SRC)`, async () => {
      const sub = path.join(plain, 'sub');
      const tmpfs = await run('mount', ['-t', 'tmpfs', '-o', `size=1m,mode=0755,uid=${ALICE.uid},gid=${ALICE.gid}`, 'tmpfs', sub]);
      expect(tmpfs).toMatchObject({ code: 0, stderr: '' });
      try {
        await compare('EXDEV', ERROR_CASES.EXDEV!);
      } finally {
        expect(await run('umount', [sub])).toMatchObject({ code: 0, stderr: '' });
      }
    });
  });
});
