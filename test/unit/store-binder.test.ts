// bindPendingRules() at mount start: every waiting rule whose file exists is
// bound, in one commit, paging through the index of waiting rules.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bindPendingRules } from '../../src/store/binder';
import { RuleStore } from '../../src/store/store';
import { native } from '../../src/native/binding';

let dir: string;
let store: RuleStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-binder-'));
  store = RuleStore.open(path.join(dir, 'db'), native);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('bindPendingRules', () => {
  it('binds exactly the rules whose file exists, across many index pages, in one commit', () => {
    const n = 25_000;
    store.importRules(Array.from({ length: n }, (_, i) => ({ path: `/d/f${i}`, owner: 0, defaccess: 4, acl: [], recursive: false })));
    const generation = store.generation();
    // Every 1000th file exists (inode = its number + 1).
    const lookup = (p: string): { dev: number; ino: number; birth: string | null } | null => {
      const i = Number(p.slice('/d/f'.length));
      return i % 1000 === 0 ? { dev: 7, ino: i + 1, birth: null } : null;
    };
    expect(bindPendingRules(store, lookup)).toBe(25);
    expect(store.generation()).toBe(generation + 1);
    expect(store.unboundRules()).toHaveLength(n - 25);
    for (const i of [0, 12_000, 24_000]) {
      expect(store.findByPath(`/d/f${i}`)).toMatchObject({ dev: 7, ino: i + 1 });
      expect(store.findByInode(7, i + 1)).toMatchObject({ path: `/d/f${i}` });
    }
    expect(store.findByPath('/d/f1')).toMatchObject({ dev: null, ino: null });
  });

  it('commits nothing when no file exists', () => {
    store.add({ path: '/none', owner: 0, defaccess: 4, acl: [], recursive: false });
    const epoch = store.epoch.value();
    expect(bindPendingRules(store, () => null)).toBe(0);
    expect(store.epoch.value()).toBe(epoch);
  });
});
