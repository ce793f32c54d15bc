// The durable audit log: every record the filter (and the admin server)
// appends, kept in an LMDB environment of its own (`audit/` inside the rule
// database's directory, see docs/design.md, "The audit log"), bounded by
// count and by age, oldest dropped first, numbered on from the newest stored
// record after a restart.
//
// A decision never waits on the disk. append() only numbers the entry and
// puts it in a bounded queue (when the queue is full the entry is dropped
// and counted, never waited for). On the next turn of the event loop the
// queued entries are completed off the decision path (the caller's program
// and command line from /proc, best effort: a process already gone is
// null) and told to the followers; every flush interval (100 ms) one batch
// is written, in one asynchronous LMDB transaction (lmdb-js commits on its
// own thread), together with the removal of what the bounds push out. One
// batch is in flight at a time: while the disk is slow the queue fills and
// then drops. A failed batch is counted, its records are lost, and the
// failure is logged once (until a batch succeeds again): never retried.
//
// What a kill -9 loses: the queue and the batch in flight, i.e. what was
// appended in the last flush interval (plus however long the disk takes to
// commit one batch). Everything committed survives (LMDB).
//
// Queries read the stored records and then the ones not written yet, so a
// record is found as soon as it is appended; a filtered query looks at a
// bounded number of records per call (the event loop also serves FUSE
// requests) and says whether more may follow.
//
// Threads: everything here runs on the JS thread; lmdb-js's write thread
// only sees the batch handed to it.
import fs from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import {
  auditMatches,
  isEmptyFilter,
  type AuditDecision,
  type AuditEntry,
  type AuditFilter,
  type AuditPage,
  type DetailedAuditRecord,
} from '../rules/audit';

/** Default bounds (the daemon's --audit-max-records, --audit-max-age). */
export const DEFAULT_AUDIT_MAX_RECORDS = 1_000_000;
export const DEFAULT_AUDIT_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
/** Entries waiting to be written at most; past that, appends are dropped and counted. */
export const DEFAULT_AUDIT_QUEUE = 10_000;
/** How often a batch is written. */
export const DEFAULT_AUDIT_FLUSH_MS = 100;
/** Records written per batch at most. */
const BATCH_MAX = 5_000;
/** Records removed per batch at most by the age bound (the count bound removes what it must). */
const AGE_PRUNE_MAX = 5_000;
/** With nothing to write, the age bound is applied this often. */
const AGE_PRUNE_EVERY_MS = 1_000;
/** Records a filtered query looks at per call. */
export const AUDIT_SCAN_BUDGET = 20_000;
/** Records read from LMDB per range read. */
const READ_CHUNK = 1_000;

/** The caller's program and command line (src/system/processes.ts; null where unreadable). */
export interface ProcessFacts {
  readonly program: string | null;
  readonly cmdline: string | null;
}

/** A page of the durable log: every record has every field. */
export interface DurableAuditPage extends AuditPage {
  readonly records: DetailedAuditRecord[];
}

/** Counters of the log, for `status` and metrics. */
export interface AuditLogStats {
  /** Appended, not written yet (waiting, or in the batch being written). */
  readonly queued: number;
  /** Appended while the queue was full: never recorded. */
  readonly dropped: number;
  /** Written to the disk since the daemon started. */
  readonly written: number;
  /** Lost in batches whose write failed. */
  readonly failed: number;
  /** Batches whose write failed. */
  readonly failedBatches: number;
  /** Records stored now (bounded by maxRecords). */
  readonly records: number;
  /** Seq of the newest record appended (0: none ever). */
  readonly newest: number;
}

/** Where the records are stored: LMDB in the daemon; tests wrap it (a slow disk). */
export interface AuditBackend {
  /** Seq of the newest stored record, 0 when none. */
  newest(): number;
  /** Records stored. */
  count(): number;
  /** Stored records with seq > `after`, oldest first, at most `limit`. */
  range(after: number, limit: number): DetailedAuditRecord[];
  /** The `limit` oldest stored records' seq and time (ms). */
  oldest(limit: number): { seq: number; timeMs: number }[];
  /** Stores `records` and removes `remove` (seqs) in one transaction. */
  write(records: readonly DetailedAuditRecord[], remove: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

export interface AuditLogOptions {
  readonly backend: AuditBackend;
  readonly maxRecords?: number;
  readonly maxAgeMs?: number;
  readonly queueCapacity?: number;
  readonly flushIntervalMs?: number;
  /** ms since the epoch. */
  readonly clock?: () => number;
  /** The program and command line of a pid (read once per pid per batch). */
  readonly processFacts?: (pid: number) => ProcessFacts;
  /** Told once when writes start failing, and once when they succeed again. */
  readonly log?: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export type AuditLogListener = (record: DetailedAuditRecord) => void;

/** An entry numbered and timestamped, not yet completed. */
interface Fresh {
  readonly seq: number;
  readonly timeMs: number;
  readonly entry: AuditEntry;
}

const unknownProcess = (): ProcessFacts => ({ program: null, cmdline: null });

export class DurableAuditLog {
  private readonly backend: AuditBackend;
  private readonly maxRecords: number;
  private readonly maxAgeMs: number;
  private readonly capacity: number;
  private readonly clock: () => number;
  private readonly processFacts: (pid: number) => ProcessFacts;
  private readonly log: AuditLogOptions['log'];
  /** Appended, not completed yet (see complete()). */
  private fresh: Fresh[] = [];
  /** Completed, waiting for a batch. Oldest first. */
  private queue: DetailedAuditRecord[] = [];
  /** The batch being written; its records are not readable from the backend until it settles. */
  private inFlight: DetailedAuditRecord[] = [];
  /** Every record with seq <= this is in the backend, or was dropped by a bound or a failure. */
  private writtenThrough: number;
  private lastSeq: number;
  private stored: number;
  private dropped = 0;
  private written = 0;
  private failed = 0;
  private failedBatches = 0;
  private failing = false;
  private completing = false;
  /** When the age bound was last applied (ms, the log's clock). */
  private lastPrune = Number.NEGATIVE_INFINITY;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly listeners = new Set<AuditLogListener>();
  private idle: Promise<void> = Promise.resolve();

  constructor(options: AuditLogOptions) {
    this.backend = options.backend;
    this.maxRecords = positive(options.maxRecords ?? DEFAULT_AUDIT_MAX_RECORDS, 'audit max records');
    this.maxAgeMs = positive(options.maxAgeMs ?? DEFAULT_AUDIT_MAX_AGE_MS, 'audit max age');
    this.capacity = positive(options.queueCapacity ?? DEFAULT_AUDIT_QUEUE, 'audit queue capacity');
    this.clock = options.clock ?? Date.now;
    this.processFacts = options.processFacts ?? unknownProcess;
    this.log = options.log;
    this.lastSeq = this.backend.newest();
    this.writtenThrough = this.lastSeq;
    this.stored = this.backend.count();
    this.timer = setInterval(() => this.flush(), positive(options.flushIntervalMs ?? DEFAULT_AUDIT_FLUSH_MS, 'audit flush interval'));
    this.timer.unref();
  }

  /** Opens (creating) the LMDB environment in `dir` and a log over it. */
  static open(dir: string, options: Omit<AuditLogOptions, 'backend'> = {}): DurableAuditLog {
    return new DurableAuditLog({ ...options, backend: LmdbAuditBackend.open(dir) });
  }

  /**
   * Numbers and timestamps `entry` and queues it; never waits. Returns its
   * seq, or 0 when the queue was full (the entry is dropped and counted).
   */
  append(entry: AuditEntry): number {
    if (this.closed || this.fresh.length + this.queue.length >= this.capacity) {
      this.dropped++;
      return 0;
    }
    const seq = ++this.lastSeq;
    this.fresh.push({ seq, timeMs: this.clock(), entry });
    if (!this.completing) {
      this.completing = true;
      setImmediate(() => this.complete());
    }
    return seq;
  }

  /** Seq of the newest record appended (0: none ever). */
  newest(): number {
    return this.lastSeq;
  }

  stats(): AuditLogStats {
    return {
      queued: this.fresh.length + this.queue.length + this.inFlight.length,
      dropped: this.dropped,
      written: this.written,
      failed: this.failed,
      failedBatches: this.failedBatches,
      records: this.stored,
      newest: this.lastSeq,
    };
  }

  /** Up to `limit` records with seq > `after`, oldest first (every record, stored or not yet). */
  since(after: number, limit: number): DurableAuditPage {
    return this.query({}, after, limit);
  }

  /**
   * Up to `limit` records with seq > `after` that `filter` matches, oldest
   * first. Looks at no more than `budget` stored records: `more` then says
   * whether to ask again from `next`.
   */
  query(filter: AuditFilter, after: number, limit: number, budget: number = AUDIT_SCAN_BUDGET): DurableAuditPage {
    this.complete();
    const records: DetailedAuditRecord[] = [];
    const all = isEmptyFilter(filter);
    let cursor = after;
    let looked = false;
    let scanned = 0;
    const full = (): boolean => records.length >= limit;
    const take = (r: DetailedAuditRecord): void => {
      cursor = r.seq;
      looked = true;
      if (all || auditMatches(r, filter)) records.push(r);
    };
    if (limit > 0) {
      // The stored records (up to writtenThrough), then the ones not written yet.
      while (!full() && scanned < budget && cursor < this.writtenThrough) {
        const chunk = this.backend.range(cursor, Math.min(READ_CHUNK, budget - scanned, all ? limit - records.length : READ_CHUNK));
        const stored = chunk.filter((r) => r.seq <= this.writtenThrough);
        if (stored.length === 0) {
          // Nothing more is stored up to writtenThrough (gaps: bounds, failed batches).
          cursor = this.writtenThrough;
          looked = true;
          break;
        }
        for (const r of stored) {
          scanned++;
          take(r);
          if (full()) break;
        }
      }
      if (!full() && scanned < budget) {
        for (const r of this.pending()) {
          if (r.seq <= cursor) continue;
          take(r);
          if (full()) break;
        }
      }
    }
    const next = looked ? cursor : Math.min(after, this.lastSeq);
    return next < this.lastSeq ? { records, next, more: true } : { records, next };
  }

  /** Calls `listener` with every record completed from now on (after its append, within a turn of the event loop); returns the unsubscribe. */
  subscribe(listener: AuditLogListener): () => void {
    const own: AuditLogListener = (record) => listener(record);
    this.listeners.add(own);
    return () => {
      this.listeners.delete(own);
    };
  }

  followers(): number {
    return this.listeners.size;
  }

  /** Writes what is queued, waits for it, stops the timer and closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.complete();
    this.closed = true;
    clearInterval(this.timer);
    await this.idle;
    while (this.queue.length > 0) {
      this.flush();
      await this.idle;
    }
    this.listeners.clear();
    await this.backend.close();
  }

  /** Resolves once the batch in flight (if any) has settled; for tests and close(). */
  settled(): Promise<void> {
    return this.idle;
  }

  /**
   * Writes one batch now, unless one is in flight (the timer calls it).
   * With nothing queued, still removes what has grown older than the age
   * bound, at most once a second.
   */
  flush(): void {
    this.complete();
    if (this.inFlight.length > 0) return;
    const now = this.clock();
    if (this.queue.length === 0 && now - this.lastPrune < AGE_PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    const batch = this.queue.splice(0, BATCH_MAX);
    const remove = this.overflow(batch.length, now);
    if (batch.length === 0 && remove.length === 0) return;
    // What the count bound pushes out of this very batch is not written.
    const over = this.stored - remove.length + batch.length - this.maxRecords;
    const keep = over > 0 ? batch.slice(over) : batch;
    this.inFlight = batch;
    const through = batch.length === 0 ? this.writtenThrough : batch[batch.length - 1]!.seq;
    let write: Promise<void>;
    try {
      write = this.backend.write(keep, remove);
    } catch (err) {
      write = Promise.reject(err);
    }
    this.idle = write
      .then(
        () => {
          this.written += keep.length;
          this.stored += keep.length - remove.length;
          if (this.failing) {
            this.failing = false;
            this.log?.info({ failedBatches: this.failedBatches, failed: this.failed }, 'audit log writes succeed again');
          }
        },
        (err: unknown) => {
          this.failed += batch.length;
          this.failedBatches++;
          if (!this.failing) {
            this.failing = true;
            this.log?.error(
              { err: String(err), lost: batch.length },
              'audit log write failed: its records are lost, the log goes on (logged once until writes succeed again)',
            );
          }
        },
      )
      .finally(() => {
        this.writtenThrough = Math.max(this.writtenThrough, through);
        this.inFlight = [];
      });
  }

  /** Seqs of stored records the bounds push out, oldest first, once `adding` more are written. */
  private overflow(adding: number, now: number): number[] {
    const excess = Math.max(0, this.stored + adding - this.maxRecords);
    const byCount = Math.min(excess, this.stored);
    const cutoff = now - this.maxAgeMs;
    const candidates = this.backend.oldest(byCount + AGE_PRUNE_MAX);
    const remove: number[] = [];
    for (const { seq, timeMs } of candidates) {
      if (remove.length < byCount || timeMs < cutoff) remove.push(seq);
      else break;
    }
    return remove;
  }

  /** Completes the fresh entries (program, command line) into the queue and tells the followers. */
  private complete(): void {
    this.completing = false;
    if (this.fresh.length === 0) return;
    const fresh = this.fresh;
    this.fresh = [];
    // One look at /proc per pid per run: a flood comes from few processes.
    const facts = new Map<number, ProcessFacts>();
    for (const { seq, timeMs, entry } of fresh) {
      let known = facts.get(entry.pid);
      if (known === undefined) {
        try {
          known = entry.pid > 0 ? this.processFacts(entry.pid) : unknownProcess();
        } catch {
          known = unknownProcess();
        }
        facts.set(entry.pid, known);
      }
      const record = completeRecord(seq, timeMs, entry, known);
      this.queue.push(record);
      for (const listener of [...this.listeners]) {
        try {
          listener(record);
        } catch {
          this.listeners.delete(listener);
        }
      }
    }
  }

  /** The records appended and completed but not in the backend yet, oldest first. */
  private pending(): DetailedAuditRecord[] {
    return this.inFlight.length === 0 ? this.queue : [...this.inFlight, ...this.queue];
  }
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}

/** An entry as the record it is stored as: every field, null where unknown. */
export function completeRecord(seq: number, timeMs: number, e: AuditEntry, facts: ProcessFacts): DetailedAuditRecord {
  return {
    seq,
    time: new Date(timeMs).toISOString(),
    op: e.op,
    path: e.path,
    uid: e.uid,
    gid: e.gid,
    groups: e.groups === undefined || e.groups === null ? null : [...e.groups],
    pid: e.pid,
    program: facts.program,
    cmdline: facts.cmdline,
    file: e.file === undefined || e.file === null ? null : { dev: e.file.dev, ino: e.file.ino },
    access: e.access,
    decision: e.decision ?? 'deny',
    enforced: e.enforced,
    rule: e.rule,
    rulePath: e.rulePath ?? null,
    entry: e.entry ?? null,
    epoch: e.epoch ?? null,
    reason: e.reason,
  };
}

// ---- LMDB -------------------------------------------------------------------

/**
 * A record as stored: a tuple (msgpack writes no field names), keyed by seq.
 * [timeMs, op, path, uid, gid, groups, pid, program, cmdline, dev, ino,
 * access, decision (1 allow, 0 deny), enforced (1/0), rule, rulePath,
 * entry, epoch, reason]; dev and ino are -1 when unknown.
 */
type StoredRecord = [
  number,
  string,
  string,
  number,
  number,
  number[] | null,
  number,
  string | null,
  string | null,
  number,
  number,
  string,
  number,
  number,
  number | null,
  string | null,
  string | null,
  number | null,
  string,
];

function toStored(r: DetailedAuditRecord): StoredRecord {
  return [
    Date.parse(r.time),
    r.op,
    r.path,
    r.uid,
    r.gid,
    r.groups === null ? null : [...r.groups],
    r.pid,
    r.program,
    r.cmdline,
    r.file?.dev ?? -1,
    r.file?.ino ?? -1,
    r.access,
    r.decision === 'allow' ? 1 : 0,
    r.enforced ? 1 : 0,
    r.rule,
    r.rulePath,
    r.entry,
    r.epoch,
    r.reason,
  ];
}

function fromStored(seq: number, s: StoredRecord): DetailedAuditRecord {
  const decision: AuditDecision = s[12] === 1 ? 'allow' : 'deny';
  return {
    seq,
    time: new Date(s[0]).toISOString(),
    op: s[1],
    path: s[2],
    uid: s[3],
    gid: s[4],
    groups: s[5],
    pid: s[6],
    program: s[7],
    cmdline: s[8],
    file: s[9] < 0 ? null : { dev: s[9], ino: s[10] },
    access: s[11],
    decision,
    enforced: s[13] === 1,
    rule: s[14],
    rulePath: s[15],
    entry: s[16],
    epoch: s[17],
    reason: s[18],
  };
}

/** The audit log's own LMDB environment: one database, seq -> StoredRecord. */
export class LmdbAuditBackend implements AuditBackend {
  private constructor(
    private readonly env: RootDatabase,
    private readonly records: Database<StoredRecord, number>,
  ) {}

  static open(dir: string): LmdbAuditBackend {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // noSubdir: false as for the rule database (a dotted directory name is still a directory).
    const env = open({ path: dir, noSubdir: false, maxDbs: 2 });
    try {
      for (const file of ['data.mdb', 'lock.mdb']) fs.chmodSync(`${dir}/${file}`, 0o600);
    } catch {
      /* the files are LMDB's; their mode follows the umask then */
    }
    return new LmdbAuditBackend(env, env.openDB<StoredRecord, number>({ name: 'records' }));
  }

  newest(): number {
    for (const key of this.records.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  count(): number {
    const stats = this.records.getStats() as { entryCount?: unknown };
    return typeof stats.entryCount === 'number' ? stats.entryCount : this.records.getCount();
  }

  range(after: number, limit: number): DetailedAuditRecord[] {
    const out: DetailedAuditRecord[] = [];
    for (const { key, value } of this.records.getRange({ start: after, limit: limit + 1 })) {
      if (key <= after) continue;
      if (out.length >= limit) break;
      out.push(fromStored(key, value));
    }
    return out;
  }

  oldest(limit: number): { seq: number; timeMs: number }[] {
    const out: { seq: number; timeMs: number }[] = [];
    for (const { key, value } of this.records.getRange({ limit })) out.push({ seq: key, timeMs: value[0] });
    return out;
  }

  write(records: readonly DetailedAuditRecord[], remove: readonly number[]): Promise<void> {
    return this.records
      .batch(() => {
        for (const seq of remove) void this.records.remove(seq);
        for (const r of records) void this.records.put(r.seq, toStored(r));
      })
      .then(() => undefined);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
