// Who a user is, for `check`: names to ids, the primary group from
// /etc/passwd and the supplementary groups from /etc/group (what
// initgroups(3) would give a login of that user). The same files NSS "files"
// reads; no LDAP/sssd, on purpose (the daemon must not hang on the network).
// Tables are re-read when a file changes.

import fs from 'node:fs';
import { numericId, type NameResolver } from '../rules/names';

export interface Accounts extends NameResolver {
  /** Primary gid of uid from /etc/passwd; undefined if uid has no entry. */
  primaryGid(uid: number): number | undefined;
  /** gids of the groups whose member list names uid's user (empty if none or unknown). */
  memberGroups(uid: number): number[];
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

interface Cached<T> {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
  readonly entries: T[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = numericId(f[2] ?? '');
    const gid = numericId(f[3] ?? '');
    if (f[0] && uid !== undefined && gid !== undefined) out.push({ name: f[0], uid, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = numericId(f[2] ?? '');
    if (f[0] && gid !== undefined) out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}

export class SystemAccounts implements Accounts {
  private passwdCache: Cached<PasswdEntry> | undefined;
  private groupCache: Cached<GroupEntry> | undefined;

  constructor(private readonly files: { readonly passwd: string; readonly group: string } = { passwd: '/etc/passwd', group: '/etc/group' }) {}

  user(name: string): number | undefined {
    return numericId(name) ?? this.passwd().find((e) => e.name === name)?.uid;
  }

  group(name: string): number | undefined {
    return numericId(name) ?? this.groups().find((e) => e.name === name)?.gid;
  }

  primaryGid(uid: number): number | undefined {
    return this.passwd().find((e) => e.uid === uid)?.gid;
  }

  memberGroups(uid: number): number[] {
    // Every name with this uid counts (several passwd names may share one).
    const names = new Set(this.passwd().filter((e) => e.uid === uid).map((e) => e.name));
    if (names.size === 0) return [];
    const gids: number[] = [];
    for (const g of this.groups()) if (g.members.some((m) => names.has(m)) && !gids.includes(g.gid)) gids.push(g.gid);
    return gids;
  }

  private passwd(): PasswdEntry[] {
    this.passwdCache = load(this.files.passwd, this.passwdCache, parsePasswd);
    return this.passwdCache.entries;
  }

  private groups(): GroupEntry[] {
    this.groupCache = load(this.files.group, this.groupCache, parseGroup);
    return this.groupCache.entries;
  }
}

function load<T>(file: string, cached: Cached<T> | undefined, parse: (text: string) => T[]): Cached<T> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return { mtimeMs: -1, size: -1, ino: -1, entries: [] }; // no such file: nobody is listed
  }
  if (cached !== undefined && cached.mtimeMs === st.mtimeMs && cached.size === st.size && cached.ino === st.ino) return cached;
  return { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, entries: parse(fs.readFileSync(file, 'utf8')) };
}
