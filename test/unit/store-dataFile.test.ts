// A damaged rule database is refused with one line before LMDB is given it
// (src/store/dataFile.ts), and a record that cannot be read is reported the
// same way (RuleStore's reads). In process: the CLI and the daemon are
// tested on the same damage in admin-damaged.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open as openLmdb } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DamagedDatabaseError } from '../../src/errors';
import { encodeRule } from '../../src/store/codec';
import { inspectDataFile, LMDB_MAGIC } from '../../src/store/dataFile';
import { RuleStore } from '../../src/store/store';
import type { RuleInput } from '../../src/rules/types';
import { native } from '../../src/native/binding';

const PAGE = 4096;
// Offsets in a meta page (page header 24 bytes, then MDB_meta; see dataFile.ts).
const MAGIC_AT = 24;
const VERSION_AT = 28;
const PAGE_SIZE_AT = 48;
const MAIN_ROOT_AT = 136;
const LAST_PAGE_AT = 144;
const TXNID_AT = 152;

let dir: string;
let db: string;
let file: string;

function rule(i: number): RuleInput {
  return { path: `/docs/d${i % 20}/file-${i}.txt`, owner: 0, defaccess: 4, acl: [{ user: 1000 + (i % 7), access: 6 }], recursive: false };
}

/** A database of `n` rules in `db`, closed; returns the size of its data file. */
function makeDatabase(n: number): number {
  const store = RuleStore.open(db, native);
  store.importRules(Array.from({ length: n }, (_, i) => rule(i)));
  store.add(rule(n));
  store.close();
  return fs.statSync(file).size;
}

function damagedError(fn: () => unknown): DamagedDatabaseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DamagedDatabaseError);
    return err as DamagedDatabaseError;
  }
  throw new Error('expected a DamagedDatabaseError');
}

function patch(offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const readU64 = (offset: number): bigint => {
  const b = Buffer.alloc(8);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 8, offset);
  fs.closeSync(fd);
  return b.readBigUInt64LE();
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-datafile-'));
  db = path.join(dir, 'db');
  file = path.join(db, 'data.mdb');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('an intact database', () => {
  it('reads as LMDB wrote it: magic 0xBEEFC0DE, version 2, the newer of the two metas', () => {
    const size = makeDatabase(3000);
    const raw = fs.readFileSync(file);
    for (const page of [0, 1]) {
      expect(raw.readUInt32LE(page * PAGE + MAGIC_AT)).toBe(LMDB_MAGIC);
      expect(raw.readUInt32LE(page * PAGE + VERSION_AT) & 0xffff).toBe(2);
      expect(raw.readUInt32LE(page * PAGE + PAGE_SIZE_AT)).toBe(PAGE);
    }
    const txnids = [0, 1].map((page) => raw.readBigUInt64LE(page * PAGE + TXNID_AT));
    const newer = txnids[0]! > txnids[1]! ? 0 : 1;
    const state = inspectDataFile(file);
    expect(state).toMatchObject({ state: 'sound', size, meta: { at: newer, pageSize: PAGE, txnid: txnids[newer] } });
    if (state.state !== 'sound') throw new Error('unreachable');
    expect(state.meta.lastPage).toBe(raw.readBigUInt64LE(newer * PAGE + LAST_PAGE_AT));
    expect(BigInt(size)).toBeGreaterThanOrEqual((state.meta.lastPage + 1n) * BigInt(PAGE));
  });

  it('opens again with every rule, and a new directory still gets a new database', () => {
    makeDatabase(500);
    const store = RuleStore.open(db, native);
    try {
      expect(store.count()).toBe(501);
      expect(store.verifyIndexes()).toEqual([]);
      expect(store.findByPath('/docs/d3/file-3.txt')).toMatchObject({ owner: 0 });
    } finally {
      store.close();
    }
    const fresh = path.join(dir, 'new', 'db');
    expect(inspectDataFile(path.join(fresh, 'data.mdb'))).toEqual({ state: 'missing' });
    const created = RuleStore.open(fresh, native);
    try {
      expect(created.count()).toBe(0);
      created.add(rule(1));
    } finally {
      created.close();
    }
    expect(inspectDataFile(path.join(fresh, 'data.mdb')).state).toBe('sound');
  });

  it('stays sound after every commit of a mixed workload', () => {
    const store = RuleStore.open(db, native);
    try {
      const ids: number[] = [];
      for (let round = 0; round < 300; round++) {
        if (round % 3 === 2 && ids.length > 0) store.take(ids.splice((round * 7) % ids.length, 1)[0]!);
        else if (round % 50 === 0) store.importRules(Array.from({ length: 400 }, (_, i) => rule(round * 1000 + i)), { replace: round % 100 === 0 });
        else ids.push(store.add(rule(round * 1000 + 999)).id);
        expect(inspectDataFile(file).state).toBe('sound');
      }
    } finally {
      store.close();
    }
  });
});

describe('a damaged database is refused before LMDB opens it', () => {
  it('cut to half: one line naming the directory, the size and the size its last page needs', () => {
    const size = makeDatabase(3000);
    const half = Math.floor(size / 2);
    fs.truncateSync(file, half);
    const err = damagedError(() => RuleStore.open(db, native));
    expect(err.code).toBe('internal');
    expect(err.message).toBe(
      `database ${db} is damaged: data.mdb is ${half} bytes, its last page needs ${size} (restore it from a backup or export/import)`,
    );
    expect(err.message).not.toContain('\n');
    // Nothing was changed by the look.
    expect(fs.statSync(file).size).toBe(half);
  });

  it.each<[string, (size: number) => void, RegExp]>([
    ['cut to one page', () => fs.truncateSync(file, PAGE), /^data\.mdb is 4096 bytes, too short for its two meta pages \(8192\)$/],
    ['cut to zero bytes', () => fs.truncateSync(file, 0), /^data\.mdb is empty \(0 bytes\)$/],
    ['cut inside the first meta', () => fs.truncateSync(file, 100), /^data\.mdb is 100 bytes, too short for an LMDB meta page$/],
    ['cut by one page', (size) => fs.truncateSync(file, size - PAGE), /^data\.mdb is \d+ bytes, its last page needs \d+$/],
    ['garbage over both meta pages', () => patch(0, Buffer.alloc(2 * PAGE, 0x5a)), /^meta page 0 is not an LMDB meta page \(no magic 0xBEEFC0DE\)$/],
    ['random bytes over both meta pages', () => patch(0, Buffer.from(Array.from({ length: 2 * PAGE }, (_, i) => (i * 7919 + 13) & 0xff))), /^meta page 0 is not an LMDB meta page/],
    ['garbage over the second meta page', () => patch(PAGE, Buffer.alloc(PAGE, 0xa5)), /^meta page 1 is not an LMDB meta page/],
    ['another format version', () => patch(VERSION_AT, u32(999)), /^meta page 0 has LMDB format version 999, expected 2$/],
    ['a page size that is no page size', () => patch(PAGE_SIZE_AT, u32(12345)), /^meta page 0 gives page size 12345$/],
    ['metas that disagree on the page size', () => patch(PAGE + PAGE_SIZE_AT, u32(8192)), /^meta page 1 gives page size 8192, meta page 0 4096$/],
    [
      'a newer meta whose last page lies past the end',
      () => {
        patch(TXNID_AT, u64(1000n));
        patch(LAST_PAGE_AT, u64(1n << 40n));
      },
      /^data\.mdb is \d+ bytes, its last page needs \d+$/,
    ],
    [
      'a newer meta whose main tree root lies past its last page',
      () => {
        patch(TXNID_AT, u64(1000n));
        patch(MAIN_ROOT_AT, u64(readU64(LAST_PAGE_AT) + 5n));
      },
      /^meta page 0 \(txn 1000\) puts the main tree's root at page \d+, outside pages 2-\d+$/,
    ],
    [
      'a sync meta (half a page in) that LMDB would pick, with another page size',
      () => {
        // Only its fields from mm_mapsize on are ever written: no magic.
        patch(PAGE / 2 + PAGE_SIZE_AT, u32(65536));
        patch(PAGE / 2 + TXNID_AT, u64(1000n));
      },
      /^the sync meta \(txn 1000\) gives page size 65536, meta page 0 4096$/,
    ],
  ])('%s', (_what, damage, problem) => {
    const size = makeDatabase(2000);
    damage(size);
    const state = inspectDataFile(file);
    expect(state.state).toBe('damaged');
    if (state.state !== 'damaged') throw new Error('unreachable');
    expect(state.problem).toMatch(problem);
    const err = damagedError(() => RuleStore.open(db, native));
    expect(err).toMatchObject({ code: 'internal', dir: db, problem: state.problem });
    expect(err.message).toMatch(/^database \S+ is damaged: .* \(restore it from a backup or export\/import\)$/);
    expect(err.message).not.toContain('\n');
  });

  it('a file that is not LMDB\'s at all', () => {
    fs.mkdirSync(db);
    fs.writeFileSync(file, 'not a database\n'.repeat(1000));
    expect(damagedError(() => RuleStore.open(db, native)).problem).toBe('meta page 0 is not an LMDB meta page (no magic 0xBEEFC0DE)');
  });
});

describe('a record that cannot be read', () => {
  /** Writes raw bytes where the store keeps a rule record or an index entry. */
  function rewrite(name: 'rules' | 'byPath', key: number | string, bytes: Buffer): void {
    const env = openLmdb({ path: db, noSubdir: false, maxDbs: 9 });
    if (name === 'rules') env.openDB<Buffer, number>({ name, keyEncoding: 'uint32', encoding: 'binary' }).putSync(Number(key), bytes);
    else env.openDB<Buffer, string>({ name, encoding: 'binary' }).putSync(String(key), bytes);
    void env.close();
  }

  /** Rule 1's record as the store writes it (src/store/codec.ts). */
  const record = encodeRule({ id: 1, path: '/docs/d0/file-0.txt', dev: null, ino: null, birth: null, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 6 }], recursive: false });

  it.each<[string, Buffer, RegExp]>([
    ['trailing bytes', Buffer.concat([record, Buffer.from([0x2a])]), /a record cannot be read: the record under 1 has 1 byte after its last field/],
    ['a value that is not a rule', Buffer.from([0x2a]), /a record cannot be read: the record under 1 is not a rule/],
    ['a value that is not a rule record (format 1: msgpack)', Buffer.from([0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a, 0x2a]), /a record cannot be read: the record under 1 is not a rule/],
    ['a record cut short', record.subarray(0, record.length - 3), /a record cannot be read: /],
  ])('%s: every read that meets it says the database is damaged', (_what, bytes, problem) => {
    makeDatabase(10);
    rewrite('rules', 1, bytes);
    const store = RuleStore.open(db, native);
    try {
      const victim = '/docs/d0/file-0.txt';
      for (const read of [() => store.get(1), () => store.findByPath(victim), () => store.list(), () => store.list({ prefix: '/docs/d0' }), () => store.exportRules()]) {
        const err = damagedError(read);
        expect(err.message).toMatch(new RegExp(`^database ${db} is damaged: `));
        expect(err.message).toMatch(problem);
        expect(err.message).not.toContain('\n');
      }
      // A write that has to read it fails the same way and changes nothing.
      const generation = store.generation();
      expect(damagedError(() => store.take(1)).message).toMatch(problem);
      expect(store.generation()).toBe(generation);
      // Other rules are still served.
      expect(store.findByPath('/docs/d1/file-1.txt')).toMatchObject({ id: 2 });
    } finally {
      store.close();
    }
  });

  it('an index entry that holds no rule id, or points at no record', () => {
    makeDatabase(10);
    // An index value is a rule id in 4 bytes (src/store/codec.ts).
    rewrite('byPath', '/docs/d1/file-1.txt', Buffer.from([0x61, 0x62, 0x63]));
    rewrite('byPath', '/docs/zz', Buffer.from([0x39, 0x30, 0x00, 0x00]));
    const store = RuleStore.open(db, native);
    try {
      expect(damagedError(() => store.findByPath('/docs/d1/file-1.txt')).problem).toBe('a record cannot be read: the index entry "/docs/d1/file-1.txt" does not hold a rule id');
      expect(damagedError(() => store.list({ prefix: '/docs/zz' })).problem).toBe('an index points at missing rule 12345');
      expect(damagedError(() => store.exportRules()).code).toBe('internal');
    } finally {
      store.close();
    }
  });
});
