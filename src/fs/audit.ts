// The audit log: the daemon's last denials, in memory. The filter appends a
// record wherever it refuses a request (or, in permissive mode, lets a
// request through that the rules deny); the admin API reads it by sequence
// number and follows it live. Bounded: a ring of the last AUDIT_CAPACITY
// records, older ones drop off, so a flood of denials costs a fixed amount
// of memory. Pure: no I/O, no clock but the one it is given; nothing is
// persisted (a restart starts an empty log at seq 1).

/** Records kept; the oldest is dropped when another is appended. */
export const AUDIT_CAPACITY = 10_000;

/** One refused (or, in permissive mode, let-through) request. */
export interface AuditRecord {
  /** Increasing from 1 with every record appended since the daemon started. */
  readonly seq: number;
  /** When it was decided (ISO 8601). */
  readonly time: string;
  /** The FUSE operation: open, opendir, read, write, unlink, ... */
  readonly op: string;
  /** Path inside the mount the decision was about. */
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** The requested access, "rwx"-style ("r--", "-w-"). */
  readonly access: string;
  /** false: the rules deny it, but permissive mode let it through. */
  readonly enforced: boolean;
  /** Id of the rule that decided; null for the default policy or an error. */
  readonly rule: number | null;
  /** One line: the decision's reason, or what went wrong while deciding. */
  readonly reason: string;
}

/** What the filter supplies; the log numbers and timestamps it. */
export type AuditEntry = Omit<AuditRecord, 'seq' | 'time'>;

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

export type AuditListener = (record: AuditRecord) => void;

export class AuditLog {
  /** Slot i holds the record with seq ≡ i (mod capacity). */
  private readonly ring: (AuditRecord | undefined)[];
  private lastSeq = 0;
  private readonly listeners = new Set<AuditListener>();

  constructor(
    readonly capacity: number = AUDIT_CAPACITY,
    private readonly clock: () => Date = () => new Date(),
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`audit capacity must be a positive integer, got ${capacity}`);
    this.ring = new Array<AuditRecord | undefined>(capacity);
  }

  /** Seq of the newest record (0: none yet). */
  newest(): number {
    return this.lastSeq;
  }

  /** Seq of the oldest record still kept (newest() + 1 when empty). */
  oldest(): number {
    return Math.max(1, this.lastSeq - this.capacity + 1);
  }

  /** Appends, numbers and timestamps `entry`, then tells every listener. */
  append(entry: AuditEntry): AuditRecord {
    const record: AuditRecord = { seq: this.lastSeq + 1, time: this.clock().toISOString(), ...entry };
    this.lastSeq = record.seq;
    this.ring[record.seq % this.capacity] = record;
    for (const listener of [...this.listeners]) {
      // A listener that throws (a follower whose connection broke) must not
      // fail the filesystem operation that was being recorded.
      try {
        listener(record);
      } catch {
        this.listeners.delete(listener);
      }
    }
    return record;
  }

  /** Up to `limit` records with seq > `after`, oldest first (those dropped are skipped). */
  since(after: number, limit: number): AuditPage {
    const from = Math.max(after + 1, this.oldest());
    const until = Math.min(this.lastSeq, from + Math.max(0, limit) - 1);
    const records: AuditRecord[] = [];
    for (let seq = from; seq <= until; seq++) records.push(this.ring[seq % this.capacity]!);
    const last = records.at(-1);
    return { records, next: last !== undefined ? last.seq : Math.min(after, this.lastSeq) };
  }

  /** Calls `listener` with every record appended from now on; returns the unsubscribe. */
  subscribe(listener: AuditListener): () => void {
    // A wrapper per subscription: subscribing the same function twice gives two independent feeds.
    const own: AuditListener = (record) => listener(record);
    this.listeners.add(own);
    return () => {
      this.listeners.delete(own);
    };
  }

  /** Listeners subscribed now. */
  followers(): number {
    return this.listeners.size;
  }
}
