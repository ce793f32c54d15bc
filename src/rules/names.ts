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

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

interface GroupEntry {
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

interface Table<T> {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
  readonly entries: readonly T[];
  /** First entry per name, as getpwnam(3)/getgrnam(3) on files. */
  readonly byName: Map<string, number>;
}

/**
 * Reads /etc/passwd and /etc/group (the same files NSS "files" uses; no
 * LDAP/sssd, on purpose: resolution must not hang on the network). Numeric
 * strings are ids. Tables are re-read when the file changes, so a
 * long-running daemon sees users added after it started. Besides names it
 * answers what `check` needs of a user: the primary group from passwd and
 * the groups whose member lists name the user (as initgroups(3) would).
 */
export class SystemNameResolver implements NameResolver {
  private passwdTable: Table<PasswdEntry> | undefined;
  private groupTable: Table<GroupEntry> | undefined;

  constructor(
    private readonly files: { readonly passwd: string; readonly group: string } = {
      passwd: '/etc/passwd',
      group: '/etc/group',
    },
  ) {}

  user(name: string): number | undefined {
    return numericId(name) ?? this.passwd().byName.get(name);
  }

  group(name: string): number | undefined {
    return numericId(name) ?? this.groups().byName.get(name);
  }

  /** Reverse lookups, for display. */
  userName(uid: number): string | undefined {
    return reverse(this.passwd().byName, uid);
  }

  groupName(gid: number): string | undefined {
    return reverse(this.groups().byName, gid);
  }

  /** Primary gid of uid from passwd; undefined if uid has no entry. */
  primaryGid(uid: number): number | undefined {
    return this.passwd().entries.find((e) => e.uid === uid)?.gid;
  }

  /** gids of the groups whose member list names uid's user (empty if none or unknown). */
  memberGroups(uid: number): number[] {
    // Every name with this uid counts (several passwd names may share one).
    const names = new Set(this.passwd().entries.filter((e) => e.uid === uid).map((e) => e.name));
    if (names.size === 0) return [];
    const gids: number[] = [];
    for (const g of this.groups().entries) if (g.members.some((m) => names.has(m)) && !gids.includes(g.gid)) gids.push(g.gid);
    return gids;
  }

  private passwd(): Table<PasswdEntry> {
    this.passwdTable = load(this.files.passwd, this.passwdTable, parsePasswd);
    return this.passwdTable;
  }

  private groups(): Table<GroupEntry> {
    this.groupTable = load(this.files.group, this.groupTable, parseGroup);
    return this.groupTable;
  }
}

function load<T>(file: string, cached: Table<T> | undefined, parse: (text: string) => T[]): Table<T> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    // No such file: nobody has a name.
    return { mtimeMs: -1, size: -1, ino: -1, entries: [], byName: new Map() };
  }
  if (cached !== undefined && cached.mtimeMs === st.mtimeMs && cached.size === st.size && cached.ino === st.ino) return cached;
  const text = fs.readFileSync(file, 'utf8');
  return { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, entries: parse(text), byName: parseIdTable(text) };
}

function reverse(table: Map<string, number>, id: number): string | undefined {
  for (const [name, n] of table) if (n === id) return name;
  return undefined;
}

/** The default resolver (system files). */
export const systemNames: NameResolver = new SystemNameResolver();
