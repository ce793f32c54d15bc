// User and group names → ids, for rule files and the CLI: the resolver they
// are given, and the parsing of passwd/group text. Reading the system's
// files is src/system/names.ts; tests (and a containerised daemon with its
// own /etc) supply their own table.

import { NO_ID } from './validate';

export interface NameResolver {
  /** uid for a user name, undefined if unknown. */
  user(name: string): number | undefined;
  /** gid for a group name, undefined if unknown. */
  group(name: string): number | undefined;
}

const NUMERIC = /^\d+$/;

/**
 * "1000" → 1000; anything else, or past what a uid_t holds, → undefined.
 * (uid_t)-1 itself is a number here, so that the rule's check can say why
 * no rule may name it (see MAX_ID).
 */
export function numericId(text: string): number | undefined {
  if (!NUMERIC.test(text)) return undefined;
  const n = Number(text);
  return n <= NO_ID ? n : undefined;
}

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** The fields of the well-formed `name:x:ID:...` lines of passwd/group. */
function entries(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f[0] && numericId(f[2] ?? '') !== undefined) out.push(f);
  }
  return out;
}

/**
 * Parses /etc/passwd or /etc/group into name -> id (the third field).
 * Comments, blank and malformed lines are skipped; the first entry for a
 * name wins, as with getpwnam(3) on files.
 */
export function parseIdTable(text: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const f of entries(text)) if (!table.has(f[0]!)) table.set(f[0]!, numericId(f[2]!)!);
  return table;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of entries(text)) {
    const gid = numericId(f[3] ?? '');
    if (gid !== undefined) out.push({ name: f[0]!, uid: numericId(f[2]!)!, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  return entries(text).map((f) => ({
    name: f[0]!,
    gid: numericId(f[2]!)!,
    members: (f[3] ?? '').split(',').filter((m) => m !== ''),
  }));
}
