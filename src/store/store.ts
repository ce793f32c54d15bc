// The rule store: every read and write of rules, over the databases of
// schema.ts. Reads serve decide() (RuleView) and the admin API; each write
// is one synchronous transaction that keeps a rule and its index entries in
// step and advances the commit epoch around its commit (epoch.ts).

import fs from 'node:fs';
import nodePath from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import { AclfsError, conflict, DamagedDatabaseError, invalid, notFound } from '../errors';
import { isAtOrBelow, normalizePath } from '../rules/path';
import { ruleInputOf, toRuleFileRule, type RuleFileRule } from '../rules/ruleFile';
import type { FileIdentity, Rule, RuleInput, RuleView } from '../rules/types';
import { IndexValueError, plainRule, RECORD_FORMAT, RecordFormatError, sameRecord } from './codec';
import { inspectDataFile, prepareDirectory, readFailure, restrictFiles } from './dataFile';
import { CommitEpoch, type FileMapper } from './epoch';
import { DEFAULT_HISTORY_LIMIT, DEFAULT_MAX_CHANGES, difference, Journal, netChanges, undo, type HistoryRecord, type RuleChange } from './history';
import {
  convertToCurrentFormat,
  DATA_FILE,
  inodeKey,
  META,
  MSGPACK_FORMAT,
  openDatabases,
  openEnvironment,
  openSyncDatabase,
  SYNC_MARK,
  type Databases,
  type SyncMark,
  type SyncValue,
} from './schema';
import {
  checkPath,
  DEFAULT_LIST_LIMIT,
  fitsRulePath,
  isBirth,
  isFileId,
  isRuleId,
  isWellFormedPathText,
  MAX_LIST_LIMIT,
  MAX_RULE_ID,
  pathTextProblem,
  renamePathError,
  validateRuleInput,
} from '../rules/validate';

export { DATA_FILE, inodeKey, LOCK_FILE, type SyncMark } from './schema';

const GENERATION = META.generation;
const NEXT_ID = META.nextId;
const INODE_RULES_BUILT = META.inodeRulesBuilt;
const HISTORY_FLOOR = META.historyFloor;
const EXPIRED_THROUGH = META.expiredThrough;
/** Digits of the expiry in an expiry index key: ms up to year 9999 fit in 15, padded to 16. */
const EXPIRY_DIGITS = 16;

/** The expiry index's key: the time zero-padded (so keys sort by time), then the rule id. */
function expiryKey(expires: number, id: number): string {
  return `${String(expires).padStart(EXPIRY_DIGITS, '0')}:${id}`;
}
/** Who writes when no one said (the CLI on the database itself). */
const LOCAL_ACTOR = 'local (--db)';
/** How long open() waits before looking at a data file that seemed damaged a second time. */
const CREATION_GRACE_MS = 100;
/** exportRules reports progress this often, in rules. */
const EXPORT_PROGRESS_STEP = 1000;

export interface ListOptions {
  /** Only this path and everything below it ("/docs" ⊇ "/docs/a", not "/docsx"). */
  readonly prefix?: string;
  /** `nextCursor` of the previous page; the page starts after it. */
  readonly cursor?: string;
  /** Page size, 1..10000 (default 1000). */
  readonly limit?: number;
}

export interface ListPage {
  /** Ordered by path (byte order of the UTF-8 path). */
  readonly rules: Rule[];
  /** Opaque; pass back as `cursor` for the next page. Null on the last page. */
  readonly nextCursor: string | null;
}

export interface ImportOptions {
  /** Delete every rule first (the file becomes the whole rule set). */
  readonly replace?: boolean;
}

/** How much history a store keeps (see history.ts). */
export interface HistoryBounds {
  /** Records kept, the oldest dropped first. */
  readonly limit: number;
  /** Changes recorded per commit; a bigger commit is recorded by its count. */
  readonly maxChanges: number;
}

/** A change read backwards. */
function reverseChange(change: RuleChange): RuleChange {
  return { path: change.path, before: change.after, after: change.before };
}

export interface ImportResult {
  readonly created: number;
  readonly updated: number;
}

type Validated = ReturnType<typeof validateRuleInput>;

/** One change of a synced rule set: the rule now at `path` (null: none), and the etcd mod revision that says so. */
export interface SyncItem {
  readonly path: string;
  readonly rule: RuleInput | null;
  readonly modRevision: number;
}

export interface SyncApplyResult {
  /** Rules created or replaced. */
  readonly put: number;
  readonly removed: number;
  /** Rules given that were already stored as they are (left alone: no commit for them). */
  readonly unchanged: number;
}

export class RuleStore implements RuleView {
  /** Set by any write inside the current transaction; see write(). */
  private dirty = false;
  /** Epoch at the last read-transaction renewal; see snapshot(). */
  private snapshotEpoch: number | null = null;
  /** The changes of the current write transaction (history.ts); null outside one. */
  private journal: Journal | null = null;
  /** Who the history names for the writes now made (see asActor; null: actorSource's, else the default), and what they are. */
  private actor: string | null = null;
  private note: string | null = null;
  /** Who makes a write no asActor names: the daemon asks who is making the admin request being served. */
  private actorSource: () => string | null = () => null;
  private defaultActor = LOCAL_ACTOR;
  private historyBounds: HistoryBounds = { limit: DEFAULT_HISTORY_LIMIT, maxChanges: DEFAULT_MAX_CHANGES };

  private constructor(
    readonly dir: string,
    private readonly env: RootDatabase,
    private readonly rules: Database<Rule, number>,
    private readonly byPathDb: Database<number, string>,
    private readonly byInodeDb: Database<number, string>,
    /** "dev:ino" -> the bound rule's record itself (see inodeRules in open()). */
    private readonly inodeRulesDb: Database<Rule, string>,
    private readonly unboundDb: Database<number, string>,
    private readonly meta: Database<number, string>,
    private readonly historyDb: Database<HistoryRecord, number>,
    /** When acl entries expire (see schema.ts), kept with the rules in every write. */
    private readonly expiriesDb: Database<number, string>,
    /** The sync mark and the applied mod revision of each synced path (see schema.ts). */
    private readonly syncDb: Database<SyncValue, string>,
    /** Advanced around every commit that changes rules (see epoch.ts). */
    readonly epoch: CommitEpoch,
    private readonly mapper: FileMapper,
  ) {}

  /**
   * Opens (creating if needed) the store in directory `dir`. A data file
   * LMDB could not safely be given (cut short, meta pages not LMDB's, see
   * dataFile.ts) is refused with a DamagedDatabaseError before LMDB sees it.
   * `mapper` maps the commit epoch's page and releases the data file's
   * pages (the native addon's calls; src/main.ts passes them).
   */
  static open(dir: string, mapper: FileMapper): RuleStore {
    prepareDirectory(dir);
    const file = nodePath.join(dir, DATA_FILE);
    let data = inspectDataFile(file);
    if (data.state === 'damaged') {
      // Another process may be creating this database: LMDB writes the meta
      // pages of a new file just after creating it (under its lock, which
      // this look does not take). Look once more before calling it damaged.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CREATION_GRACE_MS);
      data = inspectDataFile(file);
      if (data.state === 'damaged') throw new DamagedDatabaseError(dir, data.problem);
    }
    let env: RootDatabase;
    try {
      env = openEnvironment(dir);
    } catch (err) {
      throw readFailure(dir, err);
    }
    let store: RuleStore;
    try {
      restrictFiles(dir);
      const dbs = openDatabases(env);
      convertToCurrentFormat(env, dbs);
      store = new RuleStore(
        dir,
        env,
        dbs.rules,
        dbs.byPath,
        dbs.byInode,
        dbs.inodeRules,
        dbs.unbound,
        dbs.meta,
        dbs.history,
        dbs.expiries,
        openSyncDatabase(env),
        CommitEpoch.open(dir, mapper),
        mapper,
      );
    } catch (err) {
      void env.close();
      throw readFailure(dir, err);
    }
    try {
      return store.withInodeRules().withHistoryFloor();
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /**
   * inodeRules holds a copy of every bound rule's record under its
   * "dev:ino", so that the lookup every decision starts with (the rule
   * bound to the file) is one B-tree descent, not two (byInode, then
   * rules): with a million rules each random descent costs 0.6-1.0 µs.
   * Kept in the same transactions as byInode. A database from before it
   * existed gets it filled once, at open, in one transaction that changes
   * no rule (so no epoch advance).
   */
  private withInodeRules(): this {
    if (this.reading(() => this.meta.get(INODE_RULES_BUILT)) === 1) return this;
    this.reading(() =>
      this.env.transactionSync(() => {
        if (this.meta.get(INODE_RULES_BUILT) === 1) return;
        for (const { key, value: id } of this.byInodeDb.getRange()) {
          const rule = this.rules.get(id);
          if (rule !== undefined) this.inodeRulesDb.putSync(key, rule);
        }
        this.meta.putSync(INODE_RULES_BUILT, 1);
      }),
    );
    return this;
  }

  /**
   * A database from before the history (or a new one) starts it at its
   * generation now: nothing earlier can be restored. No rule changes.
   */
  private withHistoryFloor(): this {
    if (this.reading(() => this.meta.get(HISTORY_FLOOR)) !== undefined) return this;
    this.reading(() =>
      this.env.transactionSync(() => {
        if (this.meta.get(HISTORY_FLOOR) === undefined) this.meta.putSync(HISTORY_FLOOR, this.meta.get(GENERATION) ?? 0);
      }),
    );
    return this;
  }

  /**
   * Runs `fn`, which reads the database; a failure that says the file or a
   * record is damaged (see readFailure) is thrown as a DamagedDatabaseError.
   */
  private reading<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw readFailure(this.dir, err);
    }
  }

  close(): void {
    // We only ever write synchronously, so nothing is pending and lmdb-js
    // closes at once; the promise it returns carries no information.
    void this.env.close();
  }

  /**
   * The generation of the latest commit by ANY process, at the cost of one
   * read-transaction renewal (~0.65 µs; measured by the cost test in
   * test/unit/store.test.ts).
   *
   * lmdb-js keeps one read transaction per event-loop turn and renews it on a
   * timer, so without the reset a FUSE handler would keep seeing a snapshot
   * that predates another process's commit. Resetting also means: the
   * RuleView lookups made after this call, in the same synchronous stretch,
   * read the same snapshot this generation belongs to.
   */
  generation(): number {
    // The epoch is read before the renewal, so it never labels an older
    // snapshot than it names.
    this.snapshotEpoch = this.epoch.value();
    try {
      this.env.resetReadTxn();
      return this.meta.get(GENERATION) ?? 0;
    } catch (err) {
      throw readFailure(this.dir, err);
    }
  }

  /**
   * Drops this process's page mappings of the data file after a scan of a
   * whole index (mount start, a binder sweep). The kernel maps 16
   * neighbouring pages on every page fault, so scanning one index of a
   * large database maps most of the file into the daemon's RSS; the pages
   * stay in the page cache (nothing is lost: the map is shared) and come
   * back on the next touch. Returns the bytes unmapped.
   */
  releaseMappedPages(): number {
    return this.mapper.releaseMappedFile(fs.realpathSync(nodePath.join(this.dir, DATA_FILE)));
  }

  /**
   * The commit epoch (see epoch.ts), read FIRST, and a read snapshot at least
   * as new as that epoch for the RuleView lookups that follow in the same
   * synchronous stretch. A decision made on those lookups may be reused
   * while snapshot() still returns the same number.
   *
   * The read transaction is renewed only when the epoch moved since the last
   * renewal (~0.65 µs saved per decision): if it did not, no commit has
   * started since, so the snapshot held is still the newest.
   */
  snapshot(): number {
    const epoch = this.epoch.value();
    if (epoch !== this.snapshotEpoch) {
      this.env.resetReadTxn();
      this.snapshotEpoch = epoch;
    }
    return epoch;
  }

  // ---- RuleView -----------------------------------------------------------

  byInode(dev: number, ino: number): Rule | undefined {
    return this.findByInode(dev, ino);
  }

  /**
   * findByPath() without its check of the text: decide() looks up the
   * target's canonical path and its ancestors, which come from the kernel
   * (decoded from bytes, so never a lone surrogate) or from a request
   * checked already, and it runs on every decision the cache cannot answer.
   */
  byPath(path: string): Rule | undefined {
    return this.lookupPath(path);
  }

  // ---- reads --------------------------------------------------------------

  /** Whether some rule's path is `path` or lies below it (see moves.ts). */
  anyRuleAtOrBelow(path: string): boolean {
    // No rule path is that long, nor any below it.
    if (!fitsRulePath(path)) return false;
    for (const _entry of this.pathEntries(normalizePath(path), undefined, 1)) return true;
    return false;
  }

  /** Byte length of the longest rule path at or below `path`; 0 when none. */
  longestRulePathAtOrBelow(path: string): number {
    let longest = 0;
    if (!fitsRulePath(path)) return 0;
    for (const entry of this.pathEntries(normalizePath(path), undefined, Number.MAX_SAFE_INTEGER)) {
      longest = Math.max(longest, Buffer.byteLength(entry.path));
    }
    return longest;
  }

  get(id: number): Rule | undefined {
    if (!isRuleId(id)) return undefined;
    return this.reading(() => this.getIn(id));
  }

  /**
   * Exact (canonical) path. Paths too long to be a key have no rule; a path
   * that is not well-formed (a lone surrogate, a NUL) is refused: its key
   * would be another path's.
   */
  findByPath(path: string): Rule | undefined {
    if (!isWellFormedPathText(path)) throw invalid(`path ${JSON.stringify(path)} ${pathTextProblem(path) ?? 'is not well-formed'}`);
    return this.lookupPath(path);
  }

  private lookupPath(path: string): Rule | undefined {
    if (!fitsRulePath(path)) return undefined;
    try {
      const id = readId(this.byPathDb, path);
      return id === undefined ? undefined : readRule(this.rules, id);
    } catch (err) {
      throw readFailure(this.dir, err);
    }
  }

  findByInode(dev: number, ino: number): Rule | undefined {
    let rule: Rule | undefined;
    try {
      rule = readRule(this.inodeRulesDb, inodeKey(dev, ino));
    } catch (err) {
      throw readFailure(this.dir, err);
    }
    return rule !== undefined && rule.dev === dev && rule.ino === ino ? rule : undefined;
  }

  count(): number {
    return this.reading(() => (this.rules.getStats() as { entryCount: number }).entryCount);
  }

  list(options: ListOptions = {}): ListPage {
    let prefix: string;
    try {
      prefix = checkPath(options.prefix ?? '/');
    } catch (err) {
      throw renamePathError(err, 'prefix');
    }
    const limit = checkLimit(options.limit);
    const cursor = options.cursor;
    if (cursor !== undefined && (typeof cursor !== 'string' || !isWellFormedPathText(cursor) || !isAtOrBelow(cursor, prefix))) {
      throw invalid(`cursor ${JSON.stringify(cursor)} does not belong to a listing of ${prefix}`);
    }
    return this.reading(() => {
      const ids: { path: string; id: number }[] = [];
      for (const entry of this.pathEntries(prefix, cursor, limit + 1)) ids.push(entry);
      const more = ids.length > limit;
      const page = more ? ids.slice(0, limit) : ids;
      return {
        rules: page.map(({ id }) => this.mustGet(id)),
        nextCursor: more ? page[page.length - 1]!.path : null,
      };
    });
  }

  /** Rules not bound to a dev:ino, in path order (the daemon binds them). */
  unboundRules(): Rule[] {
    return this.reading(() => {
      const out: Rule[] = [];
      for (const { value } of this.unboundDb.getRange()) out.push(this.mustGet(value));
      return out;
    });
  }

  /**
   * Up to `limit` unbound rules (id and path) in path order, after path
   * `after` if given. Read from the index alone: no rule record is decoded,
   * so paging through a million waiting rules allocates little.
   */
  unboundPage(after: string | undefined, limit: number): { id: number; path: string }[] {
    return this.reading(() => {
      const out: { id: number; path: string }[] = [];
      const range = this.unboundDb.getRange({ ...(after === undefined ? {} : { start: after, exclusiveStart: true }), limit });
      for (const { key, value } of range) out.push({ id: value, path: key });
      return out;
    });
  }

  /** Every rule, in path order, in the rule file's shape. */
  /** Every rule in path order; `onProgress` every EXPORT_PROGRESS_STEP rules and at the end. */
  exportRules(onProgress?: (done: number, total: number) => void): RuleFileRule[] {
    return this.reading(() => {
      const out: RuleFileRule[] = [];
      const total = onProgress === undefined ? 0 : (this.rules.getStats() as { entryCount: number }).entryCount;
      for (const { value } of this.byPathDb.getRange()) {
        out.push(toRuleFileRule(this.mustGet(value)));
        if (onProgress !== undefined && out.length % EXPORT_PROGRESS_STEP === 0) onProgress(out.length, total);
      }
      onProgress?.(out.length, out.length);
      return out;
    });
  }

  /**
   * Full consistency check of the record/index invariant (a diagnostic for
   * tests and `status`-style tooling; reads every entry). Empty = healthy.
   */
  verifyIndexes(): string[] {
    return this.reading(() => this.verifyIndexesIn());
  }

  private verifyIndexesIn(): string[] {
    return indexProblems({
      rules: this.rules,
      byPath: this.byPathDb,
      byInode: this.byInodeDb,
      inodeRules: this.inodeRulesDb,
      unbound: this.unboundDb,
    });
  }

  // ---- writes -------------------------------------------------------------

  /**
   * Creates a rule; AclfsError('conflict') if its path already has one.
   * A dev:ino given in `input` is bound unless another rule holds it, in
   * which case the rule is stored unbound (check the returned dev/ino).
   */
  add(input: RuleInput): Rule {
    const v = validateRuleInput(input);
    return this.write(() => this.forgettingSync(() => this.addIn(v)));
  }

  /**
   * Replaces rule `id` entirely. A binding given in `input` (dev/ino, or
   * null to unbind) is applied; when `input` has none, the existing binding
   * is kept if the path is unchanged and dropped if the rule moved.
   */
  put(id: number, input: RuleInput): Rule {
    const v = validateRuleInput(input);
    const keepBinding = input.dev === undefined && input.ino === undefined;
    return this.write(() => this.forgettingSync(() => this.putIn(this.mustGetForWrite(id), v, keepBinding)));
  }

  /**
   * PUT semantics for an id: replaces rule `id` like put() when it exists,
   * else creates the rule with exactly that id. Ids are never reused, so an
   * id below the next id to hand out that has no rule (it belonged to a
   * deleted rule) is a conflict; creating a higher id moves the counter past
   * it. One transaction either way.
   */
  putOrCreate(id: number, input: RuleInput): { rule: Rule; created: boolean } {
    if (!isRuleId(id)) throw invalid(`rule id must be an integer 1-${MAX_RULE_ID}, got ${String(id)}`);
    const v = validateRuleInput(input);
    const keepBinding = input.dev === undefined && input.ino === undefined;
    return this.write(() => {
      this.forgetSyncIn();
      const existing = this.getIn(id);
      if (existing !== undefined) return { rule: this.putIn(existing, v, keepBinding), created: false };
      const nextId = this.meta.get(NEXT_ID) ?? 1;
      if (id < nextId) throw conflict(`rule id ${id} belonged to a deleted rule; ids are never reused`);
      const holder = this.byPathDb.get(v.path);
      if (holder !== undefined) throw conflict(`rule ${holder} already governs ${v.path}`);
      this.meta.putSync(NEXT_ID, id + 1);
      return { rule: this.store({ id, ...v }, null), created: true };
    });
  }

  /**
   * put() on the rule holding input.path, or add() when there is none;
   * tells whether the rule was created (true) or replaced (false).
   */
  setByPath(input: RuleInput): { rule: Rule; created: boolean } {
    const v = validateRuleInput(input);
    const keepBinding = input.dev === undefined && input.ino === undefined;
    return this.write(() => {
      this.forgetSyncIn();
      const id = this.byPathDb.get(v.path);
      return id === undefined
        ? { rule: this.addIn(v), created: true }
        : { rule: this.putIn(this.mustGet(id), v, keepBinding), created: false };
    });
  }

  /** Deletes rule `id` and returns it; undefined if there was none. One transaction. */
  take(id: number): Rule | undefined {
    return this.write(() => {
      const rule = this.get(id);
      if (rule === undefined) return undefined;
      this.forgetSyncIn();
      this.journal?.removed(rule);
      this.removeIndexes(rule);
      this.rules.removeSync(id);
      this.markDirty();
      return rule;
    });
  }

  /**
   * Binds rule `id` to a file. If that dev:ino already belongs to ANOTHER
   * rule it is not taken over: this rule is left unbound (its path still
   * governs) and the result is false.
   */
  bind(id: number, dev: number, ino: number, birth: string | null = null): boolean {
    checkFileId(dev, ino, birth);
    return this.write(() => this.bindIn(this.mustGetForWrite(id), dev, ino, birth));
  }

  /**
   * bind() for many rules in ONE transaction (one generation bump), for the
   * daemon binding every pending rule at mount time. Ids that no longer
   * exist are skipped (the rule was removed meanwhile). Returns how many
   * rules ended up bound to the requested dev:ino.
   */
  bindMany(
    bindings: readonly { readonly id: number; readonly dev: number; readonly ino: number; readonly birth?: string | null }[],
  ): number {
    for (const b of bindings) checkFileId(b.dev, b.ino, b.birth ?? null);
    return this.write(() => {
      let bound = 0;
      for (const { id, dev, ino, birth } of bindings) {
        const rule = this.get(id);
        if (rule !== undefined && this.bindIn(rule, dev, ino, birth ?? null)) bound++;
      }
      return bound;
    });
  }

  // ---- index upkeep for changes made through the mount ----------------------

  /**
   * A file now exists at `path` (created, linked or renamed there): a rule
   * waiting on exactly that path binds to it. No commit when nothing waits.
   */
  bindWaiting(path: string, file: FileIdentity): boolean {
    checkFileId(file.dev, file.ino, file.birth);
    // Its key would be another path's (see findByPath).
    if (!isWellFormedPathText(path)) throw invalid(`path ${JSON.stringify(path)} ${pathTextProblem(path) ?? 'is not well-formed'}`);
    const id = this.reading(() => this.unboundDb.get(path));
    if (id === undefined) return false;
    return this.write(() => {
      const rule = this.get(id);
      return rule !== undefined && rule.dev === null && this.bindIn(rule, file.dev, file.ino, file.birth);
    });
  }

  /**
   * The last link of a file is gone: the rule bound to it (if any) lets go,
   * so a later file that gets the same inode number does not inherit it.
   * The rule itself stays, waiting on its path. Returns the rule's id.
   */
  unbindFile(file: FileIdentity): number | null {
    const id = this.byInodeDb.get(inodeKey(file.dev, file.ino));
    if (id === undefined) return null;
    return this.write(() => {
      const rule = this.get(id);
      if (rule === undefined || rule.dev !== file.dev || rule.ino !== file.ino) return null;
      this.store({ ...rule, dev: null, ino: null, birth: null }, rule);
      return id;
    });
  }

  /**
   * `from` was renamed to `to`: the rules of `from` and of everything below
   * it move with the files, in one commit. A rule whose new path already
   * has a rule stays where it was (no rule is ever dropped implicitly; a
   * bound rule still follows its file by inode) and is reported.
   */
  movePaths(from: string, to: string): { moved: number; kept: number[] } {
    const src = checkPath(from);
    const dst = checkPath(to);
    if (src === '/' || isAtOrBelow(dst, src)) throw invalid(`cannot move ${src} into itself (${dst})`);
    const ids: number[] = [];
    for (const { id } of this.pathEntries(src, undefined, Number.MAX_SAFE_INTEGER)) ids.push(id);
    if (ids.length === 0) return { moved: 0, kept: [] };
    return this.write(() => {
      let moved = 0;
      const kept: number[] = [];
      for (const id of ids) {
        const rule = this.mustGet(id);
        const path = dst + rule.path.slice(src.length);
        if (!fitsRulePath(path) || this.byPathDb.get(path) !== undefined) {
          kept.push(id);
          continue;
        }
        this.store({ ...rule, path }, rule);
        moved++;
      }
      return { moved, kept };
    });
  }

  /** Drops the rule's dev:ino binding (e.g. its file was deleted). */
  unbind(id: number): void {
    this.write(() => {
      const rule = this.mustGetForWrite(id);
      if (rule.dev !== null) this.store({ ...rule, dev: null, ino: null, birth: null }, rule);
    });
  }

  /**
   * Upserts every input by path in ONE transaction (one generation bump).
   * Everything is validated first; any error changes nothing.
   */
  importRules(inputs: readonly RuleInput[], options: ImportOptions = {}): ImportResult {
    const validated = validateBatch(inputs);
    return this.write(() => {
      this.forgetSyncIn();
      if (options.replace === true) this.clearRules();
      // Ids come from a local counter written back once: at a million rules
      // the per-rule meta read+write would be a quarter of the cost.
      let nextId = this.meta.get(NEXT_ID) ?? 1;
      let updated = 0;
      for (let i = 0; i < validated.length; i++) {
        const v = validated[i]!;
        const existing = this.byPathDb.get(v.path);
        if (existing === undefined) {
          // A throw aborts the whole transaction: nothing is imported.
          if (nextId > MAX_RULE_ID) throw conflict(`rule ids are exhausted (the next id would be ${nextId})`);
          this.store({ id: nextId++, ...v }, null);
        } else {
          const keepBinding = inputs[i]!.dev === undefined && inputs[i]!.ino === undefined;
          this.putIn(this.mustGet(existing), v, keepBinding);
          updated++;
        }
      }
      this.meta.putSync(NEXT_ID, nextId);
      return { created: validated.length - updated, updated };
    });
  }

  // ---- expiring entries -------------------------------------------------------

  /** The earliest time after `after` (ms) at which an acl entry stops granting; null: none. */
  nextExpiry(after: number): number | null {
    return this.reading(() => {
      for (const key of this.expiriesDb.getKeys({ start: expiryKey(Math.floor(after) + 1, 0), limit: 1 })) return Number(key.slice(0, EXPIRY_DIGITS));
      return null;
    });
  }

  /**
   * Commits that entries expired up to `now` grant nothing any more: a
   * commit (a new generation, the epoch advanced), so every decision cached
   * before it, every allow replayed in C and every handle vouched for in C
   * is decided again. Entries expired before `now - graceMs` are removed
   * from their rules (recorded in the history as the daemon's). Returns the
   * number of entries removed.
   */
  expire(now: number, graceMs: number): number {
    return this.asActor('the daemon (expired entries)', () =>
      this.write(() => {
        let removed = 0;
        const purgeBefore = Math.max(0, now - graceMs);
        const ids = new Set<number>();
        for (const key of this.expiriesDb.getKeys({ end: expiryKey(Math.floor(purgeBefore) + 1, 0) })) ids.add(Number(key.slice(EXPIRY_DIGITS + 1)));
        for (const id of ids) {
          const rule = this.getIn(id);
          if (rule === undefined) continue;
          const acl = rule.acl.filter((e) => e.expires === undefined || e.expires > purgeBefore);
          removed += rule.acl.length - acl.length;
          this.putIn(rule, validateRuleInput({ ...rule, acl }), true);
        }
        this.meta.putSync(EXPIRED_THROUGH, now);
        this.markDirty();
        return removed;
      }),
    );
  }

  // ---- history -------------------------------------------------------------

  /** How much history to keep from now on (the daemon's --history-limit). */
  setHistoryBounds(bounds: HistoryBounds): void {
    if (!Number.isSafeInteger(bounds.limit) || bounds.limit < 1 || !Number.isSafeInteger(bounds.maxChanges) || bounds.maxChanges < 1) {
      throw invalid('history bounds must be positive integers');
    }
    this.historyBounds = bounds;
  }

  /**
   * Who the history names for writes no asActor names: `source()` when it
   * answers (the peer of the admin request being served), else `fallback`
   * (the daemon: "the daemon", e.g. a rename through the mount moving rules).
   */
  setActors(source: () => string | null, fallback: string): void {
    this.actorSource = source;
    this.defaultActor = fallback;
  }

  /**
   * Runs `fn` with its commits recorded in the history as made by `who`
   * (and, with `note`, as what). Synchronous, as every write is.
   */
  asActor<T>(who: string | null, fn: () => T, note: string | null = null): T {
    const [actor, previousNote] = [this.actor, this.note];
    this.actor = who;
    this.note = note;
    try {
      return fn();
    } finally {
      this.actor = actor;
      this.note = previousNote;
    }
  }

  /** The oldest generation that can still be restored or compared. */
  historyFloor(): number {
    return this.reading(() => this.meta.get(HISTORY_FLOOR) ?? this.meta.get(GENERATION) ?? 0);
  }

  /** The newest `limit` history records, newest first. */
  history(limit: number): HistoryRecord[] {
    checkLimit(limit);
    return this.reading(() => [...this.historyDb.getRange({ reverse: true, limit }).map(({ value }) => value)]);
  }

  /**
   * What changed in the rule set from generation `from` to `to` (default:
   * now), by path. Both must lie between the floor and now.
   */
  diff(from: number, to?: number): { from: number; to: number; changes: RuleChange[] } {
    return this.reading(() => {
      const now = this.meta.get(GENERATION) ?? 0;
      const end = to ?? now;
      this.checkRestorable(from, now);
      this.checkRestorable(end, now);
      if (end < from) return { from, to: end, changes: netChanges(this.recordsBetween(end, from)).map(reverseChange) };
      return { from, to: end, changes: netChanges(this.recordsBetween(from, end)) };
    });
  }

  /**
   * Restores the rule set of generation `target` (its export, byte for
   * byte) as one new commit, recorded as a rollback; rules whose path and
   * content are the same stay as they are, bound to their files.
   */
  rollback(target: number): { generation: number; changes: RuleChange[] } {
    return this.asActor(
      this.actor,
      () =>
        this.write(() => {
          const now = this.meta.get(GENERATION) ?? 0;
          this.checkRestorable(target, now);
          const current = new Map<string, RuleFileRule>();
          for (const { key, value } of this.byPathDb.getRange()) current.set(key, toRuleFileRule(this.mustGet(value)));
          const wanted = undo(new Map(current), this.recordsBetween(target, now).reverse());
          const changes = difference(current, wanted);
          if (changes.length > 0) this.forgetSyncIn();
          let nextId = this.meta.get(NEXT_ID) ?? 1;
          for (const change of changes) {
            const id = this.byPathDb.get(change.path);
            if (change.after === null) {
              this.removeRuleIn(this.mustGet(id!));
              continue;
            }
            const v = validateRuleInput(ruleInputOf(change.after));
            if (id === undefined) this.store({ id: nextId++, ...v }, null);
            else this.putIn(this.mustGet(id), v, true);
          }
          this.meta.putSync(NEXT_ID, nextId);
          return { generation: this.dirty ? now + 1 : now, changes };
        }),
      `rollback to generation ${target}`,
    );
  }

  /**
   * What importing `inputs` (with `replace`) would change, by path, writing
   * nothing; validated as the import would be.
   */
  previewImport(inputs: readonly RuleInput[], replace: boolean): RuleChange[] {
    const validated = validateBatch(inputs);
    return this.reading(() => {
      const current = new Map<string, RuleFileRule>();
      for (const { key, value } of this.byPathDb.getRange()) current.set(key, toRuleFileRule(this.mustGet(value)));
      const after = replace ? new Map<string, RuleFileRule>() : new Map(current);
      for (const v of validated) after.set(v.path, toRuleFileRule(v));
      return difference(current, after);
    });
  }

  /**
   * Marks the rule set of `restore` as the one to put back at `deadline`
   * (ms since the epoch) unless confirmed: kept in the database, so a
   * daemon started again still rolls back. An earlier mark's restore point
   * is kept (the rule set before the first unconfirmed change).
   */
  awaitConfirmation(restore: number, deadline: number): { restore: number; deadline: number } {
    return this.reading(() =>
      this.env.transactionSync(() => {
        const earlier = this.meta.get(META.confirmRestore);
        const kept = earlier ?? restore;
        this.meta.putSync(META.confirmRestore, kept);
        this.meta.putSync(META.confirmDeadline, deadline);
        return { restore: kept, deadline };
      }),
    );
  }

  /** The import awaiting confirmation, if one is. */
  pendingConfirmation(): { restore: number; deadline: number } | null {
    return this.reading(() => {
      const restore = this.meta.get(META.confirmRestore);
      const deadline = this.meta.get(META.confirmDeadline);
      return restore === undefined || deadline === undefined ? null : { restore, deadline };
    });
  }

  /** Confirms (or, after a rollback, forgets) the awaited import; whether one was awaited. */
  endConfirmation(): boolean {
    return this.reading(() =>
      this.env.transactionSync(() => {
        const awaited = this.meta.get(META.confirmRestore) !== undefined;
        this.meta.removeSync(META.confirmRestore);
        this.meta.removeSync(META.confirmDeadline);
        return awaited;
      }),
    );
  }

  /** Refuses a generation the history cannot reach (invalid) or no longer reaches (conflict). */
  private checkRestorable(generation: number, now: number): void {
    if (!Number.isSafeInteger(generation) || generation < 0 || generation > now) {
      throw invalid(`generation must be an integer from 0 to ${now} (the generation now), got ${String(generation)}`);
    }
    const floor = this.meta.get(HISTORY_FLOOR) ?? now;
    if (generation < floor) throw conflict(`the history reaches back to generation ${floor} only; generation ${generation} cannot be restored`);
  }

  /** The history records of generations after `from` up to `to`, oldest first. */
  private recordsBetween(from: number, to: number): HistoryRecord[] {
    const records = [...this.historyDb.getRange({ start: from + 1, end: to + 1 }).map(({ value }) => value)];
    const uncounted = records.find((r) => r.changes === null);
    if (uncounted !== undefined) {
      throw conflict(`generation ${uncounted.generation} changed ${uncounted.changed < 0 ? 'more rules than' : uncounted.changed} the history records per commit`);
    }
    return records;
  }

  // ---- fleet sync (src/sync) ------------------------------------------------

  /** Where the rules were last synced from and how far; null when they were not, or were changed here since. */
  syncMark(): SyncMark | null {
    const mark = this.reading(() => this.syncDb.get(SYNC_MARK));
    return typeof mark === 'object' && mark !== null ? mark : null;
  }

  /** The etcd mod revision of the rule applied at `path` by a sync; undefined when none was. */
  syncRevisionOf(path: string): number | undefined {
    const revision = this.reading(() => this.syncDb.get(path));
    return typeof revision === 'number' ? revision : undefined;
  }

  /**
   * Applies synced changes by path, and records `mark`, in ONE transaction
   * (one generation bump at most): a reader sees all of an etcd revision or
   * none of it. `replaceAll`: the items are the whole rule set, and every
   * other rule goes. A rule given as it is already stored is left alone, so
   * its id, its binding and the decisions cached on it stay; a replaced rule
   * keeps its id and, at the same path, its binding (bindings are this
   * host's). Everything is validated first; any error changes nothing.
   */
  applySync(items: readonly SyncItem[], mark: SyncMark, replaceAll: boolean): SyncApplyResult {
    const validated = items.map((item) => ({ item, v: item.rule === null ? null : validateRuleInput(item.rule) }));
    for (const { item, v } of validated) {
      if (v !== null && v.path !== item.path) throw invalid(`synced rule for ${item.path} names path ${v.path}`);
    }
    return this.asActor(`fleet sync from ${mark.source}`, () => this.write(() => {
      let put = 0;
      let removed = 0;
      let unchanged = 0;
      if (replaceAll) {
        const keep = new Set(items.map((i) => i.path));
        const gone: number[] = [];
        for (const { key, value } of this.byPathDb.getRange()) if (!keep.has(key)) gone.push(value);
        for (const id of gone) {
          this.removeRuleIn(this.mustGet(id));
          removed++;
        }
        this.syncDb.clearSync();
      }
      let nextId = this.meta.get(NEXT_ID) ?? 1;
      for (const { item, v } of validated) {
        const existing = this.byPathDb.get(item.path);
        if (v === null) {
          if (existing !== undefined) {
            this.removeRuleIn(this.mustGet(existing));
            removed++;
          }
          this.syncDb.removeSync(item.path);
          continue;
        }
        this.syncDb.putSync(item.path, item.modRevision);
        if (existing === undefined) {
          if (nextId > MAX_RULE_ID) throw conflict(`rule ids are exhausted (the next id would be ${nextId})`);
          this.store({ id: nextId++, ...v, dev: null, ino: null, birth: null }, null);
          put++;
          continue;
        }
        const rule = this.mustGet(existing);
        if (sameRuleText(rule, v)) {
          unchanged++;
          continue;
        }
        this.putIn(rule, v, true);
        put++;
      }
      this.meta.putSync(NEXT_ID, nextId);
      this.syncDb.putSync(SYNC_MARK, mark);
      return { put, removed, unchanged };
    }));
  }

  /** Runs `fn` in the current write transaction after dropping the sync mark (see forgetSyncIn). */
  private forgettingSync<T>(fn: () => T): T {
    this.forgetSyncIn();
    return fn();
  }

  /**
   * A rule written here, not by a sync, makes the database differ from the
   * etcd revision its mark names: the mark goes, so the next sync reloads
   * the whole rule set instead of resuming after that revision.
   */
  private forgetSyncIn(): void {
    if (this.syncDb.get(SYNC_MARK) !== undefined) this.syncDb.removeSync(SYNC_MARK);
  }

  private removeRuleIn(rule: Rule): void {
    this.journal?.removed(rule);
    this.removeIndexes(rule);
    this.rules.removeSync(rule.id);
    this.markDirty();
  }

  // ---- internals ------------------------------------------------------------

  /**
   * Runs `fn` in one synchronous write transaction and bumps the generation
   * once if `fn` changed anything (store()/remove() set `dirty`). A throw
   * aborts the transaction, so nothing of a failed operation is kept.
   */
  private write<T>(fn: () => T): T {
    this.dirty = false;
    try {
      return this.env.transactionSync(() => {
        this.dirty = false;
        this.journal = new Journal(this.historyBounds.maxChanges);
        const result = fn();
        if (this.dirty) {
          const generation = (this.meta.get(GENERATION) ?? 0) + 1;
          this.meta.putSync(GENERATION, generation);
          this.recordHistory(generation, this.journal);
        }
        return result;
      });
    } catch (err) {
      throw readFailure(this.dir, err);
    } finally {
      this.journal = null;
      // The "after" advance: the commit is visible to every reader now.
      if (this.dirty) this.epoch.advance();
      this.dirty = false;
    }
  }

  /**
   * The history record of the commit at `generation`, if it changed the
   * rule set; then the oldest records beyond the bound are dropped. In the
   * commit's transaction.
   */
  private recordHistory(generation: number, journal: Journal): void {
    const changes = journal.changes();
    if (changes !== null && changes.length === 0) return;
    const record: HistoryRecord = {
      generation,
      time: new Date().toISOString(),
      who: this.actor ?? this.actorSource() ?? this.defaultActor,
      note: this.note,
      changed: changes?.length ?? -1,
      changes,
    };
    this.historyDb.putSync(generation, record);
    // A commit recorded by its count cannot be undone: nothing before it can be restored.
    if (changes === null) this.meta.putSync(HISTORY_FLOOR, generation);
    const kept = (this.historyDb.getStats() as { entryCount: number }).entryCount;
    const dropped = [...this.historyDb.getKeys({ limit: Math.max(0, kept - this.historyBounds.limit) })];
    for (const key of dropped) {
      this.historyDb.removeSync(key);
      // Undoing it is no longer possible: its generation is the oldest one left to restore.
      this.meta.putSync(HISTORY_FLOOR, Math.max(this.meta.get(HISTORY_FLOOR) ?? 0, key));
    }
  }

  /**
   * Records that the current transaction changes rules. The first time in a
   * transaction it advances the epoch: the "before" advance, ahead of the
   * commit (see epoch.ts).
   */
  private markDirty(): void {
    if (!this.dirty) this.epoch.advance();
    this.dirty = true;
  }

  private addIn(v: Validated): Rule {
    const holder = this.byPathDb.get(v.path);
    if (holder !== undefined) throw conflict(`rule ${holder} already governs ${v.path}`);
    const id = this.meta.get(NEXT_ID) ?? 1;
    if (id > MAX_RULE_ID) throw conflict(`rule ids are exhausted (the next id would be ${id})`);
    this.meta.putSync(NEXT_ID, id + 1);
    return this.store({ id, ...v }, null);
  }

  private putIn(previous: Rule, v: Validated, keepBinding: boolean): Rule {
    const holder = this.byPathDb.get(v.path);
    if (holder !== undefined && holder !== previous.id) {
      throw conflict(`cannot move rule ${previous.id} to ${v.path}: rule ${holder} already governs it`);
    }
    const keep = keepBinding && previous.path === v.path;
    const binding = keepBinding
      ? { dev: keep ? previous.dev : null, ino: keep ? previous.ino : null, birth: keep ? (previous.birth ?? null) : null }
      : v;
    return this.store({ ...v, id: previous.id, dev: binding.dev, ino: binding.ino, birth: binding.birth }, previous);
  }

  private bindIn(rule: Rule, dev: number, ino: number, birth: string | null): boolean {
    if (rule.dev === dev && rule.ino === ino && (rule.birth ?? null) === birth) return true;
    const holder = this.byInodeDb.get(inodeKey(dev, ino));
    if (holder !== undefined && holder !== rule.id) {
      const other = this.rules.get(holder);
      // The holder was bound to an earlier file that had this inode number
      // (its birth time differs): that binding is stale, release it.
      if (other !== undefined && other.birth != null && birth !== null && other.birth !== birth) {
        this.store({ ...other, dev: null, ino: null, birth: null }, other);
      } else {
        if (rule.dev !== null) this.store({ ...rule, dev: null, ino: null, birth: null }, rule);
        return false;
      }
    }
    this.store({ ...rule, dev, ino, birth }, rule);
    return true;
  }

  /**
   * Writes `rule` and all its index entries, replacing `previous` (same id).
   * A dev:ino already held by another rule is not taken: the rule is stored
   * unbound instead.
   */
  private store(rule: Rule, previous: Rule | null): Rule {
    if (previous !== null) this.removeIndexes(previous);
    let stored = rule;
    if (rule.dev !== null && rule.ino !== null) {
      const holder = this.byInodeDb.get(inodeKey(rule.dev, rule.ino));
      if (holder !== undefined && holder !== rule.id) stored = { ...rule, dev: null, ino: null, birth: null };
    }
    stored = plainRule(stored);
    this.journal?.wrote(previous, stored);
    if (previous !== null) this.dropExpiries(previous);
    this.noteExpiries(stored);
    this.rules.putSync(stored.id, stored);
    this.byPathDb.putSync(stored.path, stored.id);
    if (stored.dev !== null && stored.ino !== null) {
      this.byInodeDb.putSync(inodeKey(stored.dev, stored.ino), stored.id);
      this.inodeRulesDb.putSync(inodeKey(stored.dev, stored.ino), stored);
    } else {
      this.unboundDb.putSync(stored.path, stored.id);
    }
    this.markDirty();
    return stored;
  }

  /** The expiry index's keys of a rule's expiring entries. */
  private static expiryKeys(rule: Rule): string[] {
    const keys: string[] = [];
    for (const entry of rule.acl) if (entry.expires !== undefined) keys.push(expiryKey(entry.expires, rule.id));
    return keys;
  }

  private noteExpiries(rule: Rule): void {
    for (const key of RuleStore.expiryKeys(rule)) this.expiriesDb.putSync(key, 1);
  }

  private dropExpiries(rule: Rule): void {
    for (const key of RuleStore.expiryKeys(rule)) this.expiriesDb.removeSync(key);
  }

  /** Removes the index entries that point at this rule (and only those). */
  private removeIndexes(rule: Rule): void {
    this.dropExpiries(rule);
    this.removeIfPointsAt(this.byPathDb, rule.path, rule.id);
    this.removeIfPointsAt(this.unboundDb, rule.path, rule.id);
    if (rule.dev !== null && rule.ino !== null) {
      const key = inodeKey(rule.dev, rule.ino);
      this.removeIfPointsAt(this.byInodeDb, key, rule.id);
      if (this.inodeRulesDb.get(key)?.id === rule.id) this.inodeRulesDb.removeSync(key);
    }
  }

  private removeIfPointsAt(db: Database<number, string>, key: string, id: number): void {
    if (db.get(key) === id) db.removeSync(key);
  }

  private clearRules(): void {
    const journal = this.journal;
    if (journal !== null) {
      if ((this.rules.getStats() as { entryCount: number }).entryCount > this.historyBounds.maxChanges) journal.giveUp();
      else for (const { value } of this.rules.getRange()) journal.removed(value);
    }
    // Inside our transaction lmdb-js runs clearSync in it, not in its own.
    for (const db of [this.rules, this.byPathDb, this.byInodeDb, this.inodeRulesDb, this.unboundDb]) db.clearSync();
    this.expiriesDb.clearSync();
    this.markDirty();
  }

  /** Keys of byPath at or below `prefix`, after `cursor`, at most `limit`. */
  private *pathEntries(prefix: string, cursor: string | undefined, limit: number): Generator<{ path: string; id: number }> {
    let left = limit;
    if (prefix !== '/' && cursor === undefined) {
      const id = this.byPathDb.get(prefix);
      if (id !== undefined) {
        yield { path: prefix, id };
        left--;
      }
    }
    if (left === 0) return;
    // Everything strictly below `prefix` lies in [prefix + "/", prefix + "0"):
    // '0' is the byte after '/', so "/docs-x" and "/docsx" stay outside.
    // (For "/" every key qualifies, "/" itself included.)
    const resume = cursor !== undefined && !(prefix !== '/' && cursor === prefix);
    const range = this.byPathDb.getRange({
      start: resume ? cursor : prefix === '/' ? '/' : `${prefix}/`,
      exclusiveStart: resume,
      ...(prefix === '/' ? {} : { end: `${prefix}0` }),
      limit: left,
    });
    for (const { key, value } of range) yield { path: key, id: value };
  }

  /** Rule `id` (a valid id). */
  private getIn(id: number): Rule | undefined {
    return readRule(this.rules, id);
  }

  private mustGet(id: number): Rule {
    const rule = this.getIn(id);
    // An index entry without its record breaks the store's invariant: this
    // must surface as an internal error (and a deny), never as "no rule".
    if (rule === undefined) throw new DamagedDatabaseError(this.dir, `an index points at missing rule ${id}`);
    return rule;
  }

  private mustGetForWrite(id: number): Rule {
    const rule = this.get(id);
    if (rule === undefined) throw notFound(`no rule with id ${String(id)}`);
    return rule;
  }
}

/** Whether a stored rule says what `v` says (bindings and ids aside): the rule file's text of both. */
function sameRuleText(rule: Rule, v: RuleInput): boolean {
  return JSON.stringify(toRuleFileRule(rule)) === JSON.stringify(toRuleFileRule(v));
}

function checkFileId(dev: number, ino: number, birth: string | null = null): void {
  if (!isFileId(dev) || !isFileId(ino)) throw invalid(`bad dev:ino ${String(dev)}:${String(ino)}`);
  if (birth !== null && !isBirth(birth)) throw invalid(`bad birth time ${String(birth)}`);
}

function validateBatch(inputs: readonly RuleInput[]): Validated[] {
  if (!Array.isArray(inputs)) throw invalid('import expects an array of rules');
  const firstIndexOfPath = new Map<string, number>();
  return inputs.map((input, i) => {
    let v: Validated;
    try {
      v = validateRuleInput(input);
    } catch (err) {
      throw invalid(`rule ${i}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const first = firstIndexOfPath.get(v.path);
    if (first !== undefined) throw invalid(`rule ${i} (${v.path}): path: duplicate of rule ${first}`);
    firstIndexOfPath.set(v.path, i);
    return v;
  });
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid(`limit must be an integer 1-${MAX_LIST_LIMIT}, got ${String(limit)}`);
  }
  return limit;
}

/** A record or index value that cannot be read, named by its key (see readFailure). */
class RecordError extends Error {}

/**
 * Rule record `key` of `db` (rules or inodeRules); bytes that are not a
 * record (codec.ts) are a RecordError naming the key.
 */
function readRule<K extends number | string>(db: Database<Rule, K>, key: K): Rule | undefined {
  try {
    return db.get(key);
  } catch (err) {
    if (err instanceof RecordFormatError) throw new RecordError(`the record under ${JSON.stringify(key)} ${err.predicate}`);
    throw err;
  }
}

/** The rule id index entry `key` of `db` holds; anything else is a RecordError. */
function readId(db: Database<number, string>, key: string): number | undefined {
  let id: number | undefined;
  try {
    id = db.get(key);
  } catch (err) {
    if (!(err instanceof IndexValueError)) throw err;
    id = 0;
  }
  if (id !== undefined && !isRuleId(id)) throw new RecordError(`the index entry ${JSON.stringify(key)} does not hold a rule id`);
  return id;
}

/** The record/index invariant, checked entry by entry (see verifyIndexes). Empty = healthy. */
function indexProblems(dbs: Omit<Databases, 'meta' | 'history' | 'expiries'>): string[] {
  const problems: string[] = [];
  let rules = 0;
  for (const { key: id, value: rule } of dbs.rules.getRange()) {
    rules++;
    if (rule.id !== id) problems.push(`record ${id} carries id ${rule.id}`);
    if (dbs.byPath.get(rule.path) !== id) problems.push(`byPath ${rule.path} does not point at rule ${id}`);
    const bound = rule.dev !== null && rule.ino !== null;
    if (bound && dbs.byInode.get(inodeKey(rule.dev!, rule.ino!)) !== id) {
      problems.push(`byInode ${inodeKey(rule.dev!, rule.ino!)} does not point at rule ${id}`);
    }
    if (bound && !sameRecord(dbs.inodeRules.get(inodeKey(rule.dev!, rule.ino!)), rule)) {
      problems.push(`inodeRules ${inodeKey(rule.dev!, rule.ino!)} is not a copy of rule ${id}`);
    }
    if (bound === (dbs.unbound.get(rule.path) === id)) {
      problems.push(`rule ${id} is ${bound ? 'bound but listed' : 'unbound but not listed'} in unbound`);
    }
  }
  const counts = { byPath: 0, byInode: 0, unbound: 0 };
  for (const { key, value } of dbs.byPath.getRange()) {
    counts.byPath++;
    if (dbs.rules.get(value)?.path !== key) problems.push(`byPath ${key} -> ${value} has no matching rule`);
  }
  for (const { key, value } of dbs.byInode.getRange()) {
    counts.byInode++;
    const r = dbs.rules.get(value);
    if (r === undefined || inodeKey(r.dev ?? -1, r.ino ?? -1) !== key) problems.push(`byInode ${key} -> ${value} is stale`);
  }
  for (const { key, value } of dbs.unbound.getRange()) {
    counts.unbound++;
    const r = dbs.rules.get(value);
    if (r === undefined || r.path !== key || r.dev !== null) problems.push(`unbound ${key} -> ${value} is stale`);
  }
  if (counts.byPath !== rules) problems.push(`byPath has ${counts.byPath} entries for ${rules} rules`);
  if (counts.byInode + counts.unbound !== rules) {
    problems.push(`byInode (${counts.byInode}) + unbound (${counts.unbound}) != ${rules} rules`);
  }
  const copies = (dbs.inodeRules.getStats() as { entryCount: number }).entryCount;
  if (copies !== counts.byInode) problems.push(`inodeRules has ${copies} entries for ${counts.byInode} bound rules`);
  return problems;
}

/** What inspectStore found. */
export interface StoreInspection {
  /** 'none': no database yet (a start creates it); 'older': converted at the next start. */
  readonly format: 'none' | 'current' | 'older';
  readonly rules: number;
}

/**
 * Reads the store in `dir` without changing anything (no directory made,
 * no format converted, no index built, no commit epoch mapped): whether a
 * daemon could start on it. Throws a DamagedDatabaseError for a data file
 * cut short or foreign, an index out of step with the rules, or a rule that
 * would not read back as a rule file (aclfs export); an internal error for a
 * database in a format newer than this aclfs reads.
 */
export function inspectStore(dir: string): StoreInspection {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { format: 'none', rules: 0 };
    throw err;
  }
  if (!stat.isDirectory()) throw invalid(`database path ${dir} is not a directory (aclfs keeps a directory)`);
  const file = nodePath.join(dir, DATA_FILE);
  if (!fs.existsSync(file)) return { format: 'none', rules: 0 };
  const data = inspectDataFile(file);
  if (data.state === 'damaged') throw new DamagedDatabaseError(dir, data.problem);
  let env: RootDatabase;
  try {
    env = openEnvironment(dir, true);
  } catch (err) {
    throw readFailure(dir, err);
  }
  try {
    const meta = env.openDB<number, string>({ name: 'meta' });
    const format = meta.get(META.recordFormat) ?? MSGPACK_FORMAT;
    if (format > RECORD_FORMAT) {
      throw new AclfsError(
        'internal',
        `database ${dir} has record format ${String(format)}, newer than this aclfs reads (${MSGPACK_FORMAT}-${RECORD_FORMAT}): run the aclfs that wrote it`,
      );
    }
    const dbs = openDatabases(env);
    if (format !== RECORD_FORMAT) return { format: 'older', rules: (dbs.rules.getStats() as { entryCount: number }).entryCount };
    const problems = indexProblems(dbs);
    if (problems.length > 0) throw new DamagedDatabaseError(dir, `${problems.length} index problems, the first: ${problems[0]}`);
    let rules = 0;
    for (const { key: id, value: rule } of dbs.rules.getRange()) {
      try {
        toRuleFileRule(rule);
      } catch (err) {
        throw new DamagedDatabaseError(dir, `rule ${id} does not read back: ${err instanceof Error ? err.message : String(err)}`);
      }
      rules++;
    }
    return { format: 'current', rules };
  } catch (err) {
    throw readFailure(dir, err);
  } finally {
    void env.close();
  }
}
