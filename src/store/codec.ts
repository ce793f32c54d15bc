// The rule records as lmdb-js stores them (msgpack), and the decision
// path's own reading of them.

import type { Database } from 'lmdb';
import type { AclEntry, Rule } from '../rules/types';
import { isRuleId } from '../rules/validate';

// ---- the decision path's reads ----------------------------------------------
//
// findByPath/findByInode run on every decision the cache cannot answer, and
// lmdb-js's generic get() costs there: msgpackr spends ~0.65 µs decoding a
// rule record, because without shared structures every stored value
// carries its own record definition (the list of field names), which the
// decoder reads and turns into a reader each time. The helpers below read
// the raw bytes (getBinaryFast: a copy out of the memory map into lmdb-js's
// shared buffer, valid until the next read) and decode the exact shapes
// this store writes; anything else — another field list, a non-ASCII
// string, a 64-bit integer, trailing bytes — is handed to lmdb-js's own
// get(), so the result is always what msgpackr would have returned. The
// on-disk format is untouched. Nothing is kept between calls.

/** An index value (a rule id), or lmdb-js's decoding of it when it is not a plain uint. */
export function readId(db: Database<number, string>, key: string): number | undefined {
  const bytes = db.getBinaryFast(key);
  if (bytes === undefined) return undefined;
  src = bytes;
  pos = 0;
  end = bytes.length;
  const id = readNumber();
  if (id >= 0 && pos === end) return id;
  // The key is there, so lmdb-js's decoding must give a rule id.
  const decoded: unknown = db.get(key);
  if (!isRuleId(decoded)) throw new RecordError(`the index entry ${JSON.stringify(key)} does not hold a rule id`);
  return decoded;
}

/** Rule `id` of `rules`, decoded by decodeRule() or else by lmdb-js. */
/** Whether `copy` is the same rule record as `rule`, field by field. */
export function sameRecord(copy: Rule | undefined, rule: Rule): boolean {
  return copy !== undefined && JSON.stringify(plainRule(copy)) === JSON.stringify(plainRule(rule));
}

export function readRule<K extends number | string>(rules: Database<Rule, K>, key: K): Rule | undefined {
  const bytes = rules.getBinaryFast(key);
  if (bytes === undefined) return undefined;
  // The store's decoder returns only well-shaped rules; lmdb-js's may not.
  const rule = decodeRule(bytes);
  if (rule !== undefined) return rule;
  const decoded = rules.get(key);
  return decoded === undefined ? undefined : checkRecord(decoded, key);
}

/**
 * A decoded record, when it has the shape of a Rule (the fields decide()
 * and the admin API read, of their types); else the record is damaged.
 * The store's own decoder only ever returns this shape; this checks what
 * lmdb-js's msgpackr made of anything else.
 */
export function checkRecord(value: unknown, key: number | string): Rule {
  const r = value as Partial<Record<keyof Rule, unknown>> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.id !== 'number' ||
    typeof r.path !== 'string' ||
    typeof r.owner !== 'number' ||
    typeof r.defaccess !== 'number' ||
    !Array.isArray(r.acl) ||
    typeof r.recursive !== 'boolean' ||
    !(r.dev === null || typeof r.dev === 'number') ||
    !(r.ino === null || typeof r.ino === 'number')
  ) {
    throw new RecordError(`the record under ${JSON.stringify(key)} is not a rule`);
  }
  return value as Rule;
}

/** A record that decodes, but not to a rule (see readFailure). */
export class RecordError extends Error {}

// msgpack as msgpackr writes it with records on (lmdb-js's default): a map
// is `d4 72 <id 0x40-0x7f>` + the array of its keys + its values in that
// order (a record definition); a later value byte 0x40-0x7f in the same
// value reuses definition <id>. So bytes 0x40-0x7f are never numbers.
const RULE_KEYS = ['id', 'path', 'dev', 'ino', 'birth', 'owner', 'defaccess', 'acl', 'recursive'] as const;
/** The definition that opens every record plainRule() shapes (its key order). */
const RULE_HEAD = Uint8Array.from([0xd4, 0x72, 0x40, ...keyArray(RULE_KEYS)]);
/** RULE_HEAD as little-endian 32-bit words (its whole words only). */
const RULE_HEAD_WORDS = Int32Array.from({ length: RULE_HEAD.length >> 2 }, (_, w) =>
  RULE_HEAD[4 * w]! | (RULE_HEAD[4 * w + 1]! << 8) | (RULE_HEAD[4 * w + 2]! << 16) | (RULE_HEAD[4 * w + 3]! << 24),
);
const USER_KEYS = Uint8Array.from(keyArray(['user', 'access']));
const GROUP_KEYS = Uint8Array.from(keyArray(['group', 'access']));
const USER_ENTRY = 1;
const GROUP_ENTRY = 2;

function keyArray(keys: readonly string[]): number[] {
  const out = [0x90 | keys.length];
  for (const k of keys) out.push(0xa0 | k.length, ...Buffer.from(k, 'latin1'));
  return out;
}

// Decoder state: one synchronous pass, reset by each entry point.
let src: Uint8Array = Buffer.alloc(0); // a Buffer, like lmdb-js's, so element loads stay monomorphic
let pos = 0;
let end = 0;
/**
 * Record definitions seen in the current record, by id & 0x3f: the kind is
 * valid only where definedIn holds the current record's number (1 and up,
 * so the initial zeros never count), which spares a reset per record.
 */
const definedKind = new Uint8Array(64);
const definedIn = new Uint32Array(64);
let record = 0;
const fromCharCode = String.fromCharCode;
// Node's Buffer method; reads any Uint8Array (one byte → one UTF-16 unit).
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
const float64 = new Float64Array(1);
const float64Bytes = new Uint8Array(float64.buffer);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const NIL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;

/** Bytes taken by the non-negative number starting with `token` (0: not one handled here). */
function numberSize(token: number): number {
  if (token < 0x40) return 1;
  switch (token) {
    case 0xcc:
      return 2;
    case 0xcd:
      return 3;
    case 0xce:
      return 5;
    case 0xcb:
      return 9;
    default:
      return 0;
  }
}

/** The number at b[p] (numberSize(b[p]) > 0 and its bytes in range). */
function numberAt(b: Uint8Array, p: number): number {
  const token = b[p]!;
  if (token < 0x40) return token;
  switch (token) {
    case 0xcc:
      return b[p + 1]!;
    case 0xcd:
      return (b[p + 1]! << 8) | b[p + 2]!;
    case 0xce:
      return ((b[p + 1]! << 24) >>> 0) + ((b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!);
    default: {
      // float64, big-endian on the wire
      for (let i = 0; i < 8; i++) float64Bytes[LITTLE_ENDIAN ? i : 7 - i] = b[p + 8 - i]!;
      const value = float64[0]!;
      return value >= 0 ? value : -1; // negative or NaN: not handled
    }
  }
}

/** Header bytes of the string starting with `token` (0: not a string handled here). */
function stringHeaderSize(token: number): number {
  return token >= 0xa0 && token <= 0xbf ? 1 : token === 0xd9 ? 2 : token === 0xda ? 3 : 0;
}

/** Byte length of the string whose header (of `headerSize` bytes, in range) is at b[p]. */
function stringLength(b: Uint8Array, p: number, headerSize: number): number {
  return headerSize === 1 ? b[p]! - 0xa0 : headerSize === 2 ? b[p + 1]! : (b[p + 1]! << 8) | b[p + 2]!;
}

/** The `n` bytes at b[i] as a string when all are ASCII, else null. */
function asciiAt(b: Uint8Array, i: number, n: number): string | null {
  const stop = i + n;
  for (let j = i; j < stop; j++) if (b[j]! >= 0x80) return null;
  return n <= 16 ? shortAscii(b, i, n) : latin1Slice.call(b, i, stop);
}

/**
 * The Rule msgpackr would decode from `bytes`, or undefined when the bytes
 * are not of the one shape handled here (the caller then asks lmdb-js).
 * One pass with the position in a local: this runs on every decision the
 * cache cannot answer.
 */
export function decodeRule(bytes: Uint8Array): Rule | undefined {
  const b = bytes;
  const n = bytes.length;
  if (!startsWithRuleHead(b, n)) return undefined;
  let p = RULE_HEAD.length;
  let size: number;
  // id
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const id = numberAt(b, p);
  p += size;
  // path
  if (p >= n || (size = stringHeaderSize(b[p]!)) === 0 || p + size > n) return undefined;
  let length = stringLength(b, p, size);
  if (p + size + length > n) return undefined;
  const path = asciiAt(b, p + size, length);
  p += size + length;
  // dev, ino: number or nil
  let dev: number | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
    dev = numberAt(b, p);
    p += size;
  }
  let ino: number | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
    ino = numberAt(b, p);
    p += size;
  }
  // birth: string or nil
  let birth: string | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = stringHeaderSize(b[p]!)) === 0 || p + size > n) return undefined;
    length = stringLength(b, p, size);
    if (p + size + length > n || (birth = asciiAt(b, p + size, length)) === null) return undefined;
    p += size + length;
  }
  // owner, defaccess
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const owner = numberAt(b, p);
  p += size;
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const defaccess = numberAt(b, p);
  p += size;
  // acl, recursive
  if (++record > 0xffff_ffff) {
    // Numbers are about to repeat: forget every stamp so none can pass for new.
    definedIn.fill(0);
    record = 1;
  }
  src = b;
  pos = p;
  end = n;
  const acl = readAcl();
  p = pos;
  if (acl === null || p + 1 !== n || (b[p] !== TRUE && b[p] !== FALSE)) return undefined;
  if (id < 0 || path === null || (dev !== null && dev < 0) || (ino !== null && ino < 0) || owner < 0 || defaccess < 0) return undefined;
  return { id, path, dev, ino, birth, owner, defaccess, acl, recursive: b[p] === TRUE };
}

/** Whether the record opens with RULE_HEAD, compared four bytes at a time. */
function startsWithRuleHead(b: Uint8Array, n: number): boolean {
  if (RULE_HEAD.length > n) return false;
  for (let w = 0, at = 0; w < RULE_HEAD_WORDS.length; w++, at += 4) {
    if ((b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) !== RULE_HEAD_WORDS[w]) return false;
  }
  for (let at = RULE_HEAD_WORDS.length * 4; at < RULE_HEAD.length; at++) if (b[at] !== RULE_HEAD[at]) return false;
  return true;
}

function skipBytes(expected: Uint8Array): boolean {
  const bytes = src;
  const at = pos;
  const n = expected.length;
  if (at + n > end) return false;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== expected[i]) return false;
  pos = at + n;
  return true;
}

/** A non-negative number at pos (see numberAt); -1 for anything else. */
function readNumber(): number {
  if (pos >= end) return -1;
  const size = numberSize(src[pos]!);
  if (size === 0 || pos + size > end) return -1;
  const value = numberAt(src, pos);
  pos += size;
  return value;
}

/**
 * `n` (≤ 16) ASCII bytes at `i` as a string, in one call: the cheapest way
 * to make a short flat string from bytes in JS (as msgpackr does).
 */
function shortAscii(b: Uint8Array, i: number, n: number): string {
  const c = fromCharCode;
  if (n <= 8) {
    if (n <= 4) {
      if (n <= 2) return n === 0 ? '' : n === 1 ? c(b[i]!) : c(b[i]!, b[i + 1]!);
      return n === 3 ? c(b[i]!, b[i + 1]!, b[i + 2]!) : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    }
    if (n <= 6) return n === 5 ? c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!) : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!);
    return n === 7
      ? c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!)
      : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
  }
  const a0 = b[i]!, a1 = b[i + 1]!, a2 = b[i + 2]!, a3 = b[i + 3]!, a4 = b[i + 4]!, a5 = b[i + 5]!, a6 = b[i + 6]!, a7 = b[i + 7]!;
  const j = i + 8;
  switch (n) {
    case 9:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!);
    case 10:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!);
    case 11:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!);
    case 12:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!);
    case 13:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!);
    case 14:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!);
    case 15:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!, b[j + 6]!);
    default:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!, b[j + 6]!, b[j + 7]!);
  }
}

/** The acl array: user/group entries as records; null when unreadable. */
function readAcl(): AclEntry[] | null {
  if (pos >= end) return null;
  const token = src[pos]!;
  let length: number;
  if (token >= 0x90 && token <= 0x9f) {
    length = token - 0x90;
    pos++;
  } else if (token === 0xdc && pos + 3 <= end) {
    length = (src[pos + 1]! << 8) | src[pos + 2]!;
    pos += 3;
  } else {
    return null;
  }
  const acl = new Array<AclEntry>(length);
  for (let i = 0; i < length; i++) {
    if (pos >= end) return null;
    let kind: number;
    const t = src[pos]!;
    if (t === 0xd4 && pos + 3 <= end && src[pos + 1] === 0x72 && src[pos + 2]! >= 0x40 && src[pos + 2]! <= 0x7f) {
      const slot = src[pos + 2]! & 0x3f;
      pos += 3;
      if (skipBytes(USER_KEYS)) kind = USER_ENTRY;
      else if (skipBytes(GROUP_KEYS)) kind = GROUP_ENTRY;
      else return null;
      // Slot 0 holds the rule's own definition: redefining it is not our shape.
      if (slot === 0) return null;
      definedKind[slot] = kind;
      definedIn[slot] = record;
    } else if (t >= 0x40 && t <= 0x7f) {
      // Only a definition made earlier in this very record counts.
      if (definedIn[t & 0x3f] !== record) return null;
      kind = definedKind[t & 0x3f]!;
      pos++;
    } else {
      return null;
    }
    const who = readNumber();
    const access = readNumber();
    if (who < 0 || access < 0) return null;
    acl[i] = kind === USER_ENTRY ? { user: who, access } : { group: who, access };
  }
  return acl;
}

/** A Rule with exactly the model's fields, so no stray property is stored. */
export function plainRule(r: Rule): Rule {
  return {
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
}
