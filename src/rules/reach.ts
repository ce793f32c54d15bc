// Who can access a file, and what one user can reach under a path: the
// decision (decide.ts) read backwards, from the rules alone. Pure.
//
// `accessOf` lists, for the rule that governs a file, every principal it
// names and the bits each gets, in the order the decision consults them:
// the owner (rwx), each user entry, each group (a caller in several gets
// the union of their entries), then everyone else (defaccess); with no rule,
// everyone gets what the default policy gives. `readAccess` reads a listing
// back for one caller exactly as the decision would decide.
//
// `reachOf` lists, for one caller, the bits every rule at or below a path
// gives them, and what governs the rest (the nearest recursive rule above,
// or the default policy); `reachAt` reads it back for one path. Neither
// walks the tree: the rules alone answer for every name a rule's path
// reaches. A file with several hard links is governed at each of its names
// by the rule bound to its inode, which the listing shows under the path
// the rule was given (the name it was bound at).

import { findGoverningRule, grantedBits, type GoverningRule } from './decide';
import { isAtOrBelow, parentPath } from './path';
import type { Access, Caller, DefaultPolicy, GrantSource, Rule, RuleView } from './types';

const ALL: Access = 7;

export type Principal =
  | { readonly kind: 'owner'; readonly uid: number }
  | { readonly kind: 'user'; readonly uid: number }
  | { readonly kind: 'group'; readonly gid: number }
  /** Everyone the entries before it do not name. */
  | { readonly kind: 'other' };

export interface PrincipalAccess {
  readonly principal: Principal;
  readonly access: Access;
  /** When its entry stops granting (ms since the epoch); absent: never. */
  readonly expires?: number;
}

/** The rule a listing comes from. */
export interface ListedRule {
  readonly id: number;
  readonly path: string;
  /** What it denies is let through, and recorded (see Rule.auditOnly). */
  readonly auditOnly: boolean;
  readonly match: GoverningRule['match'];
}

/** Who gets which bits on one file. */
export interface FileAccess {
  /** The governing rule, or null: the default policy decides for everyone. */
  readonly rule: ListedRule | null;
  /** In the order the decision consults them (see readAccess). */
  readonly entries: readonly PrincipalAccess[];
}

/** The listing of the rule that governs a file (null: none, the default policy). */
export function accessOf(governing: GoverningRule | null, defaultPolicy: DefaultPolicy, now: number = Date.now()): FileAccess {
  if (governing === null) {
    return { rule: null, entries: [{ principal: { kind: 'other' }, access: defaultPolicy === 'allow' ? ALL : 0 }] };
  }
  const { rule, match } = governing;
  const entries: PrincipalAccess[] = [{ principal: { kind: 'owner', uid: rule.owner }, access: ALL }];
  // The first entry of a user counts (the owner's never does); a group's
  // entries are one union.
  const users = new Set<number>([rule.owner]);
  const groups = new Map<number, { access: number; expires?: number }>();
  for (const entry of rule.acl) {
    // An entry past its expiry grants nothing: it is not listed.
    if (entry.expires !== undefined && entry.expires <= now) continue;
    const until = entry.expires === undefined ? {} : { expires: entry.expires };
    if ('user' in entry) {
      if (users.has(entry.user)) continue;
      users.add(entry.user);
      entries.push({ principal: { kind: 'user', uid: entry.user }, access: entry.access, ...until });
    } else {
      // Entries of one gid are rejected as duplicates by validation; kept as one union here regardless.
      const held = groups.get(entry.group);
      const expires = held?.expires ?? entry.expires;
      groups.set(entry.group, { access: (held?.access ?? 0) | entry.access, ...(expires === undefined ? {} : { expires }) });
    }
  }
  for (const [gid, { access, expires }] of groups) entries.push({ principal: { kind: 'group', gid }, access, ...(expires === undefined ? {} : { expires }) });
  entries.push({ principal: { kind: 'other' }, access: rule.defaccess });
  return { rule: { id: rule.id, path: rule.path, auditOnly: rule.auditOnly === true, match }, entries };
}

/**
 * The bits a listing gives `caller`: the owner's, else the caller's user
 * entry, else the union over the groups the caller is in (primary or
 * supplementary), else everyone else's.
 */
export function readAccess(listing: FileAccess, caller: Pick<Caller, 'uid' | 'gid' | 'groups'>): Access {
  let union = 0;
  let inSomeGroup = false;
  for (const { principal, access } of listing.entries) {
    switch (principal.kind) {
      case 'owner':
      case 'user':
        if (principal.uid === caller.uid) return access;
        break;
      case 'group':
        if (principal.gid === caller.gid || (caller.groups?.includes(principal.gid) ?? false)) {
          union |= access;
          inSomeGroup = true;
        }
        break;
      case 'other':
        return inSomeGroup ? union : access;
    }
  }
  return union;
}

/** The bits one rule gives a caller, and which of its parts gave them. */
export interface ReachArea {
  readonly path: string;
  /** 'file': exactly this path; 'tree': this path and everything below it without a closer rule. */
  readonly scope: 'file' | 'tree';
  readonly rule: number;
  readonly granted: Access;
  readonly source: GrantSource;
}

/** What one caller can reach at and below a path. */
export interface Reach {
  readonly prefix: string;
  /**
   * What governs the prefix and everything below it that no area covers:
   * the nearest recursive rule above the prefix, or the default policy (rule null).
   */
  readonly inherited: { readonly rule: { readonly id: number; readonly path: string } | null; readonly granted: Access; readonly source: GrantSource };
  /** The rules at or below the prefix, as given (path order from the store). */
  readonly areas: readonly ReachArea[];
}

/**
 * What `caller` can reach at and below `prefix`: `rules` are the rules at
 * or below it (the store lists them by path), `view` finds the ones above.
 */
export function reachOf(
  view: RuleView,
  rules: Iterable<Rule>,
  caller: Caller,
  prefix: string,
  defaultPolicy: DefaultPolicy,
): Reach {
  let above: GoverningRule | null = null;
  for (let dir = parentPath(prefix); dir !== null && above === null; dir = parentPath(dir)) {
    const rule = view.byPath(dir);
    if (rule !== undefined && rule.recursive) above = { rule, match: 'ancestor' };
  }
  const inherited =
    above === null
      ? {
          rule: null,
          granted: defaultPolicy === 'allow' ? ALL : 0,
          source: { kind: 'default-policy', policy: defaultPolicy === 'allow' ? 'allow' : 'deny' } as const,
        }
      : { rule: { id: above.rule.id, path: above.rule.path }, ...grantedBits(above.rule, caller) };
  const areas: ReachArea[] = [];
  for (const rule of rules) {
    if (!isAtOrBelow(rule.path, prefix)) continue;
    const { granted, source } = grantedBits(rule, caller);
    areas.push({ path: rule.path, scope: rule.recursive ? 'tree' : 'file', rule: rule.id, granted, source });
  }
  return { prefix, inherited, areas };
}

/**
 * The bits a reach gives at `path` (at or below its prefix, canonical): the
 * area of exactly that path, else the nearest 'tree' area above it, else
 * what is inherited.
 */
export function reachAt(reach: Reach, path: string): Access {
  const byPath = new Map(reach.areas.map((a) => [a.path, a] as const));
  const exact = byPath.get(path);
  if (exact !== undefined) return exact.granted;
  for (let dir = parentPath(path); dir !== null && isAtOrBelow(dir, reach.prefix); dir = parentPath(dir)) {
    const area = byPath.get(dir);
    if (area !== undefined && area.scope === 'tree') return area.granted;
  }
  return reach.inherited.granted;
}

/** The governing rule of a path found by its name alone (no file to look up). */
export function governingByPath(view: RuleView, path: string): GoverningRule | null {
  return findGoverningRule({ byInode: () => undefined, byPath: (p) => view.byPath(p) }, { path, dev: 0, ino: 0 });
}
