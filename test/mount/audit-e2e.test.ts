// End to end, through a real FUSE mount: a test user's denied `cat` shows up
// in `aclfs audit`, a running `aclfs audit --follow` receives denials as
// they happen, `aclfs mode permissive` lets the same read through (recorded
// as not enforced, and never replayed by the fast path), and `aclfs mode
// enforce` stops the next open and the next read of a file opened while
// permissive. The daemon is a child process; the test stops only what it
// started.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import {
  ACLFS,
  ALICE,
  BOB,
  aclfs,
  Daemon,
  FileHolder,
  importRules,
  makeWorkspace,
  requireFuse,
  runAs,
  type RunResult,
  type Workspace,
} from '../helpers/mounts';

interface AuditRecord {
  seq: number;
  time: string;
  op: string;
  path: string;
  uid: number;
  gid: number;
  pid: number;
  access: string;
  enforced: boolean;
  rule: number | null;
  reason: string;
}

let ws: Workspace;
let daemon: Daemon;
let secretRule: number;
/** Child processes this test started (the followers), ended in afterAll if still running. */
const children: ChildProcess[] = [];

/** 8 MiB, different in every word: a read far from the last one is not in the page cache. */
const BIG = Buffer.alloc(8 * 1024 * 1024);
for (let off = 0; off + 4 <= BIG.length; off += 4) BIG.writeUInt32LE(off, off);

const S = (): string[] => ['--socket', ws.socket];

async function ok(args: string[]): Promise<string> {
  const res = await aclfs([...args, ...S()]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  return res.stdout;
}

function expectOneLineError(res: RunResult, code: number, message: RegExp): void {
  expect(res.code).toBe(code);
  expect(res.stdout).toBe('');
  expect(res.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
  expect(res.stderr).toMatch(/^aclfs: /);
  expect(res.stderr).toMatch(message);
}

async function auditAfter(after: number): Promise<{ records: AuditRecord[]; next: number }> {
  return JSON.parse(await ok(['audit', '--json', '--after', String(after)])) as { records: AuditRecord[]; next: number };
}

async function newestSeq(): Promise<number> {
  return (await auditAfter(0)).next;
}

const cat = (rel: string) => runAs(ALICE, 'cat', [path.join(ws.mnt, rel)]);

/** `aclfs audit --follow --json` as a child process, its records as they arrive. */
class Follower {
  readonly records: AuditRecord[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    children.push(child);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', (line) => this.records.push(JSON.parse(line) as AuditRecord));
  }

  static start(after: number): Follower {
    return new Follower(spawn(process.execPath, [ACLFS, 'audit', '--follow', '--json', '--after', String(after), ...S()], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitFor(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.records.length < n) {
      if (Date.now() > deadline) throw new Error(`follower got ${this.records.length} of ${n} records; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-audit-');
  fs.mkdirSync(path.join(ws.src, 'docs'));
  // Unix permissions let anyone create here; the rules do not.
  fs.chmodSync(path.join(ws.src, 'docs'), 0o777);
  fs.writeFileSync(path.join(ws.src, 'docs', 'a.txt'), 'alpha\n', { mode: 0o644 });
  fs.writeFileSync(path.join(ws.src, 'docs', 'secret.txt'), 'the secret\n', { mode: 0o644 });
  fs.writeFileSync(path.join(ws.src, 'docs', 'big.bin'), BIG, { mode: 0o644 });
  fs.writeFileSync(path.join(ws.src, 'docs', 'locked.txt'), 'root only\n');
  fs.chmodSync(path.join(ws.src, 'docs', 'locked.txt'), 0o600);
  await importRules(ws.db, [
    { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/docs/secret.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] },
    { path: '/docs/big.bin', owner: 0, defaccess: '---', acl: [] },
    { path: '/docs/locked.txt', owner: 0, defaccess: '---', acl: [] },
  ]);
  daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  secretRule = (JSON.parse(await ok(['rule', 'show', '/docs/secret.txt', '--json'])) as { id: number }).id;
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await daemon?.ensureStopped();
  ws?.cleanup();
});

describeWithFuse('aclfs audit', () => {
  it('shows a denied cat by a test user, with who, what, which rule and why', async () => {
    const before = await newestSeq();
    const denied = await cat('docs/secret.txt');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Permission denied');
    // Allowed reads are not recorded.
    expect((await cat('docs/a.txt')).stdout).toBe('alpha\n');
    const { records, next } = await auditAfter(before);
    expect(records).toHaveLength(1);
    const r = records[0]!;
    expect(r).toMatchObject({
      seq: before + 1,
      op: 'open',
      path: '/docs/secret.txt',
      uid: ALICE.uid,
      gid: ALICE.gid,
      access: 'r--',
      enforced: true,
      rule: secretRule,
    });
    expect(r.pid).toBeGreaterThan(0);
    expect(r.reason).toMatch(new RegExp(`^deny: rule ${secretRule} \\(/docs/secret.txt, by (inode|path)\\): .*lacks r`));
    expect(Math.abs(Date.parse(r.time) - Date.now())).toBeLessThan(60_000);
    expect(next).toBe(r.seq);

    // The human form: one line per record.
    const text = await ok(['audit', '--after', String(before)]);
    expect(text.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(text).toMatch(
      new RegExp(`^\\s*${r.seq}  ${r.time.replace(/\./g, '\\.')}  enforced    uid ${ALICE.uid} gid ${ALICE.gid} pid ${r.pid}  open r--  /docs/secret\\.txt  deny: rule ${secretRule} `),
    );
    // --limit takes the first N after --after.
    await cat('docs/secret.txt');
    const limited = JSON.parse(await ok(['audit', '--json', '--after', String(before), '--limit', '1'])) as { records: AuditRecord[]; next: number };
    expect(limited.records.map((x) => x.seq)).toEqual([before + 1]);
    expect(limited.next).toBe(before + 1);
  });

  it('--follow --json, started first, receives each denial as it happens, and exits 0 on SIGTERM', async () => {
    const after = await newestSeq();
    const follower = Follower.start(after);
    try {
      // Nothing stored after `after`: nothing printed until a denial happens.
      await new Promise((r) => setTimeout(r, 300));
      expect(follower.records).toEqual([]);
      expect((await cat('docs/secret.txt')).stderr).toContain('Permission denied');
      await follower.waitFor(1);
      expect(follower.records[0]).toMatchObject({ seq: after + 1, op: 'open', path: '/docs/secret.txt', uid: ALICE.uid, enforced: true });
      expect((await runAs(ALICE, 'sh', ['-c', `echo x > "${path.join(ws.mnt, 'docs', 'new.txt')}"`])).code).not.toBe(0);
      await follower.waitFor(2);
      expect(follower.records[1]).toMatchObject({ seq: after + 2, op: 'create', path: '/docs', access: '-w-', uid: ALICE.uid, enforced: true });
    } finally {
      follower.child.kill('SIGTERM');
    }
    expect(await follower.exited).toBe(0);
    expect(follower.stderr).toBe('');
  });

  it('is for a running daemon only: --db and bad arguments are refused', async () => {
    expectOneLineError(await aclfs(['audit', '--db', ws.db]), 6, /audit log belongs to a running aclfs daemon/);
    expectOneLineError(await aclfs(['audit', '--follow', '--limit', '3', ...S()]), 2, /--limit does not apply with --follow/);
    expectOneLineError(await aclfs(['audit', '--after', 'x', ...S()]), 2, /--after must be a non-negative integer/);
    expectOneLineError(await aclfs(['audit', '--limit', '10001', ...S()]), 2, /--limit must be 1-10000/);
  });
});

describeWithFuse('aclfs mode', () => {
  it('permissive lets a denied read through (bytes intact), records it as not enforced, and never replays it in C', async () => {
    expect(await ok(['mode'])).toBe('enforce\n');
    expect(JSON.parse(await ok(['mode', '--json']))).toEqual({ mode: 'enforce' });
    const before = await newestSeq();
    expect(await ok(['mode', 'permissive'])).toBe('permissive\n');
    expect(await ok(['mode'])).toBe('permissive\n');
    expect(JSON.parse(await ok(['status', '--json'])).mode).toBe('permissive');
    expect(await ok(['status'])).toMatch(/\nmode {9}permissive \(denials are let through and recorded\)\n/);
    for (let i = 0; i < 3; i++) expect(await cat('docs/secret.txt')).toMatchObject({ code: 0, stdout: 'the secret\n' });
    const { records } = await auditAfter(before);
    // Every one of the three opens reached the daemon (none was replayed
    // by the fast path) and was recorded as let through.
    const opens = records.filter((r) => r.op === 'open' && r.path === '/docs/secret.txt');
    expect(opens).toHaveLength(3);
    for (const r of opens) expect(r).toMatchObject({ uid: ALICE.uid, gid: ALICE.gid, access: 'r--', enforced: false, rule: secretRule });
    expect(records.every((r) => !r.enforced)).toBe(true);
    // Unix permissions still apply: a 0600 root file stays closed to Alice
    // (the kernel refuses it before asking the daemon: nothing recorded).
    const seq = await newestSeq();
    expect((await cat('docs/locked.txt')).stderr).toContain('Permission denied');
    expect((await auditAfter(seq)).records).toEqual([]);
  });

  it('enforce denies the next open, and the next read of a file opened while permissive', async () => {
    expect(await ok(['mode', 'permissive'])).toBe('permissive\n');
    const file = path.join(ws.mnt, 'docs', 'big.bin');
    const fastPath = async (): Promise<{ opens: number; reads: number }> => JSON.parse(await ok(['status', '--json'])).fastPath;
    const cold = await fastPath();
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      // Far from the first read (and its readahead): reaches the daemon, let through.
      expect(await holder.send(String(3 * 1024 * 1024))).toEqual({ ok: true, bytes: 4096 });
      // The handle was never vouched for in C: its open and reads all came to JS.
      const warm = await fastPath();
      expect(warm.opens - cold.opens).toBe(0);
      expect(warm.reads - cold.reads).toBe(0);
      const before = await newestSeq();
      expect(await ok(['mode', 'enforce'])).toBe('enforce\n');
      expect((await cat('docs/secret.txt')).stderr).toContain('Permission denied');
      // Not in the page cache either: the read reaches the daemon, which
      // re-decides the handle under enforce.
      expect(await holder.send(String(6 * 1024 * 1024))).toEqual({ ok: false, code: 'EACCES' });
      const { records } = await auditAfter(before);
      expect(records.find((r) => r.path === '/docs/secret.txt')).toMatchObject({ op: 'open', enforced: true, uid: ALICE.uid });
      expect(records.find((r) => r.path === '/docs/big.bin')).toMatchObject({ op: 'read', access: 'r--', enforced: true, uid: ALICE.uid });
    } finally {
      holder.close();
    }
    // What the rules allow is untouched by either switch.
    expect((await cat('docs/a.txt')).stdout).toBe('alpha\n');
    expect((await runAs(BOB, 'cat', [path.join(ws.mnt, 'docs', 'secret.txt')])).stdout).toBe('the secret\n');
  });

  it('is for a running daemon only, and takes enforce or permissive', async () => {
    expectOneLineError(await aclfs(['mode', 'permissive', '--db', ws.db]), 6, /mode belongs to a running aclfs daemon/);
    const bad = await aclfs(['mode', 'lenient', ...S()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^aclfs: .*lenient/);
    expect(await ok(['mode'])).toBe('enforce\n');
  });
});

describeWithFuse('when the daemon goes away', () => {
  it('a follower exits 6, audit and mode exit 6, and a restarted daemon enforces with an empty log', async () => {
    expect(await ok(['mode', 'permissive'])).toBe('permissive\n');
    const follower = Follower.start(await newestSeq());
    expect((await cat('docs/secret.txt')).stdout).toBe('the secret\n');
    await follower.waitFor(1);
    expect(follower.records[0]).toMatchObject({ path: '/docs/secret.txt', enforced: false });
    const started = Date.now();
    expect(await daemon.stop()).toBe(0);
    // The follow did not hold up the shutdown (the admin server's grace is 5 s).
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await follower.exited).toBe(6);
    expect(follower.stderr).toMatch(/^aclfs: the aclfs daemon at .* ended the audit follow/);
    expectOneLineError(await aclfs(['audit', ...S()]), 6, /cannot reach the aclfs daemon/);
    expectOneLineError(await aclfs(['mode', ...S()]), 6, /cannot reach the aclfs daemon/);
    expectOneLineError(await aclfs(['audit', '--follow', ...S()]), 6, /cannot reach the aclfs daemon/);

    // The audit log is kept on disk and survives a restart (test/mount/
    // audit-durable.test.ts): a restart onto a new audit directory starts
    // an empty log.
    daemon = await Daemon.start(
      [ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn', '--audit-db', path.join(ws.dir, 'audit-after-restart')],
      ws.mnt,
    );
    expect(await ok(['mode'])).toBe('enforce\n');
    expect(JSON.parse(await ok(['audit', '--json']))).toEqual({ records: [], next: 0 });
    expect((await cat('docs/secret.txt')).stderr).toContain('Permission denied');
    expect(await daemon.stop()).toBe(0);
  });
});
