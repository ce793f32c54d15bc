// The admin side's validation edge: what a request holds, checked once, as
// it enters (the socket server for the daemon's clients, the in-process API
// for the CLI's --db mode), and typed after. Beyond this edge the service
// takes the types below and checks nothing again. The rules of validity
// themselves (limits, path well-formedness, ids) are src/rules/validate.ts,
// which the protocol's schemas and these checks are built from.
//
// Messages are the API's: a path is named by its field ("prefix" or
// "path"), a rule id by its range.

import { invalid } from '../errors';
import { isAccess, parseRequested } from '../rules/access';
import type { Access } from '../rules/types';
import { checkPath, isRuleId, MAX_RULE_ID, renamePathError } from '../rules/validate';
import {
  checkRequestSchema,
  describeBodyError,
  MAX_AUDIT_LIMIT,
  modeBodySchema,
  ruleBodySchema,
  type EnforcementMode,
  type IdOrName,
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

/** A `check` as the service takes it: the path canonical, the access as bits; names still to resolve. */
export interface CheckInput {
  readonly uid: IdOrName;
  readonly gid?: IdOrName;
  readonly groups?: readonly IdOrName[];
  readonly path: string;
  readonly requested: Access;
}

/** A page of the audit log as the service takes it: both bounds in range. */
export interface AuditInput {
  readonly after: number;
  readonly limit: number;
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

/** A check body the protocol's schema accepted, made what the service takes. */
export function checkInput(request: z.output<typeof checkRequestSchema>): CheckInput {
  return {
    uid: request.uid,
    gid: request.gid,
    groups: request.groups,
    path: canonicalPath(request.path, 'path'),
    requested: requestedAccess(request.access),
  };
}

/** A check body of unknown shape (the in-process API's caller), parsed as the server parses it. */
export function parseCheckRequest(request: unknown): CheckInput {
  return checkInput(parseBody(checkRequestSchema, request, 'check'));
}

export function parseMode(mode: unknown): EnforcementMode {
  return parseBody(modeBodySchema, { mode }, 'mode').mode;
}

/** A rule body: one object (its fields are the rule file schema's to check, as names are resolved). */
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

export function auditInput(after: unknown, limit: unknown): AuditInput {
  const seq = checkSeq(after);
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) {
    throw invalid(`limit must be an integer 1-${MAX_AUDIT_LIMIT}, got ${String(limit)}`);
  }
  return { after: seq, limit };
}

/** st_dev and st_ino as the API takes them: non-negative safe integers. */
export function checkFileIdentity(dev: unknown, ino: unknown): { dev: number; ino: number } {
  for (const [name, v] of [['dev', dev], ['ino', ino]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be a non-negative integer, got ${String(v)}`);
  }
  return { dev: dev as number, ino: ino as number };
}
