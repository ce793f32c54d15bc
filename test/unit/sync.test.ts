// Fleet sync without etcd: the --sync target, the key layout, how a value
// becomes a rule (fail closed), and the store's applySync (one transaction
// per revision, ids and bindings kept, the mark dropped by a local write).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding';
import { RuleStore } from '../../src/store/store';
import { RuleKeys, syncTarget } from '../../src/sync';
import { ruleBodyParser } from '../../src/rules/ruleFile';
import { denyingRule, parseKey, ruleValue } from '../../src/sync/values';

const names = ruleBodyParser({ user: (n: string) => (n === 'alice' ? 2001 : undefined), group: () => undefined });

describe('the --sync target', () => {
  it('parses endpoints, prefix and TLS', () => {
    expect(syncTarget({ url: 'etcd://127.0.0.1:2379/fleet/' })).toMatchObject({
      source: 'etcd://127.0.0.1:2379/fleet',
      hosts: ['http://127.0.0.1:2379'],
      tls: false,
      prefix: '/fleet',
      credentials: null,
      auth: null,
    });
    expect(syncTarget({ url: 'etcds://a:2379,b:2379/x/y' })).toMatchObject({ hosts: ['https://a:2379', 'https://b:2379'], tls: true, prefix: '/x/y' });
  });

  it('refuses what it cannot use, naming the option', () => {
    expect(() => syncTarget({ url: 'http://a:1/x' })).toThrow(/not like etcd:\/\/HOST:PORT\/PREFIX/);
    expect(() => syncTarget({ url: 'etcd://a:1' })).toThrow(/name a key prefix/);
    expect(() => syncTarget({ url: 'etcd://u:p@a:1/x' })).toThrow(/--sync-user/);
    expect(() => syncTarget({ url: 'etcd://a/x' })).toThrow(/"a" is not HOST:PORT/);
    expect(() => syncTarget({ url: 'etcd://a:1/x', ca: '/nonexistent/ca.pem' })).toThrow(/--sync-ca \/nonexistent\/ca.pem: no such file/);
    expect(() => syncTarget({ url: 'etcd://a:1/x', user: 'root' })).toThrow(/--sync-password-file/);
  });

  it('reads the password file, without its newline', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-sync-'));
    try {
      const file = path.join(dir, 'pw');
      fs.writeFileSync(file, 's3cret\n');
      expect(syncTarget({ url: 'etcd://a:1/x', user: 'aclfs', passwordFile: file }).auth).toEqual({ user: 'aclfs', password: 's3cret' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rule keys and values', () => {
  const keys = new RuleKeys('/fleet');

  it('maps canonical paths to keys one to one', () => {
    expect(keys.keyOf('/')).toBe('/fleet/rules/');
    expect(keys.keyOf('/docs/a b.txt')).toBe('/fleet/rules/docs/a b.txt');
    for (const p of ['/', '/docs', '/docs/a b.txt', '/é/ü']) expect(keys.pathOf(keys.keyOf(p))).toBe(p);
    for (const k of ['/fleet/rules//docs', '/fleet/rules/docs/', '/fleet/rules/docs/../x', '/fleet/other', '/fleet/rulesx']) expect(keys.pathOf(k)).toBeNull();
  });

  it('a value is one rule in the rule file form, names resolved here', () => {
    const parsed = parseKey(keys, '/fleet/rules/docs', Buffer.from('{"path":"/docs","owner":0,"defaccess":"r--","acl":[{"user":"alice","access":"rw-"}]}'), 7, names);
    expect(parsed).toEqual({ kind: 'rule', item: { path: '/docs', modRevision: 7, rule: { path: '/docs', owner: 0, defaccess: 4, acl: [{ user: 2001, access: 6 }], recursive: false } } });
    expect(parseKey(keys, '/fleet/rules/docs', null, 8, names)).toEqual({ kind: 'rule', item: { path: '/docs', rule: null, modRevision: 8 } });
    expect(ruleValue({ path: '/docs', owner: 0, defaccess: 4, acl: [{ user: 2001, access: 6 }], recursive: false })).toBe(
      '{"path":"/docs","recursive":false,"owner":0,"defaccess":"r--","acl":[{"user":2001,"access":"rw-"}]}',
    );
  });

  it('a value that does not parse stands as a rule granting nothing at its key path', () => {
    for (const [value, problem] of [
      ['not json', /not JSON/],
      ['{"path":"/docs","owner":0,"defaccess":"rwz"}', /defaccess/],
      ['{"path":"/docs","owner":0,"defaccess":"r--","acl":[{"user":"mallory","access":"r--"}]}', /unknown user "mallory"/],
      ['{"path":"/other","owner":0,"defaccess":"r--"}', /names path "\/other"/],
      ['{"path":"/docs","owner":0,"defaccess":"r--","recursve":true}', /unknown field "recursve"/],
    ] as const) {
      const parsed = parseKey(keys, '/fleet/rules/docs', Buffer.from(value), 3, names);
      expect(parsed.kind, value).toBe('invalid');
      if (parsed.kind !== 'invalid') continue;
      expect(parsed.item.rule).toEqual(denyingRule('/docs'));
      expect(parsed.problem).toMatch(problem);
    }
    expect(denyingRule('/docs')).toEqual({ path: '/docs', owner: 0, defaccess: 0, acl: [], recursive: true });
    expect(parseKey(keys, '/fleet/rules/docs/', Buffer.from('{}'), 3, names).kind).toBe('skipped');
  });
});

describe('RuleStore.applySync', () => {
  let dir: string;
  let store: RuleStore;
  const mark = (revision: number) => ({ source: 'etcd://a:1/x', cluster: '9', revision });
  const rule = (p: string, defaccess = 4) => ({ path: p, owner: 0, defaccess, acl: [], recursive: false });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-applysync-'));
    store = RuleStore.open(path.join(dir, 'db'), native);
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a full load replaces the rule set; a rule left as it was keeps its id, binding and generation', () => {
    store.add(rule('/local'));
    expect(store.applySync([{ path: '/a', rule: rule('/a'), modRevision: 2 }, { path: '/b', rule: rule('/b'), modRevision: 3 }], mark(3), true)).toEqual({ put: 2, removed: 1, unchanged: 0 });
    expect(store.exportRules().map((r) => r.path)).toEqual(['/a', '/b']);
    expect(store.syncMark()).toEqual(mark(3));
    expect(store.syncRevisionOf('/b')).toBe(3);
    const a = store.findByPath('/a')!;
    store.bind(a.id, 1, 100, null);
    const generation = store.generation();
    expect(store.applySync([{ path: '/a', rule: rule('/a'), modRevision: 2 }, { path: '/b', rule: rule('/b'), modRevision: 3 }], mark(4), true)).toEqual({ put: 0, removed: 0, unchanged: 2 });
    expect(store.generation()).toBe(generation);
    expect(store.findByPath('/a')).toMatchObject({ id: a.id, dev: 1, ino: 100 });
    // A change at the same path keeps the id and the binding.
    store.applySync([{ path: '/a', rule: rule('/a', 6), modRevision: 5 }, { path: '/b', rule: null, modRevision: 5 }], mark(5), false);
    expect(store.findByPath('/a')).toMatchObject({ id: a.id, dev: 1, ino: 100, defaccess: 6 });
    expect(store.findByPath('/b')).toBeUndefined();
    expect(store.syncRevisionOf('/a')).toBe(5);
    expect(store.syncRevisionOf('/b')).toBeUndefined();
    expect(store.verifyIndexes()).toEqual([]);
  });

  it('a rule written here, not by a sync, drops the mark (the next sync reloads)', () => {
    store.applySync([{ path: '/a', rule: rule('/a'), modRevision: 2 }], mark(2), true);
    store.bind(store.findByPath('/a')!.id, 1, 2, null);
    expect(store.syncMark()).toEqual(mark(2));
    store.setByPath(rule('/c'));
    expect(store.syncMark()).toBeNull();
  });

  it('an invalid item changes nothing', () => {
    store.applySync([{ path: '/a', rule: rule('/a'), modRevision: 2 }], mark(2), true);
    expect(() => store.applySync([{ path: '/b', rule: rule('/b'), modRevision: 3 }, { path: '/c', rule: rule('/d'), modRevision: 3 }], mark(3), false)).toThrow(/names path \/d/);
    expect(store.exportRules().map((r) => r.path)).toEqual(['/a']);
    expect(store.syncMark()).toEqual(mark(2));
  });
});
