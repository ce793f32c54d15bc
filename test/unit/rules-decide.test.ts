import { describe, expect, it } from 'vitest';
import { parseRequested } from '../../src/rules/access';
import { decide, describeDecision } from '../../src/rules/decide';
import type { Caller, Decision, DefaultPolicy, GrantSource, MatchKind, Rule, RuleView } from '../../src/rules/types';

/** A RuleView over plain maps, as the store would present one snapshot. */
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

const DOCS = rule({
  id: 1,
  path: '/docs',
  recursive: true,
  owner: 10,
  defaccess: 4, // r--
  acl: [
    { user: 1000, access: 6 }, // rw-
    { group: 100, access: 5 }, // r-x
    { group: 200, access: 2 }, // -w-
    { group: 300, access: 1 }, // --x
  ],
});
const SECRET = rule({ id: 2, path: '/docs/secret.txt', owner: 0, defaccess: 0, acl: [{ user: 1001, access: 4 }] });
const SUB = rule({ id: 3, path: '/docs/sub', recursive: true, defaccess: 1 }); // --x
const PLAIN = rule({ id: 4, path: '/plain', recursive: false, defaccess: 7 });
const LINKED = rule({ id: 5, path: '/elsewhere/linked.txt', dev: 1, ino: 500, defaccess: 4 });
const PLAIN_IN_DOCS = rule({ id: 6, path: '/docs/plain2', recursive: false, defaccess: 7 });
const STALE = rule({ id: 8, path: '/stale.txt', dev: 1, ino: 601, defaccess: 7 });
// Bound to the file born at 100.000000001; a later file reusing ino 700 is not it.
const BORN = rule({ id: 9, path: '/born.txt', dev: 1, ino: 700, birth: '100.000000001', defaccess: 0 });

const view = new MapView([DOCS, SECRET, SUB, PLAIN, LINKED, PLAIN_IN_DOCS, STALE, BORN], { '1:600': STALE });

const ROOT = rule({ id: 7, path: '/', recursive: true, defaccess: 5 });
const rootView = new MapView([ROOT]);

const caller = (uid: number, gid = uid, groups: number[] = []): Caller => ({ uid, gid, groups, pid: 42 });

interface Case {
  name: string;
  view?: RuleView;
  caller: Caller;
  path: string;
  dev?: number;
  ino?: number;
  birth?: string | null;
  req: string;
  policy?: DefaultPolicy;
  allow: boolean;
  match: MatchKind;
  ruleId: number | null;
  granted: number;
  source: GrantSource;
}

const g = (...gids: number[]): GrantSource => ({ kind: 'groups', gids });
const u = (uid: number): GrantSource => ({ kind: 'user', uid });
const OWNER: GrantSource = { kind: 'owner' };
const DEF: GrantSource = { kind: 'defaccess' };
const POLICY = (policy: DefaultPolicy): GrantSource => ({ kind: 'default-policy', policy });

// The group-100 entry of /docs grants r-x; rows 'bits:*' try every request.
const G100 = caller(2000, 100);

const cases: Case[] = [
  { name: 'owner gets rwx', caller: caller(10), path: '/docs/a', req: 'rwx', allow: true, match: 'ancestor', ruleId: 1, granted: 7, source: OWNER },
  { name: 'owner beats defaccess ---', caller: caller(0), path: '/docs/secret.txt', req: 'rwx', allow: true, match: 'path', ruleId: 2, granted: 7, source: OWNER },
  { name: 'user entry grants rw', caller: caller(1000), path: '/docs/a', req: 'rw', allow: true, match: 'ancestor', ruleId: 1, granted: 6, source: u(1000) },
  { name: 'user entry lacks x', caller: caller(1000), path: '/docs/a', req: 'x', allow: false, match: 'ancestor', ruleId: 1, granted: 6, source: u(1000) },
  { name: 'user entry beats group entries', caller: caller(1000, 100, [300]), path: '/docs/a', req: 'x', allow: false, match: 'ancestor', ruleId: 1, granted: 6, source: u(1000) },
  { name: 'primary group entry', caller: G100, path: '/docs/a', req: 'rx', allow: true, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'primary group entry lacks w', caller: G100, path: '/docs/a', req: 'w', allow: false, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'supplementary group entry', caller: caller(2000, 999, [200]), path: '/docs/a', req: 'w', allow: true, match: 'ancestor', ruleId: 1, granted: 2, source: g(200) },
  { name: 'union of primary + supplementary', caller: caller(2000, 100, [200]), path: '/docs/a', req: 'rw', allow: true, match: 'ancestor', ruleId: 1, granted: 7, source: g(100, 200) },
  { name: 'union of three groups', caller: caller(2000, 999, [300, 100, 200]), path: '/docs/a', req: 'rwx', allow: true, match: 'ancestor', ruleId: 1, granted: 7, source: g(100, 200, 300) },
  { name: 'union still lacks r', caller: caller(2000, 200, [300]), path: '/docs/a', req: 'r', allow: false, match: 'ancestor', ruleId: 1, granted: 3, source: g(200, 300) },
  { name: 'defaccess when nothing matches', caller: caller(3000), path: '/docs/a', req: 'r', allow: true, match: 'ancestor', ruleId: 1, granted: 4, source: DEF },
  { name: 'defaccess lacks w', caller: caller(3000, 3000, [4000]), path: '/docs/a', req: 'w', allow: false, match: 'ancestor', ruleId: 1, granted: 4, source: DEF },
  { name: 'exact path beats ancestor', caller: caller(3000), path: '/docs/secret.txt', req: 'r', allow: false, match: 'path', ruleId: 2, granted: 0, source: DEF },
  { name: 'exact path user entry', caller: caller(1001), path: '/docs/secret.txt', req: 'r', allow: true, match: 'path', ruleId: 2, granted: 4, source: u(1001) },
  { name: "ancestor's entries do not leak into a path rule", caller: caller(1000, 100), path: '/docs/secret.txt', req: 'r', allow: false, match: 'path', ruleId: 2, granted: 0, source: DEF },
  { name: 'nearest recursive ancestor wins (allow)', caller: caller(3000), path: '/docs/sub/deep/f', req: 'x', allow: true, match: 'ancestor', ruleId: 3, granted: 1, source: DEF },
  { name: 'nearest recursive ancestor wins (deny)', caller: caller(3000), path: '/docs/sub/deep/f', req: 'r', allow: false, match: 'ancestor', ruleId: 3, granted: 1, source: DEF },
  { name: 'directory rule by its own path', caller: caller(3000), path: '/docs/sub', req: 'x', allow: true, match: 'path', ruleId: 3, granted: 1, source: DEF },
  { name: 'non-recursive ancestor skipped -> default', caller: caller(3000), path: '/plain/f', req: 'r', allow: false, match: 'default', ruleId: null, granted: 0, source: POLICY('deny') },
  { name: 'non-recursive ancestor skipped -> higher recursive', caller: caller(3000), path: '/docs/plain2/f', req: 'w', allow: false, match: 'ancestor', ruleId: 1, granted: 4, source: DEF },
  { name: 'non-recursive dir governs itself', caller: caller(3000), path: '/plain', req: 'rwx', allow: true, match: 'path', ruleId: 4, granted: 7, source: DEF },
  { name: 'inode rule beats path rule', caller: caller(3000), path: '/docs/secret.txt', dev: 1, ino: 500, req: 'r', allow: true, match: 'inode', ruleId: 5, granted: 4, source: DEF },
  { name: 'inode rule beats ancestor', caller: caller(3000), path: '/docs/x', dev: 1, ino: 500, req: 'w', allow: false, match: 'inode', ruleId: 5, granted: 4, source: DEF },
  { name: 'same ino on another dev is not bound', caller: caller(3000), path: '/docs/secret.txt', dev: 2, ino: 500, req: 'r', allow: false, match: 'path', ruleId: 2, granted: 0, source: DEF },
  { name: 'inode rule applies to the file it was bound to (same birth)', caller: caller(3000), path: '/docs/y', dev: 1, ino: 700, birth: '100.000000001', req: 'r', allow: false, match: 'inode', ruleId: 9, granted: 0, source: DEF },
  { name: 'inode rule applies when the birth time is unknown', caller: caller(3000), path: '/docs/y', dev: 1, ino: 700, birth: null, req: 'r', allow: false, match: 'inode', ruleId: 9, granted: 0, source: DEF },
  { name: 'reused inode number (other birth) is not governed by the old rule', caller: caller(3000), path: '/docs/y', dev: 1, ino: 700, birth: '200.5', req: 'r', allow: true, match: 'ancestor', ruleId: 1, granted: 4, source: DEF },
  { name: 'stale inode index entry is ignored', caller: caller(3000), path: '/docs/secret.txt', dev: 1, ino: 600, req: 'r', allow: false, match: 'path', ruleId: 2, granted: 0, source: DEF },
  { name: 'default deny', caller: caller(3000), path: '/other/x', req: 'r', allow: false, match: 'default', ruleId: null, granted: 0, source: POLICY('deny') },
  { name: 'default allow', caller: caller(3000), path: '/other/x', req: 'rwx', policy: 'allow', allow: true, match: 'default', ruleId: null, granted: 7, source: POLICY('allow') },
  { name: 'unknown policy is deny', caller: caller(3000), path: '/other/x', req: 'r', policy: 'permit' as DefaultPolicy, allow: false, match: 'default', ruleId: null, granted: 0, source: POLICY('deny') },
  { name: 'default allow does not override a rule', caller: caller(3000), path: '/docs/secret.txt', req: 'r', policy: 'allow', allow: false, match: 'path', ruleId: 2, granted: 0, source: DEF },
  { name: 'bits: r', caller: G100, path: '/docs/a', req: 'r', allow: true, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: w', caller: G100, path: '/docs/a', req: 'w', allow: false, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: x', caller: G100, path: '/docs/a', req: 'x', allow: true, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: rw', caller: G100, path: '/docs/a', req: 'rw', allow: false, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: rx', caller: G100, path: '/docs/a', req: 'rx', allow: true, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: wx', caller: G100, path: '/docs/a', req: 'wx', allow: false, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'bits: rwx', caller: G100, path: '/docs/a', req: 'rwx', allow: false, match: 'ancestor', ruleId: 1, granted: 5, source: g(100) },
  { name: 'root path, no rule, default deny', caller: caller(3000), path: '/', req: 'r', allow: false, match: 'default', ruleId: null, granted: 0, source: POLICY('deny') },
  { name: 'root path, no rule, default allow', caller: caller(3000), path: '/', req: 'r', policy: 'allow', allow: true, match: 'default', ruleId: null, granted: 7, source: POLICY('allow') },
  { name: 'root rule by path', view: rootView, caller: caller(3000), path: '/', req: 'rx', allow: true, match: 'path', ruleId: 7, granted: 5, source: DEF },
  { name: 'root rule as recursive ancestor', view: rootView, caller: caller(3000), path: '/a/b/c', req: 'w', allow: false, match: 'ancestor', ruleId: 7, granted: 5, source: DEF },
  { name: 'unnormalised target path', caller: caller(3000), path: '/docs//sub/./deep/', req: 'x', allow: true, match: 'ancestor', ruleId: 3, granted: 1, source: DEF },
];

describe('decide', () => {
  it.each(cases)('$name', (c) => {
    const d = decide(c.view ?? view, c.caller, { path: c.path, dev: c.dev ?? 9, ino: c.ino ?? 9, birth: c.birth ?? null }, parseRequested(c.req), c.policy ?? 'deny');
    expect(d).toEqual<Decision>({
      allow: c.allow,
      requested: parseRequested(c.req),
      granted: c.granted,
      ruleId: c.ruleId,
      rulePath: c.ruleId === null ? null : [DOCS, SECRET, SUB, PLAIN, LINKED, PLAIN_IN_DOCS, ROOT, BORN].find((r) => r.id === c.ruleId)!.path,
      match: c.match,
      source: c.source,
      revocable: false,
      auditOnly: false,
    });
  });

  it('decides without supplementary groups where they cannot matter, throws (denies) where they could', () => {
    const unknown = (uid: number, gid = uid): Caller => ({ uid, gid, groups: null, pid: 0 });
    const req = (c: Caller, p: string, bits = 'r'): Decision => decide(view, c, { path: p, dev: 9, ino: 9 }, parseRequested(bits), 'deny');
    expect(req(unknown(10), '/docs/a', 'rwx')).toMatchObject({ allow: true, source: { kind: 'owner' } });
    expect(req(unknown(1000), '/docs/a', 'rw')).toMatchObject({ allow: true, source: { kind: 'user', uid: 1000 } });
    expect(req(unknown(3000), '/docs/secret.txt')).toMatchObject({ allow: false, source: { kind: 'defaccess' } });
    expect(req(unknown(3000), '/plain')).toMatchObject({ allow: true, source: { kind: 'defaccess' } });
    expect(req(unknown(3000), '/other/x')).toMatchObject({ allow: false, match: 'default' });
    // /docs has entries for groups 100, 200 and 300: unknown groups could match.
    expect(() => req(unknown(3000), '/docs/a')).toThrow(/supplementary groups are unknown/);
    expect(() => req(unknown(3000, 100), '/docs/a')).toThrow(/supplementary groups are unknown/);
    const onlyPrimary = new MapView([rule({ id: 20, path: '/g', recursive: true, defaccess: 0, acl: [{ group: 100, access: 4 }] })]);
    expect(decide(onlyPrimary, unknown(3000, 100), { path: '/g/f', dev: 9, ino: 9 }, 4, 'deny')).toMatchObject({ allow: true, source: { kind: 'groups', gids: [100] } });
    expect(() => decide(onlyPrimary, unknown(3000, 5), { path: '/g/f', dev: 9, ino: 9 }, 4, 'deny')).toThrow();
  });

  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each([0, 8, -1, 1.5, NaN])('throws on requested %s (callers deny on throw)', (req) => {
    expect(() => decide(view, caller(0), { path: '/docs', dev: 1, ino: 1 }, req, 'allow')).toThrow(/requested access/);
  });

  it.each([
    ['missing uid', { gid: 1, groups: [], pid: 1 }],
    ['negative gid', { uid: 1, gid: -1, groups: [], pid: 1 }],
    ['groups not an array', { uid: 1, gid: 1, groups: undefined, pid: 1 }],
  ])('throws on malformed caller (%s)', (_name, bad) => {
    expect(() => decide(view, bad as unknown as Caller, { path: '/docs', dev: 1, ino: 1 }, 4, 'allow')).toThrow(/caller identity/);
  });

  it('throws on a target path escaping the root', () => {
    expect(() => decide(view, caller(0), { path: '/../x', dev: 1, ino: 1 }, 4, 'allow')).toThrow(/escapes/);
  });
});

describe('describeDecision', () => {
  const describeCase = (c: Caller, path: string, req: string, policy: DefaultPolicy = 'deny', ino = 9): string =>
    describeDecision(decide(view, c, { path, dev: 1, ino }, parseRequested(req), policy));

  it.each([
    [caller(3000), '/docs/secret.txt', 'r', 'deny', 'deny: rule 2 (/docs/secret.txt, by path): defaccess --- lacks r'],
    [caller(10), '/docs/a', 'rwx', 'deny', 'allow: rule 1 (/docs, by recursive ancestor): owner rwx grants rwx'],
    [caller(1000), '/docs/a', 'rwx', 'deny', 'deny: rule 1 (/docs, by recursive ancestor): user 1000 rw- lacks x'],
    [caller(2000, 100, [200]), '/docs/a', 'r', 'deny', 'allow: rule 1 (/docs, by recursive ancestor): groups 100,200 rwx grants r'],
    [caller(2000, 100), '/docs/a', 'w', 'deny', 'deny: rule 1 (/docs, by recursive ancestor): group 100 r-x lacks w'],
    [caller(3000), '/nowhere', 'rw', 'deny', 'deny: no rule: default policy deny --- lacks rw'],
    [caller(3000), '/nowhere', 'rw', 'allow', 'allow: no rule: default policy allow rwx grants rw'],
  ] as const)('%j %s %s', (c, path, req, policy, text) => {
    expect(describeCase(c, path, req, policy)).toBe(text);
  });

  it('names inode matches', () => {
    expect(describeCase(caller(3000), '/x', 'r', 'deny', 500)).toBe(
      'allow: rule 5 (/elsewhere/linked.txt, by inode): defaccess r-- grants r',
    );
  });
});
