import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AclfsError } from '../../src/errors';
import { numericId, parseIdTable, type NameResolver } from '../../src/rules/names';
import { SystemNameResolver } from '../../src/system/names';
import { parseRuleBody, parseRuleFile, parseRuleFileText, serializeRuleFile } from '../../src/rules/ruleFile';
import type { RuleInput } from '../../src/rules/types';

const fake: NameResolver = {
  user: (name) => ({ root: 0, alice: 1000, bob: 1001 })[name],
  group: (name) => ({ root: 0, staff: 50, users: 100 })[name],
};

const DOCUMENTED_EXAMPLE = {
  version: 1,
  rules: [
    {
      path: '/docs',
      recursive: true,
      owner: 0,
      defaccess: 'r--',
      acl: [
        { user: 1000, access: 'rw-' },
        { group: 100, access: 'r--' },
      ],
    },
    { path: '/docs/secret.txt', owner: 0, defaccess: '---', acl: [] },
  ],
};

function errorOf(data: unknown): string {
  try {
    parseRuleFile(data, fake);
  } catch (err) {
    expect(err).toBeInstanceOf(AclfsError);
    expect((err as AclfsError).code).toBe('invalid');
    return (err as Error).message;
  }
  throw new Error('expected the rule file to be rejected');
}

/** The example of docs/product.md ("Rule file") with rule 1 replaced by `{...base, ...patch}`. */
function withRule1(patch: Record<string, unknown>, drop: string[] = []): unknown {
  const rule: Record<string, unknown> = { path: '/docs/x', owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }], ...patch };
  for (const key of drop) delete rule[key];
  return { version: 1, rules: [DOCUMENTED_EXAMPLE.rules[0], rule] };
}

describe('parseRuleFile', () => {
  it('parses the example of docs/product.md', () => {
    expect(parseRuleFile(DOCUMENTED_EXAMPLE, fake)).toEqual<RuleInput[]>([
      { path: '/docs', recursive: true, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 6 }, { group: 100, access: 4 }] },
      { path: '/docs/secret.txt', recursive: false, owner: 0, defaccess: 0, acl: [] },
    ]);
  });

  it('resolves names, numeric strings and numbers; normalises paths; defaults acl and recursive', () => {
    const rules = parseRuleFile(
      {
        version: 1,
        rules: [
          {
            path: '/a//b/./',
            owner: 'alice',
            defaccess: 5,
            acl: [
              { user: 'bob', access: 7 },
              { group: 'staff', access: 'r-x' },
              { group: '4242', access: 0 },
              { user: '0', access: '--x' },
            ],
          },
          { path: '/c', owner: 12, defaccess: '---' },
        ],
      },
      fake,
    );
    expect(rules).toEqual([
      {
        path: '/a/b',
        recursive: false,
        owner: 1000,
        defaccess: 5,
        acl: [
          { user: 1001, access: 7 },
          { group: 50, access: 5 },
          { group: 4242, access: 0 },
          { user: 0, access: 1 },
        ],
      },
      { path: '/c', recursive: false, owner: 12, defaccess: 0, acl: [] },
    ]);
  });

  it.each<[string, unknown, string]>([
    ['bad access string', withRule1({ acl: [{ user: 1000, access: 'rwz' }] }), 'rule 1 (/docs/x): acl[0].access: "rwz" is not an access like "r-x" or 0-7'],
    ['access out of range', withRule1({ acl: [{ user: 1000, access: 8 }] }), 'rule 1 (/docs/x): acl[0].access: 8 is not an access like "r-x" or 0-7'],
    ['missing access', withRule1({ acl: [{ user: 1000 }] }), 'rule 1 (/docs/x): acl[0].access: is required'],
    ['bad defaccess', withRule1({ defaccess: 'read' }), 'rule 1 (/docs/x): defaccess: "read" is not an access like "r-x" or 0-7'],
    ['missing defaccess', withRule1({}, ['defaccess']), 'rule 1 (/docs/x): defaccess: is required'],
    ['unknown owner name', withRule1({ owner: 'mallory' }), 'rule 1 (/docs/x): owner: unknown user "mallory"'],
    ['negative owner', withRule1({ owner: -3 }), 'rule 1 (/docs/x): owner: -3 is not a uid'],
    ['missing owner', withRule1({}, ['owner']), 'rule 1 (/docs/x): owner: is required'],
    ['owner of wrong type', withRule1({ owner: true }), 'rule 1 (/docs/x): owner: must be a uid or a user name'],
    ['unknown acl user', withRule1({ acl: [{ user: 1000, access: 4 }, { user: 'eve', access: 4 }] }), 'rule 1 (/docs/x): acl[1].user: unknown user "eve"'],
    ['unknown acl group', withRule1({ acl: [{ group: 'wheel', access: 4 }] }), 'rule 1 (/docs/x): acl[0].group: unknown group "wheel"'],
    ['fractional gid', withRule1({ acl: [{ group: 1.5, access: 4 }] }), 'rule 1 (/docs/x): acl[0].group: 1.5 is not a gid'],
    ['both user and group', withRule1({ acl: [{ user: 1, group: 2, access: 4 }] }), 'rule 1 (/docs/x): acl[0]: needs exactly one of "user" or "group"'],
    ['neither user nor group', withRule1({ acl: [{ access: 4 }] }), 'rule 1 (/docs/x): acl[0]: needs exactly one of "user" or "group"'],
    ['unknown field in acl entry', withRule1({ acl: [{ user: 1, access: 4, uid: 3 }] }), 'rule 1 (/docs/x): acl[0]: unknown field "uid"'],
    ['acl entry not an object', withRule1({ acl: ['alice:rw-'] }), 'rule 1 (/docs/x): acl[0]: must be an object like {"user": 1000, "access": "r--"}'],
    ['acl not an array', withRule1({ acl: { user: 1 } }), 'rule 1 (/docs/x): acl: must be an array'],
    ['unknown rule field', withRule1({ recursve: true }), 'rule 1 (/docs/x): unknown field "recursve"'],
    ['recursive not boolean', withRule1({ recursive: 'yes' }), 'rule 1 (/docs/x): recursive: must be true or false'],
    ['revocable not boolean', withRule1({ revocable: 'yes' }), 'rule 1 (/docs/x): revocable: must be true or false'],
    ['revocable a number', withRule1({ revocable: 1 }), 'rule 1 (/docs/x): revocable: must be true or false'],
    ['revocable null', withRule1({ revocable: null }), 'rule 1 (/docs/x): revocable: must be true or false'],
    ['unknown rule field near revocable', withRule1({ revokable: true }), 'rule 1 (/docs/x): unknown field "revokable"'],
    ['auditOnly not boolean', withRule1({ auditOnly: 'yes' }), 'rule 1 (/docs/x): auditOnly: must be true or false'],
    ['auditOnly null', withRule1({ auditOnly: null }), 'rule 1 (/docs/x): auditOnly: must be true or false'],
    ['unknown rule field near auditOnly', withRule1({ auditonly: true }), 'rule 1 (/docs/x): unknown field "auditonly"'],
    ['relative path', withRule1({ path: 'docs/x' }), 'rule 1 (docs/x): path: path "docs/x" is not absolute'],
    ['path escaping root', withRule1({ path: '/../x' }), 'rule 1 (/../x): path: path "/../x" escapes the root with ".."'],
    ['missing path', withRule1({}, ['path']), 'rule 1: path: is required'],
    ['path not a string', withRule1({ path: 7 }), 'rule 1: path: must be a string'],
    ['duplicate path after normalising', withRule1({ path: '/docs/' }), 'rule 1 (/docs/): path: /docs is already the path of rule 0'],
    ['rule not an object', { version: 1, rules: [DOCUMENTED_EXAMPLE.rules[0], 'x'] }, 'rule 1: must be an object'],
    ['wrong version', { version: 2, rules: [] }, 'rule file: version: must be 1'],
    ['rules missing', { version: 1 }, 'rule file: rules: must be an array'],
    ['unknown top-level field', { version: 1, rules: [], comment: 'x' }, 'rule file: unknown field "comment"'],
    ['not an object', [1, 2], 'rule file: must be an object like {"version": 1, "rules": [...]}'],
  ])('%s', (_name, data, message) => {
    expect(errorOf(data)).toBe(message);
  });

  it('counts further problems', () => {
    expect(errorOf(withRule1({ owner: 'mallory', defaccess: 'x' }))).toMatch(/^rule 1 \(\/docs\/x\): owner: unknown user "mallory" \(and 1 more problem\)$/);
  });

  it('parseRuleFileText reports JSON syntax errors', () => {
    expect(() => parseRuleFileText('{"version": 1,', fake)).toThrow(/^rule file is not valid JSON: /);
    expect(parseRuleFileText(JSON.stringify(DOCUMENTED_EXAMPLE), fake)).toHaveLength(2);
  });

  it('serializeRuleFile round-trips', () => {
    const rules = parseRuleFile(DOCUMENTED_EXAMPLE, fake);
    const text = serializeRuleFile(rules);
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({
      version: 1,
      rules: [
        { path: '/docs', recursive: true, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }, { group: 100, access: 'r--' }] },
        { path: '/docs/secret.txt', recursive: false, owner: 0, defaccess: '---', acl: [] },
      ],
    });
    expect(parseRuleFileText(text, fake)).toEqual(rules);
  });
});

describe('revocable in the rule file', () => {
  const file = (revocable: Record<string, unknown>): unknown => ({ version: 1, rules: [{ path: '/docs/x', owner: 0, defaccess: 'r--', ...revocable }] });

  it.each<[string, Record<string, unknown>, boolean | undefined]>([
    ['absent (as in files from before the field)', {}, undefined],
    ['true', { revocable: true }, true],
    ['false', { revocable: false }, false],
  ])('parses revocable %s', (_name, field, parsed) => {
    const [rule] = parseRuleFile(file(field), fake);
    expect(rule?.revocable).toBe(parsed);
    expect(parseRuleBody({ path: '/docs/x', owner: 0, defaccess: 'r--', ...field }, fake).revocable).toBe(parsed);
  });

  it('an API body with a non-boolean revocable is refused, naming the field', () => {
    expect(() => parseRuleBody({ path: '/docs/x', owner: 0, defaccess: 'r--', revocable: 'true' }, fake)).toThrow(/^rule \/docs\/x: revocable: must be true or false$/);
  });

  it('an export writes revocable for a revocable rule only, and reads back the same', () => {
    const rules: RuleInput[] = [
      { path: '/a', recursive: true, revocable: true, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 4 }] },
      { path: '/b', recursive: false, owner: 0, defaccess: 0, acl: [] },
      { path: '/c', recursive: false, revocable: false, owner: 0, defaccess: 0, acl: [] },
    ];
    const text = serializeRuleFile(rules);
    expect(JSON.parse(text).rules).toEqual([
      { path: '/a', recursive: true, revocable: true, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'r--' }] },
      { path: '/b', recursive: false, owner: 0, defaccess: '---', acl: [] },
      { path: '/c', recursive: false, owner: 0, defaccess: '---', acl: [] },
    ]);
    const back = parseRuleFileText(text, fake);
    expect(back.map((r) => r.revocable === true)).toEqual([true, false, false]);
    expect(serializeRuleFile(back)).toBe(text);
  });
});

describe('auditOnly in the rule file', () => {
  const file = (mark: Record<string, unknown>): unknown => ({ version: 1, rules: [{ path: '/docs/x', owner: 0, defaccess: 'r--', ...mark }] });

  it.each<[string, Record<string, unknown>, boolean | undefined]>([
    ['absent (as in files from before the field)', {}, undefined],
    ['true', { auditOnly: true }, true],
    ['false', { auditOnly: false }, false],
  ])('parses auditOnly %s', (_name, field, parsed) => {
    const [rule] = parseRuleFile(file(field), fake);
    expect(rule?.auditOnly).toBe(parsed);
    expect(parseRuleBody({ path: '/docs/x', owner: 0, defaccess: 'r--', ...field }, fake).auditOnly).toBe(parsed);
  });

  it('an API body with a non-boolean auditOnly is refused, naming the field', () => {
    expect(() => parseRuleBody({ path: '/docs/x', owner: 0, defaccess: 'r--', auditOnly: 1 }, fake)).toThrow(/^rule \/docs\/x: auditOnly: must be true or false$/);
  });

  it('an export writes auditOnly for an audit-only rule only, and reads back the same', () => {
    const rules: RuleInput[] = [
      { path: '/a', recursive: true, auditOnly: true, revocable: true, owner: 0, defaccess: 4, acl: [] },
      { path: '/b', recursive: false, owner: 0, defaccess: 0, acl: [] },
      { path: '/c', recursive: false, auditOnly: false, owner: 0, defaccess: 0, acl: [] },
    ];
    const text = serializeRuleFile(rules);
    expect(JSON.parse(text).rules).toEqual([
      { path: '/a', recursive: true, revocable: true, auditOnly: true, owner: 0, defaccess: 'r--', acl: [] },
      { path: '/b', recursive: false, owner: 0, defaccess: '---', acl: [] },
      { path: '/c', recursive: false, owner: 0, defaccess: '---', acl: [] },
    ]);
    const back = parseRuleFileText(text, fake);
    expect(back.map((r) => r.auditOnly === true)).toEqual([true, false, false]);
    expect(serializeRuleFile(back)).toBe(text);
  });
});

describe('names', () => {
  it('numericId accepts only plain decimal 32-bit ids', () => {
    expect(numericId('0')).toBe(0);
    expect(numericId('4294967295')).toBe(4294967295);
    expect(numericId('4294967296')).toBeUndefined();
    expect(numericId('-1')).toBeUndefined();
    expect(numericId('1e3')).toBeUndefined();
    expect(numericId('')).toBeUndefined();
  });

  it('parseIdTable reads passwd/group lines, first entry wins', () => {
    const table = parseIdTable('# comment\nroot:x:0:0:root:/root:/bin/bash\n\nalice:x:1000:1000::/home/alice:/bin/sh\nalice:x:2000:2000::/:/bin/sh\nbroken\nbad:x:notanumber:1\n');
    expect([...table]).toEqual([
      ['root', 0],
      ['alice', 1000],
    ]);
  });

  it('SystemNameResolver reads its files and notices changes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-names-'));
    try {
      const passwd = path.join(dir, 'passwd');
      const group = path.join(dir, 'group');
      fs.writeFileSync(passwd, 'alice:x:1000:1000::/home/alice:/bin/sh\n');
      fs.writeFileSync(group, 'staff:x:50:alice\n');
      const names = new SystemNameResolver({ passwd, group });
      expect(names.user('alice')).toBe(1000);
      expect(names.user('1234')).toBe(1234);
      expect(names.user('bob')).toBeUndefined();
      expect(names.group('staff')).toBe(50);
      expect(names.userName(1000)).toBe('alice');
      expect(names.groupName(50)).toBe('staff');
      fs.writeFileSync(passwd, 'alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n');
      expect(names.user('bob')).toBe(1001);
      const missing = new SystemNameResolver({ passwd: path.join(dir, 'nope'), group: path.join(dir, 'nope') });
      expect(missing.user('alice')).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the system resolver knows root', () => {
    expect(new SystemNameResolver().user('root')).toBe(0);
  });
});
