// The admin operations over a RuleStore. The daemon serves them on its
// socket (server.ts); the CLI's --db mode calls them in-process (localApi.ts,
// wired in main.ts). Both check a request at their edge (edge.ts), which
// also resolves its user and group names: what comes here is typed, valid
// and numeric (paths canonical, ids and bounds in range, rules parsed), and
// is not checked again. What the service does with it is the work:
// deciding, and writing. Every write goes through the store, so it commits
// in one LMDB transaction and bumps the generation: the decision cache,
// keyed on the generation, makes the next open through the mount follow it
// at once.

import { conflict, invalid, notFound, unavailable } from '../errors';
import { formatAccess } from '../rules/access';
import { auditMatches, isEmptyFilter, type AuditEntry, type AuditFilter, type AuditLevel } from '../rules/audit';
import { candidateView } from '../rules/candidate';
import { decide, describeDecision, findGoverningRule } from '../rules/decide';
import { describeStep, explainDecision, type ExplainStep } from '../rules/explain';
import { accessOf, reachOf, type PrincipalAccess } from '../rules/reach';
import { Replay } from '../rules/replay';
import { ruleInputOf, serializeRuleFile } from '../rules/ruleFile';
import type { RuleStore } from '../store/store';
import type {
  Access,
  Caller,
  Decision,
  DefaultPolicy,
  FileIdentity,
  GrantSource,
  Rule,
  RuleInput,
  RuleView as StoreView,
  Target,
} from '../rules/types';
import { currentActor } from './actor';
import type { AuditInput, CheckInput, ImportInput, ListInput, ReachInput, ReplayInput } from './edge';
import {
  DEFAULT_AUDIT_LIMIT,
  MAX_AUDIT_LIMIT,
  type AuditFollow,
  type AuditLevelResponse,
  type AuditPage,
  type AuditRecordView,
  type AuditStatsView,
  type CacheStatsView,
  type AccessResponse,
  type ConfirmResponse,
  type ReplayResponse,
  type DiffResponse,
  type HistoryResponse,
  type RollbackResponse,
  type CheckResponse,
  type GrantSourceView,
  type PrincipalAccessView,
  type ReachResponse,
  type DecisionCountersView,
  type EnforcementMode,
  type ExplainStepView,
  type ImportResponse,
  type ModeResponse,
  type PutResult,
  type RuleListResponse,
  type RuleView,
  type StatusResponse,
  type ExportOptions,
  type SyncStatusView,
} from './protocol';

/** What only a running daemon knows, for `status`. */
export interface RuntimeInfo {
  readonly version: string;
  readonly pid: number;
  readonly startedAt: Date;
  readonly source: string | null;
  readonly mountpoint: string | null;
  readonly mounted: boolean;
  readonly socket: string | null;
  readonly options: Readonly<Record<string, string | number | boolean>>;
  readonly decisions: DecisionCountersView;
  readonly cache: CacheStatsView | null;
  readonly workerLocals: StatusResponse['workerLocals'];
  readonly fastPath: StatusResponse['fastPath'];
  readonly dataPath: StatusResponse['dataPath'];
  /** The audit log's level and counters. */
  readonly audit?: AuditStatsView;
}

/** The daemon's audit log, as the API reads it (src/store/auditLog.ts, injected by main.ts). */
export interface AuditFeed {
  /** Up to `limit` records with seq > `after`, oldest first. */
  since(after: number, limit: number): AuditPage;
  /** Calls `listener` with each record appended from now on; returns the unsubscribe. */
  subscribe(listener: (record: AuditRecordView) => void): () => void;
  /**
   * Up to `limit` records with seq > `after` that `filter` matches, looking
   * at a bounded number of records (`more` says whether to go on from
   * `next`). Without it a filter is applied over since().
   */
  query?(filter: AuditFilter, after: number, limit: number): AuditPage;
  /** Records a change made over the API; without it changes are not recorded. */
  append?(entry: AuditEntry): unknown;
}

/** Which decisions the daemon's audit log records (injected by main.ts). */
export interface AuditLevelControl {
  get(): AuditLevel;
  /** Returns the level now in force. */
  set(level: AuditLevel): AuditLevel;
}

/** The daemon's enforce/permissive switch (injected by main.ts). */
export interface ModeControl {
  get(): EnforcementMode;
  /** Returns the mode now in force. */
  set(mode: EnforcementMode): EnforcementMode;
}

/** One rule change sent to the fleet's etcd: the rule now at `path`, or none. */
export interface FleetChange {
  readonly path: string;
  readonly rule: RuleInput | null;
}

/** Fleet sync, as the API sees it (src/sync, injected by main.ts). */
export interface FleetSync {
  status(): SyncStatusView;
  /** Rule writes go to etcd (--sync-writable); false: they are refused. */
  readonly writable: boolean;
  /** Writes the changes to etcd in one compare-and-swap transaction; resolves once applied here. */
  write(changes: readonly FleetChange[]): Promise<void>;
}

export interface AdminServiceOptions {
  readonly store: RuleStore;
  /**
   * The identity (dev, ino, birth) of the file at a rule path under the
   * source, looked up as the filter does, so `check` can count a rule bound
   * to the file's inode; null (the CLI's --db mode) = decide by path only.
   */
  readonly identity: ((path: string) => FileIdentity | null) | null;
  readonly defaultPolicy: DefaultPolicy;
  /**
   * Whether the daemon's decision cache holds an answer to this question at
   * the current commit (looked at without counting as a lookup), for an
   * explained `check`; without it (no daemon) explanations have no cache step.
   */
  readonly decisionCached?: (caller: Caller, target: Target, requested: Access) => boolean;
  /** Daemon facts for `status`; without it status describes just the database. */
  readonly runtime?: () => RuntimeInfo;
  /** The daemon's audit log; without it (no daemon) the audit operations are unavailable. */
  readonly audit?: AuditFeed;
  /** The daemon's mode switch; without it (no daemon) the mode operations are unavailable. */
  readonly mode?: ModeControl;
  /**
   * Fleet sync: the rules are a copy of those in etcd, so writes through
   * the API are refused (409), or with --sync-writable sent to etcd.
   */
  readonly sync?: FleetSync;
  /** The daemon's audit level; without it (no daemon) the audit level operations are unavailable. */
  readonly auditLevel?: AuditLevelControl;
  /** Version reported when there is no runtime. */
  readonly version?: string;
  /** Called by close() (e.g. to close a store opened for this service alone). */
  readonly onClose?: () => void;
  /**
   * The daemon's: imports may await confirmation (confirmWithin), and an
   * unconfirmed one is rolled back at its deadline, also after a restart.
   * `notify` is told what happened (the daemon logs it). Absent (--db): an
   * import cannot await confirmation, there being no one to roll it back.
   */
  readonly confirmations?: { readonly notify: (level: 'info' | 'warn', message: string) => void };
}

/**
 * The admin operations on input already checked, and its names resolved,
 * at an edge (edge.ts): rule ids in range, paths canonical, bounds in
 * range, rules parsed with numeric owners and ACL entries, a check's caller
 * as uid, gid and groups.
 */
export interface AdminOperations {
  status(): Promise<StatusResponse>;
  listRules(query: ListInput): Promise<RuleListResponse>;
  createRule(rule: RuleInput): Promise<RuleView>;
  putRule(id: number, rule: RuleInput): Promise<PutResult>;
  /** Stores the rule under its own path: replaces the rule of that path, or creates it. */
  setRuleByPath(rule: RuleInput): Promise<PutResult>;
  getRule(id: number): Promise<RuleView>;
  deleteRule(id: number): Promise<RuleView>;
  deleteRuleByPath(path: string): Promise<RuleView>;
  findByPath(path: string): Promise<RuleView>;
  findByInode(dev: number, ino: number): Promise<RuleView>;
  importRules(input: ImportInput): Promise<ImportResponse>;
  /** `onProgress`: rules read so far, of all (a caller on the same process shows a bar). */
  exportRules(onProgress?: ExportOptions['onProgress']): Promise<string>;
  check(input: CheckInput): Promise<CheckResponse>;
  /** Who gets which bits on a canonical path, by the rules. */
  access(path: string): Promise<AccessResponse>;
  reach(input: ReachInput): Promise<ReachResponse>;
  history(limit: number): Promise<HistoryResponse>;
  diff(from: number, to: number | undefined): Promise<DiffResponse>;
  rollback(generation: number): Promise<RollbackResponse>;
  confirm(): Promise<ConfirmResponse>;
  replay(input: ReplayInput): Promise<ReplayResponse>;
  auditLog(query: AuditInput): Promise<AuditPage>;
  followAudit(after: number, onRecord: (record: AuditRecordView) => void, filter?: AuditFilter): Promise<AuditFollow>;
  getMode(): Promise<ModeResponse>;
  setMode(mode: EnforcementMode): Promise<ModeResponse>;
  getAuditLevel(): Promise<AuditLevelResponse>;
  setAuditLevel(level: AuditLevel): Promise<AuditLevelResponse>;
}

/** Records a filtered replay looks at per turn of the event loop (a follow's replay is not one long stall). */
const REPLAY_PAGE = 1_000;

export class AdminService implements AdminOperations {
  private readonly store: RuleStore;
  private readonly startedAt = new Date();

  /** The rollback of the import awaiting confirmation, at its deadline. */
  private confirmTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AdminServiceOptions) {
    this.store = options.store;
    if (options.confirmations !== undefined) this.armConfirmation();
  }

  async close(): Promise<void> {
    clearTimeout(this.confirmTimer);
    this.options.onClose?.();
  }

  async status(): Promise<StatusResponse> {
    const generation = this.store.generation();
    const rules = this.store.count();
    const rt = this.options.runtime?.();
    const startedAt = rt?.startedAt ?? this.startedAt;
    return {
      version: rt?.version ?? this.options.version ?? 'unknown',
      pid: rt?.pid ?? process.pid,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.max(0, Math.round((Date.now() - startedAt.getTime()) / 100) / 10),
      source: rt?.source ?? null,
      mountpoint: rt?.mountpoint ?? null,
      mounted: rt?.mounted ?? false,
      db: this.store.dir,
      socket: rt?.socket ?? null,
      defaultPolicy: this.options.defaultPolicy,
      mode: this.options.mode?.get() ?? null,
      ...(rt?.audit === undefined ? {} : { audit: rt.audit }),
      options: rt?.options ?? {},
      generation,
      rules,
      decisions: rt?.decisions ?? { allowed: 0, denied: 0, errors: 0 },
      cache: rt?.cache ?? null,
      workerLocals: rt?.workerLocals ?? null,
      fastPath: rt?.fastPath ?? null,
      dataPath: rt?.dataPath ?? null,
      // Present only with fleet sync: a daemon without it answers as before.
      ...(this.options.sync === undefined ? {} : { sync: this.options.sync.status() }),
    };
  }

  async listRules(query: ListInput): Promise<RuleListResponse> {
    const page = this.store.list({ prefix: query.prefix, cursor: query.cursor, limit: query.limit });
    return { rules: page.rules.map(toView), nextCursor: page.nextCursor };
  }

  async createRule(input: RuleInput): Promise<RuleView> {
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const holder = this.store.findByPath(input.path);
      if (holder !== undefined) throw conflict(`rule ${holder.id} already governs ${input.path}`);
      await fleet.write([{ path: input.path, rule: input }]);
      return toView(this.bindNow(this.syncedRule(input.path)));
    }
    const view = toView(this.bindNow(this.store.add(input)));
    this.recordChange(view.path, view, `rule ${view.id} created: ${describeRule(view)}`);
    return view;
  }

  async putRule(id: number, input: RuleInput): Promise<PutResult> {
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const existing = this.store.get(id);
      if (existing === undefined) throw notFound(`no rule with id ${id} on this host (with fleet sync, rule ids are each host's own: create rules by path)`);
      const holder = this.store.findByPath(input.path);
      if (holder !== undefined && holder.id !== id) throw conflict(`cannot move rule ${id} to ${input.path}: rule ${holder.id} already governs it`);
      const moved = existing.path === input.path ? [] : [{ path: existing.path, rule: null }];
      await fleet.write([...moved, { path: input.path, rule: input }]);
      return { rule: toView(this.bindNow(this.syncedRule(input.path))), created: false };
    }
    const before = this.store.get(id);
    const { rule, created } = this.store.putOrCreate(id, input);
    return this.stored(before, rule, created);
  }

  async setRuleByPath(input: RuleInput): Promise<PutResult> {
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const created = this.store.findByPath(input.path) === undefined;
      await fleet.write([{ path: input.path, rule: input }]);
      return { rule: toView(this.bindNow(this.syncedRule(input.path))), created };
    }
    const before = this.store.findByPath(input.path);
    const { rule, created } = this.store.setByPath(input);
    return this.stored(before, rule, created);
  }

  async getRule(id: number): Promise<RuleView> {
    const rule = this.store.get(id);
    if (rule === undefined) throw notFound(`no rule with id ${id}`);
    return toView(rule);
  }

  async deleteRule(id: number): Promise<RuleView> {
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const held = this.store.get(id);
      if (held === undefined) throw notFound(`no rule with id ${id}`);
      await fleet.write([{ path: held.path, rule: null }]);
      return toView(held);
    }
    const rule = this.store.take(id);
    if (rule === undefined) throw notFound(`no rule with id ${id}`);
    return this.deleted(toView(rule));
  }

  async deleteRuleByPath(path: string): Promise<RuleView> {
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const held = this.store.findByPath(path);
      if (held === undefined) throw notFound(`no rule for ${path}`);
      await fleet.write([{ path, rule: null }]);
      return toView(held);
    }
    const rule = this.store.findByPath(path);
    const taken = rule === undefined ? undefined : this.store.take(rule.id);
    if (taken === undefined) throw notFound(`no rule for ${path}`);
    return this.deleted(toView(taken));
  }

  async findByPath(path: string): Promise<RuleView> {
    const rule = this.store.findByPath(path);
    if (rule === undefined) throw notFound(`no rule for ${path}`);
    return toView(rule);
  }

  async findByInode(dev: number, ino: number): Promise<RuleView> {
    const rule = this.store.findByInode(dev, ino);
    if (rule === undefined) throw notFound(`no rule bound to ${dev}:${ino}`);
    return toView(rule);
  }

  async importRules(input: ImportInput): Promise<ImportResponse> {
    if (input.dryRun === true) {
      const changes = this.store.previewImport(input.rules, input.replace);
      const updated = input.rules.filter((r) => this.store.findByPath(r.path) !== undefined).length;
      const removed = changes.filter((c) => c.after === null).length;
      return { created: input.rules.length - updated, updated, rules: this.store.count() + input.rules.length - updated - removed, generation: this.store.generation(), changes };
    }
    if (input.confirmWithinMs !== undefined) return this.importAwaitingConfirmation(input, input.confirmWithinMs);
    const fleet = this.fleetWriter();
    if (fleet !== null) {
      const given = new Set(input.rules.map((r) => r.path));
      const updated = input.rules.filter((r) => this.store.findByPath(r.path) !== undefined).length;
      const dropped = input.replace ? this.store.exportRules().filter((r) => !given.has(r.path)) : [];
      await fleet.write([...dropped.map((r) => ({ path: r.path, rule: null })), ...input.rules.map((rule) => ({ path: rule.path, rule }))]);
      return { created: input.rules.length - updated, updated, rules: this.store.count(), generation: this.store.generation() };
    }
    const result = this.store.importRules(input.rules, { replace: input.replace });
    const response = { ...result, rules: this.store.count(), generation: this.store.generation() };
    this.recordChange(
      '/',
      null,
      `rules imported${input.replace ? ' (replacing every rule)' : ''}: ${result.created} created, ${result.updated} updated, ${response.rules} now, generation ${response.generation}`,
    );
    return response;
  }

  async exportRules(onProgress?: ExportOptions['onProgress']): Promise<string> {
    const report = onProgress === undefined ? undefined : (done: number, total: number): void => onProgress({ phase: 'read', done, total });
    return serializeRuleFile(this.store.exportRules(report));
  }

  async check(input: CheckInput): Promise<CheckResponse> {
    const { path, requested } = input;
    const caller: Caller = { uid: input.uid, gid: input.gid, groups: input.groups, pid: 0 };
    // Reset the read snapshot first, so the lookups below see the generation reported.
    const generation = this.store.generation();
    const file = this.fileIdentity(path);
    // A candidate rule set is decided by path (its rules are bound to no file).
    const view: StoreView =
      input.candidate !== undefined
        ? candidateView(input.candidate)
        : file === null
          ? { byInode: () => undefined, byPath: (p) => this.store.byPath(p) }
          : this.store;
    const target = file === null ? { path, dev: 0, ino: 0 } : { path, dev: file.dev, ino: file.ino, birth: file.birth };
    let d: Decision;
    let steps: ExplainStepView[] | undefined;
    if (input.explain === true) {
      const explained = explainDecision(view, caller, target, requested, this.options.defaultPolicy);
      d = explained.decision;
      // The daemon's cache holds decisions of the rules in force, not of a candidate.
      const cached = input.candidate === undefined ? this.options.decisionCached : undefined;
      const all: ExplainStep[] = cached === undefined ? [...explained.steps] : [{ kind: 'cache', hit: cached(caller, target, requested) }, ...explained.steps];
      steps = all.map(stepView);
    } else {
      d = decide(view, caller, target, requested, this.options.defaultPolicy);
    }
    return {
      allow: d.allow,
      decision: d.allow ? 'allow' : 'deny',
      reason: describeDecision(d),
      caller: { uid: caller.uid, gid: caller.gid, groups: [...(caller.groups ?? [])] },
      path,
      file: file === null ? null : { dev: file.dev, ino: file.ino },
      requested: formatAccess(d.requested),
      granted: formatAccess(d.granted),
      rule: d.ruleId === null || d.rulePath === null ? null : { id: d.ruleId, path: d.rulePath },
      match: d.match,
      source: sourceView(d.source),
      defaultPolicy: this.options.defaultPolicy,
      generation,
      auditOnly: d.auditOnly,
      ...(steps === undefined ? {} : { steps }),
      ...(input.candidate === undefined ? {} : { candidate: true as const }),
    };
  }

  async access(path: string): Promise<AccessResponse> {
    const generation = this.store.generation();
    const file = this.fileIdentity(path);
    const view: StoreView = file === null ? { byInode: () => undefined, byPath: (p) => this.store.byPath(p) } : this.store;
    const target = file === null ? { path, dev: 0, ino: 0 } : { path, dev: file.dev, ino: file.ino, birth: file.birth };
    const listing = accessOf(findGoverningRule(view, target), this.options.defaultPolicy);
    return {
      path,
      file: file === null ? null : { dev: file.dev, ino: file.ino },
      rule: listing.rule === null ? null : { id: listing.rule.id, path: listing.rule.path, auditOnly: listing.rule.auditOnly },
      match: listing.rule?.match ?? 'default',
      entries: listing.entries.map(principalView),
      defaultPolicy: this.options.defaultPolicy,
      generation,
    };
  }

  async reach(input: ReachInput): Promise<ReachResponse> {
    const caller: Caller = { uid: input.uid, gid: input.gid, groups: input.groups, pid: 0 };
    const generation = this.store.generation();
    const page = this.store.list({ prefix: input.prefix, cursor: input.cursor, limit: input.limit });
    const reach = reachOf(this.store, page.rules, caller, input.prefix, this.options.defaultPolicy);
    return {
      caller: { uid: caller.uid, gid: caller.gid, groups: [...input.groups] },
      prefix: reach.prefix,
      inherited: { rule: reach.inherited.rule, access: formatAccess(reach.inherited.granted), source: sourceView(reach.inherited.source) },
      areas: reach.areas.map((a) => ({ path: a.path, scope: a.scope, rule: a.rule, access: formatAccess(a.granted), source: sourceView(a.source) })),
      next: page.nextCursor,
      defaultPolicy: this.options.defaultPolicy,
      generation,
    };
  }

  async history(limit: number): Promise<HistoryResponse> {
    const generation = this.store.generation();
    return { generation, floor: this.store.historyFloor(), records: this.store.history(limit) };
  }

  async diff(from: number, to: number | undefined): Promise<DiffResponse> {
    this.store.generation();
    return this.store.diff(from, to);
  }

  async rollback(generation: number): Promise<RollbackResponse> {
    const fleet = this.options.sync === undefined ? null : this.fleetWriter();
    if (fleet !== null) {
      // The fleet's rule set goes back in etcd, as any write through it.
      const { changes } = this.store.diff(this.store.generation(), generation);
      await fleet.write(changes.map((c) => ({ path: c.path, rule: c.after === null ? null : ruleInputOf(c.after) })));
      return { restored: generation, generation: this.store.generation(), changes };
    }
    const result = this.store.rollback(generation);
    return { restored: generation, generation: result.generation, changes: result.changes };
  }

  async confirm(): Promise<ConfirmResponse> {
    clearTimeout(this.confirmTimer);
    const confirmed = this.store.endConfirmation();
    if (confirmed) this.options.confirmations?.notify('info', `import confirmed: generation ${this.store.generation()} stays`);
    return { confirmed, generation: this.store.generation() };
  }

  async replay(input: ReplayInput): Promise<ReplayResponse> {
    const replay = new Replay(candidateView(input.candidate), this.options.defaultPolicy, input.limit);
    let after = 0;
    for (;;) {
      const page = this.auditPage(input.filter, after, MAX_AUDIT_LIMIT);
      for (const record of page.records) replay.add(record);
      const done = page.records.length === 0 && page.more !== true;
      if (done || page.next <= after) break;
      after = page.next;
    }
    return { ...replay.result(), level: this.options.auditLevel?.get() ?? 'deny' };
  }

  /** An import that rolls back by itself unless confirmed within `ms`. */
  private async importAwaitingConfirmation(input: ImportInput, ms: number): Promise<ImportResponse> {
    if (this.options.confirmations === undefined) throw invalid('an import awaiting confirmation needs the daemon, which rolls it back: give --socket, not --db');
    if (this.options.sync !== undefined) throw conflict('with fleet sync the rule set is etcd\'s: an import cannot await confirmation here');
    const before = this.store.generation();
    const result = this.store.importRules(input.rules, { replace: input.replace });
    const { restore, deadline } = this.store.awaitConfirmation(before, Date.now() + ms);
    this.armConfirmation();
    const confirmBy = new Date(deadline).toISOString();
    this.options.confirmations.notify('info', `import applied as generation ${this.store.generation()}: unless confirmed (aclfs confirm) by ${confirmBy}, the rule set of generation ${restore} comes back`);
    return { ...result, rules: this.store.count(), generation: this.store.generation(), confirmBy, restores: restore };
  }

  /** Sets the timer for the import awaiting confirmation, if one is (at start too: the mark is in the database). */
  private armConfirmation(): void {
    clearTimeout(this.confirmTimer);
    const pending = this.store.pendingConfirmation();
    if (pending === null) return;
    this.confirmTimer = setTimeout(() => this.rollBackUnconfirmed(), Math.max(0, pending.deadline - Date.now()));
    // The daemon's life is its mount's; a pending rollback does not keep it running.
    this.confirmTimer.unref();
  }

  private rollBackUnconfirmed(): void {
    const pending = this.store.pendingConfirmation();
    if (pending === null) return;
    if (Date.now() < pending.deadline) {
      this.armConfirmation();
      return;
    }
    const notify = this.options.confirmations?.notify ?? (() => undefined);
    try {
      const result = this.store.asActor('the daemon (import not confirmed in time)', () => this.store.rollback(pending.restore));
      notify('warn', `import not confirmed by ${new Date(pending.deadline).toISOString()}: the rule set of generation ${pending.restore} is back, as generation ${result.generation}`);
    } catch (err) {
      notify('warn', `import not confirmed in time, and the rule set of generation ${pending.restore} could not be restored: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.store.endConfirmation();
    }
  }

  async auditLog(query: AuditInput = { after: 0, limit: DEFAULT_AUDIT_LIMIT }): Promise<AuditPage> {
    return this.auditPage(query.filter ?? {}, query.after, query.limit);
  }

  async followAudit(after: number, onRecord: (record: AuditRecordView) => void, filter: AuditFilter = {}): Promise<AuditFollow> {
    const feed = this.auditFeed();
    const all = isEmptyFilter(filter);
    let stopped = false;
    let resolveEnded = (): void => {};
    const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      resolveEnded();
    };
    // Records appended while the stored ones are replayed wait here, then
    // go out after them: none is sent twice, none is missed.
    let replaying = true;
    let cursor = after;
    const held: AuditRecordView[] = [];
    const unsubscribe = feed.subscribe((record) => {
      if (!all && !auditMatches(record, filter)) return;
      if (replaying) held.push(record);
      else if (record.seq > cursor) {
        cursor = record.seq;
        onRecord(record);
      }
    });
    // The stored records: a page per turn of the event loop.
    const replay = async (): Promise<void> => {
      for (;;) {
        if (stopped) return;
        const page = this.auditPage(filter, cursor, REPLAY_PAGE);
        for (const record of page.records) if (record.seq > cursor) onRecord(record);
        cursor = Math.max(cursor, page.next);
        if (!(page.more ?? page.records.length > 0)) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      replaying = false;
      for (const record of held.splice(0)) {
        if (record.seq <= cursor) continue;
        cursor = record.seq;
        onRecord(record);
      }
    };
    // The first page is sent before this resolves (as before: a follower sees the stored records first).
    const first = this.auditPage(filter, cursor, MAX_AUDIT_LIMIT);
    for (const record of first.records) onRecord(record);
    cursor = Math.max(cursor, first.next);
    if (first.more ?? first.records.length > 0) {
      void replay().catch(() => stop());
    } else {
      replaying = false;
      for (const record of held.splice(0)) {
        if (record.seq <= cursor) continue;
        cursor = record.seq;
        onRecord(record);
      }
    }
    return { stop, ended };
  }

  async getMode(): Promise<ModeResponse> {
    return { mode: this.modeControl().get() };
  }

  async setMode(mode: EnforcementMode): Promise<ModeResponse> {
    const control = this.modeControl();
    const previous = control.get();
    const now = control.set(mode);
    if (now !== previous) this.recordChange('/', null, `mode ${previous} -> ${now}`);
    return { mode: now };
  }

  async getAuditLevel(): Promise<AuditLevelResponse> {
    return { level: this.auditLevelControl().get() };
  }

  async setAuditLevel(level: AuditLevel): Promise<AuditLevelResponse> {
    const control = this.auditLevelControl();
    const previous = control.get();
    const now = control.set(level);
    if (now !== previous) this.recordChange('/', null, `audit level ${previous} -> ${now}`);
    return { level: now };
  }

  // ---- helpers ------------------------------------------------------------

  /**
   * With fleet sync, where rule writes go: etcd (--sync-writable), or
   * nowhere (refused: the rules here are a copy of etcd's). Null without
   * fleet sync: the store.
   */
  private fleetWriter(): FleetSync | null {
    const sync = this.options.sync;
    if (sync === undefined) return null;
    if (!sync.writable) {
      throw conflict(
        `rules on this host follow etcd (${sync.status().source}) and are not written here: change them in etcd (aclfs push), or start the daemon with --sync-writable`,
      );
    }
    return sync;
  }

  /** The rule at `path` once a write through etcd has come back (it may already be gone again). */
  private syncedRule(path: string): Rule {
    const rule = this.store.findByPath(path);
    if (rule === undefined) throw conflict(`the rule written at ${path} was changed again in etcd before it could be shown`);
    return rule;
  }

  private auditFeed(): AuditFeed {
    if (this.options.audit === undefined) {
      throw unavailable('the audit log is kept by a running aclfs daemon, not in the rule database: ask the daemon (--socket)');
    }
    return this.options.audit;
  }

  /** A page of records after `after` that `filter` matches. */
  private auditPage(filter: AuditFilter, after: number, limit: number): AuditPage {
    const feed = this.auditFeed();
    if (isEmptyFilter(filter)) return feed.since(after, limit);
    if (feed.query !== undefined) return feed.query(filter, after, limit);
    // A log without its own query (the in-memory ring): every record it keeps, filtered.
    const records: AuditRecordView[] = [];
    let next = after;
    for (;;) {
      const page = feed.since(next, MAX_AUDIT_LIMIT);
      for (const r of page.records) {
        next = r.seq;
        if (auditMatches(r, filter)) records.push(r);
        if (records.length >= limit) return { records, next, more: true };
      }
      if (page.records.length === 0) return { records, next: page.next };
    }
  }

  /**
   * Records a change made over the API in the audit log, as op "admin" by
   * the socket's peer (uid 0, pid 0 when unknown: an in-process call).
   */
  private recordChange(path: string, rule: RuleView | null, reason: string): void {
    const append = this.options.audit?.append;
    if (append === undefined) return;
    const actor = currentActor();
    try {
      append.call(this.options.audit, {
        op: 'admin',
        path,
        uid: actor?.uid ?? process.getuid?.() ?? 0,
        gid: actor?.gid ?? process.getgid?.() ?? 0,
        groups: null,
        pid: actor?.pid ?? 0,
        file: null,
        access: '---',
        decision: 'allow',
        enforced: false,
        rule: rule?.id ?? null,
        rulePath: rule?.path ?? null,
        entry: null,
        epoch: null,
        reason,
      });
    } catch {
      // The change is made whether or not it could be recorded.
    }
  }

  private stored(before: Rule | undefined, rule: Rule, created: boolean): PutResult {
    const view = toView(this.bindNow(rule));
    const was = before === undefined ? '' : ` (was: ${describeRule(toView(before))})`;
    this.recordChange(view.path, view, `rule ${view.id} ${created ? 'created' : 'replaced'}: ${describeRule(view)}${was}`);
    return { rule: view, created };
  }

  private deleted(view: RuleView): RuleView {
    this.recordChange(view.path, view, `rule ${view.id} deleted: ${describeRule(view)}`);
    return view;
  }

  private auditLevelControl(): AuditLevelControl {
    if (this.options.auditLevel === undefined) {
      throw unavailable('the audit level is a setting of a running aclfs daemon, not of the database: ask the daemon (--socket)');
    }
    return this.options.auditLevel;
  }

  private modeControl(): ModeControl {
    if (this.options.mode === undefined) {
      throw unavailable('enforce/permissive is a mode of a running aclfs daemon, not of the database: ask the daemon (--socket)');
    }
    return this.options.mode;
  }

  /**
   * Binds a rule written for a file that exists to that file at once, not
   * at the binder's next sweep: a file with several names is governed
   * through all of them from the moment its rule is in force. Done in the
   * same turn of the event loop as the write, so no request the daemon
   * decides falls between the two commits. Returns the rule as stored.
   */
  private bindNow(rule: Rule): Rule {
    if (rule.dev !== null) return rule;
    const file = this.fileIdentity(rule.path);
    if (file === null || !this.store.bindWaiting(rule.path, file)) return rule;
    return this.store.get(rule.id) ?? rule;
  }

  /** The file's identity under the source, as the filter sees it; null = decide by path only. */
  private fileIdentity(path: string): FileIdentity | null {
    const lookup = this.options.identity;
    if (lookup === null) return null;
    try {
      return lookup(path);
    } catch {
      return null;
    }
  }
}

/** An explanation step as the API shows it: access as "rwx", gids copied, and the step in words. */
function stepView(step: ExplainStep): ExplainStepView {
  const text = describeStep(step);
  switch (step.kind) {
    case 'grant':
      return {
        ...step,
        source: step.source.kind === 'groups' ? { kind: 'groups', gids: [...step.source.gids] } : step.source,
        granted: formatAccess(step.granted),
        text,
      };
    default:
      return { ...step, text };
  }
}

/** A rule in one line, for the audit log: "/docs owner 0 defaccess r-- acl user:1001:r--,group:100:r-x recursive". */
export function describeRule(r: RuleView): string {
  const acl = r.acl.map((e) => ('user' in e ? `user:${e.user}:${e.access}` : `group:${e.group}:${e.access}`)).join(',');
  return `${r.path} owner ${r.owner} defaccess ${r.defaccess} acl ${acl === '' ? '-' : acl}${r.recursive ? ' recursive' : ''}${r.revocable ? ' revocable' : ''}`;
}

/** A rule as the API shows it. */
function sourceView(source: GrantSource): GrantSourceView {
  return source.kind === 'groups' ? { kind: 'groups', gids: [...source.gids] } : source;
}

function principalView({ principal, access }: PrincipalAccess): PrincipalAccessView {
  const bits = formatAccess(access);
  switch (principal.kind) {
    case 'owner':
    case 'user':
      return { kind: principal.kind, uid: principal.uid, access: bits };
    case 'group':
      return { kind: 'group', gid: principal.gid, access: bits };
    case 'other':
      return { kind: 'other', access: bits };
  }
}

export function toView(rule: Rule): RuleView {
  return {
    id: rule.id,
    path: rule.path,
    dev: rule.dev,
    ino: rule.ino,
    birth: rule.birth ?? null,
    owner: rule.owner,
    defaccess: formatAccess(rule.defaccess),
    acl: rule.acl.map((e) => {
      const until = e.expires === undefined ? {} : { expires: new Date(e.expires).toISOString(), ...(e.expires <= Date.now() ? { expired: true as const } : {}) };
      return 'user' in e ? { user: e.user, access: formatAccess(e.access), ...until } : { group: e.group, access: formatAccess(e.access), ...until };
    }),
    recursive: rule.recursive,
    revocable: rule.revocable === true,
    auditOnly: rule.auditOnly === true,
  };
}
