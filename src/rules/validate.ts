// The store's own check of a RuleInput. The rule file parser and the admin
// API validate their inputs first with friendlier messages; this is the last
// line before LMDB, so that no caller can store a record decide() would
// misread.

import { invalid } from '../errors';
import { isAccess } from './access';
import { normalizePath } from './path';
import type { AclEntry, RuleInput } from './types';

/**
 * LMDB keys are limited (lmdb-js: 1978 bytes). Paths are keys of `byPath`
 * and `unbound`, so a rule path may not be longer than this many UTF-8 bytes.
 * Longer paths can still be governed by a recursive ancestor.
 */
export const MAX_RULE_PATH_BYTES = 1900;

const MAX_ID = 0xffff_ffff;

/** A uid or gid: an integer 0 .. 2^32-1. */
export function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ID;
}

/** st_dev / st_ino as JS numbers: non-negative safe integers. */
export function isFileId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Returns a fresh, canonical copy (normalised path, only known fields,
 * dev/ino both set or both null) or throws AclfsError('invalid') naming the
 * rule and the field.
 */
export function validateRuleInput(
  input: RuleInput,
): RuleInput & { dev: number | null; ino: number | null; birth: string | null } {
  if (typeof input !== 'object' || input === null) throw invalid('rule must be an object');
  const path = normalizePath(input.path);
  const fail = (field: string, message: string): never => {
    throw invalid(`rule ${path}: ${field}: ${message}`);
  };
  if (Buffer.byteLength(path) > MAX_RULE_PATH_BYTES) fail('path', `longer than ${MAX_RULE_PATH_BYTES} bytes`);
  if (!isId(input.owner)) fail('owner', `${String(input.owner)} is not a uid`);
  if (!isAccess(input.defaccess)) fail('defaccess', `${String(input.defaccess)} is not an access 0-7`);
  if (typeof input.recursive !== 'boolean') fail('recursive', 'must be true or false');
  if (!Array.isArray(input.acl)) fail('acl', 'must be an array');
  const acl = input.acl.map((entry, i) => validateEntry(entry, (m) => fail(`acl[${i}]`, m)));
  checkDuplicateEntries(acl, (i, m) => fail(`acl[${i}]`, m));
  const { dev, ino, birth } = validateBinding(input, fail);
  return { path, owner: input.owner, defaccess: input.defaccess, acl, recursive: input.recursive, dev, ino, birth };
}

function validateEntry(entry: AclEntry, fail: (message: string) => never): AclEntry {
  if (typeof entry !== 'object' || entry === null) return fail('must be an object');
  const hasUser = 'user' in entry && entry.user !== undefined;
  const hasGroup = 'group' in entry && entry.group !== undefined;
  if (hasUser === hasGroup) return fail('needs exactly one of "user" or "group"');
  if (!isAccess(entry.access)) return fail(`access: ${String(entry.access)} is not an access 0-7`);
  if ('user' in entry && hasUser) {
    if (!isId(entry.user)) return fail(`user: ${String(entry.user)} is not a uid`);
    return { user: entry.user, access: entry.access };
  }
  const gid = (entry as { group: unknown }).group;
  if (!isId(gid)) return fail(`group: ${String(gid)} is not a gid`);
  return { group: gid, access: entry.access };
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
