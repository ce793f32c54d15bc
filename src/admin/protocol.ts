// The admin API's wire protocol: HTTP/1.1 + JSON over a Unix socket, under
// versioned paths (/v1/...). Shared by the server (src/admin/server.ts), the
// client (src/admin/client.ts) and the CLI. It holds the one table of
// routes (API_ROUTES: method, path, query and body schemas, handler name)
// the server dispatches from, and the schemas of every request input.
//
// Rule bodies are one rule in the rule file's shape (see docs/product.md, "Rule
// file"): names or ids for owner/user/group, "rwx" or 0-7 for access. Here
// a body is only checked to be one object: its fields are checked by the
// rule file's own schema where names are resolved (one definition for files
// and API bodies, so the two cannot drift). The other request inputs (check
// bodies, query strings) are checked here, with the limits and path checks
// of src/rules/validate.ts (pure checks, so that the API, the rule file and
// the store cannot disagree on what is valid).

import { z } from 'zod';
import { isErrorClass, type ErrorClass } from '../errors';
import { AUDIT_LEVELS, type AuditLevel, type AuditPage, type AuditRecord as AuditRecordView, type DetailedAuditRecord } from '../rules/audit';
import { ENFORCEMENT_MODES, type EnforcementMode } from '../rules/mode';
import { MAX_REPLAY_LIMIT, type ReplayGroup } from '../rules/replay';
import type { RuleFileRule } from '../rules/ruleFile';
import { DEFAULT_LIST_LIMIT, isId, MAX_ID, MAX_LIST_LIMIT, MAX_RULE_ID, notAnId, pathTextProblem } from '../rules/validate';

export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_RULE_ID };

export const API_VERSION = 'v1';

/** The API's paths; `{id}` is a rule id (1-MAX_RULE_ID). */
const PATHS = {
  status: '/v1/status',
  rules: '/v1/rules',
  rule: '/v1/rules/{id}',
  byPath: '/v1/rules/by-path',
  byInode: '/v1/rules/by-inode',
  import: '/v1/rules/import',
  export: '/v1/rules/export',
  check: '/v1/check',
  access: '/v1/access',
  reach: '/v1/access/user',
  history: '/v1/history',
  confirm: '/v1/confirm',
  replay: '/v1/replay',
  diff: '/v1/history/diff',
  rollback: '/v1/rollback',
  audit: '/v1/audit',
  auditLevel: '/v1/audit/level',
  mode: '/v1/mode',
} as const;

/** Request targets, for a client. */
export const ROUTES = {
  status: PATHS.status,
  rules: PATHS.rules,
  rule: (id: number): string => PATHS.rule.replace('{id}', String(id)),
  byPath: PATHS.byPath,
  byInode: PATHS.byInode,
  import: PATHS.import,
  export: PATHS.export,
  check: PATHS.check,
  access: PATHS.access,
  reach: PATHS.reach,
  history: PATHS.history,
  confirm: PATHS.confirm,
  replay: PATHS.replay,
  diff: PATHS.diff,
  rollback: PATHS.rollback,
  audit: PATHS.audit,
  auditLevel: PATHS.auditLevel,
  mode: PATHS.mode,
} as const;

/** Request bodies above this many bytes get 413 (every endpoint but import). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** The import endpoint's own limit (default; the daemon can be given another). */
export const DEFAULT_IMPORT_LIMIT_BYTES = 256 * 1024 * 1024;
/** Page size bounds of GET /v1/audit. */
export const MAX_AUDIT_LIMIT = 10_000;
export const DEFAULT_AUDIT_LIMIT = 100;
/** Content type of a followed audit log: one JSON record per line. */
export const NDJSON = 'application/x-ndjson';
/** Most supplementary groups a check may name (Linux NGROUPS_MAX). */
export const MAX_GROUPS = 65_536;

// ---- errors -------------------------------------------------------------------

/**
 * The one place error classes become HTTP status codes (and back). The body
 * of every error is `{"error": {"code": <class>, "message": <one line>}}`.
 */
const HTTP_STATUS: Readonly<Record<ErrorClass, number>> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  internal: 500,
  unavailable: 503,
};

export function httpStatusFor(code: ErrorClass): number {
  return HTTP_STATUS[code];
}

/** For an error reply whose body carries no known code (e.g. from a proxy). */
export function errorClassForStatus(status: number): ErrorClass {
  for (const [code, s] of Object.entries(HTTP_STATUS)) if (s === status && isErrorClass(code)) return code;
  return status >= 500 ? 'internal' : 'invalid';
}

// ---- shapes on the wire -----------------------------------------------------

/** A uid/gid, or a user/group name resolved by the daemon. */
export type IdOrName = number | string;
/** "r-x"-style string or an integer 0-7. */
export type AccessSpec = string | number;

/** One rule as a client sends it (the rule file's shape). */
export interface RuleBody {
  readonly path: string;
  readonly recursive?: boolean;
  /** Never served by passthrough, so a revoke also stops reads of open handles (default false). */
  readonly revocable?: boolean;
  /** A denial it decides is let through and recorded as "would deny" (default false). */
  readonly auditOnly?: boolean;
  readonly owner: IdOrName;
  readonly defaccess: AccessSpec;
  /** `expires`: an RFC 3339 time with its offset after which the entry grants nothing. */
  readonly acl?: readonly (
    | { readonly user: IdOrName; readonly access: AccessSpec; readonly expires?: string }
    | { readonly group: IdOrName; readonly access: AccessSpec; readonly expires?: string }
  )[];
}

/** `expires` (RFC 3339) when the entry expires; `expired` true once it has (it then grants nothing). */
export type AclEntryView = ({ readonly user: number } | { readonly group: number }) & {
  readonly access: string;
  readonly expires?: string;
  readonly expired?: true;
};

/** One rule as the API returns it: ids resolved, access as "rwx" strings. */
export interface RuleView {
  readonly id: number;
  readonly path: string;
  /** Identity of the file the rule is bound to; null while unbound. */
  readonly dev: number | null;
  readonly ino: number | null;
  /** Birth time ("sec.nsec") of the bound file when known: a reused inode number is told apart by it. */
  readonly birth: string | null;
  readonly owner: number;
  readonly defaccess: string;
  readonly acl: readonly AclEntryView[];
  readonly recursive: boolean;
  /** Always present: false unless the rule is marked revocable. */
  readonly revocable: boolean;
  /** Always present: false unless the rule is marked audit-only. */
  readonly auditOnly: boolean;
}

export interface RuleListResponse {
  readonly rules: RuleView[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** PUT results: the rule as stored, and whether it was created (201) or replaced (200). */
export interface PutResult {
  readonly rule: RuleView;
  readonly created: boolean;
}

export interface ImportResponse {
  readonly created: number;
  readonly updated: number;
  /** Rules in the database after the import. */
  readonly rules: number;
  readonly generation: number;
  /** With dryRun: what the import would change, by path (nothing was written). */
  readonly changes?: readonly RuleChangeView[];
  /** With confirmWithin: the rule set of generation `restores` comes back at `confirmBy` unless confirmed. */
  readonly confirmBy?: string;
  readonly restores?: number;
}

/** POST /v1/confirm: keeps an import made with confirmWithin. */
export interface ConfirmResponse {
  /** false: nothing was awaiting confirmation. */
  readonly confirmed: boolean;
  readonly generation: number;
}

export interface DecisionCountersView {
  readonly allowed: number;
  readonly denied: number;
  readonly errors: number;
}

export interface CacheStatsView {
  readonly size: number;
  readonly maxSize: number;
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); 0 before the first lookup. */
  readonly hitRate: number;
  readonly evictions: number;
  readonly invalidations: number;
}

// The enforcement mode is the domain's (src/rules/mode.ts).
export { ENFORCEMENT_MODES, type EnforcementMode };

export interface ModeResponse {
  readonly mode: EnforcementMode;
}

// The audit record and page are the domain's (src/rules/audit.ts), shown as they are.
export type { AuditRecordView, AuditPage, DetailedAuditRecord };
export { AUDIT_LEVELS, type AuditLevel };

/** Which audit records a listing or a follow returns; every field given must hold. */
export interface AuditFilterQuery {
  /** ISO 8601: records at or after this time (the CLI's --since). */
  readonly from?: string;
  /** ISO 8601: records before this time (the CLI's --until). */
  readonly to?: string;
  readonly uid?: number;
  /** This path or anything below it, by whole components. */
  readonly path?: string;
  readonly decision?: 'allow' | 'deny';
  /** The operation exactly (open, write, admin, ...). */
  readonly op?: string;
  /** The deciding rule's id. */
  readonly rule?: number;
}

export interface AuditQuery extends AuditFilterQuery {
  /** Only records with a greater seq (default 0: from the oldest kept). */
  readonly after?: number;
  /** At most this many (1-10000, default 100). */
  readonly limit?: number;
}

export interface AuditLevelResponse {
  /** deny: denials are recorded; allow: allows; all: both. */
  readonly level: AuditLevel;
}

/** The audit log's counters (status). */
export interface AuditStatsView {
  readonly level: AuditLevel;
  /** Appended, not written yet. */
  readonly queued: number;
  /** Dropped because the queue was full (never recorded). */
  readonly dropped: number;
  /** Written since the daemon started. */
  readonly written: number;
  /** Lost in batches whose write failed. */
  readonly failed: number;
  readonly failedBatches: number;
  /** Stored now. */
  readonly records: number;
  readonly maxRecords: number;
  readonly maxAgeSeconds: number;
  /** Seq of the newest record. */
  readonly newest: number;
}

/** A live follow of the audit log. */
export interface AuditFollow {
  /** Ends the follow (the `ended` promise then resolves). */
  stop(): void;
  /**
   * Resolves once stop() was called; rejects (unavailable) when the daemon
   * ended the follow (it shut down, or the connection broke).
   */
  readonly ended: Promise<void>;
}

export interface StatusResponse {
  readonly version: string;
  readonly pid: number;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  /** Null when not served by a mount daemon (the CLI's --db mode). */
  readonly source: string | null;
  readonly mountpoint: string | null;
  readonly mounted: boolean;
  readonly db: string;
  readonly socket: string | null;
  readonly defaultPolicy: 'deny' | 'allow';
  /** Enforce or permissive; null when not served by a mount daemon. */
  readonly mode: EnforcementMode | null;
  /** The audit log's level and counters; only from a mount daemon. */
  readonly audit?: AuditStatsView;
  /** Mount options in force (e.g. defaultPermissions); keys may grow. */
  readonly options: Readonly<Record<string, string | number | boolean>>;
  readonly generation: number;
  readonly rules: number;
  readonly decisions: DecisionCountersView;
  readonly cache: CacheStatsView | null;
  /**
   * The binding's per-worker-thread state: how many were ever created and
   * how many wait for reuse. `created` stays near the most libfuse worker
   * threads alive at once; null when not served by a mount daemon.
   */
  readonly workerLocals: { readonly created: number; readonly idle: number } | null;
  /** Opens, reads and writes the binding answered itself by replaying allows. */
  readonly fastPath: {
    readonly opens: number;
    readonly reads: number;
    readonly writes: number;
    /** Directory entries listed together with their attributes (READDIRPLUS), each a LOOKUP the kernel did not need. */
    readonly listedAttributes: number;
  } | null;
  /**
   * How file data is served: by FUSE passthrough (the kernel reads and
   * writes the backing file itself after an allowed open: a revoke stops
   * new opens, and open handles only of revocable rules) or through the
   * daemon; `refusal` says why passthrough was asked for but refused. Null
   * when not served by a mount daemon.
   */
  readonly dataPath: {
    readonly requested: 'passthrough' | 'daemon';
    readonly mode: 'passthrough' | 'daemon';
    readonly refusal: string | null;
    readonly passthroughOpens: number;
    readonly registrations: number;
    /** With passthrough: smaller files opened for reading only are served through the daemon. */
    readonly passthroughMinSize: number;
  } | null;
  /** Fleet sync (aclfs mount --sync): where the rules come from and how fresh they are; absent without it. */
  readonly sync?: SyncStatusView;
}

/** The state of fleet sync (docs/fleet.md). */
export interface SyncStatusView {
  /** etcd://host:port/prefix, without credentials. */
  readonly source: string;
  /** connecting, loading (a full load), following (watching), unreachable (enforcing the last rule set applied). */
  readonly state: 'connecting' | 'loading' | 'following' | 'unreachable' | 'stopped';
  /** Rule writes through this API go to etcd (--sync-writable); else they are refused (409). */
  readonly writable: boolean;
  /** The last etcd revision applied to the local database; null before the first. */
  readonly revision: number | null;
  /** ISO 8601: when etcd last answered, and when a revision was last applied. */
  readonly lastContactAt: string | null;
  readonly lastAppliedAt: string | null;
  /** Seconds since then (how stale the rule set may be); null before the first. */
  readonly secondsSinceContact: number | null;
  readonly secondsSinceApply: number | null;
  readonly fullLoads: number;
  /** Paths whose value in etcd does not parse: each stands here as a rule that grants nothing. */
  readonly invalidPaths: readonly string[];
  readonly lastError: string | null;
}

export interface CheckRequest {
  readonly uid: IdOrName;
  /** Default: the user's primary group from /etc/passwd. */
  readonly gid?: IdOrName;
  /** Default: the user's groups from /etc/group (as initgroups(3) would set them). */
  readonly groups?: readonly IdOrName[];
  readonly path: string;
  /** Requested bits: "r", "rw", "r-x" or an integer 1-7. */
  readonly access: AccessSpec;
  /** Also return every step of the decision (`steps`). */
  readonly explain?: boolean;
  /**
   * A candidate rule file ({"version": 1, "rules": [...]}): decide against
   * it instead of the rules in force, applying nothing. Its rules are by
   * path (none is bound to a file).
   */
  readonly rules?: unknown;
}

export type GrantSourceView =
  | { readonly kind: 'owner' }
  | { readonly kind: 'user'; readonly uid: number }
  | { readonly kind: 'groups'; readonly gids: readonly number[] }
  | { readonly kind: 'defaccess' }
  | { readonly kind: 'default-policy'; readonly policy: 'deny' | 'allow' };

/** A rule as an explanation step names it. */
export interface ExplainRuleView {
  readonly id: number;
  readonly path: string;
  readonly recursive: boolean;
  readonly auditOnly: boolean;
}

/**
 * One step of an explained check, in the order the filter takes them, with
 * `text`, the step in words. `cache` comes first, from a daemon only.
 */
export type ExplainStepView = { readonly text: string } & (
  | {
      /** Whether the daemon's decision cache holds an answer to this very question now (the check itself always decides afresh). */
      readonly kind: 'cache';
      readonly hit: boolean;
    }
  | {
      /** The rule index by dev:ino; `file` false when there is no file at the path (nothing to look up). */
      readonly kind: 'inode';
      readonly dev: number;
      readonly ino: number;
      readonly file: boolean;
      readonly result: 'hit' | 'miss' | 'stale' | 'reused';
      readonly rule: ExplainRuleView | null;
    }
  | { readonly kind: 'path'; readonly path: string; readonly rule: ExplainRuleView | null }
  | { readonly kind: 'ancestor'; readonly path: string; readonly rule: ExplainRuleView | null }
  | { readonly kind: 'default'; readonly policy: 'deny' | 'allow' }
  | { readonly kind: 'grant'; readonly rule: ExplainRuleView; readonly source: GrantSourceView; readonly granted: string }
);

export interface CheckResponse {
  readonly allow: boolean;
  readonly decision: 'allow' | 'deny';
  /** One line, e.g. `deny: rule 2 (/docs/secret.txt, by inode): defaccess --- lacks r`. */
  readonly reason: string;
  /** The identity decided for (ids resolved, defaults filled in). */
  readonly caller: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] };
  /** Normalised path. */
  readonly path: string;
  /** dev:ino of the file under the source, when it exists and was consulted; null = decided by path only. */
  readonly file: { readonly dev: number; readonly ino: number } | null;
  readonly requested: string;
  readonly granted: string;
  /** The governing rule; null when the default policy decided. */
  readonly rule: { readonly id: number; readonly path: string } | null;
  readonly match: 'inode' | 'path' | 'ancestor' | 'default';
  readonly source: GrantSourceView;
  readonly defaultPolicy: 'deny' | 'allow';
  readonly generation: number;
  /** The deciding rule is audit-only: the mount lets a denial through (and records it as "would deny"). */
  readonly auditOnly: boolean;
  /** Every step of the decision; only when the request asked to explain it. */
  readonly steps?: readonly ExplainStepView[];
  /** Decided against a candidate rule set given with the request (nothing applied). */
  readonly candidate?: true;
}

/** One principal a rule names (or everyone else) and the bits it gets. */
export type PrincipalAccessView =
  | { readonly kind: 'owner' | 'user'; readonly uid: number; readonly access: string }
  | { readonly kind: 'group'; readonly gid: number; readonly access: string }
  | { readonly kind: 'other'; readonly access: string };

/** Who gets which bits on one file or directory, from the rules (GET /v1/access?path=). */
export interface AccessResponse {
  readonly path: string;
  /** dev:ino of the file under the source, when it exists and was consulted; null = by path only. */
  readonly file: { readonly dev: number; readonly ino: number } | null;
  /**
   * The governing rule; null when the default policy decides for everyone.
   * An audit-only rule's denials are let through (and recorded).
   */
  readonly rule: { readonly id: number; readonly path: string; readonly auditOnly: boolean } | null;
  readonly match: 'inode' | 'path' | 'ancestor' | 'default';
  /**
   * In the order a decision consults them: the owner, each user, each group
   * (a caller in several gets the union), then everyone else.
   */
  readonly entries: readonly PrincipalAccessView[];
  readonly defaultPolicy: 'deny' | 'allow';
  readonly generation: number;
}

export interface ReachRequest {
  readonly uid: IdOrName;
  /** Default: the user's primary group from /etc/passwd. */
  readonly gid?: IdOrName;
  /** Default: the user's groups from /etc/group. */
  readonly groups?: readonly IdOrName[];
  /** Default "/". */
  readonly prefix?: string;
  /** Rules listed per page (default 1000). */
  readonly limit?: number;
  /** `next` of the page before. */
  readonly cursor?: string;
}

/** One rule at or below the prefix and the bits it gives the user. */
export interface ReachAreaView {
  readonly path: string;
  /** file: exactly this path; tree: this path and everything below it without a closer rule. */
  readonly scope: 'file' | 'tree';
  readonly rule: number;
  readonly access: string;
  readonly source: GrantSourceView;
}

/** What one user can reach at and below a path, from the rules (POST /v1/access/user). */
export interface ReachResponse {
  readonly caller: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] };
  readonly prefix: string;
  /** What governs the prefix and everything below it no area covers: the nearest recursive rule above, or the default policy (rule null). */
  readonly inherited: { readonly rule: { readonly id: number; readonly path: string } | null; readonly access: string; readonly source: GrantSourceView };
  readonly areas: readonly ReachAreaView[];
  /** Pass back as `cursor` for the next page; null: the last page. */
  readonly next: string | null;
  readonly defaultPolicy: 'deny' | 'allow';
  readonly generation: number;
}

/** One path's rule before and after (null: none), in the rule file's form. */
export interface RuleChangeView {
  readonly path: string;
  readonly before: RuleFileRule | null;
  readonly after: RuleFileRule | null;
}

/** One commit that changed the rule set. */
export interface HistoryRecordView {
  readonly generation: number;
  readonly time: string;
  /** "uid 0 over the socket", "local (--db)", "fleet sync from etcd://...", ... */
  readonly who: string;
  /** "rollback to generation 12", or null for plain rule writes. */
  readonly note: string | null;
  /** Paths whose rule changed; -1: more than the history records per commit. */
  readonly changed: number;
  /** Null when the commit changed more than the history records (then nothing before it can be restored). */
  readonly changes: readonly RuleChangeView[] | null;
}

/** GET /v1/history: the newest records first. */
export interface HistoryResponse {
  readonly generation: number;
  /** The oldest generation that can still be restored or compared. */
  readonly floor: number;
  readonly records: readonly HistoryRecordView[];
}

/** GET /v1/history/diff: what changed from one generation to another, by path. */
export interface DiffResponse {
  readonly from: number;
  readonly to: number;
  readonly changes: readonly RuleChangeView[];
}

/** POST /v1/rollback: the rule set of `restored` is in force again, as generation `generation`. */
export interface RollbackResponse {
  readonly restored: number;
  readonly generation: number;
  readonly changes: readonly RuleChangeView[];
}

/** POST /v1/replay: a candidate rule file, and which recorded accesses to replay (ISO 8601 bounds). */
export interface ReplayRequest {
  readonly rules: unknown;
  readonly from?: string;
  readonly to?: string;
  /** Changed accesses listed per rule (default 1000; all are counted). */
  readonly limit?: number;
}

/** What the candidate would have decided differently, grouped by its deciding rule. */
export interface ReplayResponse {
  readonly examined: number;
  readonly skipped: number;
  readonly changed: number;
  readonly groups: readonly ReplayGroup[];
  /** The audit level now: at deny, allows were not recorded, so none can turn into denials here. */
  readonly level: AuditLevel;
}

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

// ---- the API, as the client and the in-process API (localApi.ts) offer it ----

export interface ListQuery {
  readonly prefix?: string;
  readonly cursor?: string;
  readonly limit?: number;
}

export interface ImportProgress {
  /** upload: bytes sent to the daemon; validate: rules validated (--db mode). */
  readonly phase: 'upload' | 'validate';
  readonly done: number;
  readonly total: number;
}

export interface ImportOptions {
  /** Delete every rule first: the file becomes the whole rule set. */
  readonly replace?: boolean;
  /** Change nothing: answer what the import would change. */
  readonly dryRun?: boolean;
  /**
   * Apply, and put the rule set of before the import back by itself unless
   * confirmed (POST /v1/confirm) within this many seconds (a daemon only).
   */
  readonly confirmWithin?: number;
  readonly onProgress?: (progress: ImportProgress) => void;
}

export interface ExportProgress {
  /** read: rules read from the database (--db mode); download: bytes received from the daemon. */
  readonly phase: 'read' | 'download';
  readonly done: number;
  readonly total: number;
}

export interface ExportOptions {
  readonly onProgress?: (progress: ExportProgress) => void;
}

/** Every operation of the admin API; errors are AclfsErrors of the closed set. */
export interface AdminApi {
  status(): Promise<StatusResponse>;
  listRules(query?: ListQuery): Promise<RuleListResponse>;
  /** conflict if the path already has a rule. */
  createRule(body: RuleBody): Promise<RuleView>;
  /** Replaces rule `id`, or creates it with that id (ids are never reused). */
  putRule(id: number, body: RuleBody): Promise<PutResult>;
  /** Replaces the rule governing `path` exactly, or creates it. `body.path` must name the same path. */
  setRuleByPath(path: string, body: RuleBody): Promise<PutResult>;
  getRule(id: number): Promise<RuleView>;
  /** Returns the rule deleted. */
  deleteRule(id: number): Promise<RuleView>;
  deleteRuleByPath(path: string): Promise<RuleView>;
  findByPath(path: string): Promise<RuleView>;
  findByInode(dev: number, ino: number): Promise<RuleView>;
  /** Atomic: one bad rule and nothing changes. `text` is a rule file (JSON). */
  importRules(text: string, options?: ImportOptions): Promise<ImportResponse>;
  /** The rule file (JSON text) of every rule. */
  exportRules(options?: ExportOptions): Promise<string>;
  check(request: CheckRequest): Promise<CheckResponse>;
  /** Who gets which bits on `path`, by the rules. */
  access(path: string): Promise<AccessResponse>;
  /** What one user can reach at and below a path, by the rules. */
  reach(request: ReachRequest): Promise<ReachResponse>;
  /** The newest `limit` commits that changed the rule set (default 20). */
  history(limit?: number): Promise<HistoryResponse>;
  /** What changed from generation `from` to `to` (default: now). */
  diff(from: number, to?: number): Promise<DiffResponse>;
  /** Restores the rule set of generation `generation`, as a new commit. */
  rollback(generation: number): Promise<RollbackResponse>;
  /** Keeps the import awaiting confirmation (see ImportOptions.confirmWithin). */
  confirm(): Promise<ConfirmResponse>;
  /** The recorded accesses a candidate rule set would decide differently (a running daemon only). */
  replay(request: ReplayRequest): Promise<ReplayResponse>;
  /** Stored audit records after `query.after` that its filter matches, oldest first (a running daemon only). */
  auditLog(query?: AuditQuery): Promise<AuditPage>;
  /**
   * The stored audit records after `after` that `filter` matches, then
   * every new matching one as it is recorded, each passed to `onRecord`,
   * until stopped. Resolves once the follow is established (errors, such
   * as no daemon, reject here).
   */
  followAudit(after: number, onRecord: (record: AuditRecordView) => void, filter?: AuditFilterQuery): Promise<AuditFollow>;
  getAuditLevel(): Promise<AuditLevelResponse>;
  /** Which decisions the daemon records from now on (allows: every open then reaches the daemon). */
  setAuditLevel(level: AuditLevel): Promise<AuditLevelResponse>;
  getMode(): Promise<ModeResponse>;
  /** Switches the daemon's mode; the next open (and the next read or write reaching the daemon) follows it. */
  setMode(mode: EnforcementMode): Promise<ModeResponse>;
}

/** An AdminApi holding a resource (a socket agent, a database handle). */
export interface ClosableAdminApi extends AdminApi {
  close(): Promise<void>;
}

// ---- schemas for request inputs (query strings, check bodies) ----------------

/** A uid (or gid, per `what`) as a number 0-MAX_ID, or a name (resolved by the daemon). */
const idOrName = (what: 'uid' | 'gid') =>
  z.union([z.number().refine(isId, { error: (issue) => notAnId(issue.input, what) }), z.string().min(1).max(256)], {
    error: `must be a numeric ${what} (0-${MAX_ID}) or a name`,
  });

/** A path as text: well-formed (no lone surrogate, no NUL; see pathTextProblem). */
const pathText = z.string({ error: 'must be a string' }).superRefine((value, ctx) => {
  const problem = pathTextProblem(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} ${problem}` });
});

const accessSpec = z.union([z.number().int().min(0).max(7), z.string().min(1).max(8)], {
  error: 'must be an access like "r", "rw", "r-x" or 1-7',
});

export const checkRequestSchema = z.strictObject(
  {
    uid: idOrName('uid'),
    gid: idOrName('gid').optional(),
    groups: z.array(idOrName('gid'), { error: 'must be an array of group ids or names' }).max(MAX_GROUPS, 'too many groups').optional(),
    path: pathText.min(1, 'must not be empty'),
    access: accessSpec,
    explain: z.boolean({ error: 'must be true or false' }).optional(),
    // A rule file; the rule file's own schema checks it (edge.ts).
    rules: z.unknown().optional(),
  },
  { error: 'must be an object like {"uid": 1000, "path": "/docs/a.txt", "access": "r"}' },
);

/** Decimal digits only, as a query value: "42" → 42 (safe integers). */
const decimal = (min: number, max: number, range: string) =>
  z
    .string()
    .regex(/^\d{1,16}$/, `must be a decimal integer ${range}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, `must be a decimal integer ${range}`);

export const reachRequestSchema = z.strictObject(
  {
    uid: idOrName('uid'),
    gid: idOrName('gid').optional(),
    groups: z.array(idOrName('gid'), { error: 'must be an array of group ids or names' }).max(MAX_GROUPS, 'too many groups').optional(),
    prefix: pathText.min(1, 'must not be empty').optional(),
    limit: z.number().int().min(1).max(MAX_LIST_LIMIT).optional(),
    cursor: pathText.optional(),
  },
  { error: 'must be an object like {"uid": 1000, "prefix": "/docs"}' },
);

export const listQuerySchema = z.strictObject({
  prefix: pathText.optional(),
  cursor: pathText.optional(),
  limit: decimal(1, MAX_LIST_LIMIT, `1-${MAX_LIST_LIMIT}`).optional(),
});

export const pathQuerySchema = z.strictObject({ path: z.string({ error: 'is required' }).pipe(pathText) });

export const inodeQuerySchema = z.strictObject({
  dev: decimal(0, Number.MAX_SAFE_INTEGER, '>= 0'),
  ino: decimal(0, Number.MAX_SAFE_INTEGER, '>= 0'),
});

/** Longest --confirm-within, in seconds (a day). */
export const MAX_CONFIRM_SECONDS = 86_400;

export const importQuerySchema = z.strictObject({
  replace: z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).optional(),
  dryRun: z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).optional(),
  confirmWithin: decimal(1, MAX_CONFIRM_SECONDS, `1-${MAX_CONFIRM_SECONDS} (seconds)`).optional(),
});

export const emptyQuerySchema = z.strictObject({});

const flag = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' });

/** "true"/"1" → true. */
export function isTrueFlag(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

/** An ISO 8601 time with a date ("2026-12-07", "2026-12-07T05:00:00Z"). */
const isoTime = z
  .string()
  .refine((s) => /^\d{4}-\d{2}-\d{2}/.test(s) && Number.isFinite(Date.parse(s)), 'must be an ISO 8601 time like 2026-12-07T05:00:00Z');

export const auditQuerySchema = z
  .strictObject({
    after: decimal(0, Number.MAX_SAFE_INTEGER, '>= 0').optional(),
    limit: decimal(1, MAX_AUDIT_LIMIT, `1-${MAX_AUDIT_LIMIT}`).optional(),
    follow: flag.optional(),
    from: isoTime.optional(),
    to: isoTime.optional(),
    uid: decimal(0, MAX_ID, `0-${MAX_ID}`).optional(),
    path: pathText.optional(),
    decision: z.enum(['allow', 'deny'], { error: 'must be "allow" or "deny"' }).optional(),
    op: z.string().regex(/^[a-z]{1,32}$/, 'must be an operation name like open, write or admin').optional(),
    rule: decimal(1, MAX_RULE_ID, `1-${MAX_RULE_ID}`).optional(),
  })
  .refine((q) => !(isTrueFlag(q.follow) && q.limit !== undefined), {
    message: 'does not apply with follow=true (a follow sends every record)',
    path: ['limit'],
  });

/** Records a history page lists at most. */
export const MAX_HISTORY_LIMIT = 1000;
export const DEFAULT_HISTORY_LIMIT = 20;

export const historyQuerySchema = z.strictObject({ limit: decimal(1, MAX_HISTORY_LIMIT, `1-${MAX_HISTORY_LIMIT}`).optional() });

export const diffQuerySchema = z.strictObject({
  from: z.string({ error: 'is required' }).pipe(decimal(0, 0xffffffff, '0-4294967295')),
  to: decimal(0, 0xffffffff, '0-4294967295').optional(),
});

export const rollbackBodySchema = z.strictObject(
  { generation: z.number({ error: 'must be a generation number' }).int('must be an integer').min(0, 'must be >= 0') },
  { error: 'must be an object like {"generation": 12}' },
);

export const auditLevelBodySchema = z.strictObject(
  { level: z.enum(AUDIT_LEVELS, { error: 'must be "deny", "allow" or "all"' }) },
  { error: 'must be an object like {"level": "all"}' },
);

export const replayBodySchema = z.strictObject(
  {
    // A rule file; the rule file's own schema checks it (edge.ts).
    rules: z.unknown(),
    from: isoTime.optional(),
    to: isoTime.optional(),
    limit: z.number().int().min(1).max(MAX_REPLAY_LIMIT).optional(),
  },
  { error: 'must be an object like {"rules": {"version": 1, "rules": [...]}, "from": "2026-12-01T00:00:00Z"}' },
);

export const modeBodySchema = z.strictObject(
  { mode: z.enum(ENFORCEMENT_MODES, { error: 'must be "enforce" or "permissive"' }) },
  { error: 'must be an object like {"mode": "permissive"}' },
);

/** "/v1/rules/42" → 42; anything else that is not a valid id → undefined. */
export function parseRuleId(text: string): number | undefined {
  if (!/^[1-9]\d{0,9}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_RULE_ID ? n : undefined;
}

/** The first problem of a zod error, as "field: message". */
export function describeZodError(error: z.ZodError, what: string): string {
  const issue = error.issues[0];
  if (issue === undefined) return `${what} is invalid`;
  const where = issue.path.map(String).join('.');
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown ${what === 'query' ? 'parameter' : 'field'}${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
      : issue.message;
  return `${what}${where === '' ? '' : ` ${where}`}: ${message}`;
}

/** The first problem of a JSON body's zod error: "what field: message", or the bare message when `what` is null. */
export function describeBodyError(error: z.ZodError, what: string | null): string {
  if (what !== null) return describeZodError(error, what);
  return error.issues[0]?.message ?? 'request body is invalid';
}

/**
 * A rule body: one JSON object. Its fields are the rule file's (names or
 * ids, access strings), checked by the rule file's schema where the names
 * are resolved (src/rules/ruleFile.ts, one definition for files and bodies).
 */
export type RuleBodyObject = object;

export const ruleBodySchema = z.custom<RuleBodyObject>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), {
  error: 'request body must be one rule, e.g. {"path": "/docs", "owner": 0, "defaccess": "r--", "acl": []}',
});

// ---- the routes ---------------------------------------------------------------

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A JSON request body, parsed by `schema`; errors are worded by describeBodyError(error, `what`). */
export interface JsonBody<S extends z.ZodType = z.ZodType> {
  readonly schema: S;
  readonly what: string | null;
}

/**
 * One operation of the API: a method on a path, what its query and body
 * may hold, and the name of the server's handler. The server dispatches
 * from this table alone: a route exists here, once.
 */
export interface RouteSpec {
  readonly handler: string;
  readonly method: HttpMethod;
  /** An exact path, or one with a `{id}` segment (a rule id). */
  readonly path: string;
  /** The query string, through a strict schema (unknown or repeated names are 400). */
  readonly query: z.ZodType;
  /** json: read within the body limit and parsed; text: read within the import limit; null: not read. */
  readonly body: JsonBody | 'text' | null;
}

const rule: JsonBody<typeof ruleBodySchema> = { schema: ruleBodySchema, what: null };

/**
 * Every route, in matching order (the exact paths under /v1/rules/ before
 * /v1/rules/{id}); routes of one path list their methods in the order a
 * 405 names them.
 */
export const API_ROUTES = [
  { handler: 'status', method: 'GET', path: PATHS.status, query: emptyQuerySchema, body: null },
  { handler: 'listRules', method: 'GET', path: PATHS.rules, query: listQuerySchema, body: null },
  { handler: 'createRule', method: 'POST', path: PATHS.rules, query: emptyQuerySchema, body: rule },
  { handler: 'findByPath', method: 'GET', path: PATHS.byPath, query: pathQuerySchema, body: null },
  { handler: 'setRuleByPath', method: 'PUT', path: PATHS.byPath, query: pathQuerySchema, body: rule },
  { handler: 'deleteRuleByPath', method: 'DELETE', path: PATHS.byPath, query: pathQuerySchema, body: null },
  { handler: 'findByInode', method: 'GET', path: PATHS.byInode, query: inodeQuerySchema, body: null },
  { handler: 'importRules', method: 'POST', path: PATHS.import, query: importQuerySchema, body: 'text' },
  { handler: 'exportRules', method: 'GET', path: PATHS.export, query: emptyQuerySchema, body: null },
  { handler: 'getRule', method: 'GET', path: PATHS.rule, query: emptyQuerySchema, body: null },
  { handler: 'putRule', method: 'PUT', path: PATHS.rule, query: emptyQuerySchema, body: rule },
  { handler: 'deleteRule', method: 'DELETE', path: PATHS.rule, query: emptyQuerySchema, body: null },
  { handler: 'audit', method: 'GET', path: PATHS.audit, query: auditQuerySchema, body: null },
  { handler: 'getAuditLevel', method: 'GET', path: PATHS.auditLevel, query: emptyQuerySchema, body: null },
  {
    handler: 'setAuditLevel',
    method: 'PUT',
    path: PATHS.auditLevel,
    query: emptyQuerySchema,
    body: { schema: auditLevelBodySchema, what: 'audit level' },
  },
  { handler: 'getMode', method: 'GET', path: PATHS.mode, query: emptyQuerySchema, body: null },
  { handler: 'setMode', method: 'PUT', path: PATHS.mode, query: emptyQuerySchema, body: { schema: modeBodySchema, what: 'mode' } },
  { handler: 'check', method: 'POST', path: PATHS.check, query: emptyQuerySchema, body: { schema: checkRequestSchema, what: 'check' } },
  { handler: 'access', method: 'GET', path: PATHS.access, query: pathQuerySchema, body: null },
  { handler: 'history', method: 'GET', path: PATHS.history, query: historyQuerySchema, body: null },
  { handler: 'diff', method: 'GET', path: PATHS.diff, query: diffQuerySchema, body: null },
  { handler: 'replay', method: 'POST', path: PATHS.replay, query: emptyQuerySchema, body: { schema: replayBodySchema, what: 'replay' } },
  { handler: 'confirm', method: 'POST', path: PATHS.confirm, query: emptyQuerySchema, body: null },
  { handler: 'rollback', method: 'POST', path: PATHS.rollback, query: emptyQuerySchema, body: { schema: rollbackBodySchema, what: 'rollback' } },
  { handler: 'reach', method: 'POST', path: PATHS.reach, query: emptyQuerySchema, body: { schema: reachRequestSchema, what: 'access' } },
] as const satisfies readonly RouteSpec[];

export type ApiRoute = (typeof API_ROUTES)[number];
export type HandlerName = ApiRoute['handler'];
/** The route a handler serves. */
export type RouteOf<H extends HandlerName> = Extract<ApiRoute, { readonly handler: H }>;
/** What a handler's query string parses to. */
export type QueryOf<H extends HandlerName> = z.output<RouteOf<H>['query']>;
/** What a handler's body parses to: the schema's output, the text, or nothing. */
export type BodyOf<H extends HandlerName> =
  RouteOf<H>['body'] extends JsonBody<infer S> ? z.output<S> : RouteOf<H>['body'] extends 'text' ? string : undefined;
