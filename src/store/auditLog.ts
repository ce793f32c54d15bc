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
// Memory: a record waiting to be written is kept encoded (JSON bytes in one
// buffer, its seq and end offset in number arrays), not as an object: under
// a flood of denials objects kept for a flush interval would outlive V8's
// young generation and pile up in the old one (the daemon runs with a 1 MiB
// semi-space), growing its RSS by megabytes a second. Records are objects
// only on their way out: to a follower, or to a query.
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

/** A record as stored: its seq, and its fields encoded by encodeRecord(). */
export interface EncodedRecord {
  readonly seq: number;
  readonly bytes: Uint8Array;
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
  /** Stores `records` (encoded: encodeRecord) and removes `remove` (seqs) in one transaction. */
  write(records: readonly EncodedRecord[], remove: readonly number[]): Promise<void>;
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
  /**
   * Drops this process's mappings of the environment's data file (the
   * addon's releaseMappedFile, as the rule store uses it): every new leaf
   * page is read through the memory map once when the next record is put
   * after it, so without this the daemon's RSS would grow with the log.
   * Called after each write (it costs a look at /proc/self/maps).
   */
  readonly releaseMappedPages?: () => void;
  /** Told once when writes start failing, and once when they succeed again. */
  readonly log?: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export type AuditLogListener = (record: DetailedAuditRecord) => void;

const unknownProcess = (): ProcessFacts => ({ program: null, cmdline: null });

export class DurableAuditLog {
  private readonly backend: AuditBackend;
  private readonly maxRecords: number;
  private readonly maxAgeMs: number;
  private readonly capacity: number;
  private readonly clock: () => number;
  private readonly processFacts: (pid: number) => ProcessFacts;
  private readonly log: AuditLogOptions['log'];
  private readonly releaseMappedPages: (() => void) | undefined;
  /** Appended, not completed yet (see complete()): seq, time and entry, index by index. */
  private freshSeqs: number[] = [];
  private freshTimes: number[] = [];
  private freshEntries: AuditEntry[] = [];
  /** Completed, waiting for a batch, encoded. Oldest first. */
  private readonly queue = new EncodedQueue();
  /** The batch being written; its records are not readable from the backend until it settles. */
  private inFlight: EncodedRun = EMPTY_RUN;
  /** Program and command line per pid, read once per flush interval (cleared at each flush). */
  private readonly facts = new Map<number, ProcessFacts>();
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
  /** A batch is being written (one at a time: the queue's and the backend's buffers are reused). */
  private writing = false;
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
    this.releaseMappedPages = options.releaseMappedPages;
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
    if (this.closed || this.freshSeqs.length + this.queue.length >= this.capacity) {
      this.dropped++;
      return 0;
    }
    const seq = ++this.lastSeq;
    this.freshSeqs.push(seq);
    this.freshTimes.push(this.clock());
    this.freshEntries.push(entry);
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
      queued: this.freshSeqs.length + this.queue.length + this.inFlight.seqs.length,
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
        for (const run of [this.inFlight, this.queue.run()]) {
          for (let i = 0; i < run.seqs.length && !full(); i++) {
            if (run.seqs[i]! <= cursor) continue;
            take(decodeRecord(run.seqs[i]!, run.bytes.subarray(i === 0 ? 0 : run.ends[i - 1]!, run.ends[i]!)));
          }
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
    while (this.queue.length > 0 || this.freshSeqs.length > 0) {
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
    this.facts.clear();
    if (this.writing) return;
    const now = this.clock();
    if (this.queue.length === 0 && now - this.lastPrune < AGE_PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    const batch = this.queue.take(BATCH_MAX);
    const count = batch.seqs.length;
    const remove = this.overflow(count, now);
    if (count === 0 && remove.length === 0) return;
    // What the count bound pushes out of this very batch is not written.
    const over = Math.max(0, this.stored - remove.length + count - this.maxRecords);
    const keep: EncodedRecord[] = [];
    for (let i = over; i < count; i++) keep.push({ seq: batch.seqs[i]!, bytes: batch.bytes.subarray(i === 0 ? 0 : batch.ends[i - 1]!, batch.ends[i]!) });
    this.inFlight = batch;
    this.writing = true;
    const through = count === 0 ? this.writtenThrough : batch.seqs[count - 1]!;
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
          if (this.releaseMappedPages !== undefined) {
            try {
              this.releaseMappedPages();
            } catch {
              /* only RSS is at stake */
            }
          }
          if (this.failing) {
            this.failing = false;
            this.log?.info({ failedBatches: this.failedBatches, failed: this.failed }, 'audit log writes succeed again');
          }
        },
        (err: unknown) => {
          this.failed += count;
          this.failedBatches++;
          if (!this.failing) {
            this.failing = true;
            this.log?.error(
              { err: String(err), lost: count },
              'audit log write failed: its records are lost, the log goes on (logged once until writes succeed again)',
            );
          }
        },
      )
      .finally(() => {
        this.writtenThrough = Math.max(this.writtenThrough, through);
        this.inFlight = EMPTY_RUN;
        this.writing = false;
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

  /** Completes the fresh entries (program, command line) into the queue, encoded, and tells the followers. */
  private complete(): void {
    this.completing = false;
    const count = this.freshSeqs.length;
    if (count === 0) return;
    const seqs = this.freshSeqs;
    const times = this.freshTimes;
    const entries = this.freshEntries;
    this.freshSeqs = [];
    this.freshTimes = [];
    this.freshEntries = [];
    const listeners = this.listeners.size > 0 ? [...this.listeners] : null;
    for (let i = 0; i < count; i++) {
      const entry = entries[i]!;
      // One look at /proc per pid per flush interval: a flood comes from few processes.
      let known = this.facts.get(entry.pid);
      if (known === undefined) {
        try {
          known = entry.pid > 0 ? this.processFacts(entry.pid) : unknownProcess();
        } catch {
          known = unknownProcess();
        }
        this.facts.set(entry.pid, known);
      }
      if (listeners === null) {
        // No object made that would outlive this turn.
        this.queue.push(seqs[i]!, encodeEntry(times[i]!, entry, known));
        continue;
      }
      const record = completeRecord(seqs[i]!, times[i]!, entry, known);
      this.queue.push(record.seq, encodeRecord(record));
      for (const listener of listeners) {
        try {
          listener(record);
        } catch {
          this.listeners.delete(listener);
        }
      }
    }
  }
}

/** A run of encoded records: seqs, and where each one's bytes end in `bytes` (each starts where the one before ends). */
interface EncodedRun {
  readonly seqs: readonly number[];
  readonly ends: readonly number[];
  readonly bytes: Buffer;
}

const EMPTY_RUN: EncodedRun = { seqs: [], ends: [], bytes: Buffer.alloc(0) };

/**
 * Encoded records in one buffer, oldest first: no object per record (see
 * "Memory" above). take() hands the oldest out as a run of their own.
 */
class EncodedQueue {
  private bytes = Buffer.allocUnsafe(64 * 1024);
  /** Where take() copies a batch to: reused, as one batch is written at a time. */
  private spare = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private readonly seqs: number[] = [];
  private readonly ends: number[] = [];

  get length(): number {
    return this.seqs.length;
  }

  push(seq: number, text: string): void {
    const size = Buffer.byteLength(text);
    if (this.used + size > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + size));
      this.bytes.copy(bigger, 0, 0, this.used);
      this.bytes = bigger;
    }
    this.used += this.bytes.write(text, this.used, 'utf8');
    this.seqs.push(seq);
    this.ends.push(this.used);
  }

  /** What waits, as a run (valid until the next push or take). */
  run(): EncodedRun {
    return { seqs: this.seqs, ends: this.ends, bytes: this.bytes };
  }

  /**
   * The `max` oldest, copied out, and gone from here. The copy is valid
   * until the next take(): a batch is written before the next is taken.
   * (Buffers reused, not made per batch: one made per batch would live
   * until its write commits, be promoted, and hold its memory outside the
   * heap until a full collection.)
   */
  take(max: number): EncodedRun {
    const n = Math.min(max, this.seqs.length);
    if (n === 0) return EMPTY_RUN;
    const cut = this.ends[n - 1]!;
    if (this.spare.length < cut) this.spare = Buffer.allocUnsafe(Math.max(this.spare.length * 2, cut));
    this.bytes.copy(this.spare, 0, 0, cut);
    const bytes = this.spare.subarray(0, cut);
    const seqs = this.seqs.splice(0, n);
    const ends = this.ends.splice(0, n);
    this.bytes.copyWithin(0, cut, this.used);
    this.used -= cut;
    for (let i = 0; i < this.ends.length; i++) this.ends[i]! -= cut;
    return { seqs, ends, bytes };
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

// ---- encoding and LMDB --------------------------------------------------------

/**
 * A record as stored: a JSON array (no field names), keyed by seq.
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

/** The stored form of an entry completed with `facts` at `timeMs` (encodeRecord of completeRecord, without the record). */
function encodeEntry(timeMs: number, e: AuditEntry, facts: ProcessFacts): string {
  const file = e.file ?? null;
  const stored: StoredRecord = [
    timeMs,
    e.op,
    e.path,
    e.uid,
    e.gid,
    (e.groups ?? null) as number[] | null,
    e.pid,
    facts.program,
    facts.cmdline,
    file === null ? -1 : file.dev,
    file === null ? -1 : file.ino,
    e.access,
    (e.decision ?? 'deny') === 'allow' ? 1 : 0,
    e.enforced ? 1 : 0,
    e.rule,
    e.rulePath ?? null,
    e.entry ?? null,
    e.epoch ?? null,
    e.reason,
  ];
  return JSON.stringify(stored);
}

/** The stored form of `r` (its seq is the key). */
export function encodeRecord(r: DetailedAuditRecord): string {
  const stored: StoredRecord = [
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
  return JSON.stringify(stored);
}

/** The record stored under `seq` as `bytes` (encodeRecord's UTF-8). */
export function decodeRecord(seq: number, bytes: Uint8Array): DetailedAuditRecord {
  const s = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as StoredRecord;
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

/** The time (ms) of an encoded record, without decoding the rest. */
function storedTime(bytes: Uint8Array): number {
  // "[1767225600000," : the first element, digits only.
  let t = 0;
  for (let i = 1; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x30 || c > 0x39) break;
    t = t * 10 + (c - 0x30);
  }
  return t;
}

/**
 * The audit log's own LMDB environment. Records are stored in blocks, one
 * per batch: key the block's first seq, value its records one a line,
 * "SEQ<TAB>encodeRecord()\n". One put per batch keeps a flood cheap: no
 * per-record B-tree work or pending write, and the block (an overflow page
 * run) is written without being read back through the memory map. The
 * bounds remove whole blocks, and rewrite the one they cut through.
 */
export class LmdbAuditBackend implements AuditBackend {
  private constructor(
    private readonly env: RootDatabase,
    private readonly blocks: Database<Buffer, number>,
    private readonly meta: Database<number, string>,
    /** Records stored, as of the last committed write. */
    private stored: number,
  ) {}

  /** The block being written (see joinInto). */
  private blockBuffer = Buffer.allocUnsafe(64 * 1024);

  static open(dir: string): LmdbAuditBackend {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // noSubdir: false as for the rule database (a dotted directory name is still a directory).
    const env = open({ path: dir, noSubdir: false, maxDbs: 2 });
    try {
      for (const file of ['data.mdb', 'lock.mdb']) fs.chmodSync(`${dir}/${file}`, 0o600);
    } catch {
      /* the files are LMDB's; their mode follows the umask then */
    }
    const blocks = env.openDB<Buffer, number>({ name: 'blocks', encoding: 'binary' });
    const meta = env.openDB<number, string>({ name: 'meta' });
    return new LmdbAuditBackend(env, blocks, meta, meta.get('count') ?? 0);
  }

  newest(): number {
    for (const { value } of this.blocks.getRange({ reverse: true, limit: 1 })) {
      const lines = blockLines(value);
      return lines.at(-1)?.seq ?? 0;
    }
    return 0;
  }

  count(): number {
    return this.stored;
  }

  range(after: number, limit: number): DetailedAuditRecord[] {
    const out: DetailedAuditRecord[] = [];
    let start: number | undefined;
    for (const key of this.blocks.getKeys({ start: after + 1, reverse: true, limit: 1 })) start = key;
    for (const { value } of this.blocks.getRange(start === undefined ? {} : { start })) {
      for (const line of blockLines(value)) {
        if (line.seq <= after) continue;
        out.push(decodeRecord(line.seq, line.bytes));
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  oldest(limit: number): { seq: number; timeMs: number }[] {
    const out: { seq: number; timeMs: number }[] = [];
    for (const { value } of this.blocks.getRange({})) {
      for (const line of blockLines(value)) {
        out.push({ seq: line.seq, timeMs: storedTime(line.bytes) });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  write(records: readonly EncodedRecord[], remove: readonly number[]): Promise<void> {
    const through = remove.length === 0 ? 0 : Math.max(...remove);
    // What the removal reads and rewrites is worked out before the batch.
    const drop: number[] = [];
    let rewrite: { from: number; key: number; value: Buffer } | null = null;
    let removed = 0;
    if (through > 0) {
      for (const { key, value } of this.blocks.getRange({})) {
        if (key > through) break;
        const lines = blockLines(value);
        const kept = lines.filter((l) => l.seq > through);
        removed += lines.length - kept.length;
        if (kept.length === 0) {
          drop.push(key);
          continue;
        }
        rewrite = { from: key, key: kept[0]!.seq, value: joinLines(kept) };
        break;
      }
    }
    const count = this.stored + records.length - removed;
    const block = records.length === 0 ? null : this.joinInto(records);
    return this.blocks
      .batch(() => {
        for (const key of drop) void this.blocks.remove(key);
        if (rewrite !== null) {
          void this.blocks.remove(rewrite.from);
          void this.blocks.put(rewrite.key, rewrite.value);
        }
        if (block !== null) void this.blocks.put(records[0]!.seq, block);
        void this.meta.put('count', count);
      })
      .then(() => {
        this.stored = count;
      });
  }

  async close(): Promise<void> {
    await this.env.close();
  }

  /** `records` as one block, in a buffer reused from write to write (one write at a time). */
  private joinInto(records: readonly { readonly seq: number; readonly bytes: Uint8Array }[]): Buffer {
    const size = blockSize(records);
    if (this.blockBuffer.length < size) this.blockBuffer = Buffer.allocUnsafe(Math.max(this.blockBuffer.length * 2, size));
    return joinLines(records, this.blockBuffer.subarray(0, size));
  }
}

function blockSize(records: readonly { readonly seq: number; readonly bytes: Uint8Array }[]): number {
  let size = 0;
  for (const r of records) size += String(r.seq).length + 2 + r.bytes.length;
  return size;
}

/** One record of a block: its seq and encoded bytes. */
interface BlockLine {
  readonly seq: number;
  readonly bytes: Uint8Array;
}

/** The records of a block, oldest first. */
function blockLines(block: Uint8Array): BlockLine[] {
  const lines: BlockLine[] = [];
  let at = 0;
  while (at < block.length) {
    let seq = 0;
    let i = at;
    for (; i < block.length && block[i] !== 0x09; i++) seq = seq * 10 + (block[i]! - 0x30);
    const end = block.indexOf(0x0a, i + 1);
    const stop = end < 0 ? block.length : end;
    lines.push({ seq, bytes: block.subarray(i + 1, stop) });
    at = stop + 1;
  }
  return lines;
}

/** Records as one block, in `into` (of blockSize()), or a new buffer. */
function joinLines(records: readonly { readonly seq: number; readonly bytes: Uint8Array }[], into?: Buffer): Buffer {
  const out = into ?? Buffer.allocUnsafe(blockSize(records));
  let at = 0;
  for (const r of records) {
    at += out.write(`${r.seq}\t`, at, 'latin1');
    out.set(r.bytes, at);
    at += r.bytes.length;
    out[at++] = 0x0a;
  }
  return out;
}
