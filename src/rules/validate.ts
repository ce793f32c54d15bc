// What a rule and a request may hold, in one place: the limits (ids, rule
// ids, path length, page size), the well-formedness of paths, and the
// store's own check of a RuleInput. The rule file parser, the admin service
// and the protocol's request schemas check with these same functions; the
// store's check is the last line before LMDB, so that no caller can store a
// record decide() would misread or a key that names another path.

import { AclfsError, invalid } from '../errors';
import { isAccess } from './access';
import { normalizePath } from './path';
import type { AclEntry, RuleInput } from './types';

/**
 * LMDB keys are limited (lmdb-js: 1978 bytes). Paths are keys of `byPath`
 * and `unbound`, so a rule path may not be longer than this many UTF-8 bytes.
 * Longer paths can still be governed by a recursive ancestor.
 */
export const MAX_RULE_PATH_BYTES = 1900;

/** (uid_t)-1 = 2^32-1, the largest number a uid_t or gid_t holds; no one's id (see MAX_ID). */
export const NO_ID = 0xffff_ffff;

/**
 * Largest uid or gid: 2^32-2. (uid_t)-1 = 4294967295 is no one's id: to
 * the kernel it means "no id" (chown(2) "leave unchanged", setresuid(2)
 * "keep"), so a rule naming it would name nobody, or whoever a bug maps
 * to -1.
 */
export const MAX_ID = NO_ID - 1;

/** Rule ids are uint32 keys of `rules`, handed out from 1. */
export const MAX_RULE_ID = 0xffff_ffff;

/**
 * The most open files and directories a daemon can hold at once: the size
 * of its handle table. A per-user bound (--max-open-per-user) is at most this.
 */
export const MAX_OPEN_HANDLES = 65_536;

/** Page size of a rule listing: 1..MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT when not given. */
export const MAX_LIST_LIMIT = 10_000;
export const DEFAULT_LIST_LIMIT = 1000;

/** A uid or gid: an integer 0 .. 2^32-2 (see MAX_ID). */
export function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ID;
}

/** A rule id: an integer 1 .. MAX_RULE_ID. */
export function isRuleId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_RULE_ID;
}

/** st_dev / st_ino as JS numbers: non-negative safe integers. */
export function isFileId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The message for a `value` isId() refuses, as a uid or a gid. */
export function notAnId(value: unknown, what: 'uid' | 'gid'): string {
  if (typeof value === 'number' && Number.isInteger(value) && value > MAX_ID) {
    return `${value} is not a ${what} (0-${MAX_ID}; ${MAX_ID + 1} is (${what}_t)-1, which names no one)`;
  }
  return `${String(value)} is not a ${what}`;
}

// Any surrogate code unit; only when one is present is the exact test
// (lone ones only: to a /u regex a pair is one code point) worth running.
const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * What makes `text` unfit to name a path, or null: a path is well-formed
 * Unicode (a lone UTF-16 surrogate has no UTF-8 form: LMDB's key encoding
 * would store U+FFFD in its place, i.e. another path) and holds no NUL
 * (no file name can). Worded to follow the text, e.g.
 * `is not well-formed Unicode (lone surrogate U+D800 at index 6)`.
 */
export function pathTextProblem(text: string): string | null {
  if (ANY_SURROGATE.test(text)) {
    const lone = LONE_SURROGATE.exec(text);
    if (lone !== null) {
      const unit = lone[0].charCodeAt(0).toString(16).toUpperCase();
      return `is not well-formed Unicode (lone surrogate U+${unit} at index ${lone.index})`;
    }
  }
  return text.includes('\0') ? 'contains a NUL byte' : null;
}

/** pathTextProblem(text) === null, without building a message. */
export function isWellFormedPathText(text: string): boolean {
  return !(ANY_SURROGATE.test(text) && LONE_SURROGATE.test(text)) && !text.includes('\0');
}

/**
 * A path argument (a lookup, a listing prefix, a check target) in canonical
 * form, or AclfsError('invalid'): a well-formed string (pathTextProblem),
 * absolute, not climbing above the root. Messages start with "path " (a
 * caller naming another field swaps that word, see renamePathError).
 */
export function checkPath(value: unknown): string {
  if (typeof value !== 'string') throw invalid(`path must be a string, got ${value === null ? 'null' : typeof value}`);
  const problem = pathTextProblem(value);
  if (problem !== null) throw invalid(`path ${JSON.stringify(value)} ${problem}`);
  return normalizePath(value);
}

/** A rule's path: checkPath, and short enough to be an LMDB key (MAX_RULE_PATH_BYTES). */
export function checkRulePath(value: unknown): string {
  const path = checkPath(value);
  if (!fitsRulePath(path)) throw invalid(`path ${JSON.stringify(path.slice(0, 40))}... is longer than ${MAX_RULE_PATH_BYTES} bytes`);
  return path;
}

/** Whether canonical path `path` is short enough to be a rule's (a key of byPath). */
export function fitsRulePath(path: string): boolean {
  return path.length * 3 <= MAX_RULE_PATH_BYTES || Buffer.byteLength(path) <= MAX_RULE_PATH_BYTES;
}

/** An error of checkPath() about a field other than "path": 'path "x" ...' becomes '<field> "x" ...'. */
export function renamePathError(err: unknown, field: string): unknown {
  if (!(err instanceof AclfsError) || field === 'path') return err;
  return new AclfsError(err.code, err.message.replace(/^path /, `${field} `));
}

/**
 * Returns a fresh, canonical copy (normalised path, only known fields,
 * dev/ino both set or both null, revocable and auditOnly only when true) or throws AclfsError('invalid') naming the
 * rule and the field.
 */
export function validateRuleInput(
  input: RuleInput,
): RuleInput & { dev: number | null; ino: number | null; birth: string | null } {
  if (typeof input !== 'object' || input === null) throw invalid('rule must be an object');
  const path = checkRulePath(input.path);
  const fail = (field: string, message: string): never => {
    throw invalid(`rule ${path}: ${field}: ${message}`);
  };
  if (!isId(input.owner)) fail('owner', notAnId(input.owner, 'uid'));
  if (!isAccess(input.defaccess)) fail('defaccess', `${String(input.defaccess)} is not an access 0-7`);
  if (typeof input.recursive !== 'boolean') fail('recursive', 'must be true or false');
  if (input.revocable !== undefined && typeof input.revocable !== 'boolean') fail('revocable', 'must be true or false');
  if (input.auditOnly !== undefined && typeof input.auditOnly !== 'boolean') fail('auditOnly', 'must be true or false');
  if (!Array.isArray(input.acl)) fail('acl', 'must be an array');
  const acl = input.acl.map((entry, i) => validateEntry(entry, (m) => fail(`acl[${i}]`, m)));
  checkDuplicateEntries(acl, (i, m) => fail(`acl[${i}]`, m));
  const { dev, ino, birth } = validateBinding(input, fail);
  const valid = { path, owner: input.owner, defaccess: input.defaccess, acl, recursive: input.recursive, dev, ino, birth };
  return {
    ...valid,
    ...(input.revocable === true ? { revocable: true } : {}),
    ...(input.auditOnly === true ? { auditOnly: true } : {}),
  };
}

function validateEntry(entry: AclEntry, fail: (message: string) => never): AclEntry {
  if (typeof entry !== 'object' || entry === null) return fail('must be an object');
  const hasUser = 'user' in entry && entry.user !== undefined;
  const hasGroup = 'group' in entry && entry.group !== undefined;
  if (hasUser === hasGroup) return fail('needs exactly one of "user" or "group"');
  if (!isAccess(entry.access)) return fail(`access: ${String(entry.access)} is not an access 0-7`);
  const expires = entry.expires;
  if (expires !== undefined && !isExpiry(expires)) return fail(`expires: ${String(expires)} is not a time (ms since 1970) from 1970 to 9999`);
  const until = expires === undefined ? {} : { expires };
  if ('user' in entry && hasUser) {
    if (!isId(entry.user)) return fail(`user: ${notAnId(entry.user, 'uid')}`);
    return { user: entry.user, access: entry.access, ...until };
  }
  const gid = (entry as { group: unknown }).group;
  if (!isId(gid)) return fail(`group: ${notAnId(gid, 'gid')}`);
  return { group: gid, access: entry.access, ...until };
}

/** The latest expiry an entry may have: the end of year 9999 (RFC 3339's four-digit years). */
export const MAX_EXPIRY = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** An entry's expiry: whole ms since the epoch, from 1970 to the end of 9999. */
export function isExpiry(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_EXPIRY;
}

// Two entries for the same uid (or gid) would make the result depend on
// entry order for users and be redundant for groups; reject both.
function checkDuplicateEntries(acl: readonly AclEntry[], fail: (index: number, message: string) => never): void {
  const seen = new Set<string>();
  acl.forEach((entry, i) => {
    const key = 'user' in entry ? `user ${entry.user}` : `group ${entry.group}`;
    if (seen.has(key)) fail(i, `duplicate entry for ${key}`);
    seen.add(key);
  });
}

function validateBinding(
  input: RuleInput,
  fail: (field: string, message: string) => never,
): { dev: number | null; ino: number | null; birth: string | null } {
  const dev = input.dev ?? null;
  const ino = input.ino ?? null;
  if ((dev === null) !== (ino === null)) fail('dev/ino', 'must both be set or both be null');
  if (dev !== null && !isFileId(dev)) fail('dev', `${String(dev)} is not a device number`);
  if (ino !== null && !isFileId(ino)) fail('ino', `${String(ino)} is not an inode number`);
  const birth = dev === null ? null : (input.birth ?? null);
  if (birth !== null && !isBirth(birth)) fail('birth', `${String(birth)} is not a birth time like "1700000000.123456789"`);
  return { dev, ino, birth };
}

/** A birth time as "seconds.nanoseconds" (see Rule.birth). */
export function isBirth(value: unknown): value is string {
  return typeof value === 'string' && /^-?\d{1,20}\.\d{1,9}$/.test(value);
}
