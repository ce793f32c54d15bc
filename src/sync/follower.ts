// The daemon's side of fleet sync: it keeps the local rule database a copy
// of the rules under an etcd prefix. The filter never reads etcd; it reads
// the local LMDB as always, so a host whose etcd is unreachable goes on
// enforcing the last rule set it applied.
//
//   - A session starts by asking etcd for its revision. With no sync mark
//     for this source (first start, another prefix or cluster, a rule
//     written here meanwhile), with etcd behind the mark (a restored or
//     recreated cluster), or when etcd has compacted past the mark, the
//     whole rule set is read at one revision and applied in one LMDB
//     transaction (a full load). Otherwise it resumes after the mark.
//   - Then it watches the prefix from the next revision and applies each
//     etcd revision's changes as one LMDB transaction, recording that
//     revision with them (store.applySync): a reader sees all of a
//     revision or none of it, and a restart resumes exactly after it.
//   - A lost watch, a failed probe (etcd is asked for its status every
//     second) or a cancelled watch (compaction) ends the session; the next
//     one starts after a backoff of 100 ms doubling to 2 s.
//
// Everything here runs on the daemon's event loop, as do the FUSE handlers
// that read the store: an apply is one synchronous transaction, never
// interleaved with a decision. The fields below are touched only there.
import type { IWatchResponse, Watcher } from 'etcd3';
import type { NameResolver } from '../rules/names';
import { ruleBodyParser } from '../rules/ruleFile';
import type { RuleStore, SyncItem } from '../store/store';
import { describeEtcdError, EtcdConnection, isCompacted, PROBE_TIMEOUT_MS } from './etcd';
import { RuleKeys, type SyncTarget } from './target';
import { parseKey, type RuleBodyParser } from './values';

const PROBE_MS = 1000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export type SyncState = 'connecting' | 'loading' | 'following' | 'unreachable' | 'stopped';

export interface SyncLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface FollowerStatus {
  readonly source: string;
  readonly prefix: string;
  readonly state: SyncState;
  /** The last etcd revision applied to the local database (from the sync mark); null before the first. */
  readonly revision: number | null;
  /** When etcd last answered (a probe, a watch event, a load). */
  readonly lastContactAt: Date | null;
  /** When a revision was last applied (or found already applied, at a resume). */
  readonly lastAppliedAt: Date | null;
  /** Full loads since the daemon started. */
  readonly fullLoads: number;
  /** Paths whose value did not parse and that stand as rules granting nothing (see values.ts). */
  readonly invalidPaths: readonly string[];
  readonly lastError: string | null;
}

export interface FollowerOptions {
  readonly store: RuleStore;
  readonly target: SyncTarget;
  readonly names: NameResolver;
  readonly log: SyncLog;
}

export class Follower {
  readonly keys: RuleKeys;
  readonly etcd: EtcdConnection;
  private readonly parseBody: RuleBodyParser;
  private state: SyncState = 'connecting';
  private lastContactAt: Date | null = null;
  private lastAppliedAt: Date | null = null;
  private fullLoads = 0;
  private lastError: string | null = null;
  private readonly invalid = new Set<string>();
  private stopped = false;
  /** Ends the current session (stop(), or a lost watch); null between sessions. */
  private endSession: ((err?: unknown) => void) | null = null;
  private wakeRetry: (() => void) | null = null;
  private running: Promise<void> | null = null;
  /** Callers of waitApplied(), woken after each apply. */
  private readonly appliedWaiters = new Set<() => void>();

  constructor(private readonly options: FollowerOptions) {
    this.keys = new RuleKeys(options.target.prefix);
    this.parseBody = ruleBodyParser(options.names);
    this.etcd = new EtcdConnection(options.target);
  }

  /** Starts following in the background; never throws (problems go to the log and `status`). */
  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    this.endSession?.();
    this.wakeRetry?.();
    // A call to an unreachable etcd may take its deadline to fail: closing
    // the client ends it sooner.
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    this.etcd.close();
  }

  status(): FollowerStatus {
    return {
      source: this.options.target.source,
      prefix: this.options.target.prefix,
      state: this.state,
      revision: this.appliedRevision(),
      lastContactAt: this.lastContactAt,
      lastAppliedAt: this.lastAppliedAt,
      fullLoads: this.fullLoads,
      invalidPaths: [...this.invalid].sort(),
      lastError: this.lastError,
    };
  }

  /** The revision of the sync mark, when it is this source's. */
  appliedRevision(): number | null {
    const mark = this.options.store.syncMark();
    return mark !== null && mark.source === this.options.target.source ? mark.revision : null;
  }

  /** Resolves true once revision `revision` is applied here, false after `timeoutMs`. */
  waitApplied(revision: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if ((this.appliedRevision() ?? 0) < revision) return;
        clearTimeout(timer);
        this.appliedWaiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.appliedWaiters.delete(check);
        resolve(false);
      }, timeoutMs);
      this.appliedWaiters.add(check);
      check();
    });
  }

  private async run(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      let followed = false;
      try {
        followed = await this.session();
      } catch (err) {
        if (this.stopped) break;
        const message = describeEtcdError(err);
        if (this.state !== 'unreachable' || message !== this.lastError) {
          this.options.log.warn({ err: message, revision: this.appliedRevision() }, 'fleet sync: etcd unreachable or the watch ended; enforcing the last rule set applied, retrying');
        }
        this.lastError = message;
      }
      if (this.stopped) break;
      this.state = 'unreachable';
      if (followed) delay = RETRY_MIN_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRetry = null;
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  /** One connection: load or resume, then follow until the watch ends. Resolves true when it got as far as following. */
  private async session(): Promise<boolean> {
    const store = this.options.store;
    const { log, target } = this.options;
    this.state = 'connecting';
    const header = await this.etcd.header();
    this.contact();
    const mark = store.syncMark();
    let reload: string | null = null;
    if (mark === null) reload = 'no etcd revision recorded in the local database';
    else if (mark.source !== target.source) reload = `the local rules came from ${mark.source}`;
    else if (mark.cluster !== header.cluster) reload = `the local rules came from another etcd cluster (${mark.cluster}, now ${header.cluster})`;
    else if (mark.revision > header.revision) reload = `etcd is at revision ${header.revision}, behind the ${mark.revision} applied here (restored or recreated)`;
    else if (mark.revision < header.revision && (await this.etcd.compactedPast(this.keys.rulesPrefix, mark.revision + 1))) {
      reload = `etcd has compacted past revision ${mark.revision + 1}, the next one this host needs`;
    }
    if (this.stopped) return false;
    let from: number;
    if (reload !== null) {
      from = await this.fullLoad(reload, header.cluster);
    } else {
      from = mark!.revision;
      this.lastAppliedAt ??= new Date();
      log.info({ source: target.source, revision: from }, 'fleet sync: resuming after the revision applied here');
    }
    if (this.stopped) return false;
    return this.follow(from, header.cluster);
  }

  /** Reads every rule at one revision and makes the local rule set exactly that, in one transaction. Returns the revision. */
  private async fullLoad(reason: string, cluster: string): Promise<number> {
    const { log, target, store } = this.options;
    this.state = 'loading';
    log.info({ source: target.source, reason }, 'fleet sync: full reload of the rule set');
    const started = process.hrtime.bigint();
    const read = await this.etcd.readPrefix(this.keys.rulesPrefix);
    this.contact();
    if (this.stopped) return read.revision;
    const items: SyncItem[] = [];
    this.invalid.clear();
    for (const kv of read.kvs) {
      const parsed = parseKey(this.keys, kv.key, kv.value, kv.modRevision, this.parseBody);
      if (!this.noteParsed(parsed)) continue;
      items.push(parsed.item);
    }
    const result = store.applySync(items, { source: target.source, cluster: read.cluster || cluster, revision: read.revision }, true);
    this.fullLoads++;
    this.applied();
    log.info(
      { revision: read.revision, rules: items.length, ...result, ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100 },
      'fleet sync: rule set loaded',
    );
    return read.revision;
  }

  /** Watches from `from`+1 until the session ends; resolves true when it ended after following (a reconnect), rejects on a failure. */
  private follow(from: number, cluster: string): Promise<boolean> {
    const { log, target } = this.options;
    return new Promise<boolean>((resolve, reject) => {
      let done = false;
      let following = false;
      const watcher: Watcher = this.etcd.client.watch().prefix(this.keys.rulesPrefix).startRevision(String(from + 1)).watcher();
      const end = (err?: unknown): void => {
        if (done) return;
        done = true;
        clearInterval(probe);
        this.endSession = null;
        // Detaching a watcher whose stream is gone only drops it; a live one is cancelled.
        watcher.cancel().catch(() => undefined);
        if (err === undefined || this.stopped) resolve(following);
        else reject(err instanceof Error ? err : new Error(String(err)));
      };
      this.endSession = end;
      watcher.on('connected', () => {
        if (done) return;
        following = true;
        this.state = 'following';
        this.lastError = null;
        this.contact();
        log.info({ source: target.source, from: from + 1 }, 'fleet sync: following etcd');
      });
      watcher.on('data', (res: IWatchResponse) => {
        if (done) return;
        try {
          this.contact();
          this.applyEvents(res, cluster);
        } catch (err) {
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'fleet sync: applying a revision failed; starting over from the last one applied');
          end(err);
        }
      });
      watcher.on('disconnected', (err: Error) => end(new Error(`watch stream lost: ${err.message}`)));
      watcher.on('error', (err: Error) => {
        // etcd cancels a watch whose start it has compacted away; the next
        // session finds out and reloads.
        end(isCompacted(err) || /canceled/i.test(err.message) ? new Error(`watch cancelled by etcd (compacted?): ${err.message}`) : err);
      });
      const probe = setInterval(() => {
        // A rule written into the database outside the sync (aclfs ... --db)
        // drops the mark: the local rules are no longer etcd's revision, so
        // the next session reloads them.
        if (this.appliedRevision() === null) {
          end(new Error('the local rules were changed outside the sync: reloading them from etcd'));
          return;
        }
        this.etcd.header(PROBE_TIMEOUT_MS).then(
          () => {
            if (!done) this.contact();
          },
          (err: unknown) => end(new Error(`etcd does not answer: ${err instanceof Error ? err.message : String(err)}`)),
        );
      }, PROBE_MS);
    });
  }

  /** Applies the events of one watch response, one LMDB transaction per etcd revision, in order. */
  private applyEvents(res: IWatchResponse, cluster: string): void {
    const { store, target, log } = this.options;
    const mark = this.appliedRevision() ?? 0;
    let batch: SyncItem[] = [];
    let batchRevision = 0;
    const flush = (): void => {
      if (batchRevision === 0) return;
      const result = store.applySync(batch, { source: target.source, cluster, revision: batchRevision }, false);
      this.applied();
      log.info({ revision: batchRevision, ...result }, 'fleet sync: applied a revision');
      batch = [];
      batchRevision = 0;
    };
    for (const event of res.events) {
      const revision = Number(event.kv.mod_revision);
      // Before the mark: already applied (never twice). At the mark itself
      // it can only be the rest of a revision etcd split across responses;
      // puts and deletes by path apply again harmlessly.
      if (revision < mark) continue;
      if (revision !== batchRevision) flush();
      batchRevision = revision;
      const parsed = parseKey(this.keys, event.kv.key.toString('utf8'), event.type === 'Delete' ? null : event.kv.value, revision, this.parseBody);
      if (this.noteParsed(parsed)) batch.push(parsed.item);
    }
    flush();
  }

  /** Logs what does not parse and keeps the set of invalid paths; false for a key that is not applied at all. */
  private noteParsed(parsed: ReturnType<typeof parseKey>): parsed is Exclude<ReturnType<typeof parseKey>, { kind: 'skipped' }> {
    const log = this.options.log;
    if (parsed.kind === 'skipped') {
      log.warn({ key: parsed.key, problem: parsed.problem }, 'fleet sync: key skipped');
      return false;
    }
    if (parsed.kind === 'invalid') {
      this.invalid.add(parsed.item.path);
      log.error({ path: parsed.item.path, problem: parsed.problem }, 'fleet sync: invalid rule value; this path grants nothing here until it is fixed');
    } else {
      this.invalid.delete(parsed.item.path);
    }
    return true;
  }

  private contact(): void {
    this.lastContactAt = new Date();
  }

  private applied(): void {
    this.lastAppliedAt = new Date();
    for (const wake of [...this.appliedWaiters]) wake();
  }
}

