// Bulk data through a real mount, as an allowed non-root user would move it:
// a real tree (a copy of the project's own node_modules, thousands of files
// and symlinks) copied in and back out with `cp -a`, and a 1 GiB file
// written and read back. Both must arrive exactly: bytes, owners, modes,
// nanosecond mtimes, symlinks, hard links and xattrs. Every test here
// mounts, so under CI (root, /dev/fuse) none may be skipped.
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, Daemon, makeWorkspace, requireFuse, ROOT, run, setprivArgs, type Identity, type RunResult, type Workspace } from '../helpers/mounts';

const PYTHON = '/usr/bin/python3';
const ALICE: Identity = { uid: 2401, gid: 2401, groups: [3401] };
const TEAM = 3401;

// "/" and everything below: readable by all, writable by Alice only.
const RULES = {
  version: 1,
  rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [{ user: ALICE.uid, access: 'rwx' }] }],
};

async function importRules(ws: Workspace): Promise<void> {
  const res = await aclfs(['import', '-', '--db', ws.db], { input: JSON.stringify(RULES) });
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
}

/** Runs a command as `who` with a timeout fit for bulk copies. */
function runAsFor(who: Identity, timeoutMs: number, cmd: string, args: readonly string[]): Promise<RunResult> {
  return run('setpriv', [...setprivArgs(who), cmd, ...args], { timeoutMs });
}

async function timed<T>(what: string, fn: () => Promise<T>, log: string[]): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  log.push(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return result;
}

/**
 * Makes the staged tree a harder test than npm left it: a spread of modes
 * (setuid/setgid included), some entries in Alice's supplementary group,
 * user xattrs, and distinct atimes and mtimes with nanoseconds, set last
 * so nothing later moves them.
 */
const PREPARE = String.raw`
import os, sys
root, gid = sys.argv[1], int(sys.argv[2])
entries = [root]
for d, dirs, files in os.walk(root):
    entries += [os.path.join(d, n) for n in sorted(dirs) + sorted(files)]
entries.sort()
file_modes = [0o600, 0o640, 0o444, 0o700, 0o664, 0o750, 0o400, 0o4755, 0o2750]
dir_modes = [0o700, 0o750, 0o775, 0o555]
for i, p in enumerate(entries):
    if i % 11 == 0:
        os.lchown(p, -1, gid)
    if os.path.islink(p):
        continue
    if os.path.isdir(p):
        if i % 5 == 2 and p != root:
            os.chmod(p, dir_modes[i % len(dir_modes)])
    elif os.path.isfile(p) and i % 7 == 3:
        os.chmod(p, file_modes[i % len(file_modes)])
    if i % 97 == 0 and (os.path.isfile(p) or os.path.isdir(p)):
        os.setxattr(p, 'user.aclfs.test', ('value %d' % i).encode())
for i, p in enumerate(entries):
    os.utime(p, ns=(1_400_000_000_123_456_789 + i * 1_000_003_001, 1_500_000_000_987_654_321 + i * 999_999_937),
             follow_symlinks=False)
`;

/** Every xattr of every non-symlink entry, as JSON {relpath: {name: hex}}. */
const DUMP_XATTRS = String.raw`
import json, os, sys
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    for p in [d] + [os.path.join(d, n) for n in dirs + files]:
        if os.path.islink(p):
            continue
        names = sorted(os.listxattr(p))
        if names:
            out[os.path.relpath(p, root)] = {n: os.getxattr(p, n).hex() for n in names}
print(json.dumps(out, sort_keys=True))
`;

interface Entry {
  readonly type: 'file' | 'dir' | 'symlink' | 'fifo' | 'other';
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly size: bigint;
  readonly nlink: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly target?: string;
}

/** lstat (bigint, so nanoseconds are exact) of everything under `root`. */
function walk(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const visit = (rel: string): void => {
    const p = rel === '.' ? root : path.join(root, rel);
    const st = lstatSync(p, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other';
    out.set(rel, {
      type,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: type === 'dir' ? 0n : st.size,
      nlink: st.nlink,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
      ino: st.ino,
      ...(type === 'symlink' ? { target: readlinkSync(p) } : {}),
    });
    if (type === 'dir') for (const name of readdirSync(p).sort()) visit(rel === '.' ? name : path.join(rel, name));
  };
  visit('.');
  return out;
}

type Field = 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'nlink' | 'mtimeNs' | 'ctimeNs' | 'ino' | 'target';
const PRESERVED: readonly Field[] = ['type', 'mode', 'uid', 'gid', 'size', 'nlink', 'mtimeNs', 'target'];

/** One line per difference (missing, extra, or a field that differs). */
function differences(expected: Map<string, Entry>, actual: Map<string, Entry>, fields: readonly Field[]): string[] {
  const out: string[] = [];
  for (const [rel, want] of expected) {
    const got = actual.get(rel);
    if (got === undefined) {
      out.push(`${rel}: missing`);
      continue;
    }
    for (const f of fields) {
      if (want[f] !== got[f]) out.push(`${rel}: ${f} ${String(want[f])} != ${String(got[f])}`);
    }
  }
  for (const rel of actual.keys()) if (!expected.has(rel)) out.push(`${rel}: unexpected`);
  return out;
}

/** Names that are hard links of each other, grouped (inode numbers differ per tree). */
function hardLinkGroups(tree: Map<string, Entry>): string[][] {
  const byIno = new Map<bigint, string[]>();
  for (const [rel, e] of tree) {
    if (e.type === 'dir' || e.nlink < 2n) continue;
    byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), rel]);
  }
  return [...byIno.values()].map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

describeWithFuse('a real tree copied in and out with cp -a', () => {
  let ws: Workspace;
  let daemon: Daemon;
  const timings: string[] = [];

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    // Alice's own directory in SRC: Unix permissions let her write there;
    // the rule lets her write anywhere.
    mkdirSync(path.join(ws.src, 'alice'), { mode: 0o755 });
    await run('chown', [`${ALICE.uid}:${ALICE.gid}`, path.join(ws.src, 'alice')]);
    await importRules(ws);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
    if (timings.length > 0) console.log(`tree: ${timings.join(', ')}`);
  });

  it('arrives identical on disk and back out: content, owners, modes, ns mtimes, links, xattrs', async () => {
    // The staged tree: node_modules as installed, plus the kinds of entry
    // it lacks (a hard-link pair, a FIFO, a dangling symlink, an odd name).
    const stage = path.join(ws.dir, 'stage', 'tree');
    await timed('stage', async () => {
      mkdirSync(path.dirname(stage));
      expect((await run('cp', ['-a', path.join(ROOT, 'node_modules'), stage], { timeoutMs: 120_000 })).code).toBe(0);
      const extras = path.join(stage, 'aclfs-extras');
      mkdirSync(path.join(extras, 'empty dir'), { recursive: true });
      writeFileSync(path.join(extras, 'data.bin'), Buffer.alloc(100_000, 0x5a));
      linkSync(path.join(extras, 'data.bin'), path.join(extras, 'data.link'));
      writeFileSync(path.join(extras, 'empty'), '');
      writeFileSync(path.join(extras, 'naïve name with spaces'), 'odd name\n');
      symlinkSync('nowhere/at/all', path.join(extras, 'dangling'));
      symlinkSync('/etc/hostname', path.join(extras, 'absolute'));
      expect((await run('mkfifo', [path.join(extras, 'aclfs-fifo')])).code).toBe(0);
      expect((await run('chown', ['-R', `${ALICE.uid}:${ALICE.gid}`, path.join(ws.dir, 'stage')])).code).toBe(0);
      const prep = await run(PYTHON, ['-c', PREPARE, stage, String(TEAM)]);
      expect(prep.stderr).toBe('');
    }, timings);
    const staged = walk(stage);
    const count = (t: Entry['type']): number => [...staged.values()].filter((e) => e.type === t).length;
    expect(count('file')).toBeGreaterThanOrEqual(2000);
    expect(count('symlink')).toBeGreaterThanOrEqual(3);
    expect(count('fifo')).toBe(1);
    const some = (pred: (e: Entry) => boolean): boolean => [...staged.values()].some(pred);
    expect(some((e) => e.type === 'file' && (e.mode & 0o4000n) !== 0n)).toBe(true);
    expect(some((e) => e.type === 'file' && (e.mode & 0o2000n) !== 0n)).toBe(true);
    expect(some((e) => e.type === 'dir' && (e.mode & 0o777n) === 0o555n)).toBe(true);
    expect(some((e) => e.type === 'symlink' && e.gid === BigInt(TEAM))).toBe(true);
    expect(some((e) => e.mtimeNs % 1_000_000n !== 0n)).toBe(true);
    expect(hardLinkGroups(staged)).toContainEqual(['aclfs-extras/data.bin', 'aclfs-extras/data.link']);
    timings.push(`${staged.size} entries (${count('file')} files, ${count('dir')} dirs, ${count('symlink')} symlinks)`);

    const inMount = path.join(ws.mnt, 'alice', 'tree');
    const onDisk = path.join(ws.src, 'alice', 'tree');
    const out = path.join(ws.dir, 'out');
    mkdirSync(out, { mode: 0o755 });
    await run('chown', [`${ALICE.uid}:${ALICE.gid}`, out]);

    // Everything arrives but the FIFO: the mount makes none (the kernel
    // would open it without asking the daemon), and cp says so.
    const cpIn = await timed('cp -a in', () => runAsFor(ALICE, 300_000, 'cp', ['-a', stage, inMount]), timings);
    expect(cpIn.code).toBe(1);
    expect(cpIn.stderr).toMatch(/^cp: cannot create fifo '[^']*\/aclfs-fifo': Operation not permitted\n$/);
    const expected = new Map([...staged].filter(([, e]) => e.type !== 'fifo'));
    const cpOut = await timed('cp -a out', () => runAsFor(ALICE, 300_000, 'cp', ['-a', inMount, path.join(out, 'tree')]), timings);
    expect(cpOut).toMatchObject({ code: 0, stderr: '' });

    // Content: diff compares symlinks as links; a FIFO has none to compare.
    for (const copy of [onDisk, path.join(out, 'tree')]) {
      const diff = await run('diff', ['-r', '--no-dereference', '-x', 'aclfs-fifo', stage, copy], { timeoutMs: 120_000 });
      expect(diff).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }

    // Metadata of every entry, in what landed on disk and in the copy out.
    for (const copy of [onDisk, path.join(out, 'tree')]) {
      const copied = walk(copy);
      expect(differences(expected, copied, PRESERVED)).toEqual([]);
      expect(hardLinkGroups(copied)).toEqual(hardLinkGroups(expected));
    }
    // The mount shows exactly the backing files: same inode numbers, same ctimes.
    expect(differences(walk(onDisk), walk(inMount), [...PRESERVED, 'ino', 'ctimeNs'])).toEqual([]);

    const xattrs = async (root: string): Promise<unknown> => {
      const res = await run(PYTHON, ['-c', DUMP_XATTRS, root]);
      expect(res.stderr).toBe('');
      return JSON.parse(res.stdout);
    };
    const stagedXattrs = await xattrs(stage);
    expect(Object.keys(stagedXattrs as object).length).toBeGreaterThan(10);
    expect(await xattrs(onDisk)).toEqual(stagedXattrs);
    expect(await xattrs(path.join(out, 'tree'))).toEqual(stagedXattrs);
  }, 600_000);
});

describeWithFuse('a 1 GiB file through the mount', () => {
  let ws: Workspace;
  let daemon: Daemon;
  const timings: string[] = [];
  const GIB = 1024 * 1024 * 1024;

  const start = (): Promise<Daemon> =>
    Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    mkdirSync(path.join(ws.src, 'alice'), { mode: 0o755 });
    await run('chown', [`${ALICE.uid}:${ALICE.gid}`, path.join(ws.src, 'alice')]);
    await importRules(ws);
    daemon = await start();
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
    if (timings.length > 0) console.log(`1 GiB: ${timings.join(', ')}`);
  });

  it('is written and read back byte-identical', async () => {
    const inMount = path.join(ws.mnt, 'alice', 'big.bin');
    const onDisk = path.join(ws.src, 'alice', 'big.bin');
    const sha = (res: RunResult): string => {
      expect(res).toMatchObject({ code: 0, stderr: '' });
      return res.stdout.split(' ')[0]!;
    };
    try {
      // The data is hashed on its way in, before it reaches the mount.
      const written = sha(
        await timed(
          'write',
          () => runAsFor(ALICE, 600_000, 'sh', ['-c', `head -c ${GIB} /dev/urandom | tee "${inMount}" | sha256sum`]),
          timings,
        ),
      );
      expect(written).toMatch(/^[0-9a-f]{64}$/);
      const st = statSync(onDisk);
      expect(st.size).toBe(GIB);
      expect(st.uid).toBe(ALICE.uid);
      expect(sha(await timed('hash on disk', () => run('sha256sum', [onDisk], { timeoutMs: 300_000 }), timings))).toBe(written);
      // A fresh mount, so the read back cannot come from the page cache of
      // the write: every byte passes through the daemon.
      expect(await daemon.stop()).toBe(0);
      daemon = await start();
      const readBack = await timed('read back', () => runAsFor(ALICE, 600_000, 'sha256sum', [inMount]), timings);
      expect(sha(readBack)).toBe(written);
    } finally {
      if (existsSync(onDisk)) unlinkSync(onDisk);
    }
    expect(existsSync(onDisk)).toBe(false);
  }, 900_000);
});
