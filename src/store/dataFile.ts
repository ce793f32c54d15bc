// LMDB's data file, looked at before LMDB is given it. LMDB trusts its file:
// it maps data.mdb and follows page numbers into the map, so a file cut short
// (a full disk, a bad copy) or with damaged meta pages makes the process die
// by SIGBUS or SIGSEGV inside the native library, where no error can be
// caught. This reads the meta pages itself, as mdb_env_read_header() of the
// LMDB that lmdb-js bundles does, and refuses such a file with one line.
// Damage deeper in the file (a garbled B-tree page) is not found here; reads
// of the store turn what LMDB and the record codec report about it into the same
// error (see RuleStore).
//
// The layout, from dependencies/lmdb/libraries/liblmdb/mdb.c of lmdb-js 3.x
// (64-bit build, no MDB_VL32; all fields little-endian):
//
//   page header (PAGEHDRSZ = 24): mp_pgno u64 @0, mp_txnid u64 @8,
//     mp_pad u16 @16, mp_flags u16 @18 (P_META = 0x08), mp_lower/upper @20
//   MDB_meta, right after the header of pages 0 and 1:
//     mm_magic u32 @0 (0xBEEFC0DE), mm_version u32 @4 (low 16 bits: 2),
//     mm_address @8, mm_mapsize u64 @16,
//     mm_dbs[2] @24, 48 bytes each: md_pad u32 @0 (for the free DB: the page
//       size, mm_psize), md_flags u16 @4, md_depth u16 @6, branch, leaf and
//       overflow page counts u64 @8/@16/@24, md_entries u64 @32, md_root u64 @40
//     mm_last_pg u64 @120, mm_txnid u64 @128, boot_id i64 @136
//
// LMDB requires page 0 to be a meta page with the magic and version, then
// uses whichever meta has the larger txnid, unchecked. lmdb-js opens with
// MDB_OVERLAPPINGSYNC (its default on Linux), which adds a third candidate:
// the "sync meta" written half a page into page 0 (from mm_mapsize on: it has
// no magic). So: both meta pages must be sound, the sync meta must agree on
// the page size if LMDB would pick it, and the file must hold every page up
// to the chosen meta's mm_last_pg.

import fs from 'node:fs';
import nodePath from 'node:path';
import { AclfsError, DamagedDatabaseError, invalid } from '../errors';
import { DATA_FILE, LOCK_FILE } from './schema';

export const LMDB_MAGIC = 0xbeefc0de;
/** MDB_DATA_VERSION of the bundled LMDB (999 only in an MDB_DEVEL build). */
export const LMDB_DATA_VERSION = 2;

const PAGE_HEADER = 24;
const P_META = 0x08;
const FLAGS_AT = 18;
const META = {
  magic: 0,
  version: 4,
  pageSize: 24,
  freeRoot: 24 + 40,
  mainRoot: 24 + 48 + 40,
  lastPage: 120,
  txnid: 128,
  size: 144,
} as const;
/** Bytes of a page LMDB reads to find a meta (header + MDB_meta). */
const META_BYTES = PAGE_HEADER + META.size;
const MIN_PAGE_SIZE = 512;
const MAX_PAGE_SIZE = 0x10000;
/** md_root of an empty tree. */
const P_INVALID = 0xffff_ffff_ffff_ffffn;

/** One meta as read from the file. */
export interface DataFileMeta {
  /** Where it was read: 0 (page 0), 1 (page 1) or "sync" (half a page into page 0). */
  readonly at: 0 | 1 | 'sync';
  readonly pageSize: number;
  readonly lastPage: bigint;
  readonly txnid: bigint;
  readonly freeRoot: bigint;
  readonly mainRoot: bigint;
}

/** What inspectDataFile found. */
export type DataFileState =
  | { readonly state: 'missing' }
  | { readonly state: 'sound'; readonly size: number; readonly meta: DataFileMeta }
  | { readonly state: 'damaged'; readonly size: number; readonly problem: string };

/**
 * Reads the meta pages of LMDB data file `file` (without opening it as a
 * database) and tells whether LMDB can be given it. A missing file is a new
 * database; an empty one is damaged (LMDB would silently start over).
 * Errors other than ENOENT while reading (EACCES, EIO) are thrown as they are.
 */
export function inspectDataFile(file: string): DataFileState {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const read = (offset: number, length: number): Buffer | null => {
      if (offset + length > size) return null;
      const buf = Buffer.alloc(length);
      return fs.readSync(fd, buf, 0, length, offset) === length ? buf : null;
    };
    const problem = check(size, read);
    return typeof problem === 'string' ? { state: 'damaged', size, problem } : { state: 'sound', size, meta: problem };
  } finally {
    fs.closeSync(fd);
  }
}

type Reader = (offset: number, length: number) => Buffer | null;

/** The meta LMDB will use, or what is wrong (worded to follow "data.mdb is damaged: "). */
function check(size: number, read: Reader): DataFileMeta | string {
  const name = 'data.mdb';
  if (size === 0) return `${name} is empty (0 bytes)`;
  const page0 = read(0, META_BYTES);
  if (page0 === null) return `${name} is ${size} bytes, too short for an LMDB meta page`;
  const first = parseMeta(page0, 0);
  if (typeof first === 'string') return first;
  const pageSize = first.pageSize;
  if (size < 2 * pageSize) return `${name} is ${size} bytes, too short for its two meta pages (${2 * pageSize})`;
  const page1 = read(pageSize, META_BYTES);
  const second = page1 === null ? 'meta page 1 cannot be read' : parseMeta(page1, 1);
  if (typeof second === 'string') return second;
  if (second.pageSize !== pageSize) return `meta page 1 gives page size ${second.pageSize}, meta page 0 ${pageSize}`;
  // LMDB's order: page 0, the sync meta, page 1; a later one wins only with a larger txnid.
  let chosen: DataFileMeta = first;
  const sync = read(pageSize / 2, META_BYTES);
  if (sync !== null) {
    const meta = metaFields(sync, 'sync');
    if (meta.txnid > chosen.txnid) {
      if (meta.pageSize !== pageSize) return `the sync meta (txn ${meta.txnid}) gives page size ${meta.pageSize}, meta page 0 ${pageSize}`;
      chosen = meta;
    }
  }
  if (second.txnid > chosen.txnid) chosen = second;
  const where = chosen.at === 'sync' ? 'the sync meta' : `meta page ${chosen.at}`;
  if (chosen.lastPage < 1n) return `${where} (txn ${chosen.txnid}) gives last page ${chosen.lastPage}`;
  const needed = (chosen.lastPage + 1n) * BigInt(pageSize);
  if (BigInt(size) < needed) return `${name} is ${size} bytes, its last page needs ${needed}`;
  for (const [tree, root] of [
    ['free-page', chosen.freeRoot],
    ['main', chosen.mainRoot],
  ] as const) {
    if (root !== P_INVALID && (root < 2n || root > chosen.lastPage)) {
      return `${where} (txn ${chosen.txnid}) puts the ${tree} tree's root at page ${root}, outside pages 2-${chosen.lastPage}`;
    }
  }
  return chosen;
}

/** A meta page's meta, checked as LMDB checks page 0 (and the page size is sane). */
function parseMeta(page: Buffer, at: 0 | 1): DataFileMeta | string {
  const where = `meta page ${at}`;
  const meta = PAGE_HEADER;
  if ((page.readUInt16LE(FLAGS_AT) & P_META) === 0 || page.readUInt32LE(meta + META.magic) !== LMDB_MAGIC) {
    return `${where} is not an LMDB meta page (no magic 0x${LMDB_MAGIC.toString(16).toUpperCase()})`;
  }
  const version = page.readUInt32LE(meta + META.version) & 0xffff;
  if (version !== LMDB_DATA_VERSION) return `${where} has LMDB format version ${version}, expected ${LMDB_DATA_VERSION}`;
  const fields = metaFields(page, at);
  const ps = fields.pageSize;
  if (ps < MIN_PAGE_SIZE || ps > MAX_PAGE_SIZE || (ps & (ps - 1)) !== 0) return `${where} gives page size ${ps}`;
  return fields;
}

function metaFields(page: Buffer, at: DataFileMeta['at']): DataFileMeta {
  const meta = PAGE_HEADER;
  return {
    at,
    pageSize: page.readUInt32LE(meta + META.pageSize),
    lastPage: page.readBigUInt64LE(meta + META.lastPage),
    txnid: page.readBigUInt64LE(meta + META.txnid),
    freeRoot: page.readBigUInt64LE(meta + META.freeRoot),
    mainRoot: page.readBigUInt64LE(meta + META.mainRoot),
  };
}

// LMDB's return codes (lmdb.h) that say the file is not what LMDB wrote:
// MDB_PAGE_NOTFOUND, MDB_CORRUPTED, MDB_PANIC, MDB_VERSION_MISMATCH,
// MDB_INVALID, MDB_INCOMPATIBLE, MDB_BAD_CHECKSUM. lmdb-js throws them as
// Errors whose `code` is the number.
const LMDB_DAMAGE_CODES: ReadonlySet<number> = new Set([-30797, -30796, -30795, -30794, -30793, -30784, -30778]);

/**
 * What a failure while reading the database is: an AclfsError stays as it
 * is; LMDB reporting damage, or a record or index value the store's codec
 * cannot read (codec.ts: cut short, another format, a field out of range),
 * is a DamagedDatabaseError of `dir`; any other
 * error of LMDB (a full map, too many readers, ENOMEM) or the system is
 * passed on (it is `internal` to the CLI and the API anyway).
 */
export function readFailure(dir: string, err: unknown): unknown {
  if (err instanceof AclfsError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number') return LMDB_DAMAGE_CODES.has(code) ? new DamagedDatabaseError(dir, `LMDB: ${err.message}`) : err;
  // errno errors (EACCES, ENOMEM) carry a string code.
  if (typeof code === 'string') return err;
  return new DamagedDatabaseError(dir, `a record cannot be read: ${err.message}`);
}

export function prepareDirectory(dir: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (stat === undefined) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if (!stat.isDirectory()) throw invalid(`database path ${dir} is not a directory (aclfs keeps a directory)`);
}

export function restrictFiles(dir: string): void {
  for (const name of [DATA_FILE, LOCK_FILE]) {
    try {
      fs.chmodSync(nodePath.join(dir, name), 0o600);
    } catch (err) {
      // Not our file (another user created the store): leave its mode alone;
      // the owner's umask and the 0700 directory decide.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}
