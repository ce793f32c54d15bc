// The rule model of the product definition (docs/product.md, "Rules")
// and the inputs/outputs of `decide()`.

/** Access bits: r = 4, w = 2, x = 1. Always an integer 0..7. */
export type Access = number;

export const R = 4;
export const W = 2;
export const X = 1;

/**
 * One ACL entry. `expires` (ms since the epoch): from then on the entry
 * grants nothing, as if it were not there; absent: it never expires.
 */
export type AclEntry =
  | { readonly user: number; readonly access: Access; readonly expires?: number }
  | { readonly group: number; readonly access: Access; readonly expires?: number };

/** One stored rule. Ids are positive integers assigned by the store. */
export interface Rule {
  readonly id: number;
  /** Normalised absolute path inside the mount, e.g. `/docs/a.txt`. */
  readonly path: string;
  /** Identity of the file the rule is bound to; null while unbound. */
  readonly dev: number | null;
  readonly ino: number | null;
  /**
   * Birth time ("sec.nsec") of the bound file when the filesystem reports
   * one. An inode number can be reused by a new file once the old one is
   * gone (even behind the mount's back); a differing birth time tells the
   * two apart, so the new file does not inherit the rule.
   */
  readonly birth?: string | null;
  /** uid that always gets rwx through this rule. */
  readonly owner: number;
  /** Bits for callers no ACL entry names. */
  readonly defaccess: Access;
  readonly acl: readonly AclEntry[];
  /** For a directory rule: governs everything below without a closer rule. */
  readonly recursive: boolean;
  /**
   * Files this rule governs are never served by passthrough: every uncached
   * read of an open handle reaches the daemon, so a revoke stops it. Absent
   * means false.
   */
  readonly revocable?: boolean;
  /**
   * A denial this rule decides is not enforced: the request is let through
   * and recorded in the audit log as "would deny" (enforced false), to try a
   * rule out before enforcing it. Allows are unchanged. Absent means false.
   */
  readonly auditOnly?: boolean;
}

/** A rule as given by an administrator, before the store assigns an id. */
export type RuleInput = Omit<Rule, 'id' | 'dev' | 'ino' | 'birth'> & {
  readonly dev?: number | null;
  readonly ino?: number | null;
  readonly birth?: string | null;
};

/** The identity of the process asking, as the kernel reported it. */
export interface Caller {
  readonly uid: number;
  readonly gid: number;
  /**
   * Supplementary groups (may or may not include the primary gid), or null
   * when they cannot be known (a caller in another pid namespace reaches us
   * with pid 0). A decision that would depend on them then fails (denies).
   */
  readonly groups: readonly number[] | null;
  readonly pid: number;
}

export interface Target {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  /** Birth time "sec.nsec" of the file, when known (see Rule.birth). */
  readonly birth?: string | null;
}

/** A file's identity as the filesystem reports it. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly birth: string | null;
}

export type DefaultPolicy = 'deny' | 'allow';

/** How the governing rule was found (docs/product.md, "Decisions", step 1). */
export type MatchKind = 'inode' | 'path' | 'ancestor' | 'default';

/** Which part of the governing rule granted the bits (decision step 2). */
export type GrantSource =
  | { readonly kind: 'owner' }
  | { readonly kind: 'user'; readonly uid: number }
  | { readonly kind: 'groups'; readonly gids: readonly number[] }
  | { readonly kind: 'defaccess' }
  | { readonly kind: 'default-policy'; readonly policy: DefaultPolicy };

export interface Decision {
  readonly allow: boolean;
  readonly requested: Access;
  readonly granted: Access;
  /** The rule that decided, or null when the default policy did. */
  readonly ruleId: number | null;
  readonly rulePath: string | null;
  readonly match: MatchKind;
  readonly source: GrantSource;
  /** The deciding rule is marked revocable (false for the default policy). */
  readonly revocable: boolean;
  /** The deciding rule is marked audit-only (false for the default policy): a denial is let through and recorded. */
  readonly auditOnly: boolean;
}

/**
 * What `decide()` may consult: a read-only view over one rule snapshot
 * (one generation). Implemented over LMDB by the store and over plain maps
 * in tests. Lookups are synchronous and do no I/O beyond the in-process
 * memory map.
 */
export interface RuleView {
  byInode(dev: number, ino: number): Rule | undefined;
  byPath(path: string): Rule | undefined;
}
