// An in-memory audit log of the first shape: the last denials, core fields
// only (the daemon now keeps its audit log in LMDB, src/store/auditLog.ts;
// this ring stays for embedding and tests). The filter appends a
// record wherever it refuses a request (or, in permissive mode, lets a
// request through that the rules deny); the admin API reads it by sequence
// number and follows it live. Bounded: a ring of the last AUDIT_CAPACITY
// records, older ones drop off, so a flood of denials costs a fixed amount
// of memory. Pure: no I/O, no clock but the one it is given; nothing is
// persisted (a restart starts an empty log at seq 1).
//
// Stored column-wise: numbers in typed arrays allocated once, strings
// interned (a flood of denials repeats the same few paths and reasons).
// A ring of record objects kept each record alive for 10,000 appends, long
// enough for V8 to move it to the old generation, where it then died: under
// a flood of 40,000 denials a second the daemon's RSS climbed by 40 MiB in
// 20 s (the stress test). Now an append retains nothing new unless its
// strings are new; record objects are made when asked for and die young.

// The record's shape is the domain's (src/rules/audit.ts), which the admin
// API shows as it is.
import type { AuditEntry, AuditPage, AuditRecord } from '../rules/audit';

/** Records kept; the oldest is dropped when another is appended. */
export const AUDIT_CAPACITY = 10_000;

/** What the filter supplies; the log numbers and timestamps it (this ring keeps the core fields only). */
export type { AuditEntry, AuditPage, AuditRecord };

export type AuditListener = (record: AuditRecord) => void;

/** Numbers and strings stored per record (see AuditLog). */
const NUMBERS = 5;
const STRINGS = 4;

/** Distinct strings kept for reuse; the pool starts over when full. */
const INTERNED_MAX = 4096;

export class AuditLog {
  // Slot i holds the record with seq ≡ i (mod capacity).
  /** Per slot: time (ms since the epoch), uid, gid, pid, rule (NaN: null). */
  private readonly numbers: Float64Array;
  private readonly enforced: Uint8Array;
  /** Per slot: op, path, access, reason. */
  private readonly strings: string[];
  private readonly interned = new Map<string, string>();
  private lastSeq = 0;
  private readonly listeners = new Set<AuditListener>();

  constructor(
    readonly capacity: number = AUDIT_CAPACITY,
    private readonly clock: () => Date = () => new Date(),
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`audit capacity must be a positive integer, got ${capacity}`);
    this.numbers = new Float64Array(capacity * NUMBERS);
    this.enforced = new Uint8Array(capacity);
    this.strings = new Array<string>(capacity * STRINGS).fill('');
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
    const seq = this.lastSeq + 1;
    const slot = seq % this.capacity;
    const n = slot * NUMBERS;
    this.numbers[n] = this.clock().getTime();
    this.numbers[n + 1] = entry.uid;
    this.numbers[n + 2] = entry.gid;
    this.numbers[n + 3] = entry.pid;
    this.numbers[n + 4] = entry.rule ?? Number.NaN;
    this.enforced[slot] = entry.enforced ? 1 : 0;
    const t = slot * STRINGS;
    this.strings[t] = this.intern(entry.op);
    this.strings[t + 1] = this.intern(entry.path);
    this.strings[t + 2] = this.intern(entry.access);
    this.strings[t + 3] = this.intern(entry.reason);
    this.lastSeq = seq;
    const record = this.recordAt(seq);
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
    for (let seq = from; seq <= until; seq++) records.push(this.recordAt(seq));
    const last = records.at(-1);
    return { records, next: last !== undefined ? last.seq : Math.min(after, this.lastSeq) };
  }

  /** The record kept for `seq` (which must still be kept), as an object. */
  private recordAt(seq: number): AuditRecord {
    const slot = seq % this.capacity;
    const n = slot * NUMBERS;
    const t = slot * STRINGS;
    const rule = this.numbers[n + 4]!;
    return {
      seq,
      time: new Date(this.numbers[n]!).toISOString(),
      op: this.strings[t]!,
      path: this.strings[t + 1]!,
      uid: this.numbers[n + 1]!,
      gid: this.numbers[n + 2]!,
      pid: this.numbers[n + 3]!,
      access: this.strings[t + 2]!,
      enforced: this.enforced[slot] === 1,
      rule: Number.isNaN(rule) ? null : rule,
      reason: this.strings[t + 3]!,
    };
  }

  /** The pooled copy of `s` (the one given, the first time it is seen). */
  private intern(s: string): string {
    const pooled = this.interned.get(s);
    if (pooled !== undefined) return pooled;
    if (this.interned.size >= INTERNED_MAX) this.interned.clear();
    this.interned.set(s, s);
    return s;
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
