// A database written before the store owned its record format (format 1:
// msgpack records and index values, test/fixtures/store-format1) is
// converted when the store opens it, in one transaction, and then reads
// exactly as the store that wrote it read it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open as openLmdb } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../src/rules/decide';
import type { Rule } from '../../src/rules/types';
import { native } from '../../src/native/binding';
import { RECORD_FORMAT } from '../../src/store/codec';
import { RuleStore } from '../../src/store/store';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'store-format1');

interface Expected {
  rules: Rule[];
  byInode: { key: string; id: number }[];
  unbound: string[];
  meta: { generation: number; nextId: number; inodeRulesBuilt: number };
  problems: string[];
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'expected.json'), 'utf8')) as Expected;

/** A rule as the current store returns it: every rule has a birth field (null when unknown). */
const withBirth = (r: Rule): Rule => ({ ...r, birth: r.birth ?? null });

let dir: string;
let db: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-migration-'));
  db = path.join(dir, 'db');
  fs.cpSync(path.join(FIXTURE, 'db'), db, { recursive: true });
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `meta` and the raw bytes of one record, read with lmdb-js alone. */
function rawLook(): { meta: Record<string, unknown>; firstByte: number; indexValue: number } {
  const env = openLmdb({ path: db, noSubdir: false, maxDbs: 9 });
  try {
    const meta = Object.fromEntries([...env.openDB<unknown, string>({ name: 'meta' }).getRange()].map(({ key, value }) => [key, value]));
    const record = env.openDB<Buffer, number>({ name: 'rules', keyEncoding: 'uint32', encoding: 'binary' }).get(1)!;
    const index = env.openDB<Buffer, string>({ name: 'byPath', encoding: 'binary' }).get('/docs')!;
    return { meta, firstByte: record[0]!, indexValue: index.length };
  } finally {
    void env.close();
  }
}

describe('a database in record format 1', () => {
  it('is the fixture: msgpack records, no recordFormat', () => {
    const before = rawLook();
    expect(before.meta.recordFormat).toBeUndefined();
    expect(before.firstByte).not.toBe(RECORD_FORMAT);
  });

  it('is converted on open and every rule, both indexes and the metadata are intact', () => {
    const store = RuleStore.open(db, native);
    try {
      const epoch = store.epoch.value();
      expect(store.verifyIndexes()).toEqual(expected.problems);
      expect(store.verifyIndexes()).toEqual([]);
      expect(store.count()).toBe(expected.rules.length);
      // Every rule, by listing, by id, by path and (bound ones) by inode.
      expect(store.list({ limit: 10_000 }).rules).toStrictEqual(expected.rules.map(withBirth));
      for (const rule of expected.rules) {
        expect(store.get(rule.id)).toStrictEqual(withBirth(rule));
        expect(store.findByPath(rule.path)).toStrictEqual(withBirth(rule));
        if (rule.dev !== null) expect(store.findByInode(rule.dev, rule.ino!)).toStrictEqual(withBirth(rule));
      }
      // byInode and unbound, entry for entry.
      for (const { key, id } of expected.byInode) {
        const [dev, ino] = key.split(':').map(Number) as [number, number];
        expect(store.byInode(dev, ino)?.id).toBe(id);
      }
      expect(store.unboundPage(undefined, 10_000).map((e) => e.path)).toEqual(expected.unbound);
      // The metadata: the generation did not move, ids go on where they were.
      expect(store.generation()).toBe(expected.meta.generation);
      expect(store.epoch.value()).toBe(epoch);
      const next = store.add({ path: '/after', owner: 0, defaccess: 4, acl: [], recursive: false });
      expect(next.id).toBe(expected.meta.nextId);
      // Deciding over it works as before: the legacy record (no birth field) binds by inode.
      expect(decide(store, { uid: 1000, gid: 1000, groups: [], pid: 1 }, { path: '/elsewhere', dev: 9, ino: 10 }, 4, 'deny')).toMatchObject({ allow: true, match: 'inode', ruleId: 70_002 });
    } finally {
      store.close();
    }
    const after = rawLook();
    expect(after.meta).toMatchObject({ recordFormat: RECORD_FORMAT, inodeRulesBuilt: 1, nextId: expected.meta.nextId + 1 });
    expect(after.firstByte).toBe(RECORD_FORMAT);
    expect(after.indexValue).toBe(4);
  });

  it('is converted once: a second open finds format 2 and changes nothing', () => {
    RuleStore.open(db, native).close();
    const size = fs.statSync(path.join(db, 'data.mdb')).size;
    const first = rawLook();
    const store = RuleStore.open(db, native);
    try {
      expect(store.list({ limit: 10_000 }).rules).toStrictEqual(expected.rules.map(withBirth));
    } finally {
      store.close();
    }
    expect(rawLook()).toEqual(first);
    expect(fs.statSync(path.join(db, 'data.mdb')).size).toBe(size);
  });
});
