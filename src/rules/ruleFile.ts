// The import/export rule file of docs/product.md ("Rule file"):
//
//   { "version": 1,
//     "rules": [ { "path": "/docs", "recursive": true, "owner": 0,
//                  "defaccess": "r--",
//                  "acl": [ { "user": 1000, "access": "rw-" },
//                           { "group": "staff", "access": "r--" } ] } ] }
//
// Parsing is all-or-nothing: the first problem is reported as one
// AclfsError('invalid') naming the rule (its 0-based index in `rules` and its
// path as written) and the field, e.g.
//   rule 3 (/docs/x): acl[0].access: "rwz" is not an access like "r-x" or 0-7
// `recursive`, `revocable` and `auditOnly` default to false and `acl` to [];
// every other field is required and unknown fields are rejected (a misspelt
// "recursve" must not silently widen or narrow access). An export writes
// `revocable` and `auditOnly` only for a rule that has them, so the export
// of a rule set without such rules is the same text as before the fields
// existed (and an older aclfs, which rejects an unknown field, still
// imports it; given one that has them, it refuses the file rather than
// enforce an audit-only rule or serve a revocable one by passthrough).

import { z } from 'zod';
import { invalid } from '../errors';
import { formatAccess, tryParseAccess } from './access';
import { numericId, type NameResolver } from './names';
import type { AclEntry, Rule, RuleInput } from './types';
import { checkRulePath, isExpiry, isId, notAnId, pathTextProblem } from './validate';

/** One rule as written to an export file: numeric ids, "rwx" strings. */
export interface RuleFileRule {
  readonly path: string;
  readonly recursive: boolean;
  /** Written only when true. */
  readonly revocable?: true;
  /** Written only when true. */
  readonly auditOnly?: true;
  readonly owner: number;
  readonly defaccess: string;
  readonly acl: readonly (
    | { readonly user: number; readonly access: string; readonly expires?: string }
    | { readonly group: number; readonly access: string; readonly expires?: string }
  )[];
}

export interface RuleFile {
  readonly version: 1;
  readonly rules: readonly RuleFileRule[];
}

/** Parses the text of a rule file (JSON). */
export function parseRuleFileText(text: string, names: NameResolver): RuleInput[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw invalid(`rule file is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseRuleFile(data, names);
}

export interface ParseOptions {
  /**
   * Called as rules are validated (done, total). When given, the rules are
   * validated in chunks so a caller can show progress on a large file; the
   * result and the first error reported are the same either way.
   */
  readonly onProgress?: (done: number, total: number) => void;
}

const PROGRESS_CHUNK = 5000;

/** Validates an already JSON-decoded rule file and returns its rules. */
export function parseRuleFile(data: unknown, names: NameResolver, options: ParseOptions = {}): RuleInput[] {
  if (options.onProgress !== undefined) return parseInChunks(data, names, options.onProgress);
  const result = fileSchema(names).safeParse(data);
  if (!result.success) throw invalid(describeIssues(result.error.issues, data));
  const rules: RuleInput[] = result.data.rules;
  rejectDuplicatePaths(rules, data);
  return rules;
}

/**
 * One rule in the rule file's shape (the admin API's request body for a
 * rule): names resolved, access parsed, path normalised. Errors name the
 * field, e.g. `rule /docs/x: acl[0].access: "rwz" is not an access like "r-x" or 0-7`.
 */
export function parseRuleBody(data: unknown, names: NameResolver): RuleInput {
  return parseBodyWith(ruleSchema(names), data);
}

/**
 * parseRuleBody() for many bodies resolved with the same names: the schema
 * is built once (building it costs far more than using it), e.g. for every
 * value of a fleet's rule set.
 */
export function ruleBodyParser(names: NameResolver): (data: unknown) => RuleInput {
  const schema = ruleSchema(names);
  return (data) => parseBodyWith(schema, data);
}

function parseBodyWith(schema: z.ZodType<RuleInput>, data: unknown): RuleInput {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw invalid('rule is invalid');
  const raw = typeof data === 'object' && data !== null ? (data as { path?: unknown }).path : undefined;
  const label = typeof raw === 'string' ? `rule ${shownPath(raw)}` : 'rule';
  const where = fieldName(issue.path);
  const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more problem${result.error.issues.length > 2 ? 's' : ''})` : '';
  return fail(`${label}: ${where === '' ? '' : `${where}: `}${issueMessage(issue)}${more}`);
}

function fail(message: string): never {
  throw invalid(message);
}

function parseInChunks(data: unknown, names: NameResolver, onProgress: (done: number, total: number) => void): RuleInput[] {
  const envelope = envelopeSchema.safeParse(data);
  if (!envelope.success) throw invalid(describeIssues(envelope.error.issues, data));
  const raw = envelope.data.rules;
  const chunkSchema = z.array(ruleSchema(names));
  const rules: RuleInput[] = [];
  onProgress(0, raw.length);
  for (let start = 0; start < raw.length; start += PROGRESS_CHUNK) {
    const chunk = raw.slice(start, start + PROGRESS_CHUNK);
    const result = chunkSchema.safeParse(chunk);
    if (!result.success) {
      // Re-root the issue paths at the file ("rules", absolute index).
      const issues = result.error.issues.map((issue) => ({
        ...issue,
        path: ['rules', start + (issue.path[0] as number), ...issue.path.slice(1)],
      })) as z.core.$ZodIssue[];
      throw invalid(describeIssues(issues, data));
    }
    for (const rule of result.data) rules.push(rule);
    onProgress(rules.length, raw.length);
  }
  rejectDuplicatePaths(rules, data);
  return rules;
}

/** A rule as toRuleFileRule wrote it (numeric ids only) read back as a rule input. */
export function ruleInputOf(rule: RuleFileRule): RuleInput {
  return parseRuleBody(rule, { user: () => undefined, group: () => undefined });
}

export function toRuleFileRule(rule: Rule | RuleInput): RuleFileRule {
  return {
    path: rule.path,
    recursive: rule.recursive,
    ...(rule.revocable === true ? { revocable: true as const } : {}),
    ...(rule.auditOnly === true ? { auditOnly: true as const } : {}),
    owner: rule.owner,
    defaccess: formatAccess(rule.defaccess),
    acl: rule.acl.map((e) => {
      const until = e.expires === undefined ? {} : { expires: new Date(e.expires).toISOString() };
      return 'user' in e ? { user: e.user, access: formatAccess(e.access), ...until } : { group: e.group, access: formatAccess(e.access), ...until };
    }),
  };
}

export function toRuleFile(rules: readonly (Rule | RuleInput | RuleFileRule)[]): RuleFile {
  return { version: 1, rules: rules.map((r) => (typeof r.defaccess === 'string' ? (r as RuleFileRule) : toRuleFileRule(r as RuleInput))) };
}

/** The export file's text: indented JSON with a trailing newline. */
export function serializeRuleFile(rules: readonly (Rule | RuleInput | RuleFileRule)[]): string {
  return `${JSON.stringify(toRuleFile(rules), null, 2)}\n`;
}

// ---- schema ---------------------------------------------------------------

type Ctx = z.core.$RefinementCtx;

/** A zod transform from unknown whose failures carry our own wording. */
function field<T>(convert: (value: unknown) => T | string): z.ZodType<T> {
  // `convert` returns either the value or an error string; a string result
  // is only an error when the field's type is not itself a string, which
  // holds for every field below (paths are checked via pathField).
  return z.unknown().transform((value, ctx: Ctx) => {
    const out = convert(value);
    if (typeof out === 'string') {
      ctx.issues.push({ code: 'custom', message: out, input: value });
      return z.NEVER;
    }
    return out;
  }) as unknown as z.ZodType<T>;
}

const accessField = field<number>((v) => {
  if (v === undefined) return 'is required';
  return tryParseAccess(v) ?? `${JSON.stringify(v)} is not an access like "r-x" or 0-7`;
});

/**
 * An RFC 3339 time with its offset ("2026-12-31T18:00:00Z", seconds and
 * fractions optional, "+01:00" offsets), as ms since the epoch. A time
 * without an offset is refused: whose local time it meant is unknown.
 */
export function parseExpiry(v: unknown): number | string {
  if (typeof v !== 'string') return 'must be an RFC 3339 time like "2026-12-31T18:00:00Z"';
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$/.exec(v);
  const ms = m === null ? Number.NaN : Date.parse(m[6] === undefined ? v.replace(/([Zz]|[+-]\d{2}:\d{2})$/, ':00$1') : v);
  if (!Number.isFinite(ms) || !isExpiry(Math.floor(ms))) return `${JSON.stringify(v)} is not an RFC 3339 time with its offset, like "2026-12-31T18:00:00Z"`;
  return Math.floor(ms);
}

const expiresField = field<number>((v) => parseExpiry(v));

function idField(kind: 'user' | 'group', names: NameResolver): z.ZodType<number> {
  const what = kind === 'user' ? 'uid' : 'gid';
  return field<number>((v) => {
    if (v === undefined) return 'is required';
    if (typeof v === 'number') return isId(v) ? v : notAnId(v, what);
    if (typeof v !== 'string' || v === '') return `must be a ${what} or a ${kind} name`;
    const id = numericId(v) ?? names[kind](v);
    if (id === undefined) return `unknown ${kind} ${JSON.stringify(v)}`;
    // A numeric string, or a name the account files give (uid_t)-1.
    return isId(id) ? id : `${JSON.stringify(v)}: ${notAnId(id, what)}`;
  });
}

const pathField = z.unknown().transform((v, ctx: Ctx) => {
  const fail = (message: string): never => {
    ctx.issues.push({ code: 'custom', message, input: v });
    return z.NEVER;
  };
  if (v === undefined) return fail('is required');
  if (typeof v !== 'string') return fail('must be a string');
  try {
    return checkRulePath(v);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
});

function aclEntrySchema(names: NameResolver): z.ZodType<AclEntry> {
  return z
    .strictObject(
      {
        user: idField('user', names).optional(),
        group: idField('group', names).optional(),
        access: accessField,
        expires: expiresField.optional(),
      },
      { error: 'must be an object like {"user": 1000, "access": "r--"}' },
    )
    .transform((e, ctx: Ctx): AclEntry => {
      if ((e.user === undefined) === (e.group === undefined)) {
        ctx.issues.push({ code: 'custom', message: 'needs exactly one of "user" or "group"', input: e });
        return z.NEVER;
      }
      const until = e.expires === undefined ? {} : { expires: e.expires };
      return e.user !== undefined ? { user: e.user, access: e.access, ...until } : { group: e.group!, access: e.access, ...until };
    });
}

function ruleSchema(names: NameResolver): z.ZodType<RuleInput> {
  return z.strictObject(
    {
      path: pathField,
      recursive: z.boolean({ error: 'must be true or false' }).default(false),
      revocable: z.boolean({ error: 'must be true or false' }).optional(),
      auditOnly: z.boolean({ error: 'must be true or false' }).optional(),
      owner: idField('user', names),
      defaccess: accessField,
      acl: z.array(aclEntrySchema(names), { error: 'must be an array' }).default([]),
    },
    { error: 'must be an object' },
  ) as unknown as z.ZodType<RuleInput>;
}

function fileSchema(names: NameResolver) {
  return z.strictObject(
    {
      version: z.literal(1, { error: 'must be 1' }),
      rules: z.array(ruleSchema(names), { error: 'must be an array' }),
    },
    { error: 'must be an object like {"version": 1, "rules": [...]}' },
  );
}

const envelopeSchema = z.strictObject(
  {
    version: z.literal(1, { error: 'must be 1' }),
    rules: z.array(z.unknown(), { error: 'must be an array' }),
  },
  { error: 'must be an object like {"version": 1, "rules": [...]}' },
);

// ---- messages -------------------------------------------------------------

/** "rule 3 (/docs/x): acl[0].access: <message>" for the first issue. */
function describeIssues(issues: readonly z.core.$ZodIssue[], data: unknown): string {
  const first = issues[0];
  if (first === undefined) return 'rule file is invalid';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return describeIssue(first, data) + more;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const path = issue.path;
  const message = issueMessage(issue);
  if (path[0] === 'rules' && typeof path[1] === 'number') {
    const where = fieldName(path.slice(2));
    return `${ruleLabel(data, path[1])}: ${where === '' ? '' : `${where}: `}${message}`;
  }
  const where = fieldName(path);
  return `rule file: ${where === '' ? '' : `${where}: `}${message}`;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys'
    ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    : issue.message;
}

/** ["acl", 0, "access"] → "acl[0].access". */
function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    return out === '' ? String(key) : `${out}.${String(key)}`;
  }, '');
}

/** "rule 3 (/docs/x)" using the path as written, or "rule 3" without one. */
function ruleLabel(data: unknown, index: number): string {
  const raw = (data as { rules?: unknown[] } | null)?.rules?.[index] as { path?: unknown } | null | undefined;
  const path = typeof raw === 'object' && raw !== null ? raw.path : undefined;
  return typeof path === 'string' ? `rule ${index} (${shownPath(path)})` : `rule ${index}`;
}

/** A path as written, for a message: as a JSON string when it is not well-formed (a lone surrogate, a NUL). */
function shownPath(path: string): string {
  return pathTextProblem(path) === null ? path : JSON.stringify(path);
}

function rejectDuplicatePaths(rules: readonly RuleInput[], data: unknown): void {
  const firstIndex = new Map<string, number>();
  rules.forEach((rule, i) => {
    const first = firstIndex.get(rule.path);
    if (first !== undefined) {
      throw invalid(`${ruleLabel(data, i)}: path: ${rule.path} is already the path of rule ${first}`);
    }
    firstIndex.set(rule.path, i);
  });
}
