// Audit-only rules, end to end through a real FUSE mount: a read an
// audit-only rule denies is let through (bytes intact) and recorded as
// "would deny" (enforced false), while the same rule without the mark
// refuses it; every open of such a file reaches the daemon and is recorded
// (the fast path never replays a let-through), the mode stays enforce, and
// under --data passthrough such an open is never served by passthrough: once
// the rule is enforced, the open handle's next uncached read is refused.
// The daemons are child processes; the test stops only what it started.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, BOB, aclfs, Daemon, FileHolder, importRules, makeWorkspace, requireFuse, runAs, type Workspace } from '../helpers/mounts';

interface AuditRecord {
  seq: number;
  op: string;
  path: string;
  uid: number;
  access: string;
  enforced: boolean;
  rule: number | null;
  reason: string;
}

interface StatusView {
  mode: string;
  fastPath: { opens: number; reads: number };
  dataPath: { passthroughOpens: number } | null;
}

/** 2 MiB, different in every word: a read far from the first is not in the page cache. */
const BIG = Buffer.alloc(2 * 1024 * 1024);
for (let off = 0; off + 4 <= BIG.length; off += 4) BIG.writeUInt32LE(off ^ 0x3c3c3c3c, off);

async function ok(ws: Workspace, args: string[]): Promise<string> {
  const res = await aclfs([...args, '--socket', ws.socket]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  return res.stdout;
}

async function auditAfter(ws: Workspace, after: number): Promise<AuditRecord[]> {
  return (JSON.parse(await ok(ws, ['audit', '--json', '--after', String(after)])) as { records: AuditRecord[] }).records;
}

async function newestSeq(ws: Workspace): Promise<number> {
  return (JSON.parse(await ok(ws, ['audit', '--json'])) as { next: number }).next;
}

async function status(ws: Workspace): Promise<StatusView> {
  return JSON.parse(await ok(ws, ['status', '--json'])) as StatusView;
}

async function ruleId(ws: Workspace, rulePath: string): Promise<number> {
  return (JSON.parse(await ok(ws, ['rule', 'show', rulePath, '--json'])) as { id: number }).id;
}

describeWithFuse('audit-only rules', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-auditonly-');
    fs.mkdirSync(path.join(ws.src, 'docs'));
    for (const name of ['trial.txt', 'enforced.txt', 'open.txt']) fs.writeFileSync(path.join(ws.src, 'docs', name), `${name}\n`, { mode: 0o644 });
    fs.mkdirSync(path.join(ws.src, 'trial'));
    fs.writeFileSync(path.join(ws.src, 'trial', 'deep.txt'), 'deep\n', { mode: 0o644 });
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      // The same rule twice, once audit-only: Alice may not read, Bob may.
      { path: '/docs/trial.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }], auditOnly: true },
      { path: '/docs/enforced.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] },
      // A recursive audit-only directory rule: it decides for the files below it.
      { path: '/trial', recursive: true, owner: 0, defaccess: '--x', acl: [], auditOnly: true },
    ]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('lets a read the audit-only rule denies through and records it as "would deny"; the identical enforced rule refuses it', async () => {
    const trialRule = await ruleId(ws, '/docs/trial.txt');
    const enforcedRule = await ruleId(ws, '/docs/enforced.txt');
    const before = await newestSeq(ws);
    const let_ = await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'trial.txt')]);
    expect(let_).toMatchObject({ code: 0, stdout: 'trial.txt\n' });
    const denied = await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'enforced.txt')]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Permission denied');
    const records = await auditAfter(ws, before);
    expect(records).toHaveLength(2);
    const [trial, enforced] = records as [AuditRecord, AuditRecord];
    expect(trial).toMatchObject({ op: 'open', path: '/docs/trial.txt', uid: ALICE.uid, access: 'r--', enforced: false, rule: trialRule });
    expect(trial.reason).toMatch(new RegExp(`^would deny: rule ${trialRule} \\(/docs/trial\\.txt, by (inode|path)\\): defaccess --- lacks r$`));
    expect(enforced).toMatchObject({ op: 'open', path: '/docs/enforced.txt', uid: ALICE.uid, access: 'r--', enforced: true, rule: enforcedRule });
    expect(enforced.reason).toMatch(new RegExp(`^deny: rule ${enforcedRule} \\(/docs/enforced\\.txt, by (inode|path)\\): defaccess --- lacks r$`));
    // The human form says so too; the daemon-wide mode is untouched.
    expect(await ok(ws, ['audit', '--after', String(before)])).toMatch(/  audit-only  uid \d+ .*  would deny: rule /);
    expect((await status(ws)).mode).toBe('enforce');
    // An allow under the audit-only rule is an allow: not recorded.
    const seq = await newestSeq(ws);
    expect((await runAs(BOB, 'cat', [path.join(ws.mnt, 'docs', 'trial.txt')])).stdout).toBe('trial.txt\n');
    expect(await auditAfter(ws, seq)).toEqual([]);
  });

  it('records every open of a file it lets through: the fast path never replays such an open', async () => {
    const before = await newestSeq(ws);
    const cold = await status(ws);
    for (let i = 0; i < 3; i++) expect(await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'trial.txt')])).toMatchObject({ code: 0, stdout: 'trial.txt\n' });
    const warm = await status(ws);
    expect(warm.fastPath.opens - cold.fastPath.opens).toBe(0);
    const opens = (await auditAfter(ws, before)).filter((r) => r.op === 'open' && r.path === '/docs/trial.txt');
    expect(opens).toHaveLength(3);
    for (const r of opens) expect(r).toMatchObject({ uid: ALICE.uid, enforced: false, reason: expect.stringMatching(/^would deny: rule /) });
    // An allowed file's later opens are replayed in C meanwhile (the fast path is on).
    for (let i = 0; i < 3; i++) expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'open.txt')])).stdout).toBe('open.txt\n');
    expect((await status(ws)).fastPath.opens).toBeGreaterThan(warm.fastPath.opens);
  });

  it('a recursive audit-only rule lets through what it decides below it, recorded with its own id', async () => {
    const dirRule = await ruleId(ws, '/trial');
    const before = await newestSeq(ws);
    expect(await runAs(ALICE, 'cat', [path.join(ws.mnt, 'trial', 'deep.txt')])).toMatchObject({ code: 0, stdout: 'deep\n' });
    const records = (await auditAfter(ws, before)).filter((r) => r.path === '/trial/deep.txt');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ op: 'open', enforced: false, rule: dirRule });
    expect(records[0]!.reason).toMatch(new RegExp(`^would deny: rule ${dirRule} \\(/trial, by recursive ancestor\\): defaccess --x lacks r$`));
  });

  it('once the mark is taken off (rule set without --audit-only), the next open is refused and recorded as enforced', async () => {
    await ok(ws, ['rule', 'set', '/docs/trial.txt', '--owner', '0', '--default', '---', '--user', `${BOB.uid}:r--`]);
    const before = await newestSeq(ws);
    expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'trial.txt')])).stderr).toContain('Permission denied');
    const records = await auditAfter(ws, before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ path: '/docs/trial.txt', enforced: true, reason: expect.stringMatching(/^deny: rule /) });
  });
});

describeWithFuse('audit-only rules under --data passthrough', () => {
  let ws: Workspace;
  let daemon: Daemon;
  const RULE = { path: '/trial.bin', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }], auditOnly: true };

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-auditonly-pt-');
    for (const name of ['trial.bin', 'plain.bin']) {
      fs.writeFileSync(path.join(ws.src, name), BIG);
      fs.chmodSync(path.join(ws.src, name), 0o644);
    }
    await importRules(ws.db, [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] }, RULE]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--data', 'passthrough', '--log-level', 'warn'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('never serves an open an audit-only rule let through by passthrough: once enforced, its next uncached read is refused', async () => {
    const start = await status(ws);
    if (start.dataPath === null) throw new Error('no data path in status');
    // An allow (by the root rule) is served by passthrough here.
    expect((await runAs(BOB, 'head', ['-c', '4', path.join(ws.mnt, 'plain.bin')])).code).toBe(0);
    const before = await status(ws);
    expect(before.dataPath!.passthroughOpens).toBeGreaterThan(start.dataPath.passthroughOpens);
    const seq = await newestSeq(ws);
    const { holder, first } = await FileHolder.open(BOB, path.join(ws.mnt, 'trial.bin'), 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect((await status(ws)).dataPath!.passthroughOpens).toBe(before.dataPath!.passthroughOpens);
      const records = await auditAfter(ws, seq);
      expect(records.find((r) => r.path === '/trial.bin')).toMatchObject({ op: 'open', uid: BOB.uid, enforced: false, reason: expect.stringMatching(/^would deny: rule /) });
      // The same rule, enforced: the handle's next read that reaches the daemon is refused.
      await importRules(ws.db, [{ ...RULE, auditOnly: false }]);
      expect(await holder.send(String(1900 * 1024))).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
    }
  });
});
