// Expiring acl entries: decide() counts an entry past its expiry as absent;
// rule files read and write the expiry (RFC 3339 with its offset); the store
// indexes expiries, finds the next one, and commits an expiry (a new
// generation) that removes entries past the grace period.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding';
import { decide } from '../../src/rules/decide';
import { accessOf, readAccess } from '../../src/rules/reach';
import { parseExpiry, parseRuleFile, serializeRuleFile } from '../../src/rules/ruleFile';
import type { Caller, Rule, RuleView } from '../../src/rules/types';
import { RuleStore } from '../../src/store/store';

const T = Date.UTC(2026, 11, 31, 18, 0, 0);
const names = { user: (n: string) => (n === 'bob' ? 1002 : undefined), group: () => undefined };

function viewOf(rules: Rule[]): RuleView {
  const byPath = new Map(rules.map((r) => [r.path, r] as const));
  return { byPath: (p) => byPath.get(p), byInode: () => undefined };
}

const rule: Rule = {
  id: 1,
  path: '/d',
  dev: null,
  ino: null,
  owner: 0,
  defaccess: 1,
  acl: [
    { user: 1002, access: 6, expires: T },
    { group: 50, access: 4, expires: T + 1000 },
    { group: 60, access: 2 },
  ],
  recursive: true,
};
const view = viewOf([rule]);
const bob: Caller = { uid: 1002, gid: 1002, groups: [50], pid: 1 };
const carol: Caller = { uid: 1003, gid: 1003, groups: [50, 60], pid: 1 };

describe('decide() with expiring entries', () => {
  it.each([
    ['bob before his entry expires: his entry', bob, T - 1, 6],
    ['bob at the expiry: as if his entry were not there (his group)', bob, T, 4],
    ['bob after his group entry expired too: the default access', bob, T + 1000, 1],
    ['carol before: both groups', carol, T, 6],
    ['carol after group 50 expired: group 60 only', carol, T + 1000, 2],
  ] as const)('%s', (_, who, now, granted) => {
    expect(decide(view, who, { path: '/d/f', dev: 0, ino: 0 }, 1, 'deny', now).granted).toBe(granted);
    // The listing of who can access agrees at the same time.
    expect(readAccess(accessOf({ rule, match: 'ancestor' }, 'deny', now), who)).toBe(granted);
  });

  it('needs no group list for a group entry that has expired', () => {
    const unknownGroups: Caller = { uid: 1004, gid: 1004, groups: null, pid: 1 };
    const onlyExpired = viewOf([{ ...rule, acl: [{ group: 50, access: 4, expires: T }] }]);
    expect(() => decide(onlyExpired, unknownGroups, { path: '/d', dev: 0, ino: 0 }, 1, 'deny', T - 1)).toThrow(/supplementary groups are unknown/);
    expect(decide(onlyExpired, unknownGroups, { path: '/d', dev: 0, ino: 0 }, 1, 'deny', T).granted).toBe(1);
  });
});

describe('rule files with expiring entries', () => {
  it.each([
    ['2026-12-31T18:00:00Z', T],
    ['2026-12-31T18:00Z', T],
    ['2026-12-31T19:00:00+01:00', T],
    ['2026-12-31T18:00:00.500Z', T + 500],
  ])('reads %s', (text, ms) => expect(parseExpiry(text)).toBe(ms));

  it.each(['2026-12-31T18:00:00', '2026-12-31', 'tomorrow', '2026-13-01T00:00Z', 1_800_000_000_000])('refuses %s', (text) => {
    expect(typeof parseExpiry(text)).toBe('string');
  });

  it('reads and writes them back as UTC', () => {
    const [r] = parseRuleFile({ version: 1, rules: [{ path: '/d', owner: 0, defaccess: '---', acl: [{ user: 'bob', access: 'r--', expires: '2026-12-31T19:00:00+01:00' }] }] }, names);
    expect(r!.acl).toEqual([{ user: 1002, access: 4, expires: T }]);
    expect(serializeRuleFile([r!])).toContain('"expires": "2026-12-31T18:00:00.000Z"');
  });
});

describe('the store and expiries', () => {
  let dir: string;
  let store: RuleStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-expiry-'));
    store = RuleStore.open(path.join(dir, 'db'), native);
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds the next expiry, commits an expiry, and removes entries past the grace period', () => {
    const day = 86_400_000;
    store.add({ path: '/a', owner: 0, defaccess: 0, acl: [{ user: 1, access: 4, expires: T }, { user: 2, access: 4 }], recursive: false });
    const b = store.add({ path: '/b', owner: 0, defaccess: 0, acl: [{ group: 5, access: 4, expires: T + day }], recursive: false });
    expect(store.nextExpiry(0)).toBe(T);
    expect(store.nextExpiry(T)).toBe(T + day);
    expect(store.nextExpiry(T + day)).toBeNull();
    // Changing or deleting a rule changes its expiries.
    store.put(b.id, { path: '/b', owner: 0, defaccess: 0, acl: [{ group: 5, access: 4, expires: T + 2 * day }], recursive: false });
    expect(store.nextExpiry(T)).toBe(T + 2 * day);
    const generation = store.generation();
    // At the expiry: a commit (the generation moves), nothing removed inside the grace period.
    expect(store.expire(T, 7 * day)).toBe(0);
    expect(store.generation()).toBe(generation + 1);
    expect(store.byPath('/a')!.acl).toHaveLength(2);
    // Past the grace period: the expired entry is removed, recorded as the daemon's.
    expect(store.expire(T + 8 * day, 7 * day)).toBe(1);
    expect(store.byPath('/a')!.acl).toEqual([{ user: 2, access: 4 }]);
    expect(store.history(1)[0]).toMatchObject({ who: 'the daemon (expired entries)', changes: [{ path: '/a' }] });
    expect(store.nextExpiry(0)).toBe(T + 2 * day);
    store.take(store.byPath('/b')!.id);
    expect(store.nextExpiry(0)).toBeNull();
    // A replacing import clears them.
    store.importRules([{ path: '/c', owner: 0, defaccess: 0, acl: [{ user: 1, access: 4, expires: T }], recursive: false }], { replace: true });
    expect(store.nextExpiry(0)).toBe(T);
    store.importRules([], { replace: true });
    expect(store.nextExpiry(0)).toBeNull();
  });
});
