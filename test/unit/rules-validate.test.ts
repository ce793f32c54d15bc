// What a rule and a request may hold (src/rules/validate.ts), and that the
// store, the rule file parser and the protocol's request schemas all refuse
// the same ill-formed values: lone UTF-16 surrogates and NUL in paths,
// (uid_t)-1 and out-of-range ids.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRequestSchema, describeZodError, listQuerySchema, parseRuleId, pathQuerySchema } from '../../src/admin/protocol';
import { AclfsError } from '../../src/errors';
import type { NameResolver } from '../../src/rules/names';
import { parseRuleBody, parseRuleFile } from '../../src/rules/ruleFile';
import { RuleStore } from '../../src/store/store';
import type { RuleInput } from '../../src/rules/types';
import { native } from '../../src/native/binding';
import {
  checkPath,
  checkRulePath,
  isId,
  isRuleId,
  isWellFormedPathText,
  MAX_ID,
  MAX_RULE_ID,
  MAX_RULE_PATH_BYTES,
  notAnId,
  pathTextProblem,
  validateRuleInput,
} from '../../src/rules/validate';

const UID_MINUS_1 = 4294967295;

/** The AclfsError `fn` throws (failing the test when it throws none, or another kind). */
function thrown(fn: () => unknown): AclfsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AclfsError);
    return err as AclfsError;
  }
  throw new Error('expected an AclfsError');
}

function rule(p: string, extra: Partial<RuleInput> = {}): RuleInput {
  return { path: p, owner: 0, defaccess: 4, acl: [], recursive: false, ...extra };
}

describe('ids', () => {
  it.each<[unknown, boolean]>([
    [0, true],
    [1000, true],
    [65534, true],
    [MAX_ID, true],
    [4294967294, true],
    [UID_MINUS_1, false],
    [2 ** 32, false],
    [-1, false],
    [1.5, false],
    [Number.NaN, false],
    [Infinity, false],
    ['1000', false],
    [null, false],
    [undefined, false],
  ])('isId(%s) is %s', (value, ok) => {
    expect(isId(value)).toBe(ok);
  });

  it.each<[unknown, boolean]>([
    [1, true],
    [42, true],
    [MAX_RULE_ID, true],
    [0xffff_ffff, true],
    [0, false],
    [-1, false],
    [MAX_RULE_ID + 1, false],
    [2.5, false],
    ['7', false],
  ])('isRuleId(%s) is %s', (value, ok) => {
    expect(isRuleId(value)).toBe(ok);
  });

  it('parseRuleId takes the same range as the store, from the URL', () => {
    expect(parseRuleId('1')).toBe(1);
    expect(parseRuleId(String(MAX_RULE_ID))).toBe(MAX_RULE_ID);
    expect(parseRuleId(String(MAX_RULE_ID + 1))).toBeUndefined();
    expect(parseRuleId('0')).toBeUndefined();
    expect(parseRuleId('01')).toBeUndefined();
  });

  it('says why (uid_t)-1 is no uid', () => {
    expect(notAnId(UID_MINUS_1, 'uid')).toBe('4294967295 is not a uid (0-4294967294; 4294967295 is (uid_t)-1, which names no one)');
    expect(notAnId(UID_MINUS_1, 'gid')).toBe('4294967295 is not a gid (0-4294967294; 4294967295 is (gid_t)-1, which names no one)');
    expect(notAnId(-3, 'uid')).toBe('-3 is not a uid');
  });
});

describe('path text', () => {
  it.each<[string, string, RegExp]>([
    ['a lone high surrogate', '/docs/\ud800', /is not well-formed Unicode \(lone surrogate U\+D800 at index 6\)/],
    ['a lone low surrogate', '/docs/\udc00x', /lone surrogate U\+DC00 at index 6/],
    ['a high surrogate at the end', '/a\ud83d', /lone surrogate U\+D83D at index 2/],
    ['a pair in the wrong order', '/\ude00\ud83d', /lone surrogate U\+DE00 at index 1/],
    ['half a pair before another character', '/\ud83dx\ude00', /lone surrogate U\+D83D at index 1/],
    ['a NUL', '/a\u0000b', /contains a NUL byte/],
    ['a NUL at the end', '/a/\u0000', /contains a NUL byte/],
  ])('refuses %s', (_what, text, problem) => {
    expect(pathTextProblem(text)).toMatch(problem);
    expect(isWellFormedPathText(text)).toBe(false);
    const err = thrown(() => checkPath(text));
    expect(err.code).toBe('invalid');
    expect(err.message).toMatch(/^path "/);
    expect(err.message).toMatch(problem);
    expect(thrown(() => checkRulePath(text)).message).toMatch(problem);
  });

  it.each<[string, string]>([
    ['ASCII', '/docs/a.txt'],
    ['a surrogate pair (an emoji)', '/docs/\ud83d\ude00.txt'],
    ['U+FFFD itself', '/docs/\ufffd'],
    ['accented letters', '/é/ß/日本'],
    ['the root', '/'],
  ])('accepts %s', (_what, text) => {
    expect(pathTextProblem(text)).toBeNull();
    expect(isWellFormedPathText(text)).toBe(true);
    expect(checkPath(text)).toBe(text);
  });

  it('checkRulePath also bounds the length; checkPath does not (a deep file can be checked)', () => {
    const long = '/' + 'x'.repeat(MAX_RULE_PATH_BYTES);
    expect(checkPath(long)).toBe(long);
    expect(thrown(() => checkRulePath(long)).message).toMatch(`longer than ${MAX_RULE_PATH_BYTES} bytes`);
    expect(thrown(() => checkPath(7)).message).toBe('path must be a string, got number');
  });
});

describe('validateRuleInput (the store\'s last check)', () => {
  it.each<[string, RuleInput, RegExp]>([
    ['a lone surrogate in the path', rule('/docs/\ud800'), /^path "\/docs\/\\ud800" is not well-formed Unicode/],
    ['a NUL in the path', rule('/a\u0000b'), /^path "\/a\\u0000b" contains a NUL byte/],
    ['owner (uid_t)-1', rule('/a', { owner: UID_MINUS_1 }), /^rule \/a: owner: 4294967295 is not a uid/],
    ['owner 2^32', rule('/a', { owner: 2 ** 32 }), /^rule \/a: owner: 4294967296 is not a uid/],
    ['acl user (uid_t)-1', rule('/a', { acl: [{ user: UID_MINUS_1, access: 4 }] }), /^rule \/a: acl\[0\]: user: 4294967295 is not a uid/],
    ['acl group (gid_t)-1', rule('/a', { acl: [{ group: UID_MINUS_1, access: 4 }] }), /^rule \/a: acl\[0\]: group: 4294967295 is not a gid/],
    ['a string revocable', rule('/a', { revocable: 'yes' as unknown as boolean }), /^rule \/a: revocable: must be true or false$/],
    ['a numeric revocable', rule('/a', { revocable: 1 as unknown as boolean }), /^rule \/a: revocable: must be true or false$/],
    ['a null revocable', rule('/a', { revocable: null as unknown as boolean }), /^rule \/a: revocable: must be true or false$/],
    ['a string auditOnly', rule('/a', { auditOnly: 'yes' as unknown as boolean }), /^rule \/a: auditOnly: must be true or false$/],
    ['a null auditOnly', rule('/a', { auditOnly: null as unknown as boolean }), /^rule \/a: auditOnly: must be true or false$/],
  ])('refuses %s, naming the field', (_what, input, message) => {
    const err = thrown(() => validateRuleInput(input));
    expect(err.code).toBe('invalid');
    expect(err.message).toMatch(message);
  });

  it.each<[string, Partial<RuleInput>, boolean]>([
    ['absent', {}, false],
    ['false', { revocable: false }, false],
    ['true', { revocable: true }, true],
  ])('takes revocable %s; the copy holds it only when true', (_what, extra, revocable) => {
    const valid = validateRuleInput(rule('/a', extra));
    expect('revocable' in valid).toBe(revocable);
    expect(valid.revocable === true).toBe(revocable);
  });

  it.each<[string, Partial<RuleInput>, boolean]>([
    ['absent', {}, false],
    ['false', { auditOnly: false }, false],
    ['true', { auditOnly: true }, true],
  ])('takes auditOnly %s; the copy holds it only when true', (_what, extra, auditOnly) => {
    const valid = validateRuleInput(rule('/a', extra));
    expect('auditOnly' in valid).toBe(auditOnly);
    expect(valid.auditOnly === true).toBe(auditOnly);
  });

  it('takes the largest real id', () => {
    expect(validateRuleInput(rule('/a', { owner: MAX_ID, acl: [{ group: MAX_ID, access: 4 }] }))).toMatchObject({ owner: MAX_ID });
  });
});

describe('the rule file and API bodies', () => {
  const names: NameResolver = {
    user: (name) => ({ root: 0, minus1: UID_MINUS_1 })[name],
    group: (name) => ({ root: 0, minus1: UID_MINUS_1 })[name],
  };
  const file = (r: Record<string, unknown>): unknown => ({ version: 1, rules: [{ path: '/ok', owner: 0, defaccess: 'r--' }, r] });
  const errorOf = (data: unknown): string => thrown(() => parseRuleFile(data, names)).message;

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a lone surrogate in the path',
      { path: '/docs/\ud800', owner: 0, defaccess: 'r--' },
      'rule 1 ("/docs/\\ud800"): path: path "/docs/\\ud800" is not well-formed Unicode (lone surrogate U+D800 at index 6)',
    ],
    ['a NUL in the path', { path: '/a\u0000b', owner: 0, defaccess: 'r--' }, 'rule 1 ("/a\\u0000b"): path: path "/a\\u0000b" contains a NUL byte'],
    [
      'owner (uid_t)-1',
      { path: '/x', owner: UID_MINUS_1, defaccess: 'r--' },
      'rule 1 (/x): owner: 4294967295 is not a uid (0-4294967294; 4294967295 is (uid_t)-1, which names no one)',
    ],
    [
      'owner (uid_t)-1 as a numeric string',
      { path: '/x', owner: '4294967295', defaccess: 'r--' },
      'rule 1 (/x): owner: "4294967295": 4294967295 is not a uid (0-4294967294; 4294967295 is (uid_t)-1, which names no one)',
    ],
    [
      'a user name the account files give (uid_t)-1',
      { path: '/x', owner: 'minus1', defaccess: 'r--' },
      'rule 1 (/x): owner: "minus1": 4294967295 is not a uid (0-4294967294; 4294967295 is (uid_t)-1, which names no one)',
    ],
    [
      'an acl group (gid_t)-1',
      { path: '/x', owner: 0, defaccess: 'r--', acl: [{ group: UID_MINUS_1, access: 'r--' }] },
      'rule 1 (/x): acl[0].group: 4294967295 is not a gid (0-4294967294; 4294967295 is (gid_t)-1, which names no one)',
    ],
    [
      'an acl user (uid_t)-1',
      { path: '/x', owner: 0, defaccess: 'r--', acl: [{ user: UID_MINUS_1, access: 'r--' }] },
      'rule 1 (/x): acl[0].user: 4294967295 is not a uid (0-4294967294; 4294967295 is (uid_t)-1, which names no one)',
    ],
  ])('refuses %s, naming the rule and the field', (_what, r, message) => {
    expect(errorOf(file(r))).toBe(message);
  });

  it('an API body says the same', () => {
    expect(thrown(() => parseRuleBody({ path: '/docs/\ud800', owner: 0, defaccess: 'r--' }, names)).message).toBe(
      'rule "/docs/\\ud800": path: path "/docs/\\ud800" is not well-formed Unicode (lone surrogate U+D800 at index 6)',
    );
    expect(thrown(() => parseRuleBody({ path: '/x', owner: UID_MINUS_1, defaccess: 'r--' }, names)).message).toMatch(/^rule \/x: owner: 4294967295 is not a uid/);
  });
});

describe('the protocol\'s request schemas', () => {
  const problem = (schema: { safeParse(v: unknown): { success: boolean; error?: unknown } }, value: unknown, what: string): string => {
    const result = schema.safeParse(value);
    expect(result.success).toBe(false);
    return describeZodError(result.error as Parameters<typeof describeZodError>[0], what);
  };

  it.each<[string, unknown, RegExp]>([
    ['uid (uid_t)-1', { uid: UID_MINUS_1, gid: 0, path: '/a', access: 'r' }, /^check uid: 4294967295 is not a uid \(0-4294967294; 4294967295 is \(uid_t\)-1/],
    ['gid (gid_t)-1', { uid: 0, gid: UID_MINUS_1, path: '/a', access: 'r' }, /^check gid: 4294967295 is not a gid \(0-4294967294;/],
    ['a group (gid_t)-1', { uid: 0, gid: 0, groups: [5, UID_MINUS_1], path: '/a', access: 'r' }, /^check groups\.1: 4294967295 is not a gid/],
    ['a negative uid', { uid: -1, gid: 0, path: '/a', access: 'r' }, /^check uid: -1 is not a uid$/],
    ['a fractional gid', { uid: 0, gid: 1.5, path: '/a', access: 'r' }, /^check gid: 1\.5 is not a gid$/],
    ['a uid of another type', { uid: true, gid: 0, path: '/a', access: 'r' }, /^check uid: must be a numeric uid \(0-4294967294\) or a name$/],
    ['a lone surrogate in the path', { uid: 0, gid: 0, path: '/docs/\ud800', access: 'r' }, /^check path: "\/docs\/\\ud800" is not well-formed Unicode/],
    ['a NUL in the path', { uid: 0, gid: 0, path: '/a\u0000b', access: 'r' }, /^check path: "\/a\\u0000b" contains a NUL byte$/],
  ])('check refuses %s', (_what, body, message) => {
    expect(problem(checkRequestSchema, body, 'check')).toMatch(message);
  });

  it('check takes the largest real ids', () => {
    expect(checkRequestSchema.safeParse({ uid: MAX_ID, gid: MAX_ID, groups: [MAX_ID], path: '/a', access: 'r' }).success).toBe(true);
  });

  it('query paths (find by path, list prefix and cursor) are refused the same way', () => {
    expect(problem(pathQuerySchema, { path: '/docs/\ud800' }, 'query')).toMatch(/^query path: "\/docs\/\\ud800" is not well-formed Unicode/);
    expect(problem(pathQuerySchema, { path: '/a\u0000' }, 'query')).toMatch(/^query path: .* contains a NUL byte$/);
    expect(problem(listQuerySchema, { prefix: '/\udfff' }, 'query')).toMatch(/^query prefix: "\/\\udfff" is not well-formed Unicode/);
    expect(problem(listQuerySchema, { cursor: '/a\ud800' }, 'query')).toMatch(/^query cursor: /);
    expect(pathQuerySchema.safeParse({ path: '/docs/\ud83d\ude00' }).success).toBe(true);
  });
});

describe('the store refuses them too', () => {
  let dir: string;
  let store: RuleStore;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-validate-'));
    store = RuleStore.open(path.join(dir, 'db'), native);
  });

  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('on every write that takes a rule, changing nothing', () => {
    const kept = store.add(rule('/docs/\ufffd'));
    const generation = store.generation();
    for (const bad of [rule('/docs/\ud800'), rule('/a\u0000b'), rule('/a', { owner: UID_MINUS_1 }), rule('/a', { acl: [{ user: UID_MINUS_1, access: 4 }] })]) {
      expect(thrown(() => store.add(bad)).code).toBe('invalid');
      expect(thrown(() => store.setByPath(bad)).code).toBe('invalid');
      expect(thrown(() => store.put(kept.id, bad)).code).toBe('invalid');
      expect(thrown(() => store.putOrCreate(kept.id + 10, bad)).code).toBe('invalid');
      expect(thrown(() => store.importRules([rule('/fine'), bad])).message).toMatch(/^rule 1: /);
    }
    expect(store.generation()).toBe(generation);
    expect(store.count()).toBe(1);
    expect(store.findByPath('/docs/\ufffd')).toMatchObject({ id: kept.id });
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('on lookups and listings: an ill-formed path is refused, never taken for the U+FFFD rule', () => {
    store.add(rule('/docs/\ufffd'));
    expect(thrown(() => store.findByPath('/docs/\ud800')).message).toMatch(/lone surrogate U\+D800/);
    expect(thrown(() => store.list({ prefix: '/docs/\ud800' })).message).toMatch(/^prefix "\/docs\/\\ud800" is not well-formed/);
    expect(thrown(() => store.list({ prefix: '/docs', cursor: '/docs/\ud800' })).message).toMatch(/^cursor /);
    expect(thrown(() => store.bindWaiting('/docs/\ud800', { dev: 1, ino: 2, birth: null })).code).toBe('invalid');
    expect(thrown(() => store.movePaths('/docs', '/\udc00')).code).toBe('invalid');
    expect(store.findByPath('/docs/\ufffd')?.dev).toBeNull();
    expect(store.list().rules.map((r) => r.path)).toEqual(['/docs/\ufffd']);
  });

  it('rule ids outside 1..MAX_RULE_ID', () => {
    expect(store.get(0)).toBeUndefined();
    expect(store.get(MAX_RULE_ID + 1)).toBeUndefined();
    expect(thrown(() => store.putOrCreate(0, rule('/a'))).message).toBe(`rule id must be an integer 1-${MAX_RULE_ID}, got 0`);
    expect(thrown(() => store.putOrCreate(MAX_RULE_ID + 1, rule('/a'))).code).toBe('invalid');
    expect(store.putOrCreate(MAX_RULE_ID, rule('/a'))).toMatchObject({ created: true, rule: { id: MAX_RULE_ID } });
  });
});
