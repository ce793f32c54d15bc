// The gate's verdicts on denials: refused and recorded as enforced; let
// through and recorded as not enforced when the deciding rule is audit-only
// ("would deny: ...") or the daemon is permissive; and a let-through never
// carries a flag that would let the binding serve it (no passthrough, no
// replay: publishOpen and vouch refuse a decision that denies).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/fs/audit';
import type { BackingTree } from '../../src/fs/backing';
import type { CallerResolver } from '../../src/fs/callers';
import { Gate, type Gatekeeper } from '../../src/fs/gate';
import { allowFlags, ALLOW_PASSTHROUGH } from '../../src/fs/handles';
import { decide } from '../../src/rules/decide';
import type { Verdict } from '../../src/rules/engine';
import type { Caller, Rule, RuleView, Target } from '../../src/rules/types';

const rule = (id: number, path: string, extra: Partial<Rule> = {}): Rule => ({
  id,
  path,
  dev: null,
  ino: null,
  owner: 0,
  defaccess: 0,
  acl: [{ user: 1000, access: 4 }],
  recursive: false,
  ...extra,
});

const RULES = [rule(1, '/trial', { auditOnly: true }), rule(2, '/enforced'), rule(3, '/trial-revocable', { auditOnly: true, revocable: true })];
const view: RuleView = {
  byInode: () => undefined,
  byPath: (p) => RULES.find((r) => r.path === p),
};

function gate(permissive: boolean): { gate: Gate; records: AuditEntry[] } {
  const records: AuditEntry[] = [];
  const keeper: Gatekeeper = {
    epoch: () => 7,
    check: (caller, target, requested): Verdict => ({ decision: decide(view, caller, target, requested, 'deny'), epoch: 7 }),
    holdsForAnyGroups: () => true,
    checkMove: () => ({ ok: true }),
  };
  return {
    gate: new Gate({
      tree: {} as BackingTree,
      gatekeeper: keeper,
      callers: {} as CallerResolver,
      log: pino({ level: 'silent' }),
      audit: { append: (entry) => records.push(entry) },
      permissive: () => permissive,
    }),
    records,
  };
}

const eve: Caller = { uid: 2000, gid: 2000, groups: [], pid: 42 };
const alice: Caller = { uid: 1000, gid: 1000, groups: [], pid: 43 };
const at = (path: string): Target => ({ path, dev: 5, ino: 6 });

describe('Gate.allowedAt', () => {
  it('lets a denial by an audit-only rule through, recorded as "would deny" and not enforced', () => {
    const { gate: g, records } = gate(false);
    const verdict = g.allowedAt(eve, 'open', at('/trial'), 4);
    expect(verdict?.decision).toMatchObject({ allow: false, ruleId: 1, auditOnly: true });
    expect(records).toEqual([
      {
        op: 'open',
        path: '/trial',
        uid: 2000,
        gid: 2000,
        groups: [],
        pid: 42,
        file: { dev: 5, ino: 6 },
        access: 'r--',
        decision: 'deny',
        enforced: false,
        rule: 1,
        rulePath: '/trial',
        entry: 'defaccess:---',
        epoch: 7,
        reason: 'would deny: rule 1 (/trial, by path): defaccess --- lacks r',
      },
    ]);
    // Never handed to the binding as something it may serve.
    expect(allowFlags(verdict!)).toBe(0);
  });

  it('refuses the same denial by an enforced rule, recorded as enforced', () => {
    const { gate: g, records } = gate(false);
    expect(g.allowedAt(eve, 'open', at('/enforced'), 4)).toBeNull();
    expect(records).toEqual([
      {
        op: 'open',
        path: '/enforced',
        uid: 2000,
        gid: 2000,
        groups: [],
        pid: 42,
        file: { dev: 5, ino: 6 },
        access: 'r--',
        decision: 'deny',
        enforced: true,
        rule: 2,
        rulePath: '/enforced',
        entry: 'defaccess:---',
        epoch: 7,
        reason: 'deny: rule 2 (/enforced, by path): defaccess --- lacks r',
      },
    ]);
  });

  it('records every let-through (each open is decided again)', () => {
    const { gate: g, records } = gate(false);
    for (let i = 0; i < 3; i++) expect(g.allowedAt(eve, 'open', at('/trial'), 4)).not.toBeNull();
    expect(records.map((r) => [r.enforced, r.rule])).toEqual([
      [false, 1],
      [false, 1],
      [false, 1],
    ]);
  });

  it('in permissive mode, words an audit-only denial as "would deny" and any other as a denial, neither enforced', () => {
    const { gate: g, records } = gate(true);
    expect(g.allowedAt(eve, 'open', at('/trial'), 4)).not.toBeNull();
    expect(g.allowedAt(eve, 'open', at('/enforced'), 4)).not.toBeNull();
    expect(g.allowedAt(eve, 'open', at('/elsewhere'), 4)).not.toBeNull();
    expect(records.map((r) => [r.enforced, r.reason])).toEqual([
      [false, 'would deny: rule 1 (/trial, by path): defaccess --- lacks r'],
      [false, 'deny: rule 2 (/enforced, by path): defaccess --- lacks r'],
      [false, 'deny: no rule: default policy deny --- lacks r'],
    ]);
  });

  it('changes nothing for an allow under an audit-only rule: not recorded, passthrough unless revocable', () => {
    const { gate: g, records } = gate(false);
    const allowed = g.allowedAt(alice, 'open', at('/trial'), 4);
    expect(allowed?.decision).toMatchObject({ allow: true, auditOnly: true });
    expect(allowFlags(allowed!)).toBe(ALLOW_PASSTHROUGH);
    const revocable = g.allowedAt(alice, 'open', at('/trial-revocable'), 4);
    expect(allowFlags(revocable!)).toBe(0);
    const letThrough = g.allowedAt(eve, 'open', at('/trial-revocable'), 4);
    expect(letThrough?.decision.allow).toBe(false);
    expect(allowFlags(letThrough!)).toBe(0);
    expect(records.map((r) => r.path)).toEqual(['/trial-revocable']);
  });
});
