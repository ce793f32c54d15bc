// The layout of the rule database: LMDB through lmdb-js, read in-process.
// One environment, six named databases:
//
//   rules       id (uint32)  -> Rule record (msgpack)
//   byPath      path         -> id      every rule
//   byInode     "dev:ino"    -> id      rules bound to a file
//   inodeRules  "dev:ino"    -> Rule    a copy of each bound rule's record
//                                       (one lookup per decision; see
//                                       RuleStore.withInodeRules)
//   unbound     path         -> id      rules not bound yet (binding work list)
//   meta        "generation" -> number  bumped once per committing write txn
//               "nextId"     -> number  next id to hand out (ids are never reused)
//               "inodeRulesBuilt" -> 1  inodeRules is complete
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

import { open, type Database, type RootDatabase } from 'lmdb';
import type { Rule } from '../rules/types';

export const DATA_FILE = 'data.mdb';
export const LOCK_FILE = 'lock.mdb';

/** Keys of `meta`. */
export const META = {
  generation: 'generation',
  nextId: 'nextId',
  inodeRulesBuilt: 'inodeRulesBuilt',
} as const;

/** The named databases of one environment. */
export interface Databases {
  readonly rules: Database<Rule, number>;
  readonly byPath: Database<number, string>;
  readonly byInode: Database<number, string>;
  /** "dev:ino" -> the bound rule's record itself. */
  readonly inodeRules: Database<Rule, string>;
  readonly unbound: Database<number, string>;
  readonly meta: Database<number, string>;
}

/** Opens the environment in directory `dir` (LMDB creates its files there). */
export function openEnvironment(dir: string): RootDatabase {
  // noSubdir: false explicitly, because lmdb-js would otherwise treat a
  // directory name with a dot ("aclfs.d") as a data file name.
  return open({ path: dir, noSubdir: false, maxDbs: 9 });
}

export function openDatabases(env: RootDatabase): Databases {
  return {
    rules: env.openDB<Rule, number>({ name: 'rules', keyEncoding: 'uint32' }),
    byPath: env.openDB<number, string>({ name: 'byPath' }),
    byInode: env.openDB<number, string>({ name: 'byInode' }),
    inodeRules: env.openDB<Rule, string>({ name: 'inodeRules' }),
    unbound: env.openDB<number, string>({ name: 'unbound' }),
    meta: env.openDB<number, string>({ name: 'meta' }),
  };
}

/** The key of a bound rule in byInode and inodeRules. */
export function inodeKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}
