// The rule database: LMDB through lmdb-js, read in-process (the spec's
// "direct API"). One environment, six named databases:
//
//   rules       id (uint32)  -> Rule record (msgpack)
//   byPath      path         -> id      every rule
//   byInode     "dev:ino"    -> id      rules bound to a file
//   inodeRules  "dev:ino"    -> Rule    a copy of each bound rule's record
//                                       (one lookup per decision; see
//                                       withInodeRules)
//   unbound     path         -> id      rules not bound yet (binding work list)
//   meta        "generation" -> number  bumped once per committing write txn
//               "nextId"     -> number  next id to hand out (ids are never reused)
//               "inodeRulesBuilt" -> 1  inodeRules is complete
//
// Invariant kept by every write: a rule is in `rules` and `byPath`, and in
// exactly one of `byInode` (dev/ino set, with its copy in `inodeRules`) or
// `unbound` (dev/ino null). A rule
// and all of its index entries change in one synchronous transaction.
//
// Location: `RuleStore.open(dir)` takes a DIRECTORY (e.g. /var/lib/aclfs).
// It is created with mode 0700 if missing; LMDB keeps `data.mdb` and
// `lock.mdb` inside it, both chmod 0600. Every process that opens the same
// directory (daemon, `aclfs import --db`) shares the data safely: LMDB
// serialises writers across processes and readers never block.

import fs from 'node:fs';
import nodePath from 'node:path';
import { Fuse } from '../native/binding';
import { open, type Database, type RootDatabase } from 'lmdb';
import { AclfsError, conflict, DamagedDatabaseError, invalid, notFound } from '../errors';
import { inspectDataFile } from './dataFile';
import { CommitEpoch } from './epoch';
import { isAtOrBelow, normalizePath } from './path';
import { toRuleFileRule, type RuleFileRule } from './ruleFile';
import type { AclEntry, FileIdentity, Rule, RuleInput, RuleView } from './types';
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
} from './validate';

export const DATA_FILE = 'data.mdb';
export const LOCK_FILE = 'lock.mdb';

const GENERATION = 'generation';
const NEXT_ID = 'nextId';
const INODE_RULES_BUILT = 'inodeRulesBuilt';
/** How long open() waits before looking at a data file that seemed damaged a second time. */
const CREATION_GRACE_MS = 100;

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

export interface ImportResult {
  readonly created: number;
  readonly updated: number;
}

type Validated = ReturnType<typeof validateRuleInput>;

export class RuleStore implements RuleView {
  /** Set by any write inside the current transaction; see write(). */
  private dirty = false;
  /** Epoch at the last read-transaction renewal; see snapshot(). */
  private snapshotEpoch: number | null = null;

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
    /** Advanced around every commit that changes rules (see epoch.ts). */
    readonly epoch: CommitEpoch,
  ) {}

  /**
   * Opens (creating if needed) the store in directory `dir`. A data file
   * LMDB could not safely be given (cut short, meta pages not LMDB's, see
   * dataFile.ts) is refused with a DamagedDatabaseError before LMDB sees it.
   */
  static open(dir: string): RuleStore {
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
      // noSubdir: false explicitly, because lmdb-js would otherwise treat a
      // directory name with a dot ("aclfs.d") as a data file name.
      env = open({ path: dir, noSubdir: false, maxDbs: 9 });
    } catch (err) {
      throw readFailure(dir, err);
    }
    let store: RuleStore;
    try {
      restrictFiles(dir);
      store = new RuleStore(
        dir,
        env,
        env.openDB<Rule, number>({ name: 'rules', keyEncoding: 'uint32' }),
        env.openDB<number, string>({ name: 'byPath' }),
        env.openDB<number, string>({ name: 'byInode' }),
        env.openDB<Rule, string>({ name: 'inodeRules' }),
        env.openDB<number, string>({ name: 'unbound' }),
        env.openDB<number, string>({ name: 'meta' }),
        CommitEpoch.open(dir),
      );
    } catch (err) {
      void env.close();
      throw readFailure(dir, err);
    }
    try {
      return store.withInodeRules();
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
          if (rule !== undefined) this.inodeRulesDb.putSync(key, checkRecord(rule, id));
        }
        this.meta.putSync(INODE_RULES_BUILT, 1);
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
   * test/rules-store.test.ts).
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
    return Fuse.native.releaseMappedFile(fs.realpathSync(nodePath.join(this.dir, DATA_FILE)));
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
  exportRules(): RuleFileRule[] {
    return this.reading(() => {
      const out: RuleFileRule[] = [];
      for (const { value } of this.byPathDb.getRange()) out.push(toRuleFileRule(this.mustGet(value)));
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
    const problems: string[] = [];
    let rules = 0;
    for (const { key: id, value: rule } of this.rules.getRange()) {
      rules++;
      if (rule.id !== id) problems.push(`record ${id} carries id ${rule.id}`);
      if (this.byPathDb.get(rule.path) !== id) problems.push(`byPath ${rule.path} does not point at rule ${id}`);
      const bound = rule.dev !== null && rule.ino !== null;
      if (bound && this.byInodeDb.get(inodeKey(rule.dev!, rule.ino!)) !== id) {
        problems.push(`byInode ${inodeKey(rule.dev!, rule.ino!)} does not point at rule ${id}`);
      }
      if (bound && !sameRecord(this.inodeRulesDb.get(inodeKey(rule.dev!, rule.ino!)), rule)) {
        problems.push(`inodeRules ${inodeKey(rule.dev!, rule.ino!)} is not a copy of rule ${id}`);
      }
      if (bound === (this.unboundDb.get(rule.path) === id)) {
        problems.push(`rule ${id} is ${bound ? 'bound but listed' : 'unbound but not listed'} in unbound`);
      }
    }
    const counts = { byPath: 0, byInode: 0, unbound: 0 };
    for (const { key, value } of this.byPathDb.getRange()) {
      counts.byPath++;
      if (this.rules.get(value)?.path !== key) problems.push(`byPath ${key} -> ${value} has no matching rule`);
    }
    for (const { key, value } of this.byInodeDb.getRange()) {
      counts.byInode++;
      const r = this.rules.get(value);
      if (r === undefined || inodeKey(r.dev ?? -1, r.ino ?? -1) !== key) problems.push(`byInode ${key} -> ${value} is stale`);
    }
    for (const { key, value } of this.unboundDb.getRange()) {
      counts.unbound++;
      const r = this.rules.get(value);
      if (r === undefined || r.path !== key || r.dev !== null) problems.push(`unbound ${key} -> ${value} is stale`);
    }
    if (counts.byPath !== rules) problems.push(`byPath has ${counts.byPath} entries for ${rules} rules`);
    if (counts.byInode + counts.unbound !== rules) {
      problems.push(`byInode (${counts.byInode}) + unbound (${counts.unbound}) != ${rules} rules`);
    }
    const copies = (this.inodeRulesDb.getStats() as { entryCount: number }).entryCount;
    if (copies !== counts.byInode) problems.push(`inodeRules has ${copies} entries for ${counts.byInode} bound rules`);
    return problems;
  }

  // ---- writes -------------------------------------------------------------

  /**
   * Creates a rule; AclfsError('conflict') if its path already has one.
   * A dev:ino given in `input` is bound unless another rule holds it, in
   * which case the rule is stored unbound (check the returned dev/ino).
   */
  add(input: RuleInput): Rule {
    const v = validateRuleInput(input);
    return this.write(() => this.addIn(v));
  }

  /**
   * Replaces rule `id` entirely. A binding given in `input` (dev/ino, or
   * null to unbind) is applied; when `input` has none, the existing binding
   * is kept if the path is unchanged and dropped if the rule moved.
   */
  put(id: number, input: RuleInput): Rule {
    const v = validateRuleInput(input);
    const keepBinding = input.dev === undefined && input.ino === undefined;
    return this.write(() => this.putIn(this.mustGetForWrite(id), v, keepBinding));
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
        const result = fn();
        if (this.dirty) this.meta.putSync(GENERATION, (this.meta.get(GENERATION) ?? 0) + 1);
        return result;
      });
    } catch (err) {
      throw readFailure(this.dir, err);
    } finally {
      // The "after" advance: the commit is visible to every reader now.
      if (this.dirty) this.epoch.advance();
      this.dirty = false;
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

  /** Removes the index entries that point at this rule (and only those). */
  private removeIndexes(rule: Rule): void {
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
    // Inside our transaction lmdb-js runs clearSync in it, not in its own.
    for (const db of [this.rules, this.byPathDb, this.byInodeDb, this.inodeRulesDb, this.unboundDb]) db.clearSync();
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

  /** Rule `id` (a valid id) as lmdb-js decodes it, checked to be a rule record. */
  private getIn(id: number): Rule | undefined {
    const rule = this.rules.get(id);
    return rule === undefined ? undefined : checkRecord(rule, id);
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

function checkFileId(dev: number, ino: number, birth: string | null = null): void {
  if (!isFileId(dev) || !isFileId(ino)) throw invalid(`bad dev:ino ${String(dev)}:${String(ino)}`);
  if (birth !== null && !isBirth(birth)) throw invalid(`bad birth time ${String(birth)}`);
}

export function inodeKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

// ---- the decision path's reads ----------------------------------------------
//
// findByPath/findByInode run on every decision the cache cannot answer, and
// lmdb-js's generic get() costs there: msgpackr spends ~0.65 µs decoding a
// rule record, because without shared structures every stored value
// carries its own record definition (the list of field names), which the
// decoder reads and turns into a reader each time. The helpers below read
// the raw bytes (getBinaryFast: a copy out of the memory map into lmdb-js's
// shared buffer, valid until the next read) and decode the exact shapes
// this store writes; anything else — another field list, a non-ASCII
// string, a 64-bit integer, trailing bytes — is handed to lmdb-js's own
// get(), so the result is always what msgpackr would have returned. The
// on-disk format is untouched. Nothing is kept between calls.

/** An index value (a rule id), or lmdb-js's decoding of it when it is not a plain uint. */
function readId(db: Database<number, string>, key: string): number | undefined {
  const bytes = db.getBinaryFast(key);
  if (bytes === undefined) return undefined;
  src = bytes;
  pos = 0;
  end = bytes.length;
  const id = readNumber();
  if (id >= 0 && pos === end) return id;
  // The key is there, so lmdb-js's decoding must give a rule id.
  const decoded: unknown = db.get(key);
  if (!isRuleId(decoded)) throw new RecordError(`the index entry ${JSON.stringify(key)} does not hold a rule id`);
  return decoded;
}

/** Rule `id` of `rules`, decoded by decodeRule() or else by lmdb-js. */
/** Whether `copy` is the same rule record as `rule`, field by field. */
function sameRecord(copy: Rule | undefined, rule: Rule): boolean {
  return copy !== undefined && JSON.stringify(plainRule(copy)) === JSON.stringify(plainRule(rule));
}

function readRule<K extends number | string>(rules: Database<Rule, K>, key: K): Rule | undefined {
  const bytes = rules.getBinaryFast(key);
  if (bytes === undefined) return undefined;
  // The store's decoder returns only well-shaped rules; lmdb-js's may not.
  const rule = decodeRule(bytes);
  if (rule !== undefined) return rule;
  const decoded = rules.get(key);
  return decoded === undefined ? undefined : checkRecord(decoded, key);
}

/**
 * A decoded record, when it has the shape of a Rule (the fields decide()
 * and the admin API read, of their types); else the record is damaged.
 * The store's own decoder only ever returns this shape; this checks what
 * lmdb-js's msgpackr made of anything else.
 */
function checkRecord(value: unknown, key: number | string): Rule {
  const r = value as Partial<Record<keyof Rule, unknown>> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.id !== 'number' ||
    typeof r.path !== 'string' ||
    typeof r.owner !== 'number' ||
    typeof r.defaccess !== 'number' ||
    !Array.isArray(r.acl) ||
    typeof r.recursive !== 'boolean' ||
    !(r.dev === null || typeof r.dev === 'number') ||
    !(r.ino === null || typeof r.ino === 'number')
  ) {
    throw new RecordError(`the record under ${JSON.stringify(key)} is not a rule`);
  }
  return value as Rule;
}

/** A record that decodes, but not to a rule (see readFailure). */
class RecordError extends Error {}

// LMDB's return codes (lmdb.h) that say the file is not what LMDB wrote:
// MDB_PAGE_NOTFOUND, MDB_CORRUPTED, MDB_PANIC, MDB_VERSION_MISMATCH,
// MDB_INVALID, MDB_INCOMPATIBLE, MDB_BAD_CHECKSUM. lmdb-js throws them as
// Errors whose `code` is the number.
const LMDB_DAMAGE_CODES: ReadonlySet<number> = new Set([-30797, -30796, -30795, -30794, -30793, -30784, -30778]);

/**
 * What a failure while reading the database is: an AclfsError stays as it
 * is; LMDB reporting damage, a record the decoder cannot read (msgpackr's
 * "Data read, but end of buffer not reached", a RangeError past the end)
 * or one that is not a rule, is a DamagedDatabaseError of `dir`; any other
 * error of LMDB (a full map, too many readers, ENOMEM) or the system is
 * passed on (it is `internal` to the CLI and the API anyway).
 */
function readFailure(dir: string, err: unknown): unknown {
  if (err instanceof AclfsError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number') return LMDB_DAMAGE_CODES.has(code) ? new DamagedDatabaseError(dir, `LMDB: ${err.message}`) : err;
  // errno errors (EACCES, ENOMEM) carry a string code.
  if (typeof code === 'string') return err;
  return new DamagedDatabaseError(dir, `a record cannot be read: ${err.message}`);
}

// msgpack as msgpackr writes it with records on (lmdb-js's default): a map
// is `d4 72 <id 0x40-0x7f>` + the array of its keys + its values in that
// order (a record definition); a later value byte 0x40-0x7f in the same
// value reuses definition <id>. So bytes 0x40-0x7f are never numbers.
const RULE_KEYS = ['id', 'path', 'dev', 'ino', 'birth', 'owner', 'defaccess', 'acl', 'recursive'] as const;
/** The definition that opens every record plainRule() shapes (its key order). */
const RULE_HEAD = Uint8Array.from([0xd4, 0x72, 0x40, ...keyArray(RULE_KEYS)]);
/** RULE_HEAD as little-endian 32-bit words (its whole words only). */
const RULE_HEAD_WORDS = Int32Array.from({ length: RULE_HEAD.length >> 2 }, (_, w) =>
  RULE_HEAD[4 * w]! | (RULE_HEAD[4 * w + 1]! << 8) | (RULE_HEAD[4 * w + 2]! << 16) | (RULE_HEAD[4 * w + 3]! << 24),
);
const USER_KEYS = Uint8Array.from(keyArray(['user', 'access']));
const GROUP_KEYS = Uint8Array.from(keyArray(['group', 'access']));
const USER_ENTRY = 1;
const GROUP_ENTRY = 2;

function keyArray(keys: readonly string[]): number[] {
  const out = [0x90 | keys.length];
  for (const k of keys) out.push(0xa0 | k.length, ...Buffer.from(k, 'latin1'));
  return out;
}

// Decoder state: one synchronous pass, reset by each entry point.
let src: Uint8Array = Buffer.alloc(0); // a Buffer, like lmdb-js's, so element loads stay monomorphic
let pos = 0;
let end = 0;
/**
 * Record definitions seen in the current record, by id & 0x3f: the kind is
 * valid only where definedIn holds the current record's number (1 and up,
 * so the initial zeros never count), which spares a reset per record.
 */
const definedKind = new Uint8Array(64);
const definedIn = new Uint32Array(64);
let record = 0;
const fromCharCode = String.fromCharCode;
// Node's Buffer method; reads any Uint8Array (one byte → one UTF-16 unit).
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
const float64 = new Float64Array(1);
const float64Bytes = new Uint8Array(float64.buffer);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const NIL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;

/** Bytes taken by the non-negative number starting with `token` (0: not one handled here). */
function numberSize(token: number): number {
  if (token < 0x40) return 1;
  switch (token) {
    case 0xcc:
      return 2;
    case 0xcd:
      return 3;
    case 0xce:
      return 5;
    case 0xcb:
      return 9;
    default:
      return 0;
  }
}

/** The number at b[p] (numberSize(b[p]) > 0 and its bytes in range). */
function numberAt(b: Uint8Array, p: number): number {
  const token = b[p]!;
  if (token < 0x40) return token;
  switch (token) {
    case 0xcc:
      return b[p + 1]!;
    case 0xcd:
      return (b[p + 1]! << 8) | b[p + 2]!;
    case 0xce:
      return ((b[p + 1]! << 24) >>> 0) + ((b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!);
    default: {
      // float64, big-endian on the wire
      for (let i = 0; i < 8; i++) float64Bytes[LITTLE_ENDIAN ? i : 7 - i] = b[p + 8 - i]!;
      const value = float64[0]!;
      return value >= 0 ? value : -1; // negative or NaN: not handled
    }
  }
}

/** Header bytes of the string starting with `token` (0: not a string handled here). */
function stringHeaderSize(token: number): number {
  return token >= 0xa0 && token <= 0xbf ? 1 : token === 0xd9 ? 2 : token === 0xda ? 3 : 0;
}

/** Byte length of the string whose header (of `headerSize` bytes, in range) is at b[p]. */
function stringLength(b: Uint8Array, p: number, headerSize: number): number {
  return headerSize === 1 ? b[p]! - 0xa0 : headerSize === 2 ? b[p + 1]! : (b[p + 1]! << 8) | b[p + 2]!;
}

/** The `n` bytes at b[i] as a string when all are ASCII, else null. */
function asciiAt(b: Uint8Array, i: number, n: number): string | null {
  const stop = i + n;
  for (let j = i; j < stop; j++) if (b[j]! >= 0x80) return null;
  return n <= 16 ? shortAscii(b, i, n) : latin1Slice.call(b, i, stop);
}

/**
 * The Rule msgpackr would decode from `bytes`, or undefined when the bytes
 * are not of the one shape handled here (the caller then asks lmdb-js).
 * One pass with the position in a local: this runs on every decision the
 * cache cannot answer.
 */
export function decodeRule(bytes: Uint8Array): Rule | undefined {
  const b = bytes;
  const n = bytes.length;
  if (!startsWithRuleHead(b, n)) return undefined;
  let p = RULE_HEAD.length;
  let size: number;
  // id
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const id = numberAt(b, p);
  p += size;
  // path
  if (p >= n || (size = stringHeaderSize(b[p]!)) === 0 || p + size > n) return undefined;
  let length = stringLength(b, p, size);
  if (p + size + length > n) return undefined;
  const path = asciiAt(b, p + size, length);
  p += size + length;
  // dev, ino: number or nil
  let dev: number | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
    dev = numberAt(b, p);
    p += size;
  }
  let ino: number | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
    ino = numberAt(b, p);
    p += size;
  }
  // birth: string or nil
  let birth: string | null = null;
  if (p < n && b[p] === NIL) p++;
  else {
    if (p >= n || (size = stringHeaderSize(b[p]!)) === 0 || p + size > n) return undefined;
    length = stringLength(b, p, size);
    if (p + size + length > n || (birth = asciiAt(b, p + size, length)) === null) return undefined;
    p += size + length;
  }
  // owner, defaccess
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const owner = numberAt(b, p);
  p += size;
  if (p >= n || (size = numberSize(b[p]!)) === 0 || p + size > n) return undefined;
  const defaccess = numberAt(b, p);
  p += size;
  // acl, recursive
  if (++record > 0xffff_ffff) {
    // Numbers are about to repeat: forget every stamp so none can pass for new.
    definedIn.fill(0);
    record = 1;
  }
  src = b;
  pos = p;
  end = n;
  const acl = readAcl();
  p = pos;
  if (acl === null || p + 1 !== n || (b[p] !== TRUE && b[p] !== FALSE)) return undefined;
  if (id < 0 || path === null || (dev !== null && dev < 0) || (ino !== null && ino < 0) || owner < 0 || defaccess < 0) return undefined;
  return { id, path, dev, ino, birth, owner, defaccess, acl, recursive: b[p] === TRUE };
}

/** Whether the record opens with RULE_HEAD, compared four bytes at a time. */
function startsWithRuleHead(b: Uint8Array, n: number): boolean {
  if (RULE_HEAD.length > n) return false;
  for (let w = 0, at = 0; w < RULE_HEAD_WORDS.length; w++, at += 4) {
    if ((b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) !== RULE_HEAD_WORDS[w]) return false;
  }
  for (let at = RULE_HEAD_WORDS.length * 4; at < RULE_HEAD.length; at++) if (b[at] !== RULE_HEAD[at]) return false;
  return true;
}

function skipBytes(expected: Uint8Array): boolean {
  const bytes = src;
  const at = pos;
  const n = expected.length;
  if (at + n > end) return false;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== expected[i]) return false;
  pos = at + n;
  return true;
}

/** A non-negative number at pos (see numberAt); -1 for anything else. */
function readNumber(): number {
  if (pos >= end) return -1;
  const size = numberSize(src[pos]!);
  if (size === 0 || pos + size > end) return -1;
  const value = numberAt(src, pos);
  pos += size;
  return value;
}

/**
 * `n` (≤ 16) ASCII bytes at `i` as a string, in one call: the cheapest way
 * to make a short flat string from bytes in JS (as msgpackr does).
 */
function shortAscii(b: Uint8Array, i: number, n: number): string {
  const c = fromCharCode;
  if (n <= 8) {
    if (n <= 4) {
      if (n <= 2) return n === 0 ? '' : n === 1 ? c(b[i]!) : c(b[i]!, b[i + 1]!);
      return n === 3 ? c(b[i]!, b[i + 1]!, b[i + 2]!) : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    }
    if (n <= 6) return n === 5 ? c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!) : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!);
    return n === 7
      ? c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!)
      : c(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
  }
  const a0 = b[i]!, a1 = b[i + 1]!, a2 = b[i + 2]!, a3 = b[i + 3]!, a4 = b[i + 4]!, a5 = b[i + 5]!, a6 = b[i + 6]!, a7 = b[i + 7]!;
  const j = i + 8;
  switch (n) {
    case 9:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!);
    case 10:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!);
    case 11:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!);
    case 12:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!);
    case 13:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!);
    case 14:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!);
    case 15:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!, b[j + 6]!);
    default:
      return c(a0, a1, a2, a3, a4, a5, a6, a7, b[j]!, b[j + 1]!, b[j + 2]!, b[j + 3]!, b[j + 4]!, b[j + 5]!, b[j + 6]!, b[j + 7]!);
  }
}

/** The acl array: user/group entries as records; null when unreadable. */
function readAcl(): AclEntry[] | null {
  if (pos >= end) return null;
  const token = src[pos]!;
  let length: number;
  if (token >= 0x90 && token <= 0x9f) {
    length = token - 0x90;
    pos++;
  } else if (token === 0xdc && pos + 3 <= end) {
    length = (src[pos + 1]! << 8) | src[pos + 2]!;
    pos += 3;
  } else {
    return null;
  }
  const acl = new Array<AclEntry>(length);
  for (let i = 0; i < length; i++) {
    if (pos >= end) return null;
    let kind: number;
    const t = src[pos]!;
    if (t === 0xd4 && pos + 3 <= end && src[pos + 1] === 0x72 && src[pos + 2]! >= 0x40 && src[pos + 2]! <= 0x7f) {
      const slot = src[pos + 2]! & 0x3f;
      pos += 3;
      if (skipBytes(USER_KEYS)) kind = USER_ENTRY;
      else if (skipBytes(GROUP_KEYS)) kind = GROUP_ENTRY;
      else return null;
      // Slot 0 holds the rule's own definition: redefining it is not our shape.
      if (slot === 0) return null;
      definedKind[slot] = kind;
      definedIn[slot] = record;
    } else if (t >= 0x40 && t <= 0x7f) {
      // Only a definition made earlier in this very record counts.
      if (definedIn[t & 0x3f] !== record) return null;
      kind = definedKind[t & 0x3f]!;
      pos++;
    } else {
      return null;
    }
    const who = readNumber();
    const access = readNumber();
    if (who < 0 || access < 0) return null;
    acl[i] = kind === USER_ENTRY ? { user: who, access } : { group: who, access };
  }
  return acl;
}

/** A Rule with exactly the model's fields, so no stray property is stored. */
function plainRule(r: Rule): Rule {
  return {
    id: r.id,
    path: r.path,
    dev: r.dev,
    ino: r.ino,
    birth: r.dev === null ? null : (r.birth ?? null),
    owner: r.owner,
    defaccess: r.defaccess,
    acl: r.acl,
    recursive: r.recursive,
  };
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

function prepareDirectory(dir: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (stat === undefined) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if (!stat.isDirectory()) throw invalid(`database path ${dir} is not a directory (aclfs keeps a directory)`);
}

function restrictFiles(dir: string): void {
  for (const name of [DATA_FILE, LOCK_FILE]) {
    try {
      fs.chmodSync(nodePath.join(dir, name), 0o600);
    } catch (err) {
      // Not our file (another user created the store): leave its mode alone;
      // the owner's umask and the 0700 directory decide.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}
