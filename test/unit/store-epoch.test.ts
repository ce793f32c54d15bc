// The commit epoch (src/store/epoch.ts), RuleStore.snapshot() built on it,
// and PolicyEngine.holdsForAnyGroups(): what lets the binding replay allows.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DecisionCache } from '../../src/rules/cache';
import { PolicyEngine } from '../../src/rules/engine';
import { CommitEpoch } from '../../src/store/epoch';
import { RuleStore } from '../../src/store/store';
import type { AclEntry, Caller, RuleInput } from '../../src/rules/types';
import { native } from '../../src/native/binding';

const ROOT = path.resolve(__dirname, '..', '..');
const VITE_NODE = path.join(ROOT, 'node_modules/vite-node/vite-node.mjs');
const CHILD = path.join(__dirname, 'store-fixtures/store-child.ts');

let dir: string;
let store: RuleStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-epoch-'));
  store = RuleStore.open(path.join(dir, 'db'), native);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function input(p: string, acl: AclEntry[] = [{ user: 1000, access: 6 }], extra: Partial<RuleInput> = {}): RuleInput {
  return { path: p, owner: 0, defaccess: 0, acl, recursive: false, ...extra };
}

function runChild(args: string[]): void {
  const res = spawnSync(process.execPath, [VITE_NODE, CHILD, path.join(dir, 'db'), ...args], { cwd: ROOT, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`child failed: ${res.stderr}`);
}

describe('commit epoch', () => {
  it('moves by exactly two per commit that changes rules (before and after), not at all otherwise', () => {
    const e0 = store.epoch.value();
    const rule = store.add(input('/a'));
    expect(store.epoch.value()).toBe(e0 + 2);
    store.importRules([input('/b'), input('/c')]);
    expect(store.epoch.value()).toBe(e0 + 4);
    // A write that changes nothing commits nothing worth announcing.
    expect(store.take(999_999)).toBeUndefined();
    expect(store.epoch.value()).toBe(e0 + 4);
    store.take(rule.id);
    expect(store.epoch.value()).toBe(e0 + 6);
  });

  it('never moves back after a failed transaction, which changes no rules', () => {
    const e0 = store.epoch.value();
    expect(() => store.importRules([input('/x'), { ...input('/y'), owner: -1 }])).toThrow();
    // It may have moved (harmless: a replay is only ever refused for it).
    expect(store.epoch.value()).toBeGreaterThanOrEqual(e0);
    expect(store.findByPath('/x')).toBeUndefined();
  });

  it('is shared memory: a second mapping sees every advance at once', () => {
    const other = CommitEpoch.open(path.join(dir, 'db'), native);
    const before = other.value();
    store.add(input('/shared'));
    expect(other.value()).toBe(before + 2);
    other.advance();
    expect(store.epoch.value()).toBe(before + 3);
  });

  it('is advanced by commits of another process', () => {
    const e0 = store.epoch.value();
    runChild(['add', '/theirs']);
    expect(store.epoch.value()).toBe(e0 + 2);
  });
});

describe('RuleStore.snapshot()', () => {
  it('returns the epoch, and lookups after it see every commit made before it (even by another process)', () => {
    store.add(input('/mine'));
    const e1 = store.snapshot();
    expect(store.findByPath('/theirs')).toBeUndefined();
    runChild(['add', '/theirs']);
    const e2 = store.snapshot();
    expect(e2).not.toBe(e1);
    expect(store.findByPath('/theirs')).toMatchObject({ path: '/theirs' });
  });

  it('stays the same while nothing is committed', () => {
    store.add(input('/a'));
    const e = store.snapshot();
    expect(store.snapshot()).toBe(e);
    expect(store.findByPath('/a')).toBeDefined();
    expect(store.snapshot()).toBe(e);
  });
});

describe('PolicyEngine.holdsForAnyGroups()', () => {
  const caller: Caller = { uid: 1000, gid: 100, groups: [100, 300], pid: 1 };
  const target = { path: '/f', dev: 1, ino: 2, birth: null };
  const cases: { name: string; rule: RuleInput | null; requested: number; holds: boolean; allow: boolean }[] = [
    { name: 'owner', rule: { ...input('/f', []), owner: 1000 }, requested: 4, holds: true, allow: true },
    { name: 'own user entry', rule: input('/f', [{ user: 1000, access: 4 }, { group: 300, access: 6 }]), requested: 4, holds: true, allow: true },
    { name: 'no rule: default policy', rule: null, requested: 4, holds: true, allow: true },
    { name: 'a supplementary group entry grants', rule: input('/f', [{ group: 300, access: 4 }]), requested: 4, holds: false, allow: true },
    { name: 'only the primary group entry grants', rule: input('/f', [{ group: 100, access: 4 }]), requested: 4, holds: true, allow: true },
    { name: 'defaccess, no group entries', rule: { ...input('/f', []), defaccess: 4 }, requested: 4, holds: true, allow: true },
    {
      name: 'defaccess, a group entry another group could match',
      rule: { ...input('/f', [{ group: 555, access: 0 }]), defaccess: 4 },
      requested: 4,
      holds: false,
      allow: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.rule !== null) store.add(c.rule);
      const engine = new PolicyEngine(store, new DecisionCache(), 'allow');
      const { decision } = engine.check(caller, target, c.requested);
      expect(decision.allow).toBe(c.allow);
      expect(engine.holdsForAnyGroups(caller, target, c.requested, decision)).toBe(c.holds);
    });
  }
});
