// The admin validation edge resolves user and group names: what it hands
// the operations (from the socket server or the in-process API of --db
// mode) holds ids only. A table of bodies with names and the input they
// become, the 400s of names that resolve to nothing, and the in-process API
// over operations that record what they are given.
import { describe, expect, it } from 'vitest';
import type { Accounts } from '../../src/admin/accounts';
import { checkInput, importInput, parseCheckRequest, parseRuleRequest, ruleAtPath, ruleInput, type CheckInput } from '../../src/admin/edge';
import { LocalApi } from '../../src/admin/localApi';
import { httpStatusFor, type CheckRequest, type ImportProgress } from '../../src/admin/protocol';
import type { AdminOperations } from '../../src/admin/service';
import { AclfsError } from '../../src/errors';
import type { RuleInput } from '../../src/rules/types';

const USERS: Record<string, { uid: number; gid: number }> = {
  root: { uid: 0, gid: 0 },
  alice: { uid: 1000, gid: 1000 },
  bob: { uid: 1001, gid: 100 },
};
const GROUPS: Record<string, { gid: number; members: string[] }> = {
  root: { gid: 0, members: [] },
  alice: { gid: 1000, members: [] },
  users: { gid: 100, members: ['alice'] },
  staff: { gid: 50, members: ['alice', 'bob'] },
};

/** Accounts over the tables above, as SystemNameResolver answers over passwd and group. */
const accounts: Accounts = {
  user: (name) => (/^\d+$/.test(name) ? Number(name) : USERS[name]?.uid),
  group: (name) => (/^\d+$/.test(name) ? Number(name) : GROUPS[name]?.gid),
  primaryGid: (uid) => Object.values(USERS).find((u) => u.uid === uid)?.gid,
  memberGroups: (uid) => {
    const names = Object.entries(USERS)
      .filter(([, u]) => u.uid === uid)
      .map(([name]) => name);
    return Object.values(GROUPS)
      .filter((g) => g.members.some((m) => names.includes(m)))
      .map((g) => g.gid);
  },
};

/** The error a call throws: an AclfsError of class invalid, which the API answers with 400. */
function invalidMessage(call: () => unknown): string {
  let thrown: unknown;
  try {
    call();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AclfsError);
  const e = thrown as AclfsError;
  expect(e.code).toBe('invalid');
  expect(httpStatusFor(e.code)).toBe(400);
  return e.message;
}

describe('admin edge: check', () => {
  const cases: [string, CheckRequest, Omit<CheckInput, 'path' | 'requested'>][] = [
    ['ids as given', { uid: 1000, gid: 50, groups: [100], path: '/d', access: 'r' }, { uid: 1000, gid: 50, groups: [100] }],
    ['a user name; gid and groups as a login of it gets them', { uid: 'alice', path: '/d', access: 'r' }, { uid: 1000, gid: 1000, groups: [100, 50] }],
    ['a uid; its groups without its primary one', { uid: 1001, path: '/d', access: 'r' }, { uid: 1001, gid: 100, groups: [50] }],
    ['group names, each once', { uid: 'bob', gid: 'staff', groups: ['users', 'staff', 'users'], path: '/d', access: 'r' }, { uid: 1001, gid: 50, groups: [100, 50] }],
    ['numeric strings are ids', { uid: '1000', gid: '50', groups: ['100'], path: '/d', access: 'r' }, { uid: 1000, gid: 50, groups: [100] }],
    ['no groups', { uid: 'root', groups: [], path: '/d', access: 'r' }, { uid: 0, gid: 0, groups: [] }],
  ];
  it.each(cases)('%s', (_name, request, caller) => {
    expect(parseCheckRequest(request, accounts)).toEqual({ ...caller, path: '/d', requested: 4 });
  });

  it('explain: true is passed on; false or absent is left out', () => {
    expect(parseCheckRequest({ uid: 'root', groups: [], path: '/d', access: 'r', explain: true }, accounts)).toEqual({ uid: 0, gid: 0, groups: [], path: '/d', requested: 4, explain: true });
    expect(parseCheckRequest({ uid: 'root', groups: [], path: '/d', access: 'r', explain: false }, accounts)).toEqual({ uid: 0, gid: 0, groups: [], path: '/d', requested: 4 });
    expect(() => parseCheckRequest({ uid: 'root', path: '/d', access: 'r', explain: 'yes' } as unknown as CheckRequest, accounts)).toThrow(/explain: must be true or false/);
  });

  it('the path is canonical and the access bits', () => {
    expect(parseCheckRequest({ uid: 'alice', path: '//d/./e/', access: 'r-x' }, accounts)).toMatchObject({ path: '/d/e', requested: 5 });
  });

  const refused: [string, CheckRequest, string][] = [
    ['an unknown user', { uid: 'nobody-here', gid: 0, path: '/d', access: 'r' }, 'unknown user "nobody-here"'],
    ['an unknown gid name', { uid: 0, gid: 'nogroup-here', path: '/d', access: 'r' }, 'unknown group "nogroup-here"'],
    ['an unknown group among the groups', { uid: 0, gid: 0, groups: [50, 'wheel'], path: '/d', access: 'r' }, 'unknown group "wheel"'],
    ['a uid without a passwd entry and no gid', { uid: 4242, path: '/d', access: 'r' }, 'uid 4242 has no entry in /etc/passwd, so its primary group is unknown: give a gid'],
  ];
  it.each(refused)('400 for %s', (_name, request, message) => {
    expect(invalidMessage(() => parseCheckRequest(request, accounts))).toBe(message);
  });

  it('checks the path and the access before it resolves a name', () => {
    expect(invalidMessage(() => checkInput({ uid: 'nobody-here', path: 'rel', access: 'r' }, accounts))).toMatch(/^path "rel" is not absolute/);
    expect(invalidMessage(() => checkInput({ uid: 'nobody-here', path: '/d', access: 'rz' }, accounts))).not.toMatch(/unknown user/);
  });
});

describe('admin edge: rule bodies', () => {
  it('resolves the owner and every ACL entry to ids', () => {
    const body = {
      path: '/docs/',
      owner: 'alice',
      defaccess: 'r--',
      acl: [
        { user: 'bob', access: 'rw-' },
        { group: 'staff', access: 5 },
        { user: 1000, access: 'r--' },
      ],
    };
    const expected: RuleInput = {
      path: '/docs',
      recursive: false,
      owner: 1000,
      defaccess: 4,
      acl: [
        { user: 1001, access: 6 },
        { group: 50, access: 5 },
        { user: 1000, access: 4 },
      ],
    };
    expect(ruleInput(body, accounts)).toEqual(expected);
    expect(parseRuleRequest(body, accounts)).toEqual(expected);
  });

  const refused: [string, unknown, string][] = [
    ['an unknown owner', { path: '/x', owner: 'nosuchuser', defaccess: 'r--' }, 'rule /x: owner: unknown user "nosuchuser"'],
    ['an unknown ACL user', { path: '/x', owner: 0, defaccess: 'r--', acl: [{ user: 'eve', access: 'r--' }] }, 'rule /x: acl[0].user: unknown user "eve"'],
    ['an unknown ACL group', { path: '/x', owner: 0, defaccess: 'r--', acl: [{ group: 'wheel', access: 'r--' }] }, 'rule /x: acl[0].group: unknown group "wheel"'],
    ['a body that is not one object', [], 'request body must be one rule, e.g. {"path": "/docs", "owner": 0, "defaccess": "r--", "acl": []}'],
  ];
  it.each(refused)('400 for %s', (_name, body, message) => {
    expect(invalidMessage(() => parseRuleRequest(body, accounts))).toBe(message);
  });

  it('a rule stored under a path must name that path', () => {
    expect(ruleAtPath('/docs', { path: '/docs/', owner: 'bob', defaccess: 'r--' }, accounts)).toMatchObject({ path: '/docs', owner: 1001 });
    expect(invalidMessage(() => ruleAtPath('/docs', { path: '/other', owner: 0, defaccess: 'r--' }, accounts))).toBe(
      'rule path /other does not match the path /docs it is stored under',
    );
  });
});

describe('admin edge: rule files', () => {
  it('parses the text, resolves its names and reports validation progress', () => {
    const text = JSON.stringify({ version: 1, rules: [{ path: '/a', owner: 'bob', defaccess: 'r--', acl: [{ group: 'users', access: 'r--' }] }] });
    const progress: ImportProgress[] = [];
    const input = importInput(text, accounts, { replace: true, onProgress: (p) => progress.push(p) });
    expect(input).toEqual({ replace: true, rules: [{ path: '/a', recursive: false, owner: 1001, defaccess: 4, acl: [{ group: 100, access: 4 }] }] });
    expect(progress).toEqual([
      { phase: 'validate', done: 0, total: 1 },
      { phase: 'validate', done: 1, total: 1 },
    ]);
    expect(importInput(text, accounts).replace).toBe(false);
  });

  it('400 for text that is not JSON, and for an unknown name', () => {
    expect(invalidMessage(() => importInput('{', accounts))).toMatch(/^rule file is not valid JSON: /);
    const text = JSON.stringify({ version: 1, rules: [{ path: '/a', owner: 'mallory', defaccess: 'r--' }] });
    expect(invalidMessage(() => importInput(text, accounts))).toBe('rule 0 (/a): owner: unknown user "mallory"');
  });
});

describe('the in-process API (--db) gives the operations resolved input only', () => {
  /** Operations that record each call's arguments and answer nothing useful. */
  function recording(): { operations: AdminOperations & { close(): Promise<void> }; calls: [string, unknown[]][] } {
    const calls: [string, unknown[]][] = [];
    const operations = new Proxy({} as AdminOperations & { close(): Promise<void> }, {
      get: (_target, prop) =>
        prop === 'then'
          ? undefined
          : async (...args: unknown[]) => {
              calls.push([String(prop), args]);
              return { rule: {}, created: true };
            },
    });
    return { operations, calls };
  }

  it('rule bodies, checks and imports arrive with ids', async () => {
    const { operations, calls } = recording();
    const api = new LocalApi(operations, accounts);
    const body = { path: '/docs', owner: 'alice', defaccess: 'r--', acl: [{ group: 'staff', access: 'r--' }] };
    const rule: RuleInput = { path: '/docs', recursive: false, owner: 1000, defaccess: 4, acl: [{ group: 50, access: 4 }] };
    await api.createRule(body);
    await api.putRule(7, body);
    await api.setRuleByPath('/docs/', body);
    await api.check({ uid: 'bob', path: '/docs', access: 'rw' });
    await api.importRules(JSON.stringify({ version: 1, rules: [body] }));
    expect(calls).toEqual([
      ['createRule', [rule]],
      ['putRule', [7, rule]],
      ['setRuleByPath', [rule]],
      ['check', [{ uid: 1001, gid: 100, groups: [50], path: '/docs', requested: 6 }]],
      ['importRules', [{ rules: [rule], replace: false }]],
    ]);
  });

  it('an unknown name is refused as the server refuses it, and the operations are not called', async () => {
    const { operations, calls } = recording();
    const api = new LocalApi(operations, accounts);
    const refusals = [
      api.createRule({ path: '/x', owner: 'nosuchuser', defaccess: 'r--' }),
      api.check({ uid: 'nobody-here', gid: 0, path: '/x', access: 'r' }),
      api.importRules(JSON.stringify({ version: 1, rules: [{ path: '/x', owner: 0, defaccess: 'r--', acl: [{ group: 'wheel', access: 'r--' }] }] })),
    ];
    const messages = [];
    for (const refusal of refusals) {
      const e = await refusal.catch((err: unknown) => err);
      expect(e).toBeInstanceOf(AclfsError);
      expect(httpStatusFor((e as AclfsError).code)).toBe(400);
      messages.push((e as AclfsError).message);
    }
    expect(messages).toEqual(['rule /x: owner: unknown user "nosuchuser"', 'unknown user "nobody-here"', 'rule 0 (/x): acl[0].group: unknown group "wheel"']);
    expect(calls).toEqual([]);
  });
});
