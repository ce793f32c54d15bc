// The audit record: one decision of the filter (every denial, the allows
// too when the audit level asks for them, what permissive mode let
// through), or one change an administrator made (op "admin"). The daemon
// keeps them in its audit log (src/store/auditLog.ts); the admin API shows
// them as they are here, and filters them with auditMatches().
import { formatAccess } from './access';
import { isAtOrBelow } from './path';
import type { Caller, Decision } from './types';

/**
 * What the audit log records: denials (the default), or allows as well
 * ('allow' and 'all' alike). Denials are recorded at every level: a
 * security log that could be told to drop them would be a way to hide them.
 */
export const AUDIT_LEVELS = ['deny', 'allow', 'all'] as const;
export type AuditLevel = (typeof AUDIT_LEVELS)[number];

/** Whether a decision (allow: true) is recorded at `level`. */
export function auditsDecision(level: AuditLevel, allow: boolean): boolean {
  return !allow || level !== 'deny';
}

/** Whether allows are recorded at `level` (then none may be decided where JS does not see it). */
export function auditsAllows(level: AuditLevel): boolean {
  return level !== 'deny';
}

export type AuditDecision = 'allow' | 'deny';

/** The fields every audit record has (the first shape, which recorded denials only). */
export interface AuditRecordCore {
  /** Increasing from 1; the durable log continues it across daemon restarts (from the newest stored). */
  readonly seq: number;
  /** ISO 8601. */
  readonly time: string;
  /** The FUSE operation (open, opendir, read, write, unlink, ...), or "admin" for a change made over the admin API. */
  readonly op: string;
  /** The path decided on (a change: the rule's path, or "/" for the whole rule set or the daemon). */
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Requested access, "rwx"-style ("r--"); "---" when refused before it was known. */
  readonly access: string;
  /**
   * true: the request was refused. false: it was not, i.e. an allow, a
   * change made over the admin API, or a denial let through (permissive
   * mode, or an audit-only rule: decision "deny", enforced false, reason
   * `would deny: ...`).
   */
  readonly enforced: boolean;
  /** The deciding rule; null for the default policy or an error while deciding. */
  readonly rule: number | null;
  /** One line, as `check` words it (`deny: rule 2 (...): ...`), the error, or what a change changed. */
  readonly reason: string;
}

/** What the durable audit log adds to every record (null where unknown). */
export interface AuditRecordDetails {
  /** The caller's supplementary groups as the filter knew them; null when unknown. */
  readonly groups: readonly number[] | null;
  /** readlink /proc/PID/exe, read after the decision; null when the process was gone or unreadable. */
  readonly program: string | null;
  /** /proc/PID/cmdline, NULs as spaces, at most AUDIT_CMDLINE_MAX bytes; null as for program. */
  readonly cmdline: string | null;
  /** dev:ino of the backing file decided on; null where none was known (a file not created yet). */
  readonly file: { readonly dev: number; readonly ino: number } | null;
  /** What the rules (or the error while deciding) said. A change: "allow" (it was made). */
  readonly decision: AuditDecision;
  /** The deciding rule's path; null with `rule`. */
  readonly rulePath: string | null;
  /**
   * What decided: the rule's matched entry ("owner:1001:rwx",
   * "user:1001:r--", "group:100,200:r-x", "defaccess:r--"), or
   * "default:deny" / "default:allow" for the default policy; null for an
   * error while deciding, a refused move or a change.
   */
  readonly entry: string | null;
  /** The commit epoch (policy generation) it was decided at; null where none was read. */
  readonly epoch: number | null;
}

/**
 * One record of the audit log, as the admin API shows it. The durable log
 * (the daemon's) gives every field (a DetailedAuditRecord); a log of the
 * first shape (the in-memory ring, src/fs/audit.ts) only the core ones.
 */
export interface AuditRecord extends AuditRecordCore, Partial<AuditRecordDetails> {}

/** A record with every field: what the daemon's durable log stores and shows. */
export type DetailedAuditRecord = AuditRecordCore & AuditRecordDetails;

/**
 * What the filter (or the admin server) gives the log; the log numbers and
 * timestamps it, and reads program and cmdline itself, off the decision
 * path. The fields after `reason` may be left out (an entry of the first
 * shape, which recorded denials only, is still taken): they are then
 * recorded as unknown (null), and `decision` as "deny".
 */
export interface AuditEntry {
  readonly op: string;
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly access: string;
  readonly enforced: boolean;
  readonly rule: number | null;
  readonly reason: string;
  readonly groups?: readonly number[] | null;
  readonly file?: { readonly dev: number; readonly ino: number } | null;
  readonly decision?: AuditDecision;
  readonly rulePath?: string | null;
  readonly entry?: string | null;
  readonly epoch?: number | null;
}

/** cmdline is cut to this many bytes (UTF-8). */
export const AUDIT_CMDLINE_MAX = 256;

/** A run of audit records, and where the next run starts. */
export interface AuditPage {
  /** Oldest first. */
  readonly records: AuditRecord[];
  /**
   * Pass back as `after` for the records that follow: the seq of the last
   * record looked at (returned, or skipped by the filter), or, when none
   * was, the newest seq there is (never more than the `after` asked), so a
   * cursor from before the log was emptied does not skip new records.
   */
  readonly next: number;
  /**
   * Present (true) when records after `next` may still match: a page looks
   * at a bounded number of records, or stopped at its limit. Absent when
   * every record up to the newest was looked at.
   */
  readonly more?: true;
}

/** Which records a query returns; every field given must hold (and). */
export interface AuditFilter {
  /** time >= since (ms since the epoch). */
  readonly since?: number;
  /** time < until (ms since the epoch). */
  readonly until?: number;
  readonly uid?: number;
  /** The record's path is this path or lies below it, by whole components ("/docs" ⊇ "/docs/a", not "/docsx"). */
  readonly path?: string;
  readonly decision?: AuditDecision;
  readonly op?: string;
  readonly rule?: number;
}

/** Whether `record` is one `filter` asks for. */
export function auditMatches(record: AuditRecord, filter: AuditFilter): boolean {
  if (filter.uid !== undefined && record.uid !== filter.uid) return false;
  // A record of the first shape is a denial.
  if (filter.decision !== undefined && (record.decision ?? 'deny') !== filter.decision) return false;
  if (filter.op !== undefined && record.op !== filter.op) return false;
  if (filter.rule !== undefined && record.rule !== filter.rule) return false;
  if (filter.path !== undefined && !isAtOrBelow(record.path, filter.path)) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const t = Date.parse(record.time);
    if (filter.since !== undefined && !(t >= filter.since)) return false;
    if (filter.until !== undefined && !(t < filter.until)) return false;
  }
  return true;
}

/** Whether the filter asks for anything (an empty one matches every record). */
export function isEmptyFilter(filter: AuditFilter): boolean {
  return Object.values(filter).every((v) => v === undefined);
}

/**
 * The part of the deciding rule that granted (or did not grant) the bits,
 * as the audit log names it: "owner:UID:rwx", "user:UID:r--",
 * "group:GID[,GID]:r-x", "defaccess:r--", or "default:deny" for the
 * default policy.
 */
export function matchedEntry(decision: Decision, caller: Pick<Caller, 'uid'>): string {
  const bits = formatAccess(decision.granted);
  const source = decision.source;
  switch (source.kind) {
    case 'owner':
      return `owner:${caller.uid}:${bits}`;
    case 'user':
      return `user:${source.uid}:${bits}`;
    case 'groups':
      return `group:${source.gids.join(',')}:${bits}`;
    case 'defaccess':
      return `defaccess:${bits}`;
    case 'default-policy':
      return `default:${source.policy}`;
  }
}
