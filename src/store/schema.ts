// The layout of the rule database: LMDB through lmdb-js, read in-process.
// One environment, eight named databases:
//
//   rules       id (uint32)  -> Rule record (codec.ts)
//   byPath      path         -> id      every rule
//   byInode     "dev:ino"    -> id      rules bound to a file
//   inodeRules  "dev:ino"    -> Rule    a copy of each bound rule's record
//                                       (one lookup per decision; see
//                                       RuleStore.withInodeRules)
//   unbound     path         -> id      rules not bound yet (binding work list)
//   meta        "generation" -> number  bumped once per committing write txn
//               "nextId"     -> number  next id to hand out (ids are never reused)
//               "inodeRulesBuilt" -> 1  inodeRules is complete
//               "recordFormat" -> 2     the format of records and index
//                                       values (codec.ts); absent: format 1
//               "historyFloor" -> number the oldest generation `history`
//                                       reaches back to
//               "confirmRestore", "confirmDeadline" -> numbers: an import
//                                       awaiting confirmation (see
//                                       RuleStore.awaitConfirmation)
//   history     generation (uint32) -> what that commit changed in the rule
//                                       set (history.ts; lmdb-js msgpack)
//   expiries    "EXPIRY:ID"  -> 1       when an acl entry of rule ID stops
//                                       granting (EXPIRY: ms, 16 digits), so
//                                       the daemon finds the next one at once
//   sync        "mark"       -> SyncMark  with fleet sync (src/sync): where the
//                                       rules came from and the last etcd
//                                       revision applied; absent otherwise
//               path         -> number  the etcd mod revision of the rule
//                                       applied at that path (the expected
//                                       revision of a compare-and-swap)
//
// Invariant kept by every write: a rule is in `rules` and `byPath`, and in
// exactly one of `byInode` (dev/ino set, with its copy in `inodeRules`) or
// `unbound` (dev/ino null). A rule and all of its index entries change in
// one synchronous transaction.
//
// Location: the store lives in a DIRECTORY (e.g. /var/lib/aclfs), created
// with mode 0700 if missing; LMDB keeps `data.mdb` and `lock.mdb` inside it,
// both chmod 0600, and the commit epoch its file `epoch` (epoch.ts). Every
// process that opens the same directory (daemon, `aclfs import --db`) shares
// the data safely: LMDB serialises writers across processes and readers
// never block.

import type { HistoryRecord } from './history';
import { open, type Database, type DatabaseOptions, type Key, type RootDatabase } from 'lmdb';
import { AclfsError } from '../errors';
import type { Rule } from '../rules/types';
import { isRuleId } from '../rules/validate';
import { idCodec, plainRule, RECORD_FORMAT, ruleCodec, unencodable } from './codec';

export const DATA_FILE = 'data.mdb';
export const LOCK_FILE = 'lock.mdb';

/** Keys of `meta`. */
export const META = {
  generation: 'generation',
  nextId: 'nextId',
  inodeRulesBuilt: 'inodeRulesBuilt',
  recordFormat: 'recordFormat',
  /** The oldest generation the history reaches back to (see history.ts). */
  historyFloor: 'historyFloor',
  /** An import awaiting confirmation: the generation to restore, and by when (ms since the epoch). */
  confirmRestore: 'confirmRestore',
  confirmDeadline: 'confirmDeadline',
  /** The last time expired entries were committed as expired (see RuleStore.expire). */
  expiredThrough: 'expiredThrough',
} as const;

/** The key of the sync mark in `sync` (every other key there is a rule path, so starts with "/"). */
export const SYNC_MARK = 'mark';

/** Where a synced rule set came from, and how far it has been applied (see src/sync). */
export interface SyncMark {
  /** The etcd endpoints and prefix, as `etcd://host:port/prefix` (no credentials). */
  readonly source: string;
  /** The etcd cluster id (decimal), to tell a recreated cluster from the one followed. */
  readonly cluster: string;
  /** The last etcd revision whose changes under the prefix are all applied here. */
  readonly revision: number;
}

/** Values of `sync`: the mark, or a rule's mod revision. */
export type SyncValue = SyncMark | number;

/** The `sync` database (lmdb-js's msgpack values); opened apart from the rule databases, which never need it. */
export function openSyncDatabase(env: RootDatabase): Database<SyncValue, string> {
  return env.openDB<SyncValue, string>({ name: 'sync' });
}

/** The format of a database without `recordFormat`: lmdb-js's msgpack for every value. */
export const MSGPACK_FORMAT = 1;

/** The named databases of one environment. */
export interface Databases {
  readonly rules: Database<Rule, number>;
  readonly byPath: Database<number, string>;
  readonly byInode: Database<number, string>;
  /** "dev:ino" -> the bound rule's record itself. */
  readonly inodeRules: Database<Rule, string>;
  readonly unbound: Database<number, string>;
  readonly meta: Database<number, string>;
  /** generation -> what that commit changed (history.ts); lmdb-js's msgpack. */
  readonly history: Database<HistoryRecord, number>;
  /** "EXPIRY:ID" (expiry as 16 zero-padded digits of ms) -> 1: the times an acl entry of rule ID stops granting. */
  readonly expiries: Database<number, string>;
}

/** Opens the environment in directory `dir` (LMDB creates its files there). */
export function openEnvironment(dir: string, readOnly = false): RootDatabase {
  // noSubdir: false explicitly, because lmdb-js would otherwise treat a
  // directory name with a dot ("aclfs.d") as a data file name.
  return open({ path: dir, noSubdir: false, maxDbs: 16, ...(readOnly ? { readOnly: true } : {}) });
}

interface Codec<V> {
  encode(value: V): Buffer;
  decode(bytes: Uint8Array): V;
}

/** openDB with the store's own codec (lmdb-js takes `encoder`; its types list it for the root only). */
function openWithCodec<V, K extends Key>(env: RootDatabase, name: string, codec: Codec<V>, options: DatabaseOptions = {}): Database<V, K> {
  const withCodec: DatabaseOptions & { name: string; encoder: Codec<V> } = { ...options, name, encoder: codec };
  return env.openDB<V, K>(withCodec);
}

export function openDatabases(env: RootDatabase): Databases {
  return {
    rules: openWithCodec<Rule, number>(env, 'rules', ruleCodec, { keyEncoding: 'uint32' }),
    byPath: openWithCodec<number, string>(env, 'byPath', idCodec),
    byInode: openWithCodec<number, string>(env, 'byInode', idCodec),
    inodeRules: openWithCodec<Rule, string>(env, 'inodeRules', ruleCodec),
    unbound: openWithCodec<number, string>(env, 'unbound', idCodec),
    meta: env.openDB<number, string>({ name: 'meta' }),
    history: env.openDB<HistoryRecord, number>({ name: 'history', keyEncoding: 'uint32' }),
    expiries: env.openDB<number, string>({ name: 'expiries' }),
  };
}

/** The key of a bound rule in byInode and inodeRules. */
export function inodeKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

/** Entries converted per range read while converting (bounds what is held at once). */
const CONVERT_PAGE = 10_000;

/**
 * Brings a database written in an older format to RECORD_FORMAT, in one
 * write transaction (so every reader sees all of it converted, or none).
 * Format 1 (before the store owned its format; `recordFormat` absent) kept
 * records and index values in lmdb-js's msgpack. Values are rewritten in
 * place under the same keys; a value that msgpack cannot read, or that is
 * not a rule (or not a rule id), is left as it is, so that reading it
 * reports the damage as before. No rule changes, so neither the generation
 * nor the commit epoch moves. Returns whether anything was converted.
 */
export function convertToCurrentFormat(env: RootDatabase, dbs: Databases): boolean {
  if (dbs.meta.get(META.recordFormat) === RECORD_FORMAT) return false;
  return env.transactionSync(() => {
    const format = dbs.meta.get(META.recordFormat) ?? MSGPACK_FORMAT;
    if (format === RECORD_FORMAT) return false;
    if (format !== MSGPACK_FORMAT) {
      throw new AclfsError('internal', `the rule database has record format ${String(format)}; this aclfs reads formats ${MSGPACK_FORMAT}-${RECORD_FORMAT}`);
    }
    const asRule = (value: unknown): Rule | undefined => {
      const rule = value as Rule;
      return unencodable(rule) === null ? plainRule(rule) : undefined;
    };
    const asId = (value: unknown): number | undefined => (isRuleId(value) ? value : undefined);
    convert(env, 'rules', dbs.rules, asRule, { keyEncoding: 'uint32' });
    convert(env, 'inodeRules', dbs.inodeRules, asRule);
    for (const name of ['byPath', 'byInode', 'unbound'] as const) convert(env, name, dbs[name], asId);
    dbs.meta.putSync(META.recordFormat, RECORD_FORMAT);
    return true;
  });
}

/**
 * Rewrites every value of database `name` that msgpack reads and `accept`
 * takes, with `target`'s codec; inside the caller's write transaction.
 */
function convert<K extends string | number, V>(
  env: RootDatabase,
  name: string,
  target: Database<V, K>,
  accept: (value: unknown) => V | undefined,
  options: DatabaseOptions = {},
): void {
  // The same named database, seen through lmdb-js's msgpack and as bytes.
  const msgpack = env.openDB<unknown, K>({ ...options, name, encoding: 'msgpack' });
  const raw = env.openDB<Uint8Array, K>({ ...options, name, encoding: 'binary' });
  let after: K | undefined;
  for (;;) {
    // Keys only: a value msgpack cannot read must not end the scan.
    const keys = [...raw.getKeys(after === undefined ? { limit: CONVERT_PAGE } : { start: after, exclusiveStart: true, limit: CONVERT_PAGE })];
    for (const key of keys) {
      let value: V | undefined;
      try {
        value = accept(msgpack.get(key));
      } catch {
        value = undefined;
      }
      if (value !== undefined) target.putSync(key, value);
    }
    if (keys.length < CONVERT_PAGE) return;
    after = keys[keys.length - 1];
  }
}
