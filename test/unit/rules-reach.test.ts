// Who can access a file and what a user can reach (src/rules/reach.ts):
// tables for the listing's shape, and properties against decide() itself
// over generated trees, rule sets and callers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/rules/decide';
import { isAtOrBelow } from '../../src/rules/path';
import { accessOf, governingByPath, reachAt, reachOf, readAccess } from '../../src/rules/reach';
import type { AclEntry, Caller, DefaultPolicy, Rule, RuleView } from '../../src/rules/types';

function viewOf(rules: readonly Rule[]): RuleView {
  const byPath = new Map(rules.map((r) => [r.path, r] as const));
  const byInode = new Map(rules.filter((r) => r.dev !== null).map((r) => [`${r.dev}:${r.ino}`, r] as const));
  return { byPath: (p) => byPath.get(p), byInode: (dev, ino) => byInode.get(`${dev}:${ino}`) };
}

function rule(id: number, path: string, fields: Partial<Rule> = {}): Rule {
  return { id, path, dev: null, ino: null, owner: 0, defaccess: 0, acl: [], recursive: false, ...fields };
}

describe('accessOf', () => {
  it('lists the owner, each user once (the first entry), each group once (the union), then everyone else', () => {
    const acl: AclEntry[] = [
      { user: 7, access: 4 },
      { group: 20, access: 4 },
      { user: 7, access: 7 },
      { user: 1, access: 2 },
      { group: 20, access: 1 },
      { group: 30, access: 0 },
    ];
    const listing = accessOf({ rule: rule(3, '/d', { owner: 1, defaccess: 1, acl }), match: 'path' }, 'deny');
    expect(listing).toEqual({
      rule: { id: 3, path: '/d', auditOnly: false, match: 'path' },
      entries: [
        { principal: { kind: 'owner', uid: 1 }, access: 7 },
        { principal: { kind: 'user', uid: 7 }, access: 4 },
        { principal: { kind: 'group', gid: 20 }, access: 5 },
        { principal: { kind: 'group', gid: 30 }, access: 0 },
        { principal: { kind: 'other' }, access: 1 },
      ],
    });
    // A member of group 30 only gets its (empty) entry, not everyone's.
    expect(readAccess(listing, { uid: 9, gid: 30, groups: [] })).toBe(0);
    expect(readAccess(listing, { uid: 9, gid: 9, groups: [20, 30] })).toBe(5);
    expect(readAccess(listing, { uid: 9, gid: 9, groups: [] })).toBe(1);
  });

  it('gives everyone what the default policy gives where no rule governs', () => {
    expect(accessOf(null, 'deny')).toEqual({ rule: null, entries: [{ principal: { kind: 'other' }, access: 0 }] });
    expect(accessOf(null, 'allow')).toEqual({ rule: null, entries: [{ principal: { kind: 'other' }, access: 7 }] });
  });
});

// ---- generated trees -------------------------------------------------------------

const NAMES = ['a', 'b', 'c'];
/** Every path of a tree three levels deep over three names (39 paths). */
const TREE: string[] = [];
for (const x of NAMES) {
  TREE.push(`/${x}`);
  for (const y of NAMES) {
    TREE.push(`/${x}/${y}`);
    for (const z of NAMES) TREE.push(`/${x}/${y}/${z}`);
  }
}
const PLACES = ['/', ...TREE];

const access = fc.integer({ min: 0, max: 7 });
const aclEntry: fc.Arbitrary<AclEntry> = fc.oneof(
  fc.record({ user: fc.integer({ min: 1, max: 5 }), access }),
  fc.record({ group: fc.integer({ min: 10, max: 13 }), access }),
);
const ruleFields = fc.record({
  owner: fc.integer({ min: 0, max: 5 }),
  defaccess: access,
  acl: fc.array(aclEntry, { maxLength: 5 }),
  recursive: fc.boolean(),
});
const ruleSet: fc.Arbitrary<Rule[]> = fc
  .uniqueArray(fc.constantFrom(...PLACES), { maxLength: 12 })
  .chain((paths) => fc.tuple(fc.constant(paths), fc.array(ruleFields, { minLength: paths.length, maxLength: paths.length })))
  .map(([paths, fields]) => paths.map((p, i) => rule(i + 1, p, fields[i])));
const caller: fc.Arbitrary<Caller> = fc.record({
  uid: fc.integer({ min: 0, max: 6 }),
  gid: fc.integer({ min: 10, max: 14 }),
  groups: fc.uniqueArray(fc.integer({ min: 10, max: 14 }), { maxLength: 3 }),
  pid: fc.constant(1),
});
const policy: fc.Arbitrary<DefaultPolicy> = fc.constantFrom('deny', 'allow');

function granted(view: RuleView, who: Caller, path: string, defaultPolicy: DefaultPolicy): number {
  return decide(view, who, { path, dev: 0, ino: 0 }, 7, defaultPolicy).granted;
}

describe('listings agree with decide()', () => {
  it('accessOf: every caller reads from a file’s listing what decide() grants them', () => {
    fc.assert(
      fc.property(ruleSet, fc.array(caller, { minLength: 1, maxLength: 6 }), policy, (rules, callers, defaultPolicy) => {
        const view = viewOf(rules);
        for (const path of PLACES) {
          const listing = accessOf(governingByPath(view, path), defaultPolicy);
          for (const who of callers) expect(readAccess(listing, who)).toBe(granted(view, who, path, defaultPolicy));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reachOf: every path at or below the prefix reads what decide() grants the caller', () => {
    fc.assert(
      fc.property(ruleSet, caller, fc.constantFrom(...PLACES), policy, (rules, who, prefix, defaultPolicy) => {
        const view = viewOf(rules);
        const sorted = [...rules].sort((x, y) => (x.path < y.path ? -1 : 1));
        const reach = reachOf(view, sorted, who, prefix, defaultPolicy);
        // Only rules at or below the prefix are listed.
        expect(reach.areas.every((a) => isAtOrBelow(a.path, prefix))).toBe(true);
        for (const path of PLACES.filter((p) => isAtOrBelow(p, prefix))) {
          expect(reachAt(reach, path)).toBe(granted(view, who, path, defaultPolicy));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a rule bound to a file’s inode governs it in a listing as in decide()', () => {
    const bound = rule(1, '/a/b', { dev: 5, ino: 9, defaccess: 4 });
    const view = viewOf([bound, rule(2, '/a', { recursive: true, defaccess: 0 })]);
    const target = { path: '/a/b', dev: 5, ino: 9 };
    const who: Caller = { uid: 3, gid: 3, groups: [], pid: 1 };
    const d = decide(view, who, target, 4, 'deny');
    expect(d.match).toBe('inode');
    expect(readAccess(accessOf({ rule: bound, match: 'inode' }, 'deny'), who)).toBe(d.granted);
  });
});
