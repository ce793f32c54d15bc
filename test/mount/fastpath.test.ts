// The binding's fast path (patch: "the fast path"): allows the daemon's JS
// decided are replayed in C for later opens, and reads and writes on their
// handles are served in C, only while the commit epoch has not moved and
// only for the very file, uid, gid and access that were decided. Each test
// proves a replay happened (the status counters) and that it stops where
// it must.
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, linkSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import {
  ALICE,
  BOB,
  CAROL_IN_TEAM,
  TEAM,
  aclfs,
  Daemon,
  importRules,
  FileHolder,
  makeWorkspace,
  requireFuse,
  runAs,
  type Identity,
  type Workspace,
} from '../helpers/mounts';
import { topMountAt } from '../../src/fs/mount';

interface FastStats {
  opens: number;
  reads: number;
  writes: number;
  listedAttributes: number;
}


async function status(ws: Workspace): Promise<{ fastPath: FastStats; decisions: { allowed: number; denied: number } }> {
  const res = await aclfs(['status', '--json', '--socket', ws.socket]);
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as { fastPath: FastStats; decisions: { allowed: number; denied: number } };
}

/** The daemon's `mounted` log line (JSON on its stderr). */
function mountedLog(daemon: Daemon): { readaheadKiB: number | null } {
  const line = daemon.stderr.split('\n').find((l) => l.includes('"msg":"mounted"'));
  if (line === undefined) throw new Error(`no "mounted" log line: ${daemon.stderr}`);
  return JSON.parse(line) as { readaheadKiB: number | null };
}

/** Whether this process may write `file` (false on a read-only mount such as a container's /sys). */
function writable(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `cat FILE` as `who`, N times; the outputs (or the error line) of each. */
async function catTimes(who: Identity, file: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await runAs(who, 'cat', [file]);
    out.push(res.code === 0 ? res.stdout : `ERR ${res.stderr.trim()}`);
  }
  return out;
}

/** 8 MiB and a bit, different in every word, for the large-request test. */
const HUGE = Buffer.alloc(8 * 1024 * 1024 + 1234);
for (let off = 0; off + 4 <= HUGE.length; off += 4) HUGE.writeUInt32LE(off, off);

const MANY = 300;
const manyName = (i: number): string => `an-entry-with-a-rather-long-name-${String(i).padStart(3, '0')}.txt`;

const ROOT_RULE = { path: '/', recursive: true, owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] };

function setupFiles(ws: Workspace): void {
  writeFileSync(path.join(ws.src, 'a.txt'), 'alpha\n');
  writeFileSync(path.join(ws.src, 'pub.txt'), 'public\n');
  writeFileSync(path.join(ws.src, 'other.txt'), 'other\n');
  writeFileSync(path.join(ws.src, 'team.txt'), 'team\n');
  writeFileSync(path.join(ws.src, 'big.bin'), Buffer.alloc(1024 * 1024, 0x62));
  writeFileSync(path.join(ws.src, 'huge.bin'), HUGE);
  for (const f of ['a.txt', 'pub.txt', 'other.txt', 'team.txt', 'big.bin', 'huge.bin']) chmodSync(path.join(ws.src, f), 0o666);
  mkdirSync(path.join(ws.src, 'dir'), { mode: 0o755 });
  // Long names: a listing takes many READDIRPLUS replies.
  mkdirSync(path.join(ws.src, 'many'), { mode: 0o755 });
  for (let i = 0; i < MANY; i++) writeFileSync(path.join(ws.src, 'many', manyName(i)), 'x'.repeat(i));
  mkdirSync(path.join(ws.src, 'links'), { mode: 0o755 });
  writeFileSync(path.join(ws.src, 'links', 'one'), 'linked\n', { mode: 0o644 });
  linkSync(path.join(ws.src, 'links', 'one'), path.join(ws.src, 'links', 'two'));
  writeFileSync(path.join(ws.src, 'links', 'single'), 'single\n', { mode: 0o644 });
  for (const f of ['x', 'y']) writeFileSync(path.join(ws.src, 'dir', f), f);
  for (const d of ['tree', 'tree/open', 'tree/shut']) mkdirSync(path.join(ws.src, d), { mode: 0o755 });
}

describeWithFuse('fast path (default revocation mode)', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    setupFiles(ws);
    await importRules(ws.db, [
      ROOT_RULE,
      // Bound to other.txt's inode when the daemon starts: Alice may not.
      { path: '/other.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] },
      { path: '/team.txt', owner: 0, defaccess: '---', acl: [{ group: TEAM, access: 'r--' }] },
      { path: '/tree/shut', owner: 0, defaccess: '---', acl: [] },
    ]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('replays an allow: later opens skip the JS decision and read the right bytes', async () => {
    const file = path.join(ws.mnt, 'a.txt');
    expect(await catTimes(ALICE, file, 1)).toEqual(['alpha\n']);
    const before = await status(ws);
    expect(await catTimes(ALICE, file, 10)).toEqual(Array(10).fill('alpha\n'));
    const after = await status(ws);
    expect(after.fastPath.opens - before.fastPath.opens).toBe(10);
    expect(after.decisions.allowed - before.decisions.allowed).toBe(0);
  });

  it('never replays an allow for another uid', async () => {
    const file = path.join(ws.mnt, 'a.txt');
    expect(await catTimes(ALICE, file, 2)).toEqual(['alpha\n', 'alpha\n']);
    const [bob] = await catTimes(BOB, file, 1);
    expect(bob).toMatch(/^ERR .*Permission denied/);
  });

  it('stops at the next open after a revoke through the socket, and resumes after a grant', async () => {
    const file = path.join(ws.mnt, 'a.txt');
    expect(await catTimes(ALICE, file, 3)).toEqual(Array(3).fill('alpha\n'));
    const set = await aclfs(['rule', 'set', '/a.txt', '--owner', '0', '--default', '---', '--socket', ws.socket]);
    expect(set.code).toBe(0);
    const [denied] = await catTimes(ALICE, file, 1);
    expect(denied).toMatch(/^ERR .*Permission denied/);
    const rm = await aclfs(['rule', 'rm', '/a.txt', '--socket', ws.socket]);
    expect(rm.code).toBe(0);
    expect(await catTimes(ALICE, file, 2)).toEqual(['alpha\n', 'alpha\n']);
  });

  it('stops at the next open after a revoke committed by another process (--db)', async () => {
    const file = path.join(ws.mnt, 'a.txt');
    expect(await catTimes(ALICE, file, 3)).toEqual(Array(3).fill('alpha\n'));
    await importRules(ws.db, [{ path: '/a.txt', owner: 0, defaccess: '---', acl: [] }]);
    const [denied] = await catTimes(ALICE, file, 1);
    expect(denied).toMatch(/^ERR .*Permission denied/);
    const rm = await aclfs(['rule', 'rm', '/a.txt', '--db', ws.db]);
    expect(rm.code).toBe(0);
    expect(await catTimes(ALICE, file, 1)).toEqual(['alpha\n']);
  });

  it('decides afresh when another file now sits at the path (replaced behind the mount)', async () => {
    const file = path.join(ws.mnt, 'pub.txt');
    expect(await catTimes(ALICE, file, 3)).toEqual(Array(3).fill('public\n'));
    // No commit happens: only the file identity tells the replay apart.
    renameSync(path.join(ws.src, 'other.txt'), path.join(ws.src, 'pub.txt'));
    const [denied] = await catTimes(ALICE, file, 1);
    expect(denied).toMatch(/^ERR .*Permission denied/);
    expect(await catTimes(BOB, file, 1)).toEqual(['other\n']);
  });

  it('replays opendir and lists the directory in C, until a revoke', async () => {
    const dir = path.join(ws.mnt, 'dir');
    const listing = async (): Promise<string> => {
      const res = await runAs(ALICE, 'ls', ['-1', dir]);
      return res.code === 0 ? res.stdout : `ERR ${res.stderr.trim()}`;
    };
    expect(await listing()).toBe('x\ny\n');
    const before = await status(ws);
    expect(await listing()).toBe('x\ny\n');
    expect(await listing()).toBe('x\ny\n');
    const after = await status(ws);
    expect(after.fastPath.opens - before.fastPath.opens).toBe(2);
    expect(after.decisions.allowed - before.decisions.allowed).toBe(0);
    await importRules(ws.db, [{ path: '/dir', owner: 0, defaccess: '---', acl: [] }]);
    expect(await listing()).toMatch(/^ERR .*Permission denied/);
    expect((await aclfs(['rule', 'rm', '/dir', '--db', ws.db])).code).toBe(0);
    expect(await listing()).toBe('x\ny\n');
  });

  it('decides the subdirectories of an opened directory ahead, publishing only allows', async () => {
    const ls = async (dir: string): Promise<string> => {
      const res = await runAs(ALICE, 'ls', ['-1', path.join(ws.mnt, dir)]);
      return res.code === 0 ? res.stdout : `ERR ${res.stderr.trim()}`;
    };
    expect(await ls('tree')).toBe('open\nshut\n');
    const before = await status(ws);
    expect(await ls('tree/open')).toBe('');
    const mid = await status(ws);
    // Replayed at its very first opendir: decided when tree/ was opened.
    expect(mid.fastPath.opens - before.fastPath.opens).toBe(1);
    expect(mid.decisions.allowed - before.decisions.allowed).toBe(0);
    expect(await ls('tree/shut')).toMatch(/^ERR .*Permission denied/);
  });

  it('does not replay allows that depend on supplementary groups', async () => {
    const file = path.join(ws.mnt, 'team.txt');
    const before = await status(ws);
    expect(await catTimes(CAROL_IN_TEAM, file, 4)).toEqual(Array(4).fill('team\n'));
    const after = await status(ws);
    expect(after.fastPath.opens - before.fastPath.opens).toBe(0);
    expect(after.decisions.allowed - before.decisions.allowed).toBeGreaterThanOrEqual(4);
  });

  it('re-decides a handle it opened at the next read that reaches the daemon after a revoke', async () => {
    const file = path.join(ws.mnt, 'big.bin');
    // An open and close that reads only the start: the allow is published.
    const { holder: warm } = await FileHolder.open(ALICE, file, 'r');
    warm.close();
    const before = await status(ws);
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect((await status(ws)).fastPath.opens - before.fastPath.opens).toBe(1);
      await importRules(ws.db, [{ path: '/big.bin', owner: 0, defaccess: '---', acl: [] }]);
      // Far from anything read so far (and beyond readahead): not in the
      // page cache, so it reaches the daemon, which must refuse it now.
      expect(await holder.send(String(900 * 1024))).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
      expect((await aclfs(['rule', 'rm', '/big.bin', '--db', ws.db])).code).toBe(0);
    }
  });

  it('lets the kernel send reads and writes of 512 KiB, reads spliced (a 128 KiB cap would take 65 and 64)', async () => {
    const mount = topMountAt(ws.mnt);
    expect(mount?.type).toBe('fuse.aclfs');
    const readahead = `/sys/class/bdi/${mount?.device ?? ''}/read_ahead_kb`;
    // Where /sys is read-only (a container), the daemon cannot raise the
    // readahead: it mounts anyway, says so (null), and the kernel keeps its
    // default 128 KiB window, asking for a window and its lookahead at once.
    const sysfsWritable = writable(readahead);
    expect(mountedLog(daemon).readaheadKiB).toBe(sysfsWritable ? 1024 : null);
    if (sysfsWritable) expect(readFileSync(readahead, 'utf8').trim()).toBe('1024');
    else expect(readFileSync(readahead, 'utf8').trim()).toBe('128');
    const file = path.join(ws.mnt, 'huge.bin');
    const before = await status(ws);
    // Not a multiple of a page: the last READ runs past the end of the file.
    const sum = await runAs(ALICE, 'sha256sum', [file]);
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(HUGE).digest('hex'));
    const mid = await status(ws);
    // 16 of 512 KiB, plus readahead's first smaller windows.
    const reads = mid.fastPath.reads - before.fastPath.reads;
    if (sysfsWritable) {
      expect(reads).toBeGreaterThanOrEqual(17);
      expect(reads).toBeLessThanOrEqual(24);
    } else {
      // READs of up to 256 KiB: still fewer than a 128 KiB cap would take.
      expect(reads).toBeGreaterThanOrEqual(33);
      expect(reads).toBeLessThanOrEqual(40);
    }
    const dd = await runAs(ALICE, 'dd', [`of=${file}`, 'if=/dev/zero', 'bs=1M', 'count=8', 'conv=notrunc,fsync', 'status=none']);
    expect(dd.code).toBe(0);
    const after = await status(ws);
    expect(after.fastPath.writes - mid.fastPath.writes).toBe(16);
    const onDisk = readFileSync(path.join(ws.src, 'huge.bin'));
    expect(onDisk.subarray(0, 8 * 1024 * 1024).equals(Buffer.alloc(8 * 1024 * 1024))).toBe(true);
    expect(onDisk.subarray(8 * 1024 * 1024).equals(HUGE.subarray(8 * 1024 * 1024))).toBe(true);
  });

  it('lists entries with their attributes (READDIRPLUS), across many replies, with the right sizes', async () => {
    const before = await status(ws);
    const res = await runAs(ALICE, 'find', [path.join(ws.mnt, 'many'), '-type', 'f', '-printf', '%f %s\\n']);
    expect(res.code).toBe(0);
    const listed = res.stdout.trim().split('\n').sort();
    expect(listed).toEqual(Array.from({ length: MANY }, (_, i) => `${manyName(i)} ${i}`).sort());
    const after = await status(ws);
    // Every entry came with its attributes: find's stats needed no LOOKUP.
    expect(after.fastPath.listedAttributes - before.fastPath.listedAttributes).toBeGreaterThanOrEqual(MANY);
  });

  it('keeps a listed file with several links uncached: a change behind the mount shows through the other name at once', async () => {
    const ls = await runAs(ALICE, 'ls', ['-l', path.join(ws.mnt, 'links')]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/-rw-r--r-- 2 .* one\n/);
    chmodSync(path.join(ws.src, 'links', 'one'), 0o600);
    const two = await runAs(ALICE, 'stat', ['-c', '%a %h', path.join(ws.mnt, 'links', 'two')]);
    expect(two.stdout).toBe('600 2\n');
  });

  it('writes through a handle it opened, until a revoke', async () => {
    const file = path.join(ws.mnt, 'big.bin');
    const { holder: warm } = await FileHolder.open(ALICE, file, 'w');
    warm.close();
    const before = await status(ws);
    const { holder, first } = await FileHolder.open(ALICE, file, 'w');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect(await holder.send('w0')).toEqual({ ok: true, bytes: 4096 });
      const mid = await status(ws);
      expect(mid.fastPath.opens - before.fastPath.opens).toBe(1);
      expect(mid.fastPath.writes - before.fastPath.writes).toBe(1);
      await importRules(ws.db, [{ path: '/big.bin', owner: 0, defaccess: 'r--', acl: [] }]);
      expect(await holder.send('w4096')).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
      expect((await aclfs(['rule', 'rm', '/big.bin', '--db', ws.db])).code).toBe(0);
    }
  });
});

describeWithFuse('fast path with --revoke immediate', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    setupFiles(ws);
    await importRules(ws.db, [ROOT_RULE]);
    daemon = await Daemon.start(
      [ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny', '--revoke', 'immediate'],
      ws.mnt,
    );
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('serves reads of a handle it opened in C, and stops it at its next read after a revoke', async () => {
    const file = path.join(ws.mnt, 'a.txt');
    expect(await catTimes(ALICE, file, 1)).toEqual(['alpha\n']);
    const before = await status(ws);
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 6 });
      expect(await holder.send('0')).toEqual({ ok: true, bytes: 6 });
      const mid = await status(ws);
      expect(mid.fastPath.opens - before.fastPath.opens).toBe(1);
      expect(mid.fastPath.reads - before.fastPath.reads).toBeGreaterThanOrEqual(2);
      await importRules(ws.db, [{ path: '/a.txt', owner: 0, defaccess: '---', acl: [] }]);
      // The very bytes just read: direct I/O, so the read reaches the daemon.
      expect(await holder.send('0')).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
    }
  });
});
