// A rule's value in etcd: one rule in the rule file's JSON form (the body of
// PUT /v1/rules/by-path; src/rules/ruleFile.ts), checked by the rule file's
// own schema, user and group names resolved on this host.
//
// Fail closed: a value that does not parse (not JSON, an unknown field, an
// access like "rwz", a name this host does not know, a path other than the
// key's) is logged and stored here as a rule that grants nothing at the
// key's path: owner root, defaccess "---", no ACL entry, recursive. So a
// malformed change never leaves the older grant in force, and never lets
// the path fall through to a more permissive ancestor or default policy.
// A key that names no canonical path governs nothing and is skipped.
import { toRuleFileRule } from '../rules/ruleFile';
import type { RuleInput } from '../rules/types';
import type { SyncItem } from '../store/store';
import type { RuleKeys } from './target';

/** The rule an unparsable value stands for at `path`: nothing granted to anyone but root. */
export function denyingRule(path: string): RuleInput {
  return { path, owner: 0, defaccess: 0, acl: [], recursive: true };
}

/** What one etcd key/value pair becomes here. */
export type ParsedKey =
  | { readonly kind: 'rule'; readonly item: SyncItem }
  /** Stored as denyingRule(path); `problem` says why. */
  | { readonly kind: 'invalid'; readonly item: SyncItem; readonly problem: string }
  /** Not applied at all. */
  | { readonly kind: 'skipped'; readonly key: string; readonly problem: string };

/** Checks one rule body (ruleBodyParser of src/rules/ruleFile.ts: the rule file's schema, built once). */
export type RuleBodyParser = (data: unknown) => RuleInput;

/** A put (value given) or delete (value null) of `key` at `modRevision`. */
export function parseKey(keys: RuleKeys, key: string, value: Buffer | null, modRevision: number, parseBody: RuleBodyParser): ParsedKey {
  const path = keys.pathOf(key);
  if (path === null) return { kind: 'skipped', key, problem: `key ${JSON.stringify(key)} does not name a canonical rule path under ${keys.rulesPrefix}` };
  if (value === null) return { kind: 'rule', item: { path, rule: null, modRevision } };
  const fail = (problem: string): ParsedKey => ({ kind: 'invalid', item: { path, rule: denyingRule(path), modRevision }, problem });
  let data: unknown;
  try {
    data = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return fail(`value is not JSON: ${(err as Error).message}`);
  }
  let rule: RuleInput;
  try {
    rule = parseBody(data);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (rule.path !== path) return fail(`value names path ${JSON.stringify(rule.path)}, its key ${JSON.stringify(path)}`);
  return { kind: 'rule', item: { path, rule, modRevision } };
}

/** The value written for a rule: its rule file form, numeric ids, one line. */
export function ruleValue(rule: RuleInput): string {
  return JSON.stringify(toRuleFileRule(rule));
}
