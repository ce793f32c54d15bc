import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/rules/decide';
import { describeOutcome, describeStep, explainDecision, type DecisionStep } from '../../src/rules/explain';
import type { Caller, DefaultPolicy, Rule, RuleView, Target } from '../../src/rules/types';

/** A RuleView over plain maps, as the store would present one snapshot (with stale inode entries if given). */
class MapView implements RuleView {
  private readonly paths = new Map<string, Rule>();
  private readonly inodes = new Map<string, Rule>();

  constructor(rules: readonly Rule[], staleInodes: Record<string, Rule> = {}) {
    for (const r of rules) {
      this.paths.set(r.path, r);
      if (r.dev !== null) this.inodes.set(`${r.dev}:${r.ino}`, r);
    }
    for (const [key, r] of Object.entries(staleInodes)) this.inodes.set(key, r);
  }

  byInode(dev: number, ino: number): Rule | undefined {
    return this.inodes.get(`${dev}:${ino}`);
  }

  byPath(path: string): Rule | undefined {
    return this.paths.get(path);
  }
}

function rule(r: Partial<Rule> & Pick<Rule, 'id' | 'path'>): Rule {
  return { dev: null, ino: null, owner: 0, defaccess: 0, acl: [], recursive: false, ...r };
}

const DOCS = rule({ id: 1, path: '/docs', recursive: true, defaccess: 4, acl: [{ group: 100, access: 5 }] });
const SECRET = rule({ id: 2, path: '/docs/secret.txt', defaccess: 0, acl: [{ user: 1001, access: 4 }], auditOnly: true });
const PLAIN_DIR = rule({ id: 3, path: '/docs/sub', recursive: false, defaccess: 7 });
const BOUND = rule({ id: 4, path: '/elsewhere/linked.txt', dev: 1, ino: 500, defaccess: 6 });
const STALE = rule({ id: 5, path: '/stale.txt', dev: 1, ino: 601, defaccess: 7 });
const BORN = rule({ id: 6, path: '/born.txt', dev: 1, ino: 700, birth: '100.000000001', defaccess: 0 });
const view = new MapView([DOCS, SECRET, PLAIN_DIR, BOUND, STALE, BORN], { '1:600': STALE });

const caller = (uid: number, gid = uid, groups: number[] = []): Caller => ({ uid, gid, groups, pid: 0 });
const at = (path: string, dev = 9, ino = 9, birth: string | null = null): Target => ({ path, dev, ino, birth });
const ref = (r: Rule) => ({ id: r.id, path: r.path, recursive: r.recursive, auditOnly: r.auditOnly === true });

describe('explainDecision', () => {
  it.each<[string, Target, Caller, DefaultPolicy, DecisionStep[], string[]]>([
    [
      'an exact path rule (an existing file no rule is bound to)',
      at('/docs/secret.txt'),
      caller(1001),
      'deny',
      [
        { kind: 'inode', dev: 9, ino: 9, file: true, result: 'miss', rule: null },
        { kind: 'path', path: '/docs/secret.txt', rule: ref(SECRET) },
        { kind: 'grant', rule: ref(SECRET), source: { kind: 'user', uid: 1001 }, granted: 4 },
      ],
      [
        'inode index: dev 9 ino 9: miss, no rule is bound to this file',
        'path /docs/secret.txt: rule 2 (/docs/secret.txt, audit-only): governs',
        'rule 2 (/docs/secret.txt, audit-only) grants r-- through its entry for user 1001',
      ],
    ],
    [
      'a recursive ancestor, past a non-recursive one (a file that does not exist yet)',
      at('/docs/sub/new.txt', 0, 0),
      caller(2000, 100),
      'deny',
      [
        { kind: 'inode', dev: 0, ino: 0, file: false, result: 'miss', rule: null },
        { kind: 'path', path: '/docs/sub/new.txt', rule: null },
        { kind: 'ancestor', path: '/docs/sub', rule: ref(PLAIN_DIR) },
        { kind: 'ancestor', path: '/docs', rule: ref(DOCS) },
        { kind: 'grant', rule: ref(DOCS), source: { kind: 'groups', gids: [100] }, granted: 5 },
      ],
      [
        'inode index: no file known at this path (none yet, or no mount to look in): nothing to look up by inode',
        'path /docs/sub/new.txt: no rule',
        'ancestor /docs/sub: rule 3 (/docs/sub): not recursive, governs only /docs/sub: skipped',
        'ancestor /docs: rule 1 (/docs, recursive): governs',
        'rule 1 (/docs, recursive) grants r-x through its entry for group 100',
      ],
    ],
    [
      'a rule bound to the inode (the file was moved away from the rule path)',
      at('/moved/here.txt', 1, 500),
      caller(0),
      'deny',
      [
        { kind: 'inode', dev: 1, ino: 500, file: true, result: 'hit', rule: ref(BOUND) },
        { kind: 'grant', rule: ref(BOUND), source: { kind: 'owner' }, granted: 7 },
      ],
      [
        'inode index: dev 1 ino 500: hit, rule 4 (/elsewhere/linked.txt) is bound to this file: governs',
        'rule 4 (/elsewhere/linked.txt) grants rwx through its owner (the caller is the owner: rwx)',
      ],
    ],
    [
      'the default policy, after a stale inode entry and every ancestor',
      at('/a/b', 1, 600),
      caller(2000),
      'allow',
      [
        { kind: 'inode', dev: 1, ino: 600, file: true, result: 'stale', rule: ref(STALE) },
        { kind: 'path', path: '/a/b', rule: null },
        { kind: 'ancestor', path: '/a', rule: null },
        { kind: 'ancestor', path: '/', rule: null },
        { kind: 'default', policy: 'allow' },
      ],
      [
        'inode index: dev 1 ino 600: points to rule 5 (/stale.txt), bound to another file: ignored',
        'path /a/b: no rule',
        'ancestor /a: no rule',
        'ancestor /: no rule',
        'no rule governs: the default policy (allow) decides',
      ],
    ],
    [
      'a reused inode number (birth differs) falls back to the path',
      at('/born.txt', 1, 700, '200.5'),
      caller(2000),
      'deny',
      [
        { kind: 'inode', dev: 1, ino: 700, file: true, result: 'reused', rule: ref(BORN) },
        { kind: 'path', path: '/born.txt', rule: ref(BORN) },
        { kind: 'grant', rule: ref(BORN), source: { kind: 'defaccess' }, granted: 0 },
      ],
      [
        'inode index: dev 1 ino 700: rule 6 (/born.txt) was bound to an earlier file with this inode number (birth time differs): ignored',
        'path /born.txt: rule 6 (/born.txt): governs',
        'rule 6 (/born.txt) grants --- through its default access (no entry names the caller)',
      ],
    ],
  ])('%s', (_name, target, who, policy, steps, lines) => {
    const explained = explainDecision(view, who, target, 4, policy);
    expect(explained.steps).toEqual(steps);
    expect(explained.steps.map(describeStep)).toEqual(lines);
    expect(explained.decision).toEqual(decide(view, who, target, 4, policy));
  });

  it('words the cache step and an audit-only denial', () => {
    expect(describeStep({ kind: 'cache', hit: true })).toMatch(/^decision cache: hit /);
    expect(describeStep({ kind: 'cache', hit: false })).toMatch(/^decision cache: miss /);
    const { decision } = explainDecision(view, caller(2000), at('/docs/secret.txt'), 4, 'deny');
    expect(describeOutcome(decision)).toBe('deny: rule 2 (/docs/secret.txt, by path): defaccess --- lacks r (audit-only rule: let through and recorded as "would deny")');
    const allowed = explainDecision(view, caller(1001), at('/docs/secret.txt'), 4, 'deny').decision;
    expect(describeOutcome(allowed)).toBe('allow: rule 2 (/docs/secret.txt, by path): user 1001 r-- grants r');
  });

  it('throws where decide() throws', () => {
    expect(() => explainDecision(view, caller(1), at('/docs'), 0, 'deny')).toThrow(/requested access must be 1-7/);
    expect(() => explainDecision(view, { uid: 2000, gid: 2000, groups: null, pid: 0 }, at('/docs/x'), 4, 'deny')).toThrow(/supplementary groups are unknown/);
  });
});

// ---- property: the explanation is decide()'s, step for step -----------------

const SEGMENTS = ['a', 'b', 'c'];
const pathArb = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const ids = fc.integer({ min: 0, max: 3 });
const accessArb = fc.integer({ min: 0, max: 7 });
const entryArb = fc.oneof(fc.record({ user: ids, access: accessArb }), fc.record({ group: ids, access: accessArb }));
const fileArb = fc.record({ dev: fc.integer({ min: 0, max: 2 }), ino: fc.integer({ min: 0, max: 3 }), birth: fc.constantFrom(null, '1.0', '2.0') });

const ruleSetArb = fc
  .uniqueArray(
    fc.record({
      path: pathArb,
      recursive: fc.boolean(),
      owner: ids,
      defaccess: accessArb,
      acl: fc.array(entryArb, { maxLength: 3 }),
      bound: fc.option(fileArb, { nil: undefined }),
      auditOnly: fc.boolean(),
    }),
    { selector: (r) => r.path, maxLength: 8 },
  )
  .map((specs) =>
    specs.map(
      (s, i): Rule =>
        rule({
          id: i + 1,
          path: s.path,
          recursive: s.recursive,
          owner: s.owner,
          defaccess: s.defaccess,
          acl: s.acl,
          dev: s.bound?.dev ?? null,
          ino: s.bound?.ino ?? null,
          birth: s.bound?.birth ?? null,
          ...(s.auditOnly ? { auditOnly: true } : {}),
        }),
    ),
  );

/** The store's by-inode index, sometimes pointing at a rule bound elsewhere (stale). */
function viewOf(rules: readonly Rule[], stale: readonly { key: string; index: number }[]): MapView {
  const extra: Record<string, Rule> = {};
  for (const s of stale) if (rules.length > 0) extra[s.key] = rules[s.index % rules.length]!;
  return new MapView(rules, extra);
}

describe('explainDecision (property)', () => {
  it('returns exactly what decide() returns, and steps that lead to it, on generated rule sets and paths', () => {
    fc.assert(
      fc.property(
        ruleSetArb,
        fc.array(fc.record({ key: fc.constantFrom('0:0', '1:1', '1:2', '2:3'), index: fc.nat() }), { maxLength: 2 }),
        pathArb,
        fc.option(fileArb, { nil: undefined }),
        fc.record({ uid: ids, gid: ids, groups: fc.option(fc.array(ids, { maxLength: 3 }), { nil: null }) }),
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom<DefaultPolicy>('deny', 'allow'),
        (rules, stale, path, file, who, requested, policy) => {
          const view = viewOf(rules, stale);
          const target: Target = file === undefined ? { path, dev: 0, ino: 0 } : { path, ...file };
          const c: Caller = { ...who, pid: 0 };
          let expected: ReturnType<typeof decide> | Error;
          try {
            expected = decide(view, c, target, requested, policy);
          } catch (err) {
            expected = err as Error;
          }
          if (expected instanceof Error) {
            expect(() => explainDecision(view, c, target, requested, policy)).toThrow(expected.message);
            return;
          }
          const { decision, steps } = explainDecision(view, c, target, requested, policy);
          expect(decision).toEqual(expected);
          // The walk: the inode index first, then the exact path, then
          // ancestors from the parent up; the last lookup names the
          // governing rule, or none and the default policy decides.
          expect(steps[0]?.kind).toBe('inode');
          const last = steps.at(-1)!;
          const lookups = steps.slice(0, -1);
          if (decision.match === 'default') {
            expect(last).toEqual({ kind: 'default', policy });
            expect(lookups.map((s) => s.kind)).toEqual(['inode', 'path', ...ancestorsOf(path).map(() => 'ancestor')]);
          } else {
            expect(last).toMatchObject({ kind: 'grant', rule: { id: decision.ruleId, path: decision.rulePath }, source: decision.source, granted: decision.granted });
            const governing = lookups.at(-1)!;
            expect(governing.kind).toBe(decision.match);
            expect('rule' in governing ? governing.rule?.id : undefined).toBe(decision.ruleId);
          }
          for (const s of steps) expect(describeStep(s)).not.toBe('');
          expect(describeOutcome(decision).startsWith(decision.allow ? 'allow: ' : 'deny: ')).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let p = path; p !== '/'; ) {
    p = p.slice(0, p.lastIndexOf('/')) || '/';
    out.push(p);
  }
  return out;
}
