// The audit record: one request the rules refused, or one permissive mode
// let through although they deny it. The filesystem edge keeps them (its
// audit log); the admin API shows them as they are here.

/** One record of the audit log: a refused request, or one permissive mode let through. */
export interface AuditRecord {
  /** Increasing from 1 since the daemon started. */
  readonly seq: number;
  /** ISO 8601. */
  readonly time: string;
  /** The FUSE operation (open, opendir, read, write, unlink, ...). */
  readonly op: string;
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Requested access, "rwx"-style ("r--"); "---" when refused before it was known. */
  readonly access: string;
  /** false: the rules deny it, and permissive mode or an audit-only rule (reason `would deny: ...`) let it through. */
  readonly enforced: boolean;
  /** The deciding rule; null for the default policy or an error while deciding. */
  readonly rule: number | null;
  /** One line, as `check` words it (`deny: rule 2 (...): ...`), or the error. */
  readonly reason: string;
}

/** A run of consecutive audit records, and where the next run starts. */
export interface AuditPage {
  /** Oldest first. */
  readonly records: AuditRecord[];
  /**
   * Pass back as `after` for the records that follow: the seq of the last
   * record returned, or, when none was, the newest seq there is (never
   * more than the `after` asked), so a cursor from before a daemon restart
   * does not skip the new daemon's records.
   */
  readonly next: number;
}
