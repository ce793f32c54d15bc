// The durable audit log through a real mount and real users: a denial is in
// the query and in the live stream within a second with every field; allows
// are recorded at level all (and then never replayed by the fast path); rule
// and level changes are recorded with the socket peer; filters work through
// the CLI; the log survives a restart and a kill -9 (what was committed: the
// daemon writes every 100 ms); denial log lines carry the caller's pid as
// callerPid. The daemon is a child process; the test stops only what it
// started.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DetailedAuditRecord } from '../../src/rules/audit';
import { httpUnix } from '../helpers/admin';
import { describeWithFuse } from '../helpers/facilities';
import { ACLFS, ALICE, BOB, aclfs, CAROL_IN_TEAM, Daemon, importRules, makeWorkspace, requireFuse, runAs, TEAM, waitFor, type Workspace } from '../helpers/mounts';

let ws: Workspace;
let daemon: Daemon;
let secretRule: number;
const children: ChildProcess[] = [];

const S = (): string[] => ['--socket', ws.socket];
const daemonArgs = (): string[] => [ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'info'];

async function ok(args: string[]): Promise<string> {
  const res = await aclfs([...args, ...S()]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  return res.stdout;
}

async function audit(...args: string[]): Promise<{ records: DetailedAuditRecord[]; next: number }> {
  return JSON.parse(await ok(['audit', '--json', ...args])) as { records: DetailedAuditRecord[]; next: number };
}

const newest = async (): Promise<number> => (await audit()).next;

/** A python process of `who` that tries to open `file` for reading, then lingers a moment (its /proc entry stays readable). */
const tryOpen = (who: typeof ALICE, file: string) =>
  runAs(who, '/usr/bin/python3', ['-c', 'import sys, time\ntry:\n  open(sys.argv[1]).read(); print("read")\nexcept OSError as e:\n  print(e.errno)\ntime.sleep(0.3)', file]);

const cat = (who: typeof ALICE, rel: string) => runAs(who, 'cat', [path.join(ws.mnt, rel)]);

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-audit-durable-');
  fs.mkdirSync(path.join(ws.src, 'docs'));
  fs.writeFileSync(path.join(ws.src, 'docs', 'a.txt'), 'alpha\n', { mode: 0o644 });
  fs.writeFileSync(path.join(ws.src, 'docs', 'secret.txt'), 'the secret\n', { mode: 0o644 });
  fs.mkdirSync(path.join(ws.src, 'team'));
  fs.writeFileSync(path.join(ws.src, 'team', 'plan.txt'), 'plan\n', { mode: 0o644 });
  await importRules(ws.db, [
    { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/docs/secret.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] },
    { path: '/team', recursive: true, owner: 0, defaccess: '---', acl: [{ group: TEAM, access: 'r-x' }] },
  ]);
  daemon = await Daemon.start(daemonArgs(), ws.mnt);
  secretRule = (JSON.parse(await ok(['rule', 'show', '/docs/secret.txt', '--json'])) as { id: number }).id;
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await daemon?.ensureStopped();
  ws?.cleanup();
});

describeWithFuse('durable audit log', () => {
  it('a denial is in the query and in the live stream within a second, with every field', async () => {
    const after = await newest();
    const follower = spawn(process.execPath, [ACLFS, 'audit', '--follow', '--json', '--after', String(after), '--uid', String(ALICE.uid), ...S()], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(follower);
    const streamed: { record: DetailedAuditRecord; at: number }[] = [];
    createInterface({ input: follower.stdout! }).on('line', (line) => streamed.push({ record: JSON.parse(line) as DetailedAuditRecord, at: Date.now() }));
    await new Promise((r) => setTimeout(r, 500));
    try {
      const denied = tryOpen(ALICE, path.join(ws.mnt, 'docs', 'secret.txt'));
      // Polled over the socket directly (a CLI process takes longer to start than the bound).
      let found: DetailedAuditRecord | undefined;
      let foundAt = 0;
      await waitFor(
        async () => {
          const res = await httpUnix(ws.socket, 'GET', `/v1/audit?after=${after}&path=%2Fdocs%2Fsecret.txt`);
          found = (res.json as { records: DetailedAuditRecord[] }).records[0];
          foundAt = Date.now();
          return found !== undefined;
        },
        5000,
        'the denial in the query',
      );
      expect((await denied).stdout.trim()).toBe('13');
      await waitFor(() => streamed.length > 0, 5000, 'the denial in the stream');
      // Both within a second of the decision (the record's time).
      const decidedAt = Date.parse(found!.time);
      expect(foundAt - decidedAt).toBeLessThan(1000);
      expect(streamed[0]!.at - decidedAt).toBeLessThan(1000);
      const st = fs.statSync(path.join(ws.src, 'docs', 'secret.txt'));
      const expected = {
        seq: after + 1,
        op: 'open',
        path: '/docs/secret.txt',
        uid: ALICE.uid,
        gid: ALICE.gid,
        groups: expect.any(Array),
        pid: expect.any(Number),
        program: expect.stringMatching(/\/python3[.\d]*$/),
        // NULs as spaces (the script's own newlines stay).
        cmdline: expect.stringMatching(/^\/usr\/bin\/python3 -c import sys, time\n.* \/.*\/mnt\/docs\/secret\.txt$/s),
        file: { dev: st.dev, ino: st.ino },
        access: 'r--',
        decision: 'deny',
        enforced: true,
        rule: secretRule,
        rulePath: '/docs/secret.txt',
        entry: 'defaccess:---',
        epoch: expect.any(Number),
        reason: expect.stringMatching(new RegExp(`^deny: rule ${secretRule} \\(/docs/secret\\.txt, by (inode|path)\\): defaccess --- lacks r`)),
      };
      expect(found).toEqual({ ...expected, time: expect.any(String) });
      expect(found!.pid).toBeGreaterThan(0);
      expect(streamed[0]!.record).toEqual(found);
    } finally {
      follower.kill('SIGTERM');
    }
  });

  it('the denial log line carries the daemon pid once and the caller as callerPid', async () => {
    await cat(ALICE, 'docs/secret.txt');
    await waitFor(() => daemon.stderr.includes('"msg":"denied"'), 5000, 'a denial log line');
    const line = daemon.stderr.split('\n').find((l) => l.includes('"msg":"denied"'))!;
    expect(line.match(/"pid":/g)).toHaveLength(1);
    expect(line.match(/"callerPid":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ pid: daemon.pid, callerPid: expect.any(Number), uid: ALICE.uid });
  });

  it('records allows at level all (every open reaches the daemon), and not at deny; a level change is recorded with its peer', async () => {
    const fastOpens = async (): Promise<number> => (JSON.parse(await ok(['status', '--json'])) as { fastPath: { opens: number } }).fastPath.opens;
    expect(await ok(['audit-level'])).toBe('deny\n');
    const before = await newest();
    expect(await ok(['audit-level', 'all'])).toBe('all\n');
    expect(JSON.parse(await ok(['status', '--json'])).audit).toMatchObject({ level: 'all', dropped: 0 });
    const opensBefore = await fastOpens();
    for (let i = 0; i < 3; i++) expect((await cat(ALICE, 'docs/a.txt')).stdout).toBe('alpha\n');
    expect(await fastOpens()).toBe(opensBefore);
    await waitFor(async () => (await audit('--after', String(before), '--path', '/docs/a.txt', '--decision', 'allow')).records.length >= 3, 5000, 'allows');
    const allows = (await audit('--after', String(before), '--path', '/docs/a.txt', '--decision', 'allow', '--op', 'open')).records;
    expect(allows).toHaveLength(3);
    for (const r of allows) {
      expect(r).toMatchObject({ uid: ALICE.uid, decision: 'allow', enforced: false, access: 'r--', rulePath: '/', entry: 'defaccess:r-x' });
    }
    const changes = (await audit('--after', String(before), '--op', 'admin')).records;
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ op: 'admin', uid: 0, path: '/', decision: 'allow', reason: 'audit level deny -> all' });
    expect(changes[0]!.pid).toBeGreaterThan(0);

    expect(await ok(['audit-level', 'deny'])).toBe('deny\n');
    const quiet = await newest();
    for (let i = 0; i < 3; i++) await cat(ALICE, 'docs/a.txt');
    // Back at deny: repeated opens are replayed in C again, and none is recorded.
    expect(await fastOpens()).toBeGreaterThan(opensBefore);
    await new Promise((r) => setTimeout(r, 300));
    expect((await audit('--after', String(quiet), '--decision', 'allow', '--path', '/docs')).records).toEqual([]);
  });

  it('records a rule change with who made it and what changed, found by --rule and --op admin', async () => {
    const before = await newest();
    const created = JSON.parse(await ok(['rule', 'add', '/docs/a.txt', '--owner', '0', '--default', 'r--', '--user', `${BOB.uid}:rw-`, '--json'])) as { id: number };
    await ok(['rule', 'rm', String(created.id)]);
    await waitFor(async () => (await audit('--after', String(before), '--rule', String(created.id))).records.length >= 2, 5000, 'rule changes');
    const records = (await audit('--after', String(before), '--rule', String(created.id))).records;
    expect(records.map((r) => [r.op, r.path, r.uid, r.rulePath])).toEqual([
      ['admin', '/docs/a.txt', 0, '/docs/a.txt'],
      ['admin', '/docs/a.txt', 0, '/docs/a.txt'],
    ]);
    expect(records[0]!.reason).toBe(`rule ${created.id} created: /docs/a.txt owner 0 defaccess r-- acl user:${BOB.uid}:rw-`);
    expect(records[1]!.reason).toMatch(new RegExp(`^rule ${created.id} deleted: /docs/a\\.txt `));
  });

  it('filters by uid, path (by components), decision, op and time through the CLI', async () => {
    const before = await newest();
    await cat(ALICE, 'docs/secret.txt');
    await cat(CAROL_IN_TEAM, 'docs/secret.txt');
    await cat(ALICE, 'team/plan.txt');
    expect((await cat(CAROL_IN_TEAM, 'team/plan.txt')).stdout).toBe('plan\n');
    await waitFor(async () => (await audit('--after', String(before))).records.length >= 3, 5000, 'three denials');
    const seqs = async (...args: string[]): Promise<string[]> => (await audit('--after', String(before), ...args)).records.map((r) => `${r.uid}:${r.path}`);
    expect(await seqs()).toEqual([`${ALICE.uid}:/docs/secret.txt`, `${CAROL_IN_TEAM.uid}:/docs/secret.txt`, `${ALICE.uid}:/team/plan.txt`]);
    expect(await seqs('--uid', String(ALICE.uid))).toEqual([`${ALICE.uid}:/docs/secret.txt`, `${ALICE.uid}:/team/plan.txt`]);
    expect(await seqs('--path', '/team')).toEqual([`${ALICE.uid}:/team/plan.txt`]);
    expect(await seqs('--path', '/tea')).toEqual([]);
    expect(await seqs('--decision', 'allow')).toEqual([]);
    expect(await seqs('--op', 'opendir')).toEqual([]);
    expect(await seqs('--since', '1h', '--uid', String(CAROL_IN_TEAM.uid))).toEqual([`${CAROL_IN_TEAM.uid}:/docs/secret.txt`]);
    expect(await seqs('--until', '1h')).toEqual([]);
    const carol = (await audit('--after', String(before), '--uid', String(CAROL_IN_TEAM.uid))).records[0]!;
    expect(carol.groups).toEqual([TEAM]);
    // A bad filter is one line and exit 2.
    const bad = await aclfs(['audit', '--decision', 'maybe', ...S()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^aclfs: --decision must be allow or deny/);
  });

  it('survives a restart (seq goes on), and a kill -9 keeps what was written (the daemon writes every 100 ms)', async () => {
    await cat(ALICE, 'docs/secret.txt');
    await new Promise((r) => setTimeout(r, 300));
    const kept = (await audit()).records;
    const last = kept.at(-1)!;
    expect(await daemon.stop()).toBe(0);
    daemon = await Daemon.start(daemonArgs(), ws.mnt);
    expect((await audit()).records).toEqual(kept);
    await cat(ALICE, 'docs/secret.txt');
    await waitFor(async () => (await audit('--after', String(last.seq))).records.length > 0, 5000, 'a new denial');
    const after = (await audit('--after', String(last.seq))).records;
    expect(after.map((r) => r.seq)).toEqual([last.seq + 1]);
    expect(JSON.parse(await ok(['status', '--json'])).audit).toMatchObject({ records: kept.length + 1, newest: last.seq + 1 });

    // kill -9 once the record has had a few flush intervals to be written.
    await cat(ALICE, 'docs/secret.txt');
    await new Promise((r) => setTimeout(r, 500));
    const beforeKill = (await audit()).records;
    expect(await daemon.stop('SIGKILL')).toBe(null);
    daemon = await Daemon.start(daemonArgs(), ws.mnt);
    expect((await audit()).records).toEqual(beforeKill);
  });
});
