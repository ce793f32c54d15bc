import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AclfsError, DamagedDatabaseError } from '../../src/errors';
import { Binder } from '../../src/store/binder';
import { decide } from '../../src/rules/decide';
import { open as openLmdb, type Database, type DatabaseOptions } from 'lmdb';
import { decodeRule, encodeRule, IndexValueError, idCodec, RECORD_FORMAT, RecordFormatError, ruleCodec } from '../../src/store/codec';
import { RuleStore } from '../../src/store/store';
import type { AclEntry, Rule, RuleInput } from '../../src/rules/types';
import { native } from '../../src/native/binding';

const ROOT = path.resolve(__dirname, '..', '..');
const VITE_NODE = path.join(ROOT, 'node_modules/vite-node/vite-node.mjs');
const CHILD = path.join(__dirname, 'store-fixtures/store-child.ts');

function input(p: string, extra: Partial<RuleInput> = {}): RuleInput {
  return { path: p, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 6 }], recursive: false, ...extra };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AclfsError ? err.code : 'not-an-AclfsError';
  }
  return undefined;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
  }
  throw new Error('expected an error');
}

function allRules(store: RuleStore, prefix?: string, limit = 1000): Rule[] {
  const out: Rule[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = store.list({ prefix, cursor, limit });
    out.push(...page.rules);
    if (page.nextCursor === null) return out;
    cursor = page.nextCursor;
  }
}

let dir: string;
let store: RuleStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-store-'));
  store = RuleStore.open(path.join(dir, 'db'), native);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('RuleStore basics', () => {
  it('creates a 0700 directory with 0600 files and starts at generation 0', () => {
    const mode = (p: string): number => fs.statSync(p).mode & 0o777;
    expect(mode(path.join(dir, 'db'))).toBe(0o700);
    expect(mode(path.join(dir, 'db', 'data.mdb'))).toBe(0o600);
    expect(mode(path.join(dir, 'db', 'lock.mdb'))).toBe(0o600);
    expect(store.generation()).toBe(0);
    expect(store.count()).toBe(0);
  });

  it('refuses a regular file as the database path', () => {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    expect(() => RuleStore.open(file, native)).toThrow(/not a directory/);
  });

  it('add stores the rule in every index and bumps the generation once', () => {
    const r = store.add(input('/docs//a.txt/'));
    expect(r).toEqual({ id: 1, path: '/docs/a.txt', dev: null, ino: null, birth: null, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 6 }], recursive: false });
    expect(store.generation()).toBe(1);
    expect(store.get(1)).toEqual(r);
    expect(store.findByPath('/docs/a.txt')).toEqual(r);
    expect(store.unboundRules()).toEqual([r]);
    expect(store.count()).toBe(1);
    expect(store.verifyIndexes()).toEqual([]);

    const bound = store.add(input('/b', { dev: 5, ino: 77 }));
    expect(bound.id).toBe(2);
    expect(store.findByInode(5, 77)).toEqual(bound);
    expect(store.byInode(5, 77)).toEqual(bound);
    expect(store.unboundRules().map((x) => x.id)).toEqual([1]);
    expect(store.generation()).toBe(2);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('add of an existing path is a conflict and changes nothing', () => {
    store.add(input('/a'));
    expect(codeOf(() => store.add(input('/a/')))).toBe('conflict');
    expect(store.generation()).toBe(1);
    expect(store.count()).toBe(1);
  });

  it('rejects invalid rules with AclfsError invalid', () => {
    expect(codeOf(() => store.add(input('relative')))).toBe('invalid');
    expect(codeOf(() => store.add(input('/a', { defaccess: 8 })))).toBe('invalid');
    expect(codeOf(() => store.add(input('/a', { owner: -1 })))).toBe('invalid');
    expect(codeOf(() => store.add(input('/a', { acl: [{ user: 1, access: 9 }] })))).toBe('invalid');
    expect(codeOf(() => store.add(input('/a', { acl: [{ user: 1, access: 4 }, { user: 1, access: 2 }] })))).toBe('invalid');
    expect(codeOf(() => store.add(input('/a', { dev: 1 })))).toBe('invalid');
    expect(codeOf(() => store.add(input('/' + 'x'.repeat(2000))))).toBe('invalid');
    expect(store.generation()).toBe(0);
  });

  it('a path too long to be a key simply has no rule (no throw in decide)', () => {
    expect(store.findByPath('/' + 'é'.repeat(3000))).toBeUndefined();
  });

  it('ids are never reused', () => {
    const a = store.add(input('/a'));
    store.take(a.id);
    expect(store.add(input('/b')).id).toBe(a.id + 1);
  });
});

describe('RuleStore updates', () => {
  it('put replaces the whole rule and keeps the binding when the path is unchanged', () => {
    const r = store.add(input('/a', { dev: 1, ino: 10, recursive: true }));
    const updated = store.put(r.id, input('/a', { owner: 5, defaccess: 7, acl: [] }));
    expect(updated).toEqual({ id: r.id, path: '/a', dev: 1, ino: 10, birth: null, owner: 5, defaccess: 7, acl: [], recursive: false });
    expect(store.findByInode(1, 10)).toEqual(updated);
    expect(store.generation()).toBe(2);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('put moving a rule to a new path drops the stale binding and frees the old path', () => {
    const r = store.add(input('/a', { dev: 1, ino: 10 }));
    const moved = store.put(r.id, input('/b'));
    expect(moved.dev).toBeNull();
    expect(store.findByPath('/a')).toBeUndefined();
    expect(store.findByPath('/b')).toEqual(moved);
    expect(store.findByInode(1, 10)).toBeUndefined();
    expect(store.unboundRules()).toEqual([moved]);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('put with an explicit binding applies it', () => {
    const r = store.add(input('/a', { dev: 1, ino: 10 }));
    const rebound = store.put(r.id, input('/a', { dev: 2, ino: 20 }));
    expect(store.findByInode(1, 10)).toBeUndefined();
    expect(store.findByInode(2, 20)).toEqual(rebound);
    store.put(r.id, input('/a', { dev: null, ino: null }));
    expect(store.findByInode(2, 20)).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('put onto another rule\'s path is a conflict; put of a missing id is not_found', () => {
    store.add(input('/a'));
    const b = store.add(input('/b'));
    const gen = store.generation();
    expect(codeOf(() => store.put(b.id, input('/a')))).toBe('conflict');
    expect(codeOf(() => store.put(99, input('/c')))).toBe('not_found');
    expect(store.generation()).toBe(gen);
    expect(store.findByPath('/b')).toEqual(b);
  });

  it('setByPath creates then updates', () => {
    const a = store.setByPath(input('/a'));
    const a2 = store.setByPath(input('/a', { defaccess: 0 }));
    expect([a.created, a2.created]).toEqual([true, false]);
    expect(a2.rule.id).toBe(a.rule.id);
    expect(a2.rule.defaccess).toBe(0);
    expect(store.count()).toBe(1);
    expect(store.generation()).toBe(2);
  });

  it('take deletes every index entry; taking nothing does not commit', () => {
    const r = store.add(input('/a', { dev: 3, ino: 4 }));
    expect(store.take(r.id)).toEqual(r);
    expect(store.generation()).toBe(2);
    expect(store.get(r.id)).toBeUndefined();
    expect(store.findByPath('/a')).toBeUndefined();
    expect(store.findByInode(3, 4)).toBeUndefined();
    expect(store.count()).toBe(0);
    expect(store.take(r.id)).toBeUndefined();
    expect(store.generation()).toBe(2);
    expect(store.verifyIndexes()).toEqual([]);
  });
});

describe('RuleStore binding', () => {
  it('bind moves the byInode entry and takes the rule off the unbound list', () => {
    const r = store.add(input('/a'));
    expect(store.bind(r.id, 1, 100)).toBe(true);
    expect(store.findByInode(1, 100)?.id).toBe(r.id);
    expect(store.unboundRules()).toEqual([]);
    expect(store.bind(r.id, 1, 200)).toBe(true);
    expect(store.findByInode(1, 100)).toBeUndefined();
    expect(store.findByInode(1, 200)?.id).toBe(r.id);
    expect(store.generation()).toBe(3);
    expect(store.bind(r.id, 1, 200)).toBe(true); // already so: no commit
    expect(store.generation()).toBe(3);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('bind never steals a dev:ino bound to another rule', () => {
    const a = store.add(input('/a', { dev: 1, ino: 100 }));
    const b = store.add(input('/b', { dev: 1, ino: 100 })); // contested at insert: stored unbound
    expect(b.dev).toBeNull();
    expect(store.bind(b.id, 1, 100)).toBe(false);
    expect(store.findByInode(1, 100)?.id).toBe(a.id);
    expect(store.get(b.id)?.dev).toBeNull();
    // A rule bound elsewhere that asks for a taken inode ends up unbound.
    store.bind(b.id, 1, 300);
    expect(store.bind(b.id, 1, 100)).toBe(false);
    expect(store.get(b.id)?.dev).toBeNull();
    expect(store.findByInode(1, 300)).toBeUndefined();
    expect(store.unboundRules().map((r) => r.id)).toEqual([b.id]);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('unbind puts the rule back on the unbound list; missing ids are not_found', () => {
    const r = store.add(input('/a', { dev: 1, ino: 5 }));
    store.unbind(r.id);
    expect(store.findByInode(1, 5)).toBeUndefined();
    expect(store.unboundRules().map((x) => x.id)).toEqual([r.id]);
    expect(codeOf(() => store.unbind(42))).toBe('not_found');
    expect(codeOf(() => store.bind(42, 1, 1))).toBe('not_found');
    expect(codeOf(() => store.bind(r.id, -1, 1))).toBe('invalid');
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('bindMany binds in one commit, skipping missing ids and taken inodes', () => {
    const a = store.add(input('/a'));
    const b = store.add(input('/b'));
    const c = store.add(input('/c', { dev: 9, ino: 9 }));
    const gen = store.generation();
    const bound = store.bindMany([
      { id: a.id, dev: 1, ino: 1 },
      { id: b.id, dev: 9, ino: 9 }, // taken by /c
      { id: 999, dev: 1, ino: 2 }, // gone
    ]);
    expect(bound).toBe(1);
    expect(store.generation()).toBe(gen + 1);
    expect(store.findByInode(1, 1)?.id).toBe(a.id);
    expect(store.findByInode(9, 9)?.id).toBe(c.id);
    expect(store.unboundRules().map((r) => r.id)).toEqual([b.id]);
    expect(store.bindMany([])).toBe(0);
    expect(store.generation()).toBe(gen + 1);
    expect(codeOf(() => store.bindMany([{ id: a.id, dev: 1, ino: -1 }]))).toBe('invalid');
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('keeps revocable through add, bind, rebind and a move; a put without it makes the rule not revocable', () => {
    const r = store.add(input('/a', { revocable: true }));
    expect(r.revocable).toBe(true);
    expect(store.get(r.id)).toStrictEqual(r);
    store.bind(r.id, 1, 100, '5.5');
    expect(store.findByInode(1, 100)).toMatchObject({ id: r.id, revocable: true });
    store.movePaths('/a', '/b');
    expect(store.findByPath('/b')).toMatchObject({ id: r.id, revocable: true });
    store.unbind(r.id);
    expect(store.get(r.id)?.revocable).toBe(true);
    const replaced = store.put(r.id, input('/b'));
    expect(replaced.revocable).toBeUndefined();
    expect(store.get(r.id)).toStrictEqual(replaced);
    expect(store.put(r.id, input('/b', { revocable: true })).revocable).toBe(true);
    expect(store.setByPath(input('/b', { revocable: false })).rule.revocable).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('a rule differing only in revocable is another record (the copy by inode follows it)', () => {
    const r = store.add(input('/a', { dev: 1, ino: 2 }));
    const gen = store.generation();
    store.put(r.id, input('/a', { revocable: true }));
    expect(store.generation()).toBe(gen + 1);
    expect(store.findByInode(1, 2)?.revocable).toBe(true);
    expect(store.byInode(1, 2)?.revocable).toBe(true);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('decide() says whether the deciding rule is revocable', () => {
    store.add(input('/docs', { recursive: true, revocable: true, defaccess: 4 }));
    store.add(input('/docs/plain', { defaccess: 4 }));
    const who = { uid: 1, gid: 100, groups: [], pid: 1 };
    expect(decide(store, who, { path: '/docs/x', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ allow: true, match: 'ancestor', revocable: true });
    expect(decide(store, who, { path: '/docs/plain', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ allow: true, match: 'path', revocable: false });
    expect(decide(store, who, { path: '/elsewhere', dev: 0, ino: 0 }, 4, 'allow')).toMatchObject({ match: 'default', revocable: false });
  });

  it('keeps auditOnly through add, bind, a move and a put; a put without it makes the rule enforced', () => {
    const r = store.add(input('/a', { auditOnly: true, revocable: true }));
    expect(r).toMatchObject({ auditOnly: true, revocable: true });
    expect(store.get(r.id)).toStrictEqual(r);
    store.bind(r.id, 1, 100, '5.5');
    expect(store.findByInode(1, 100)).toMatchObject({ id: r.id, auditOnly: true });
    store.movePaths('/a', '/b');
    expect(store.findByPath('/b')).toMatchObject({ id: r.id, auditOnly: true, revocable: true });
    const replaced = store.put(r.id, input('/b'));
    expect(replaced.auditOnly).toBeUndefined();
    expect(store.get(r.id)).toStrictEqual(replaced);
    expect(store.put(r.id, input('/b', { auditOnly: true })).auditOnly).toBe(true);
    expect(store.setByPath(input('/b', { auditOnly: false })).rule.auditOnly).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('decide() says whether the deciding rule is audit-only', () => {
    store.add(input('/docs', { recursive: true, auditOnly: true, defaccess: 0 }));
    store.add(input('/docs/plain', { defaccess: 0 }));
    const who = { uid: 1, gid: 100, groups: [], pid: 1 };
    expect(decide(store, who, { path: '/docs/x', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ allow: false, match: 'ancestor', auditOnly: true });
    expect(decide(store, who, { path: '/docs/plain', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ allow: false, match: 'path', auditOnly: false });
    expect(decide(store, who, { path: '/elsewhere', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ match: 'default', auditOnly: false });
  });

  it('serves decide() as a RuleView', () => {
    store.add(input('/docs', { recursive: true, defaccess: 0, acl: [{ group: 100, access: 4 }] }));
    const f = store.add(input('/docs/f', { dev: 7, ino: 8, defaccess: 7 }));
    const who = { uid: 1, gid: 100, groups: [], pid: 1 };
    expect(decide(store, who, { path: '/docs/x/y', dev: 0, ino: 0 }, 4, 'deny')).toMatchObject({ allow: true, match: 'ancestor' });
    expect(decide(store, who, { path: '/moved', dev: 7, ino: 8 }, 2, 'deny')).toMatchObject({ allow: true, match: 'inode', ruleId: f.id });
  });
});

describe('RuleStore import', () => {
  it('imports N rules in one commit, upserting by path', () => {
    store.add(input('/keep'));
    const existing = store.add(input('/a', { dev: 1, ino: 1 }));
    const result = store.importRules([input('/a', { defaccess: 0 }), ...Array.from({ length: 100 }, (_, i) => input(`/n/${i}`))]);
    expect(result).toEqual({ created: 100, updated: 1 });
    expect(store.generation()).toBe(3);
    expect(store.count()).toBe(102);
    const a = store.findByPath('/a')!;
    expect(a.id).toBe(existing.id);
    expect(a.defaccess).toBe(0);
    expect(a.dev).toBe(1); // same path, no binding given: kept
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('replace deletes every rule first', () => {
    store.add(input('/old', { dev: 1, ino: 1 }));
    store.add(input('/a'));
    expect(store.importRules([input('/a'), input('/b')], { replace: true })).toEqual({ created: 2, updated: 0 });
    expect(store.generation()).toBe(3);
    expect(allRules(store).map((r) => r.path)).toEqual(['/a', '/b']);
    expect(store.findByInode(1, 1)).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('one bad rule in the middle changes nothing', () => {
    store.importRules([input('/a'), input('/b')]);
    const before = { gen: store.generation(), rules: store.exportRules(), count: store.count() };
    const batch = [input('/c'), input('/a', { defaccess: 0 }), input('/bad', { defaccess: 9 }), input('/d')];
    expect(() => store.importRules(batch, { replace: true })).toThrow(/rule 2: rule \/bad: defaccess/);
    expect({ gen: store.generation(), rules: store.exportRules(), count: store.count() }).toEqual(before);
    expect(store.findByPath('/c')).toBeUndefined();
  });

  it('duplicate paths in one import are rejected', () => {
    expect(() => store.importRules([input('/a'), input('/b'), input('/a/')])).toThrow(/rule 2 \(\/a\): path: duplicate of rule 0/);
    expect(store.generation()).toBe(0);
  });

  it('a failure inside the transaction rolls everything back', () => {
    store.add(input('/a'));
    const gen = store.generation();
    // Fault injection: validation passes, then the second index write of the
    // import fails, after '/y' was already written inside the transaction.
    const unbound = (store as unknown as { unboundDb: { putSync: (...args: unknown[]) => boolean } }).unboundDb;
    const realPut = unbound.putSync.bind(unbound);
    let calls = 0;
    const spy = vi.spyOn(unbound, 'putSync').mockImplementation((...args: unknown[]) => {
      if (++calls === 2) throw new Error('disk on fire');
      return realPut(...args);
    });
    try {
      expect(() => store.importRules([input('/y'), input('/z')])).toThrow('disk on fire');
    } finally {
      spy.mockRestore();
    }
    expect(store.generation()).toBe(gen);
    expect(store.findByPath('/y')).toBeUndefined();
    expect(store.count()).toBe(1);
    expect(store.verifyIndexes()).toEqual([]);
    expect(store.add(input('/y')).id).toBe(2); // the id counter rolled back too
  });

  it('imports and exports revocable; an import updating a rule replaces it', () => {
    store.importRules([input('/a', { revocable: true }), input('/b')]);
    expect(store.findByPath('/a')?.revocable).toBe(true);
    expect(store.exportRules()).toEqual([
      { path: '/a', recursive: false, revocable: true, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }] },
      { path: '/b', recursive: false, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }] },
    ]);
    expect(store.importRules([input('/a'), input('/b', { revocable: true })])).toEqual({ created: 0, updated: 2 });
    expect(store.findByPath('/a')?.revocable).toBeUndefined();
    expect(store.findByPath('/b')?.revocable).toBe(true);
  });

  it('exportRules gives the rule-file shape in path order', () => {
    store.importRules([input('/b', { acl: [{ group: 5, access: 1 }] }), input('/a', { recursive: true })]);
    expect(store.exportRules()).toEqual([
      { path: '/a', recursive: true, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }] },
      { path: '/b', recursive: false, owner: 0, defaccess: 'r--', acl: [{ group: 5, access: '--x' }] },
    ]);
  });

  it('exportRules reports its progress every 1000 rules and at the end, and exports the same', () => {
    store.importRules(Array.from({ length: 2500 }, (_, i) => input(`/p/${String(i).padStart(4, '0')}`)));
    const steps: [number, number][] = [];
    const withProgress = store.exportRules((done, total) => steps.push([done, total]));
    expect(steps).toEqual([
      [1000, 2500],
      [2000, 2500],
      [2500, 2500],
    ]);
    expect(withProgress).toEqual(store.exportRules());
  });
});

describe('RuleStore list', () => {
  const paths = [
    '/',
    '/docs',
    '/docs!',
    '/docs-x/a',
    '/docs.txt',
    '/docs/a',
    '/docs/a/b',
    '/docs/b',
    '/docs/z/deep/file',
    '/docs0',
    '/docsx',
    '/e',
    '/ä',
    ...Array.from({ length: 500 }, (_, i) => `/docs/many/${String(i).padStart(4, '0')}`),
    ...Array.from({ length: 300 }, (_, i) => `/other/${i}`),
  ];

  beforeEach(() => {
    store.importRules(paths.map((p) => input(p)));
  });

  it.each([1, 7, 100, 10_000])('pages of %i return every rule exactly once, in order', (limit) => {
    const listed = allRules(store, undefined, limit).map((r) => r.path);
    expect(listed).toHaveLength(paths.length);
    expect(new Set(listed).size).toBe(paths.length);
    expect(listed).toEqual([...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it.each([1, 3, 50])('prefix /docs (pages of %i) is /docs and below only', (limit) => {
    const listed = allRules(store, '/docs', limit).map((r) => r.path);
    const expected = paths.filter((p) => p === '/docs' || p.startsWith('/docs/')).sort();
    expect(listed).toEqual(expected);
  });

  it('prefix of a path without its own rule, and prefix /', () => {
    expect(allRules(store, '/docs/z').map((r) => r.path)).toEqual(['/docs/z/deep/file']);
    expect(allRules(store, '/nothing')).toEqual([]);
    expect(allRules(store, '/')).toHaveLength(paths.length);
    expect(allRules(store, '/docs/a/').map((r) => r.path)).toEqual(['/docs/a', '/docs/a/b']);
  });

  it('first page and cursor shape', () => {
    const page = store.list({ prefix: '/docs', limit: 2 });
    expect(page.rules.map((r) => r.path)).toEqual(['/docs', '/docs/a']);
    expect(page.nextCursor).toBe('/docs/a');
    expect(store.list({ prefix: '/e' })).toMatchObject({ nextCursor: null });
  });

  it('rejects bad limits and foreign cursors', () => {
    expect(codeOf(() => store.list({ limit: 0 }))).toBe('invalid');
    expect(codeOf(() => store.list({ limit: 10_001 }))).toBe('invalid');
    expect(codeOf(() => store.list({ prefix: '/docs', cursor: '/other/1' }))).toBe('invalid');
  });
});

describe('RuleStore across processes', () => {
  function runChild(args: string[]): { generation: number; count: number } {
    const res = spawnSync(process.execPath, [VITE_NODE, CHILD, path.join(dir, 'db'), ...args], { cwd: ROOT, encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`child failed: ${res.stderr}`);
    return JSON.parse(res.stdout) as { generation: number; count: number };
  }

  it('sees a commit by another process at the next generation() call, within the same event-loop turn', () => {
    store.add(input('/mine'));
    // Everything below runs synchronously: lmdb-js would keep serving the
    // read snapshot it opened for this turn unless generation() renews it.
    expect(store.generation()).toBe(1);
    expect(store.findByPath('/theirs')).toBeUndefined();
    const child = runChild(['add', '/theirs']);
    expect(child.generation).toBe(2);
    expect(store.generation()).toBe(2);
    expect(store.findByPath('/theirs')).toMatchObject({ path: '/theirs', acl: [{ user: 1000, access: 6 }] });
    expect(decide(store, { uid: 1000, gid: 1, groups: [], pid: 1 }, { path: '/theirs', dev: 0, ino: 0 }, 6, 'deny').allow).toBe(true);
  });

  it('sees a large import by another process (the map grows under the reader)', async () => {
    expect(store.generation()).toBe(0);
    const child = spawn(process.execPath, [VITE_NODE, CHILD, path.join(dir, 'db'), 'import', '50000', '/bulk'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    // Keep reading while the child writes: the reader must never fail.
    const seen = new Set<number>();
    const poll = setInterval(() => seen.add(store.generation()), 1);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearInterval(poll);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ generation: 1, count: 50_000 });
    expect(store.generation()).toBe(1);
    expect([...seen].every((g) => g === 0 || g === 1)).toBe(true);
    expect(store.count()).toBe(50_000);
    expect(store.findByPath('/bulk/f49999')?.path).toBe('/bulk/f49999');
    expect(allRules(store, '/bulk', 10_000)).toHaveLength(50_000);
  });
});

describe('RuleStore at scale', () => {
  it('imports and pages through 1,000,000 rules', async () => {
    // Each phase is one long synchronous call; between them the test worker
    // answers the vitest runner, whose calls time out after a minute (all
    // phases together take longer than that on a busy machine).
    const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const n = 1_000_000;
    const rules = Array.from({ length: n }, (_, i) => input(`/big/${i % 1000}/f${i}`, { acl: [{ user: i % 5000, access: 4 }] }));
    await breathe();
    let t = Date.now();
    expect(store.importRules(rules)).toEqual({ created: n, updated: 0 });
    const importMs = Date.now() - t;
    await breathe();
    t = Date.now();
    let seen = 0;
    let cursor: string | undefined;
    for (;;) {
      const page = store.list({ cursor, limit: 10_000 });
      seen += page.rules.length;
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    const listMs = Date.now() - t;
    await breathe();
    t = Date.now();
    expect(store.importRules(rules.slice(0, 1000), { replace: true })).toEqual({ created: 1000, updated: 0 });
    const replaceMs = Date.now() - t;
    console.log(`1M rules: import ${importMs} ms, list all ${listMs} ms, replace with 1000 ${replaceMs} ms, db ${fs.statSync(path.join(dir, 'db', 'data.mdb')).size >> 20} MiB`);
    expect(seen).toBe(n);
  }, 600_000);
});

describe('RuleStore upkeep for changes made through the mount', () => {
  const file = (ino: number, birth: string | null = '1.5'): { dev: number; ino: number; birth: string | null } => ({ dev: 7, ino, birth });

  it('bindWaiting binds only a rule waiting on exactly that path, in one commit', () => {
    const r = store.add(input('/w/later.txt'));
    const g = store.generation();
    expect(store.bindWaiting('/w/other.txt', file(10))).toBe(false);
    expect(store.generation()).toBe(g);
    expect(store.bindWaiting('/w/later.txt', file(10))).toBe(true);
    expect(store.generation()).toBe(g + 1);
    expect(store.get(r.id)).toMatchObject({ dev: 7, ino: 10, birth: '1.5' });
    // Already bound: nothing waits any more.
    expect(store.bindWaiting('/w/later.txt', file(11))).toBe(false);
    expect(store.get(r.id)).toMatchObject({ ino: 10 });
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('unbindFile releases the inode and keeps the rule waiting on its path', () => {
    const r = store.add(input('/w/gone.txt', { dev: 7, ino: 20, birth: '3.25' }));
    expect(store.unbindFile(file(21))).toBeNull();
    expect(store.unbindFile(file(20))).toBe(r.id);
    expect(store.get(r.id)).toMatchObject({ path: '/w/gone.txt', dev: null, ino: null, birth: null });
    expect(store.findByInode(7, 20)).toBeUndefined();
    expect(store.unboundRules().map((x) => x.id)).toEqual([r.id]);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('a binding to a reused inode number (other birth) gives way to the new file', () => {
    const old = store.add(input('/w/old.txt', { dev: 7, ino: 30, birth: '1.000000001' }));
    const fresh = store.add(input('/w/new.txt'));
    expect(store.bind(fresh.id, 7, 30, '9.000000009')).toBe(true);
    expect(store.get(old.id)).toMatchObject({ dev: null, ino: null });
    expect(store.findByInode(7, 30)?.id).toBe(fresh.id);
    // Same birth (a hard link of the same file): the first binding stays.
    const link = store.add(input('/w/link.txt'));
    expect(store.bind(link.id, 7, 30, '9.000000009')).toBe(false);
    expect(store.findByInode(7, 30)?.id).toBe(fresh.id);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('movePaths moves a rule and everything below it in one commit, keeping rules whose new path is taken', () => {
    const dir = store.add(input('/a', { recursive: true }));
    const f = store.add(input('/a/f'));
    const deep = store.add(input('/a/b/c'));
    const sibling = store.add(input('/ab'));
    const taken = store.add(input('/z/f'));
    const g = store.generation();
    expect(store.movePaths('/a', '/z')).toEqual({ moved: 2, kept: [f.id] });
    expect(store.generation()).toBe(g + 1);
    expect(store.get(dir.id)?.path).toBe('/z');
    expect(store.get(deep.id)?.path).toBe('/z/b/c');
    expect(store.get(f.id)?.path).toBe('/a/f');
    expect(store.get(sibling.id)?.path).toBe('/ab');
    expect(store.get(taken.id)?.path).toBe('/z/f');
    expect(store.movePaths('/nothing', '/here')).toEqual({ moved: 0, kept: [] });
    expect(store.generation()).toBe(g + 1);
    expect(() => store.movePaths('/z', '/z/inner')).toThrow(/into itself/);
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('rejects a malformed birth time', () => {
    const r = store.add(input('/x'));
    expect(codeOf(() => store.bind(r.id, 1, 2, 'yesterday'))).toBe('invalid');
    expect(codeOf(() => store.add(input('/y', { dev: 1, ino: 3, birth: '12' })))).toBe('invalid');
  });
});

describe('RuleStore refuses a damaged data file', () => {
  it.each([
    ['the first meta page', [0], /meta page 0 is not an LMDB meta page/],
    ['the second meta page', [4096], /meta page 1 is not an LMDB meta page/],
    ['both meta pages', [0, 4096], /meta page 0 is not an LMDB meta page/],
  ])('names the database in one line when %s is damaged, instead of handing it to LMDB', (_what, pages, problem) => {
    store.add(input('/kept'));
    store.close();
    const data = path.join(dir, 'db', 'data.mdb');
    const fd = fs.openSync(data, 'r+');
    for (const page of pages) fs.writeSync(fd, Buffer.from('garbage!garbage!garbage!'), 0, 24, page + 16);
    fs.closeSync(fd);
    const err = errorOf(() => RuleStore.open(path.join(dir, 'db'), native));
    expect(err).toBeInstanceOf(DamagedDatabaseError);
    expect(err).toMatchObject({ code: 'internal', dir: path.join(dir, 'db') });
    expect(err.message).toMatch(/^database \/\S+\/db is damaged: .* \(restore it from a backup or export\/import\)$/);
    expect(err.message).toMatch(problem);
    store = RuleStore.open(path.join(dir, 'fresh'), native);
  });

  it('refuses a file that is no LMDB database at all', () => {
    store.close();
    fs.mkdirSync(path.join(dir, 'other'));
    fs.writeFileSync(path.join(dir, 'other', 'data.mdb'), Buffer.alloc(16384, 0x41));
    expect(() => RuleStore.open(path.join(dir, 'other'), native)).toThrow(/^database \S+\/other is damaged: meta page 0 is not an LMDB meta page/);
    store = RuleStore.open(path.join(dir, 'fresh'), native);
  });
});

describe('Binder', () => {
  it('binds waiting rules in bounded slices after each commit, and only then', () => {
    const files = new Map<string, { dev: number; ino: number; birth: string | null }>();
    const lookup = (p: string): { dev: number; ino: number; birth: string | null } | null => files.get(p) ?? null;
    store.importRules(Array.from({ length: 10 }, (_, i) => input(`/w/f${i}`)));
    const binder = new Binder(store, lookup, 4);
    expect(binder.step()).toBe(0); // nothing committed since it started
    for (let i = 0; i < 10; i++) files.set(`/w/f${i}`, { dev: 9, ino: 100 + i, birth: null });
    store.add(input('/w/trigger')); // any commit starts a sweep
    expect([binder.step(), binder.step(), binder.step()]).toEqual([4, 4, 2]);
    expect(store.unboundRules().map((r) => r.path)).toEqual(['/w/trigger']);
    // Its own binding commits did not start another sweep.
    expect(binder.step()).toBe(0);
    // A rule committed by someone else mid-sweep, sorting before the cursor,
    // is bound by the sweep that follows.
    files.set('/a', { dev: 9, ino: 1, birth: null });
    files.set('/z1', { dev: 9, ino: 2, birth: null });
    store.importRules([input('/z1'), input('/z2'), input('/z3'), input('/z4'), input('/z5')]);
    files.set('/z2', { dev: 9, ino: 3, birth: null });
    expect(binder.step()).toBe(2); // /z1, /z2 (the slice: trigger, z1, z2, z3)
    store.add(input('/a'));
    binder.step();
    binder.step();
    expect(store.findByPath('/a')?.ino).toBe(1);
    expect(store.verifyIndexes()).toEqual([]);
  });
});

describe('RuleStore records (the store\'s own record codec)', () => {
  // lmdb-js itself, with the store's codec as the database's encoder (as
  // the store opens `rules`), and the same database seen as bytes.
  let env: ReturnType<typeof openLmdb>;
  let db: Database<Rule, number>;
  let raw: Database<Uint8Array, number>;
  beforeEach(() => {
    env = openLmdb({ path: path.join(dir, 'scratch'), noSubdir: false, maxDbs: 4 });
    const withCodec: DatabaseOptions & { name: string; encoder: typeof ruleCodec } = { name: 'records', keyEncoding: 'uint32', encoder: ruleCodec };
    db = env.openDB<Rule, number>(withCodec);
    raw = env.openDB<Uint8Array, number>({ name: 'records', keyEncoding: 'uint32', encoding: 'binary' });
  });
  afterEach(() => {
    void env.close();
  });
  const bytesOf = (value: Rule): Buffer => {
    db.putSync(1, value);
    return Buffer.from(raw.get(1)!);
  };
  const R = (r: Partial<Rule>): Rule => ({ id: 1, path: '/a', dev: null, ino: null, birth: null, owner: 0, defaccess: 4, acl: [], recursive: false, ...r });
  const acl20: AclEntry[] = Array.from({ length: 20 }, (_, i): AclEntry => (i % 3 === 0 ? { group: 100 + i, access: i % 8 } : { user: 1000 + i, access: 7 - (i % 8) }));

  // Records as the store writes them (plainRule's field order).
  const handled: [string, Rule][] = [
    ['unbound, no acl', R({ recursive: true })],
    ['bound with a birth time', R({ id: 5000, path: '/d999/f3999', dev: 64769, ino: 103999, birth: '1700000000.123456789', acl: [{ user: 1049, access: 6 }] })],
    ['negative birth seconds', R({ dev: 1, ino: 2, birth: '-5.5' })],
    ['numbers at every encoding edge', R({ id: 63, dev: 64, ino: 127, owner: 128, defaccess: 7, acl: [{ user: 255, access: 0 }, { group: 256, access: 1 }, { user: 65535, access: 2 }, { group: 65536, access: 3 }] })],
    ['largest uint32 and beyond (float64)', R({ id: 0xffff_ffff, dev: 2 ** 32 + 5, ino: 2 ** 52 + 1, owner: 0xffff_fffe })],
    ['root path', R({ path: '/' })],
    ['16 and 17 character paths', R({ path: '/abcdefghijklmno', birth: null, acl: [{ group: 1, access: 1 }] })],
    ['17 character path', R({ path: '/abcdefghijklmnop' })],
    ['str8 path', R({ path: '/' + 'x'.repeat(200) })],
    ['str16 path', R({ path: '/' + 'y/'.repeat(400) + 'z' })],
    ['users and groups interleaved, repeated shapes', R({ acl: [{ user: 1, access: 4 }, { group: 2, access: 2 }, { user: 3, access: 1 }, { group: 4, access: 7 }] })],
    ['20 entries (array16)', R({ acl: acl20 })],
    ['recursive with everything', R({ id: 77, path: '/docs/sub dir/-._~', dev: 0, ino: 0, birth: '0.0', owner: 1000, defaccess: 5, acl: acl20.slice(0, 5), recursive: true })],
    ['a non-ASCII path', R({ path: '/é/日本/😀' })],
    ['a non-ASCII birth', R({ dev: 1, ino: 2, birth: '1.5é' })],
    ['the largest safe dev and ino', R({ dev: Number.MAX_SAFE_INTEGER, ino: Number.MAX_SAFE_INTEGER - 1 })],
    ['revocable', R({ revocable: true })],
    ['revocable, recursive and bound with a birth time', R({ id: 9, path: '/r', dev: 3, ino: 4, birth: '1.5', defaccess: 5, acl: [{ group: 7, access: 4 }], recursive: true, revocable: true })],
  ];
  it.each(handled)('writes and reads back %s, through lmdb-js as through the codec', (_name, rule) => {
    const bytes = bytesOf(rule);
    expect(bytes[0]).toBe(RECORD_FORMAT);
    expect(bytes).toEqual(encodeRule(rule));
    const mine = decodeRule(bytes);
    expect(mine).toStrictEqual(db.get(1));
    expect(mine).toStrictEqual(rule);
  });

  const refused: [string, unknown][] = [
    ['fractional number', R({ defaccess: 1.5 })],
    ['a negative number', R({ owner: -1 })],
    ['an id past 32 bits', R({ id: 2 ** 32 })],
    ['a string where a number belongs', R({ owner: '0' as unknown as number })],
    ['a non-boolean recursive', R({ recursive: 1 as unknown as boolean })],
    ['a non-boolean revocable', R({ revocable: 'yes' as unknown as boolean })],
    ['a non-boolean auditOnly', R({ auditOnly: 1 as unknown as boolean })],
    ['a path that is not a string', R({ path: 5 as unknown as string })],
    ['a dev past 2^53', R({ dev: 2 ** 53, ino: 1 })],
    ['a birth on an unbound rule', R({ birth: '1.5' })],
    ['an acl entry with both user and group', R({ acl: [{ user: 1, group: 2, access: 4 } as unknown as AclEntry] })],
    ['an acl entry without access', R({ acl: [{ user: 1 } as unknown as AclEntry] })],
  ];
  it.each(refused)('refuses to write %s', (_name, value) => {
    expect(() => encodeRule(value as Rule)).toThrow(RecordFormatError);
    expect(() => db.putSync(1, value as Rule)).toThrow(RecordFormatError);
    expect(raw.get(1)).toBeUndefined();
  });

  it.each<[string, Rule, number]>([
    ['not revocable', R({}), 0],
    ['revocable: false (written as absent)', R({ revocable: false }), 0],
    ['revocable', R({ revocable: true }), 8],
    ['revocable and recursive', R({ revocable: true, recursive: true }), 9],
    ['revocable, recursive, bound, with a birth time', R({ revocable: true, recursive: true, dev: 1, ino: 2, birth: '3.4' }), 15],
  ])('keeps revocable in flag bit 8 (%s)', (_name, rule, flags) => {
    const bytes = encodeRule(rule);
    expect(bytes[0]).toBe(RECORD_FORMAT);
    expect(bytes[1]).toBe(flags);
    const back = decodeRule(bytes);
    expect(back.revocable === true).toBe(rule.revocable === true);
    // Only a revocable rule carries the field: a record without the flag reads as before it existed.
    expect('revocable' in back).toBe(rule.revocable === true);
  });

  it.each<[string, Rule, number]>([
    ['auditOnly: false (written as absent)', R({ auditOnly: false }), 0],
    ['audit-only', R({ auditOnly: true }), 16],
    ['audit-only and revocable', R({ auditOnly: true, revocable: true }), 24],
    ['audit-only, revocable, recursive, bound, with a birth time', R({ auditOnly: true, revocable: true, recursive: true, dev: 1, ino: 2, birth: '3.4' }), 31],
  ])('keeps auditOnly in flag bit 16 (%s)', (_name, rule, flags) => {
    const bytes = encodeRule(rule);
    expect(bytes[0]).toBe(RECORD_FORMAT);
    expect(bytes[1]).toBe(flags);
    const back = decodeRule(bytes);
    expect(back.auditOnly === true).toBe(rule.auditOnly === true);
    expect(back.revocable === true).toBe(rule.revocable === true);
    expect('auditOnly' in back).toBe(rule.auditOnly === true);
    expect(encodeRule(back)).toEqual(bytes);
  });

  it('reads a record written before the audit-only flag (bit clear) as enforced', () => {
    const older = Buffer.from(encodeRule(R({ id: 3, path: '/old', auditOnly: true, recursive: true })));
    older[1] = older[1]! & ~16;
    expect(decodeRule(older)).toStrictEqual(R({ id: 3, path: '/old', recursive: true }));
  });

  it('reads a record written before the revocable flag (bit clear) as not revocable, and refuses a flag it does not know', () => {
    const revocable = encodeRule(R({ id: 3, path: '/old', revocable: true, recursive: true }));
    const older = Buffer.from(revocable);
    older[1] = older[1]! & ~8;
    expect(decodeRule(older)).toStrictEqual(R({ id: 3, path: '/old', recursive: true }));
    const unknown = Buffer.from(revocable);
    // Bit 16 is audit-only now, 32 expiring entries; 64 is the first flag no format knows.
    unknown[1] = unknown[1]! | 64;
    expect(() => decodeRule(unknown)).toThrow(/^a rule record has unknown flags 0x49$/);
  });

  it('keeps expiring acl entries: each entry its expiry, or none; refuses the expiries cut short', () => {
    const rule = R({ id: 4, path: '/exp', acl: [{ user: 7, access: 4, expires: 1_800_000_000_000 }, { group: 9, access: 5 }, { user: 8, access: 2, expires: 0 }] });
    const bytes = encodeRule(rule);
    expect(bytes[1]! & 32).toBe(32);
    expect(decodeRule(bytes)).toStrictEqual(rule);
    // Without an expiring entry the record is as before (no flag, no expiries).
    const plain = encodeRule(R({ id: 4, path: '/exp', acl: [{ group: 9, access: 5 }] }));
    expect(plain[1]! & 32).toBe(0);
    expect(() => decodeRule(bytes.subarray(0, bytes.length - 8))).toThrow(/cut short/);
    // A daemon that did not know the flag refuses the record rather than grant past the expiry.
    const before = Buffer.from(bytes);
    before[1] = before[1]! & ~32;
    expect(() => decodeRule(before)).toThrow(/after its last field/);
  });

  it('refuses trailing bytes and every truncation', () => {
    const bytes = bytesOf(handled[1]![1]);
    expect(() => decodeRule(Buffer.concat([bytes, Buffer.from([0xc0])]))).toThrow(/^a rule record has 1 byte after its last field$/);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeRule(bytes.subarray(0, n)), `${n} bytes`).toThrow(RecordFormatError);
  });

  it('on any single-byte change, either refuses or reads a rule it writes back byte for byte', () => {
    const values = [0x00, 0x01, 0x02, 0x07, 0x08, 0x3f, 0x40, 0x41, 0x42, 0x7f, 0x80, 0x90, 0x91, 0x92, 0xa0, 0xa3, 0xc0, 0xc2, 0xc3, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd4, 0xd9, 0xda, 0xdc, 0xff];
    let agreed = 0;
    for (const [, rule] of [handled[1]!, handled[3]!, handled[10]!, handled[13]!]) {
      const bytes = bytesOf(rule);
      for (let at = 0; at < bytes.length; at++) {
        for (const v of [...values, (bytes[at]! + 1) & 0xff, (bytes[at]! - 1) & 0xff]) {
          if (v === bytes[at]) continue;
          const changed = Buffer.from(bytes);
          changed[at] = v;
          let mine: Rule;
          try {
            mine = decodeRule(changed);
          } catch (err) {
            expect(err, `byte ${at} = ${v}`).toBeInstanceOf(RecordFormatError);
            continue;
          }
          expect(encodeRule(mine), `byte ${at} = ${v}`).toEqual(changed);
          raw.putSync(2, changed);
          expect(db.get(2), `byte ${at} = ${v}`).toStrictEqual(mine);
          agreed++;
        }
      }
    }
    expect(agreed).toBeGreaterThan(100); // values, not just structure, were changed
  });

  it('an index value is the rule id in 4 bytes; anything else is refused', () => {
    for (const id of [1, 255, 65536, 0xffff_ffff]) expect(idCodec.decode(idCodec.encode(id))).toBe(id);
    expect(idCodec.encode(0x0102_0304)).toEqual(Buffer.from([4, 3, 2, 1]));
    for (const bytes of [[], [1], [1, 2, 3], [1, 2, 3, 4, 5]]) expect(() => idCodec.decode(Buffer.from(bytes))).toThrow(IndexValueError);
    for (const id of [-1, 1.5, 2 ** 32]) expect(() => idCodec.encode(id)).toThrow(IndexValueError);
  });

  // What the store made of each shape of a format-1 (msgpack) record when it
  // converted the database: the rule (fields the model does not have are
  // dropped, a missing birth is null), or, for a value that is no rule, the
  // bytes as they were, which every read then reports as damage.
  const formatOne: [string, unknown, Rule | 'damaged'][] = [
    ['a non-ASCII path', R({ path: '/é' }), R({ path: '/é' })],
    ['a non-ASCII birth', R({ dev: 1, ino: 2, birth: '1.5é' }), R({ dev: 1, ino: 2, birth: '1.5é' })],
    ['a record without birth (older layout)', { id: 1, path: '/a', dev: null, ino: null, owner: 0, defaccess: 4, acl: [], recursive: false }, R({})],
    ['another field order', { path: '/a', id: 1, dev: null, ino: null, birth: null, owner: 0, defaccess: 4, acl: [], recursive: false }, R({})],
    ['an extra field', { ...R({}), extra: 1 }, R({})],
    ['an acl entry in another order', R({ acl: [{ access: 4, user: 1 } as unknown as Rule['acl'][number]] }), R({ acl: [{ user: 1, access: 4 }] })],
    ['an acl entry with an extra field', R({ acl: [{ user: 1, access: 4, x: 1 } as unknown as Rule['acl'][number]] }), R({ acl: [{ user: 1, access: 4 }] })],
    ['an undefined birth', R({ birth: undefined }), R({})],
    ['a negative number', R({ owner: -1 }), 'damaged'],
    ['a string where a number belongs', R({ owner: '0' as unknown as number }), 'damaged'],
    ['a non-boolean recursive', R({ recursive: 1 as unknown as boolean }), 'damaged'],
    ['a path that is not a string', R({ path: 5 as unknown as string }), 'damaged'],
  ];
  it.each(formatOne)('converts a format-1 record with %s', (_name, value, read) => {
    const dbDir = path.join(dir, 'db');
    store.close();
    // A database as the store left it before it owned its format: msgpack values, no recordFormat.
    const old = openLmdb({ path: dbDir, noSubdir: false, maxDbs: 9 });
    old.openDB<unknown, number>({ name: 'rules', keyEncoding: 'uint32' }).putSync(1, value);
    old.openDB<unknown, string>({ name: 'byPath' }).putSync('/a', 1);
    old.openDB<unknown, string>({ name: 'unbound' }).putSync('/a', 1);
    old.openDB<unknown, string>({ name: 'meta' }).removeSync('recordFormat');
    void old.close();
    store = RuleStore.open(dbDir, native);
    if (read === 'damaged') {
      const err = errorOf(() => store.get(1));
      expect(err).toBeInstanceOf(DamagedDatabaseError);
      expect((err as DamagedDatabaseError).problem).toMatch(/^a record cannot be read: the record under 1 is not a rule record/);
    } else {
      expect(store.get(1)).toStrictEqual(read);
      expect(store.findByPath('/a')?.id).toBe(1);
    }
  });

  it('findByPath and findByInode return what lmdb-js decodes (store.get), for every shape written', () => {
    const rules = [
      store.add(input('/docs', { recursive: true, acl: [{ group: 100, access: 5 }, { user: 7, access: 1 }] })),
      store.add(input('/docs/é.txt', { dev: 7, ino: 8, birth: '12.5' })),
      store.add(input('/docs/' + 'long-name-'.repeat(30), { dev: 2 ** 33, ino: 2 ** 40 })),
      store.add(input('/x', { acl: acl20 })),
    ];
    for (const r of rules) {
      expect(store.findByPath(r.path)).toStrictEqual(store.get(r.id));
      if (r.dev !== null) expect(store.findByInode(r.dev, r.ino!)).toStrictEqual(store.get(r.id));
    }
    expect(store.findByPath('/nothing')).toBeUndefined();
    expect(store.findByInode(7, 9)).toBeUndefined();
  });

  it('fills the copy of bound rules by inode once, for a database from before it, without a commit epoch advance', () => {
    const a = store.add(input('/a'));
    store.bind(a.id, 3, 4, null);
    const b = store.add(input('/b'));
    store.bind(b.id, 3, 5, '1.000000002');
    store.add(input('/c'));
    const dbDir = path.join(dir, 'db');
    store.close();
    // Take the database back to before inodeRules existed.
    const old = openLmdb({ path: dbDir, noSubdir: false, maxDbs: 9 });
    old.openDB<unknown, string>({ name: 'inodeRules' }).clearSync();
    old.openDB<number, string>({ name: 'meta' }).removeSync('inodeRulesBuilt');
    void old.close();
    store = RuleStore.open(dbDir, native);
    const epoch = store.epoch.value();
    expect(store.verifyIndexes()).toEqual([]);
    expect(store.findByInode(3, 4)).toMatchObject({ id: a.id, path: '/a' });
    expect(store.findByInode(3, 5)).toMatchObject({ id: b.id, birth: '1.000000002' });
    expect(store.findByInode(3, 6)).toBeUndefined();
    expect(store.epoch.value()).toBe(epoch);
    // And it is kept in step by every write from then on.
    store.unbindFile({ dev: 3, ino: 4, birth: null });
    expect(store.findByInode(3, 4)).toBeUndefined();
    store.take(b.id);
    expect(store.findByInode(3, 5)).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('reads a rule stored in the older layout (no birth field, msgpack), converted', () => {
    const dbDir = path.join(dir, 'db');
    store.close();
    const old = openLmdb({ path: dbDir, noSubdir: false, maxDbs: 8 });
    const legacy = { id: 50, path: '/legacy', dev: 7, ino: 8, owner: 0, defaccess: 5, acl: [{ user: 1000, access: 4 }], recursive: false };
    old.openDB<unknown, number>({ name: 'rules', keyEncoding: 'uint32' }).putSync(50, legacy);
    old.openDB<number, string>({ name: 'byPath' }).putSync('/legacy', 50);
    old.openDB<number, string>({ name: 'byInode' }).putSync('7:8', 50);
    // Written as a version without the inodeRules copy, and before the
    // store's own record format, would have left it.
    old.openDB<number, string>({ name: 'meta' }).removeSync('inodeRulesBuilt');
    old.openDB<number, string>({ name: 'meta' }).removeSync('recordFormat');
    void old.close();
    store = RuleStore.open(dbDir, native);
    // The record was converted; the birth it never had reads as unknown.
    expect(store.findByPath('/legacy')).toStrictEqual({ ...legacy, birth: null });
    expect(store.findByInode(7, 8)).toStrictEqual({ ...legacy, birth: null });
    const who = { uid: 1000, gid: 1000, groups: [], pid: 1 };
    expect(decide(store, who, { path: '/elsewhere', dev: 7, ino: 8 }, 4, 'deny')).toMatchObject({ allow: true, match: 'inode', ruleId: 50 });
  });
});
