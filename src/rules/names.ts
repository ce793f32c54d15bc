// User and group names → ids, for rule files and the CLI. Injectable so tests
// (and a containerised daemon with its own /etc) can supply their own table.

import fs from 'node:fs';

export interface NameResolver {
  /** uid for a user name, undefined if unknown. */
  user(name: string): number | undefined;
  /** gid for a group name, undefined if unknown. */
  group(name: string): number | undefined;
}

const NUMERIC = /^\d+$/;
const MAX_ID = 0xffff_ffff;

/** "1000" → 1000; anything else (or out of range) → undefined. */
export function numericId(text: string): number | undefined {
  if (!NUMERIC.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

/**
 * Parses /etc/passwd or /etc/group: `name:x:ID:...` per line, third field
 * the id. Comments, blank and malformed lines are skipped; the first entry
 * for a name wins, as with getpwnam(3) on files.
 */
export function parseIdTable(text: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, , id] = line.split(':');
    const n = id === undefined ? undefined : numericId(id);
    if (name !== undefined && name !== '' && n !== undefined && !table.has(name)) table.set(name, n);
  }
  return table;
}

interface CachedTable {
  readonly mtimeMs: number;
  readonly size: number;
  readonly byName: Map<string, number>;
}

/**
 * Reads /etc/passwd and /etc/group (the same files NSS "files" uses; no
 * LDAP/sssd, on purpose: resolution must not hang on the network). Numeric
 * strings are ids. Tables are re-read when the file changes, so a
 * long-running daemon sees users added after it started.
 */
export class SystemNameResolver implements NameResolver {
  private readonly cache = new Map<string, CachedTable>();

  constructor(
    private readonly files: { readonly passwd: string; readonly group: string } = {
      passwd: '/etc/passwd',
      group: '/etc/group',
    },
  ) {}

  user(name: string): number | undefined {
    return numericId(name) ?? this.table(this.files.passwd).get(name);
  }

  group(name: string): number | undefined {
    return numericId(name) ?? this.table(this.files.group).get(name);
  }

  /** Reverse lookups, for display. */
  userName(uid: number): string | undefined {
    return reverse(this.table(this.files.passwd), uid);
  }

  groupName(gid: number): string | undefined {
    return reverse(this.table(this.files.group), gid);
  }

  private table(file: string): Map<string, number> {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return new Map(); // no such file: nobody has a name
    }
    const cached = this.cache.get(file);
    if (cached !== undefined && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.byName;
    const byName = parseIdTable(fs.readFileSync(file, 'utf8'));
    this.cache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, byName });
    return byName;
  }
}

function reverse(table: Map<string, number>, id: number): string | undefined {
  for (const [name, n] of table) if (n === id) return name;
  return undefined;
}

/** The default resolver (system files). */
export const systemNames: NameResolver = new SystemNameResolver();
