// The store's own record formats, given to lmdb-js as each database's
// `encoder` (an object with encode and decode), so every get, put and range
// of a database goes through them:
//
//   - a rule record (`rules`, `inodeRules`): the fixed binary layout below;
//   - an index value (`byPath`, `byInode`, `unbound`): the rule id, 4 bytes.
//
// `meta` keeps lmdb-js's default encoding (msgpack) for its few numbers.
// Databases written before these formats existed (format 1: msgpack
// records and index values) are converted when opened (schema.ts).
//
// Rule record, format 2 (numbers little-endian):
//
//   @0   u8   format (RECORD_FORMAT)
//   @1   u8   flags: 1 recursive, 2 bound (dev and ino follow), 4 birth follows,
//             8 revocable (a record written before the flag existed has it
//             clear: not revocable; a daemon that does not know it refuses
//             the record rather than read a revocable rule as not revocable),
//             16 audit-only (the same: clear in older records, refused by a
//             daemon that does not know it, which would otherwise enforce
//             a rule meant only to be recorded), 32 expiring (an expiry
//             per acl entry follows them: refused by a daemon that does not
//             know it, which would otherwise grant past the expiry)
//   @2   u8   defaccess (0-7)
//   @3   u8   byte length of birth (0 without one)
//   @4   u32  id
//   @8   u32  owner
//   @12  u16  byte length of path
//   @14  u32  number of acl entries
//   @18  when bound: dev, ino, each as u32 low word + u32 high word (< 2^21)
//        path (UTF-8), birth (UTF-8)
//        the acl entries, 5 bytes each: u8 kind << 3 | access (kind 0 user,
//        1 group), u32 uid or gid
//        with flag 32: one f64 per acl entry, its expiry in ms since the
//        epoch, NaN for an entry that does not expire
//   and nothing after them.
//
// Decoding reads nothing but its argument: no state is kept between calls.

import type { AclEntry, Rule } from '../rules/types';

/** The format of rule records and index values this store writes. */
export const RECORD_FORMAT = 2;

const RECURSIVE = 1;
const BOUND = 2;
const HAS_BIRTH = 4;
const REVOCABLE = 8;
const AUDIT_ONLY = 16;
const EXPIRING = 32;
const KNOWN_FLAGS = RECURSIVE | BOUND | HAS_BIRTH | REVOCABLE | AUDIT_ONLY | EXPIRING;
const EXPIRY = 8;
const HEAD = 18;
const FILE_IDS = 16;
const ENTRY = 5;
const GROUP_ENTRY = 1;
const MAX_ACCESS = 7;
const MAX_U32 = 0xffff_ffff;
const MAX_U16 = 0xffff;
const MAX_U8 = 0xff;
/** High words above this make dev or ino exceed Number.MAX_SAFE_INTEGER. */
const MAX_HIGH_WORD = 0x1f_ffff;
const TWO_32 = 0x1_0000_0000;

/**
 * Bytes that are not a record of this format. `predicate` is worded to
 * follow the record's name ("the record under 5 is cut short ...").
 */
export class RecordFormatError extends Error {
  constructor(readonly predicate: string) {
    super(`a rule record ${predicate}`);
    this.name = 'RecordFormatError';
  }
}

// Node's Buffer methods, applied to whatever Uint8Array lmdb-js hands over.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of bytes b[start, end): ASCII the fast way, else strict UTF-8. */
function textAt(b: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (b[i]! >= 0x80) {
      try {
        return strictUtf8.decode(b.subarray(start, end));
      } catch {
        throw new RecordFormatError('holds text that is not UTF-8');
      }
    }
  }
  return latin1Slice.call(b, start, end);
}

function u32At(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x100_0000;
}

function fileIdAt(b: Uint8Array, p: number): number {
  const high = u32At(b, p + 4);
  if (high > MAX_HIGH_WORD) throw new RecordFormatError('holds a device or inode number past 2^53');
  return high * TWO_32 + u32At(b, p);
}

/** The rule a record holds; throws RecordFormatError for anything else. */
export function decodeRule(bytes: Uint8Array): Rule {
  const b = bytes;
  const n = b.length;
  if (n > 0 && b[0] !== RECORD_FORMAT) throw new RecordFormatError(`is not a rule record (it starts with 0x${b[0]!.toString(16).padStart(2, '0')}, not format ${RECORD_FORMAT})`);
  if (n < HEAD) throw new RecordFormatError(`is cut short (${n} bytes)`);
  const flags = b[1]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new RecordFormatError(`has unknown flags 0x${flags.toString(16)}`);
  const defaccess = b[2]!;
  const birthLength = b[3]!;
  const id = u32At(b, 4);
  const owner = u32At(b, 8);
  const pathLength = b[12]! | (b[13]! << 8);
  const entries = u32At(b, 14);
  const bound = (flags & BOUND) !== 0;
  const hasBirth = (flags & HAS_BIRTH) !== 0;
  if (defaccess > MAX_ACCESS) throw new RecordFormatError(`has access bits ${defaccess}, past ${MAX_ACCESS}`);
  if (hasBirth !== (birthLength > 0) || (hasBirth && !bound)) throw new RecordFormatError('has a birth time that does not fit its flags');
  let p = HEAD;
  const expiring = (flags & EXPIRING) !== 0;
  const fieldsEnd = p + (bound ? FILE_IDS : 0) + pathLength + birthLength + ENTRY * entries + (expiring ? EXPIRY * entries : 0);
  if (fieldsEnd > n) throw new RecordFormatError(`is cut short (${n} bytes, its fields need ${fieldsEnd})`);
  if (fieldsEnd < n) throw new RecordFormatError(`has ${n - fieldsEnd} byte${n - fieldsEnd === 1 ? '' : 's'} after its last field`);
  let dev: number | null = null;
  let ino: number | null = null;
  if (bound) {
    dev = fileIdAt(b, p);
    ino = fileIdAt(b, p + 8);
    p += FILE_IDS;
  }
  const path = textAt(b, p, p + pathLength);
  p += pathLength;
  const birth = hasBirth ? textAt(b, p, p + birthLength) : null;
  p += birthLength;
  const acl = new Array<AclEntry>(entries);
  const expiries = p + ENTRY * entries;
  for (let i = 0; i < entries; i++, p += ENTRY) {
    const head = b[p]!;
    const access = head & MAX_ACCESS;
    const who = u32At(b, p + 1);
    let until = {};
    if (expiring) {
      const expires = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readDoubleLE(expiries + EXPIRY * i);
      if (!Number.isNaN(expires)) {
        if (!Number.isSafeInteger(expires) || expires < 0) throw new RecordFormatError(`has an acl entry expiring at ${expires}, not a time`);
        until = { expires };
      }
    }
    if (head >> 3 === 0) acl[i] = { user: who, access, ...until };
    else if (head >> 3 === GROUP_ENTRY) acl[i] = { group: who, access, ...until };
    else throw new RecordFormatError(`has an acl entry of unknown kind ${head >> 3}`);
  }
  const rule: Rule = { id, path, dev, ino, birth, owner, defaccess, acl, recursive: (flags & RECURSIVE) !== 0 };
  return withMarks(rule, (flags & REVOCABLE) !== 0, (flags & AUDIT_ONLY) !== 0);
}

function isU32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_U32;
}

function isAccessBits(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ACCESS;
}

function isFileNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * What keeps `rule` from being a record (a field out of the layout's
 * range), or null. The store validates every rule before it writes one,
 * so this only ever refuses a bug's rule, or an older format's record
 * that was not a rule (see schema.ts).
 */
export function unencodable(rule: Rule): string | null {
  if (typeof rule !== 'object' || rule === null) return 'is not an object';
  if (!isU32(rule.id) || !isU32(rule.owner)) return 'has an id or owner that is not a 32-bit unsigned integer';
  if (!isAccessBits(rule.defaccess)) return 'has defaccess that is not access bits 0-7';
  if (typeof rule.path !== 'string' || Buffer.byteLength(rule.path) > MAX_U16) return 'has no path of at most 65535 bytes';
  if (typeof rule.recursive !== 'boolean') return 'has recursive that is not true or false';
  if (rule.revocable !== undefined && typeof rule.revocable !== 'boolean') return 'has revocable that is not true or false';
  if (rule.auditOnly !== undefined && typeof rule.auditOnly !== 'boolean') return 'has auditOnly that is not true or false';
  const bound = rule.dev !== null || rule.ino !== null;
  if (bound && (!isFileNumber(rule.dev) || !isFileNumber(rule.ino))) return 'has a dev or ino that is not a safe integer';
  const birth = rule.birth ?? null;
  if (birth !== null && (typeof birth !== 'string' || !bound || birth === '' || Buffer.byteLength(birth) > MAX_U8)) return 'has a birth time that cannot be stored';
  if (!Array.isArray(rule.acl) || rule.acl.length > MAX_U32) return 'has an acl that is not an array';
  for (const entry of rule.acl as readonly unknown[]) {
    const e = entry as { user?: unknown; group?: unknown; access?: unknown } | null;
    if (typeof e !== 'object' || e === null || !isAccessBits(e.access)) return 'has an acl entry without access bits 0-7';
    if ('user' in e ? !isU32(e.user) || 'group' in e : !isU32(e.group)) return 'has an acl entry that is not one user or one group';
    const expires = (e as { expires?: unknown }).expires;
    if (expires !== undefined && !(typeof expires === 'number' && Number.isSafeInteger(expires) && expires >= 0)) return 'has an acl entry whose expiry is not a time';
  }
  return null;
}

/** The record of `rule`; throws RecordFormatError when a field is out of the layout's range. */
export function encodeRule(rule: Rule): Buffer {
  const problem = unencodable(rule);
  if (problem !== null) throw new RecordFormatError(problem);
  const bound = rule.dev !== null;
  const birth = rule.birth ?? null;
  const pathLength = Buffer.byteLength(rule.path);
  const birthLength = birth === null ? 0 : Buffer.byteLength(birth);
  const expiring = rule.acl.some((e) => e.expires !== undefined);
  const size = HEAD + (bound ? FILE_IDS : 0) + pathLength + birthLength + ENTRY * rule.acl.length + (expiring ? EXPIRY * rule.acl.length : 0);
  const b = Buffer.allocUnsafe(size);
  b[0] = RECORD_FORMAT;
  b[1] = (rule.recursive ? RECURSIVE : 0) | (bound ? BOUND : 0) | (birth !== null ? HAS_BIRTH : 0) | (rule.revocable === true ? REVOCABLE : 0) | (rule.auditOnly === true ? AUDIT_ONLY : 0) | (expiring ? EXPIRING : 0);
  b[2] = rule.defaccess;
  b[3] = birthLength;
  b.writeUInt32LE(rule.id, 4);
  b.writeUInt32LE(rule.owner, 8);
  b.writeUInt16LE(pathLength, 12);
  b.writeUInt32LE(rule.acl.length, 14);
  let p = HEAD;
  if (bound) {
    for (const value of [rule.dev!, rule.ino!]) {
      b.writeUInt32LE(value % TWO_32, p);
      b.writeUInt32LE(Math.floor(value / TWO_32), p + 4);
      p += 8;
    }
  }
  p += b.write(rule.path, p, 'utf8');
  if (birth !== null) p += b.write(birth, p, 'utf8');
  for (const entry of rule.acl) {
    const group = 'group' in entry;
    b[p] = ((group ? GROUP_ENTRY : 0) << 3) | entry.access;
    b.writeUInt32LE(group ? entry.group : entry.user, p + 1);
    p += ENTRY;
  }
  if (expiring) {
    for (const entry of rule.acl) {
      b.writeDoubleLE(entry.expires ?? Number.NaN, p);
      p += EXPIRY;
    }
  }
  return b;
}

/** The rule record codec, as lmdb-js's `encoder` option takes it. */
export const ruleCodec = { encode: encodeRule, decode: decodeRule };

/** Thrown by the index codec: the value is not a rule id. */
export class IndexValueError extends Error {}

/** The index value codec: a rule id (uint32, little-endian). */
export const idCodec = {
  encode(id: number): Buffer {
    if (!isU32(id)) throw new IndexValueError(`${String(id)} is not a rule id`);
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(id, 0);
    return b;
  },
  decode(bytes: Uint8Array): number {
    if (bytes.length !== 4) throw new IndexValueError(`an index value of ${bytes.length} bytes is not a rule id`);
    return u32At(bytes, 0);
  },
};

/**
 * A Rule with exactly the model's fields, in the record's terms (birth null
 * when unbound or unknown; revocable and auditOnly only when true, as a
 * record without the flag decodes, so a rule without the mark reads back as
 * it did before the flag existed).
 */
export function plainRule(r: Rule): Rule {
  const plain: Rule = {
    id: r.id,
    path: r.path,
    dev: r.dev,
    ino: r.ino,
    birth: r.dev === null ? null : (r.birth ?? null),
    owner: r.owner,
    defaccess: r.defaccess,
    acl: r.acl,
    recursive: r.recursive,
  };
  return withMarks(plain, r.revocable === true, r.auditOnly === true);
}

/** `rule` with the optional marks that are set, and without those that are not. */
function withMarks(rule: Rule, revocable: boolean, auditOnly: boolean): Rule {
  if (!revocable && !auditOnly) return rule;
  return { ...rule, ...(revocable ? { revocable: true } : {}), ...(auditOnly ? { auditOnly: true } : {}) };
}

/** Whether `copy` is the same rule record as `rule`, field by field. */
export function sameRecord(copy: Rule | undefined, rule: Rule): boolean {
  return copy !== undefined && JSON.stringify(plainRule(copy)) === JSON.stringify(plainRule(rule));
}
