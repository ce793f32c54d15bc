// History and rollback on a real mount: every rule change is recorded with
// who made it over the socket; `aclfs diff` shows it; `aclfs rollback`
// restores a generation's export byte for byte and the next open follows it.
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, aclfs, Daemon, makeWorkspace, pyAs, requireFuse, PY_OPEN_FOR_READING, type Workspace } from '../helpers/mounts';

const OPEN = PY_OPEN_FOR_READING;

describeWithFuse('rule history and rollback', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    chmodSync(ws.src, 0o777);
    writeFileSync(path.join(ws.src, 'doc.txt'), 'hello\n', { mode: 0o644 });
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  async function cli(args: string[]): Promise<string> {
    const res = await aclfs([...args, '--socket', ws.socket]);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  }

  async function generation(): Promise<number> {
    return (JSON.parse(await cli(['history', '--json', '--limit', '1'])) as { generation: number }).generation;
  }

  it('records each change with who made it; a rollback restores the export byte for byte and is enforced at the next open', async () => {
    const file = path.join(ws.mnt, 'doc.txt');
    await cli(['rule', 'add', '/doc.txt', '--owner', '0', '--default', '---', '--user', `${ALICE.uid}:r--`]);
    await cli(['rule', 'add', '/other', '--owner', '0', '--default', 'r--']);
    const allowed = await generation();
    const exportAllowed = await cli(['export']);
    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');

    await cli(['rule', 'set', '/doc.txt', '--owner', '0', '--default', '---']);
    await cli(['rule', 'rm', '/other']);
    await cli(['rule', 'add', '/third', '--owner', '0', '--default', 'rwx']);
    expect(await pyAs(ALICE, OPEN, file)).toBe('EACCES');

    const history = JSON.parse(await cli(['history', '--json'])) as {
      records: { generation: number; who: string; changes: { path: string }[] }[];
    };
    expect(history.records.slice(0, 3).map((r) => r.changes.map((c) => c.path))).toEqual([['/third'], ['/other'], ['/doc.txt']]);
    for (const r of history.records.slice(0, 5)) expect(r.who).toBe('uid 0 over the socket');

    const diff = await cli(['diff', String(allowed)]);
    expect(diff).toMatch(/^~ \/doc\.txt /m);
    expect(diff).toMatch(/^- \/other /m);
    expect(diff).toMatch(/^\+ \/third /m);
    expect(diff).toMatch(/3 rules differ from generation \d+ to \d+/);

    const rolled = await cli(['rollback', String(allowed)]);
    expect(rolled).toMatch(/restored the rule set of generation \d+ \(3 rules changed\): now generation \d+/);
    expect(await cli(['export'])).toBe(exportAllowed);
    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');
    const newest = (JSON.parse(await cli(['history', '--json', '--limit', '1'])) as { records: { note: string; who: string }[] }).records[0]!;
    expect(newest).toMatchObject({ note: `rollback to generation ${allowed}`, who: 'uid 0 over the socket' });

    // A generation out of reach is refused with its reason.
    const bad = await aclfs(['rollback', '999999', '--socket', ws.socket]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/generation must be an integer from 0 to/);
  });

  it('check --rules decides against a candidate rule file, applying nothing', async () => {
    const before = await generation();
    const candidate = path.join(ws.dir, 'candidate.json');
    writeFileSync(candidate, JSON.stringify({ version: 1, rules: [{ path: '/', recursive: true, owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] }] }));
    const inForce = await aclfs(['check', '/doc.txt', '--uid', String(ALICE.uid), '--gid', String(ALICE.gid), '--groups', '', '--access', 'w', '--socket', ws.socket]);
    expect(inForce.code).toBe(1);
    const res = await aclfs(['check', '/doc.txt', '--uid', String(ALICE.uid), '--gid', String(ALICE.gid), '--groups', '', '--access', 'r', '--rules', candidate, '--socket', ws.socket]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^allow: rule 1 \(\/, by recursive ancestor\): user 2001 r-- grants r$/m);
    expect(res.stdout).toContain('the candidate rule set (by path; nothing applied)');
    const denied = await aclfs(['check', '/doc.txt', '--uid', '2002', '--gid', '2002', '--groups', '', '--access', 'r', '--rules', candidate, '--socket', ws.socket, '--json']);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout)).toMatchObject({ allow: false, candidate: true, match: 'ancestor' });
    expect(await generation()).toBe(before);
  });

  const LOCKED = JSON.stringify({ version: 1, rules: [{ path: '/doc.txt', owner: 0, defaccess: '---', acl: [] }] });

  async function importText(text: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return aclfs(['import', '-', ...args, '--socket', ws.socket], { input: text });
  }

  it('import --dry-run prints what would change and writes nothing', async () => {
    const before = await generation();
    const exported = await cli(['export']);
    const res = await importText(LOCKED, ['--dry-run']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^~ \/doc\.txt \{.*"defaccess":"---".*\}\n {4}was \{.*"defaccess":"---","acl":\[\{"user":2001,"access":"r--"\}\]\}$/m);
    expect(res.stdout).toMatch(/dry run: would import 1 rule \(0 created, 1 updated; 1 rule would change\), generation \d+; nothing written/);
    // Alice's refused open of the first test, decided again: the locked rule set refuses it too.
    expect(res.stdout).toMatch(
      /^the audit log: 0 recorded accesses of [1-9]\d* would be decided differently \(0 denied then would be allowed, 0 allowed then would be denied\) \(audit level deny: allows were not recorded\); aclfs replay lists them$/m,
    );
    const replacing = await importText(LOCKED, ['--dry-run', '--replace']);
    expect(replacing.stdout).toMatch(/^- \/other /m);
    expect(await generation()).toBe(before);
    expect(await cli(['export'])).toBe(exported);
  });

  it('import --confirm-within rolls back by itself unless confirmed; confirmed, it stays', async () => {
    const file = path.join(ws.mnt, 'doc.txt');
    const exported = await cli(['export']);
    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');
    const res = await importText(LOCKED, ['--confirm-within', '2s']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/confirm with `aclfs confirm` by \S+, or the rule set of generation \d+ comes back by itself/);
    expect(await pyAs(ALICE, OPEN, file)).toBe('EACCES');
    // Not confirmed: back by itself, enforced at the next open, recorded.
    const deadline = Date.now() + 10_000;
    while ((await cli(['export'])) !== exported && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await cli(['export'])).toBe(exported);
    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');
    const newest = (JSON.parse(await cli(['history', '--json', '--limit', '1'])) as { records: { who: string; note: string }[] }).records[0]!;
    expect(newest.who).toBe('the daemon (import not confirmed in time)');
    expect(daemon.stderr).toMatch(/import not confirmed by .*: the rule set of generation \d+ is back/);
    expect(await cli(['confirm'])).toMatch(/nothing awaits confirmation/);

    // Confirmed in time: it stays past the deadline.
    expect((await importText(LOCKED, ['--confirm-within', '2s'])).code).toBe(0);
    expect(await cli(['confirm'])).toMatch(/^confirmed: generation \d+ stays/);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await pyAs(ALICE, OPEN, file)).toBe('EACCES');
    // A dry run awaits nothing; --db cannot await confirmation.
    expect((await importText(LOCKED, ['--dry-run', '--confirm-within', '5s'])).code).toBe(2);
    const local = await aclfs(['import', '-', '--confirm-within', '5s', '--db', ws.db], { input: LOCKED });
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/needs the daemon/);
  });
});
