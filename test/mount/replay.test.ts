// aclfs replay on a real mount: a scripted history of opens (allowed and
// denied, recorded at audit level all) decided again against a candidate
// rule file; the report names exactly the accesses whose decision changes.
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, BOB, aclfs, Daemon, importRules, makeWorkspace, pyAs, requireFuse, waitFor, PY_OPEN_FOR_READING, type Workspace } from '../helpers/mounts';

const OPEN = PY_OPEN_FOR_READING;

interface ReplayView {
  examined: number;
  changed: number;
  level: string;
  groups: { rule: { id: number; path: string } | null; toAllow: number; toDeny: number; accesses: { uid: number; path: string; was: string; now: string }[] }[];
}

describeWithFuse('aclfs replay', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    chmodSync(ws.src, 0o777);
    for (const name of ['a.txt', 'b.txt']) writeFileSync(path.join(ws.src, name), 'x\n', { mode: 0o644 });
    // In force: alice reads a.txt only.
    await importRules(ws.db, [{ path: '/a.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] }]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny', '--audit', 'all'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('reports exactly the recorded accesses a candidate would decide differently, by its rule', async () => {
    const since = new Date().toISOString();
    // The scripted history: alice a (allow), alice b (deny), bob a (deny), bob b (deny).
    const opens: [typeof ALICE, string, string][] = [
      [ALICE, 'a.txt', 'ok'],
      [ALICE, 'b.txt', 'EACCES'],
      [BOB, 'a.txt', 'EACCES'],
      [BOB, 'b.txt', 'EACCES'],
    ];
    for (const [who, name, want] of opens) expect(await pyAs(who, OPEN, path.join(ws.mnt, name))).toBe(want);
    // Candidate: bob reads a.txt, nobody else; b.txt stays denied to all.
    const candidate = path.join(ws.dir, 'candidate.json');
    writeFileSync(candidate, JSON.stringify({ version: 1, rules: [{ path: '/a.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] }] }));
    let report: ReplayView | undefined;
    await waitFor(
      async () => {
        const res = await aclfs(['replay', candidate, '--since', since, '--json', '--socket', ws.socket]);
        expect(res.code, res.stderr).toBe(0);
        report = JSON.parse(res.stdout) as ReplayView;
        return report.changed >= 2;
      },
      5000,
      'the opens to be recorded',
    );
    expect(report!.level).toBe('all');
    expect(report!.changed).toBe(2);
    expect(report!.groups).toHaveLength(1);
    const group = report!.groups[0]!;
    expect(group).toMatchObject({ rule: { id: 1, path: '/a.txt' }, toAllow: 1, toDeny: 1 });
    const changes = group.accesses.map((e) => [e.uid, e.path, e.was, e.now]).sort();
    expect(changes).toEqual([
      [ALICE.uid, '/a.txt', 'allow', 'deny'],
      [BOB.uid, '/a.txt', 'deny', 'allow'],
    ].sort());
    // Every changed access is counted; --limit bounds how many are listed per rule.
    const limited = JSON.parse((await aclfs(['replay', candidate, '--since', since, '--limit', '1', '--json', '--socket', ws.socket])).stdout) as ReplayView;
    expect(limited.groups[0]).toMatchObject({ toAllow: 1, toDeny: 1 });
    expect(limited.groups[0]!.accesses).toHaveLength(1);
    // The text form, and a window with nothing in it.
    const text = await aclfs(['replay', candidate, '--since', since, '--socket', ws.socket]);
    expect(text.stdout).toMatch(/rule 1 \(\/a\.txt\): 1 denied then would be allowed, 1 allowed then would be denied/);
    const none = await aclfs(['replay', candidate, '--since', '1s', '--until', since, '--json', '--socket', ws.socket]);
    expect(JSON.parse(none.stdout)).toMatchObject({ changed: 0 });
    // Only a daemon keeps an audit log.
    expect((await aclfs(['replay', candidate, '--db', ws.db])).code).not.toBe(0);
  });
});
