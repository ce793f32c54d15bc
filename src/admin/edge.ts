// The admin side's validation edge: what a request holds, checked once, as
// it enters (the socket server for the daemon's clients, the in-process API
// for the CLI's --db mode), and typed after. User and group names are
// resolved to ids here too, with the accounts the caller injects (main.ts
// builds them over the system's files): beyond this edge the service takes
// the types below (numeric ids, access bits, canonical paths, parsed rules)
// and neither checks nor resolves anything again. The rules of validity
// themselves (limits, path well-formedness, ids) are src/rules/validate.ts,
// which the protocol's schemas and these checks are built from; a rule's
// fields, in a body or a rule file, are the rule file's schema's
// (src/rules/ruleFile.ts), given the same resolver.
//
// Messages are the API's: a path is named by its field ("prefix" or
// "path"), a rule id by its range, an unknown name by its kind
// (`unknown user "x"`).

import { DEFAULT_REPLAY_LIMIT } from '../rules/replay';
import { invalid } from '../errors';
import { isAccess, parseRequested } from '../rules/access';
import type { AuditFilter } from '../rules/audit';
import type { NameResolver } from '../rules/names';
import { parseRuleBody, parseRuleFile } from '../rules/ruleFile';
import type { Access, RuleInput } from '../rules/types';
import { checkPath, isId, isRuleId, MAX_RULE_ID, notAnId, renamePathError } from '../rules/validate';
import type { Accounts } from './accounts';
import {
  checkRequestSchema,
  reachRequestSchema,
  replayBodySchema,
  describeBodyError,
  auditLevelBodySchema,
  auditQuerySchema,
  MAX_AUDIT_LIMIT,
  MAX_CONFIRM_SECONDS,
  modeBodySchema,
  ruleBodySchema,
  type AuditFilterQuery,
  type AuditLevel,
  type EnforcementMode,
  type IdOrName,
  type ImportOptions,
  type ListQuery,
  type RuleBodyObject,
} from './protocol';
import type { z } from 'zod';

/** A listing as the service takes it: the prefix canonical (absent for "everything"). */
export interface ListInput {
  readonly prefix?: string;
  readonly cursor?: string;
  readonly limit?: number;
}

/**
 * A `check` as the service takes it: the caller as ids (gid and groups,
 * when not given, those a login of the user would get), the path
 * canonical, the access as bits.
 */
export interface CheckInput {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary gids, each once. */
  readonly groups: readonly number[];
  readonly path: string;
  readonly requested: Access;
  /** Return every step of the decision too (absent: no). */
  readonly explain?: true;
  /** Decide against these rules (a candidate rule set) instead of the rules in force. */
  readonly candidate?: readonly RuleInput[];
}

/** An access listing of one user as the service takes it: the caller's ids as for a check, the prefix canonical. */
export interface ReachInput {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly prefix: string;
  readonly limit: number;
  readonly cursor?: string;
}

/** Rules per page of a user's access listing, when not asked. */
export const DEFAULT_REACH_LIMIT = 1000;

/** An import as the service takes it: the rule file's rules parsed, names resolved, paths canonical and distinct. */
export interface ImportInput {
  readonly rules: readonly RuleInput[];
  readonly replace: boolean;
  /** Write nothing; say what would change. */
  readonly dryRun?: boolean;
  /** Roll back by itself unless confirmed within this many milliseconds. */
  readonly confirmWithinMs?: number;
}

/** A page of the audit log as the service takes it: both bounds in range, the filter checked. */
export interface AuditInput {
  readonly after: number;
  readonly limit: number;
  /** Absent or empty: every record. */
  readonly filter?: AuditFilter;
}

/** A path argument in canonical form; errors name the field (`prefix "x" is not absolute`). */
export function canonicalPath(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`${what} is required`);
  try {
    return checkPath(value);
  } catch (err) {
    // checkPath words it as 'path "x" is not absolute'.
    throw renamePathError(err, what);
  }
}

export function listInput(query: ListQuery): ListInput {
  const prefix = query.prefix === undefined || query.prefix === '' ? undefined : canonicalPath(query.prefix, 'prefix');
  return { prefix, cursor: query.cursor, limit: query.limit };
}

/** A check body the protocol's schema accepted, made what the service takes: path, access, then the caller's ids. */
export function checkInput(request: z.output<typeof checkRequestSchema>, accounts: Accounts): CheckInput {
  const path = canonicalPath(request.path, 'path');
  const requested = requestedAccess(request.access);
  const candidate = request.rules === undefined ? undefined : parseRuleFile(request.rules, accounts);
  return {
    ...callerIds(request, accounts),
    path,
    requested,
    ...(request.explain === true ? { explain: true as const } : {}),
    ...(candidate === undefined ? {} : { candidate }),
  };
}

/** A user's access listing as the protocol's schema accepted it, made what the service takes. */
export function reachInput(request: z.output<typeof reachRequestSchema>, accounts: Accounts): ReachInput {
  const prefix = request.prefix === undefined ? '/' : canonicalPath(request.prefix, 'prefix');
  return {
    ...callerIds(request, accounts),
    prefix,
    limit: request.limit ?? DEFAULT_REACH_LIMIT,
    ...(request.cursor === undefined ? {} : { cursor: request.cursor }),
  };
}

/** A user's access listing of unknown shape (the in-process API's caller), parsed as the server parses it. */
export function parseReachRequest(request: unknown, accounts: Accounts): ReachInput {
  return reachInput(parseBody(reachRequestSchema, request, 'access'), accounts);
}

/** A check body of unknown shape (the in-process API's caller), parsed as the server parses it. */
export function parseCheckRequest(request: unknown, accounts: Accounts): CheckInput {
  return checkInput(parseBody(checkRequestSchema, request, 'check'), accounts);
}

/** The identity a check decides for: ids resolved, gid and groups defaulted from the account files. */
function callerIds(
  spec: { readonly uid: IdOrName; readonly gid?: IdOrName; readonly groups?: readonly IdOrName[] },
  accounts: Accounts,
): { uid: number; gid: number; groups: number[] } {
  const uid = resolveId('user', spec.uid, accounts);
  let gid: number;
  if (spec.gid !== undefined) gid = resolveId('group', spec.gid, accounts);
  else {
    const primary = accounts.primaryGid(uid);
    if (primary === undefined) throw invalid(`uid ${uid} has no entry in /etc/passwd, so its primary group is unknown: give a gid`);
    if (!isId(primary)) throw invalid(`the primary group of uid ${uid}: ${notAnId(primary, 'gid')}`);
    gid = primary;
  }
  const groups = spec.groups !== undefined ? spec.groups.map((g) => resolveId('group', g, accounts)) : accounts.memberGroups(uid).filter((g) => g !== gid);
  return { uid, gid, groups: [...new Set(groups)] };
}

/** A user or group of a check, given as an id or a name, as its id. */
function resolveId(kind: 'user' | 'group', spec: IdOrName, names: NameResolver): number {
  const what = kind === 'user' ? 'uid' : 'gid';
  if (typeof spec === 'number') {
    if (!isId(spec)) throw invalid(notAnId(spec, what));
    return spec;
  }
  const id = names[kind](spec);
  if (id === undefined) throw invalid(`unknown ${kind} ${JSON.stringify(spec)}`);
  // The account files may give a name (uid_t)-1.
  if (!isId(id)) throw invalid(`${kind} ${JSON.stringify(spec)}: ${notAnId(id, what)}`);
  return id;
}

/**
 * A rule body the protocol's schema accepted (one object), through the rule
 * file's schema: names resolved, access parsed, path canonical.
 */
export function ruleInput(body: RuleBodyObject, names: NameResolver): RuleInput {
  return parseRuleBody(body, names);
}

/** A rule body of unknown shape (the in-process API's caller), parsed as the server parses it. */
export function parseRuleRequest(body: unknown, names: NameResolver): RuleInput {
  return ruleInput(parseRuleBodyObject(body), names);
}

/** A rule to store under `path` (canonical): its body parsed, and its own path that one. */
export function ruleAtPath(path: string, body: RuleBodyObject, names: NameResolver): RuleInput {
  const rule = ruleInput(body, names);
  if (rule.path !== path) throw invalid(`rule path ${rule.path} does not match the path ${path} it is stored under`);
  return rule;
}

/**
 * The text of a rule file to import: JSON, then the rule file's schema
 * (names resolved). `onProgress` hears of the validation, in chunks, on a
 * large file.
 */
export function importInput(text: string, names: NameResolver, options: ImportOptions = {}): ImportInput {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw invalid(`rule file is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const onProgress = options.onProgress;
  const rules = parseRuleFile(
    data,
    names,
    onProgress === undefined ? {} : { onProgress: (done, total) => onProgress({ phase: 'validate', done, total }) },
  );
  if (options.dryRun === true && options.confirmWithin !== undefined) throw invalid('a dry run changes nothing, so there is nothing to confirm: give one of dryRun and confirmWithin');
  const confirmWithin = options.confirmWithin;
  if (confirmWithin !== undefined && (!Number.isSafeInteger(confirmWithin) || confirmWithin < 1 || confirmWithin > MAX_CONFIRM_SECONDS)) {
    throw invalid(`confirmWithin must be 1-${MAX_CONFIRM_SECONDS} seconds`);
  }
  return {
    rules,
    replace: options.replace === true,
    ...(options.dryRun === true ? { dryRun: true } : {}),
    ...(confirmWithin === undefined ? {} : { confirmWithinMs: confirmWithin * 1000 }),
  };
}

export function parseMode(mode: unknown): EnforcementMode {
  return parseBody(modeBodySchema, { mode }, 'mode').mode;
}

/** A rule body: one object (its fields are the rule file schema's to check: ruleInput). */
export function parseRuleBodyObject(body: unknown): RuleBodyObject {
  return parseBody(ruleBodySchema, body, null);
}

/** A JSON body through its schema, or invalid worded as describeBodyError words it. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string | null): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalid(describeBodyError(parsed.error, what));
  return parsed.data;
}

/** "r", "rw", "r-x" or 1-7: the bits a check asks for. */
export function requestedAccess(spec: string | number): Access {
  if (typeof spec === 'number') {
    if (!isAccess(spec) || spec === 0) throw invalid(`access ${spec} is not a requested access 1-7`);
    return spec;
  }
  return parseRequested(spec);
}

export function checkRuleId(id: unknown): number {
  if (!isRuleId(id)) throw invalid(`rule id must be an integer 1-${MAX_RULE_ID}, got ${String(id)}`);
  return id;
}

/** An audit seq to read after: a non-negative safe integer. */
export function checkSeq(after: unknown): number {
  if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) throw invalid(`after must be a non-negative integer, got ${String(after)}`);
  return after;
}

export function auditInput(after: unknown, limit: unknown, filter: AuditFilterQuery = {}): AuditInput {
  const seq = checkSeq(after);
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) {
    throw invalid(`limit must be an integer 1-${MAX_AUDIT_LIMIT}, got ${String(limit)}`);
  }
  return { after: seq, limit, filter: auditFilter(filter) };
}

/**
 * An audit filter as the service takes it: times as ms, the path
 * canonical. The fields are checked as the query string's are (the
 * protocol's schema), so the CLI's --db-less calls and a request agree.
 */
export function auditFilter(query: AuditFilterQuery): AuditFilter {
  const asQuery: Record<string, string> = {};
  for (const [k, v] of Object.entries(query) as [string, unknown][]) {
    if (v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number') throw invalid(`${k} must be a string or a number, got ${typeof v}`);
    asQuery[k] = String(v);
  }
  const parsed = parseQueryObject(asQuery);
  return {
    ...(parsed.from === undefined ? {} : { since: Date.parse(parsed.from) }),
    ...(parsed.to === undefined ? {} : { until: Date.parse(parsed.to) }),
    ...(parsed.uid === undefined ? {} : { uid: parsed.uid }),
    ...(parsed.path === undefined ? {} : { path: canonicalPath(parsed.path, 'path') }),
    ...(parsed.decision === undefined ? {} : { decision: parsed.decision }),
    ...(parsed.op === undefined ? {} : { op: parsed.op }),
    ...(parsed.rule === undefined ? {} : { rule: parsed.rule }),
  };
}

function parseQueryObject(query: Record<string, string>): z.output<typeof auditQuerySchema> {
  const parsed = auditQuerySchema.safeParse(query);
  if (!parsed.success) throw invalid(describeBodyError(parsed.error, 'query'));
  return parsed.data;
}

/** A replay as the service takes it: the candidate's rules parsed, the time bounds as a filter. */
export interface ReplayInput {
  readonly candidate: readonly RuleInput[];
  readonly filter: AuditFilter;
  /** Changed accesses listed per rule. */
  readonly limit: number;
}

export function replayInput(request: z.output<typeof replayBodySchema>, accounts: Accounts): ReplayInput {
  return {
    candidate: parseRuleFile(request.rules, accounts),
    limit: request.limit ?? DEFAULT_REPLAY_LIMIT,
    filter: {
      ...(request.from === undefined ? {} : { since: Date.parse(request.from) }),
      ...(request.to === undefined ? {} : { until: Date.parse(request.to) }),
    },
  };
}

/** A replay request of unknown shape (the in-process API's caller), parsed as the server parses it. */
export function parseReplayRequest(request: unknown, accounts: Accounts): ReplayInput {
  return replayInput(parseBody(replayBodySchema, request, 'replay'), accounts);
}

export function parseAuditLevel(level: unknown): AuditLevel {
  return parseBody(auditLevelBodySchema, { level }, 'audit level').level;
}

/** st_dev and st_ino as the API takes them: non-negative safe integers. */
export function checkFileIdentity(dev: unknown, ino: unknown): { dev: number; ino: number } {
  for (const [name, v] of [['dev', dev], ['ino', ino]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be a non-negative integer, got ${String(v)}`);
  }
  return { dev: dev as number, ino: ino as number };
}
