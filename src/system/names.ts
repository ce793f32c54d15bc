// The system's user and group names: /etc/passwd and /etc/group as they
// are now, for the daemon and the CLI (src/main.ts builds the resolver and
// hands it to whoever resolves names).

import fs from 'node:fs';
import { parseGroup, parseIdTable, parsePasswd, numericId, type GroupEntry, type NameResolver, type PasswdEntry } from '../rules/names';

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
