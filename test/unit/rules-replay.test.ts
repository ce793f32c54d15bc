// Replaying recorded accesses against a candidate rule set
// (src/rules/replay.ts): exactly the records whose decision changes, grouped
// by the candidate's deciding rule; what cannot be decided again is counted.
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/rules/audit';
import { candidateView } from '../../src/rules/candidate';
import { Replay } from '../../src/rules/replay';

let seq = 0;
function record(uid: number, path: string, decision: 'allow' | 'deny', fields: Partial<AuditRecord> = {}): AuditRecord {
  seq++;
  return { seq, time: `2026-12-01T00:00:${String(seq).padStart(2, '0')}Z`, op: 'open', path, uid, gid: uid, groups: [], pid: 1, access: 'r--', enforced: decision === 'deny', rule: null, reason: '', decision, ...fields };
}

const candidate = candidateView([
  { path: '/docs', recursive: true, owner: 0, defaccess: 0, acl: [{ user: 1001, access: 4 }] },
  { path: '/docs/team', recursive: true, owner: 0, defaccess: 0, acl: [{ group: 50, access: 4 }] },
]);

describe('Replay', () => {
  it('reports exactly the records whose decision changes, by deciding rule, and counts what it skips', () => {
    const replay = new Replay(candidate, 'deny');
    const records = [
      record(1001, '/docs/a', 'deny'), // -> allow (rule 1)
      record(1001, '/docs/b', 'allow'), // unchanged
      record(1002, '/docs/a', 'allow'), // -> deny (rule 1)
      record(1002, '/other', 'allow'), // -> deny (default policy)
      record(1002, '/other', 'deny'), // unchanged
      record(1003, '/docs/team/x', 'deny', { groups: [50] }), // -> allow (rule 2)
      record(1003, '/docs/team/x', 'deny', { groups: null }), // unknown groups where a group entry counts: skipped
      record(0, '/', 'allow', { op: 'admin', access: '---' }), // a change over the API: skipped
    ];
    for (const r of records) replay.add(r);
    const result = replay.result();
    expect(result).toMatchObject({ examined: 6, skipped: 2, changed: 4 });
    const bySeq = (g: (typeof result.groups)[number]): number[] => g.accesses.map((e) => e.seq);
    expect(result.groups.map((g) => [g.rule?.path ?? null, g.toAllow, g.toDeny, bySeq(g)])).toEqual([
      ['/docs', 1, 1, [records[0]!.seq, records[2]!.seq]],
      [null, 0, 1, [records[3]!.seq]],
      ['/docs/team', 1, 0, [records[5]!.seq]],
    ]);
    expect(result.groups[0]!.accesses[0]).toMatchObject({ was: 'deny', now: 'allow', reason: 'allow: rule 1 (/docs, by recursive ancestor): user 1001 r-- grants r' });
  });

  it('reads a record of the older shape (no decision) as a denial', () => {
    const replay = new Replay(candidate, 'deny');
    const { decision: _omitted, ...old } = record(1001, '/docs/a', 'deny');
    replay.add(old);
    expect(replay.result()).toMatchObject({ examined: 1, changed: 1 });
  });
});
