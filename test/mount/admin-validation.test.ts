// Ill-formed rule paths and ids over the admin API (a real Unix socket, the
// service over a temp store in this process, as admin-server.test.ts) and
// through the CLI's --db mode: a lone UTF-16 surrogate or a NUL in any path
// a route takes, (uid_t)-1 for any uid or gid, and out-of-range rule ids are
// 400 `invalid` naming the field; nothing is stored, and listing and export
// keep working afterwards.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AdminServer } from '../../src/admin/server';
import { AdminService } from '../../src/admin/service';
import { SystemNameResolver } from '../../src/system/names';
import { RuleStore } from '../../src/store/store';
import { httpUnix, type HttpReply } from '../helpers/admin';
import { ACLFS, run } from '../helpers/mounts';
import { native } from '../../src/native/binding';
import { describeAsRoot } from '../helpers/facilities';

const PASSWD = ['root:x:0:0::/root:/bin/sh', 'alice:x:2001:2001::/home/alice:/bin/sh', 'ghost:x:4294967295:0::/:/bin/sh', ''].join('\n');
const GROUP = ['root:x:0:', 'staff:x:3001:alice', 'nogroup:x:4294967295:', ''].join('\n');
const UID_MINUS_1 = 4294967295;
const LONE = '/docs/\ud800';
const WITH_NUL = '/a\u0000b';
/** A lone surrogate percent-encoded as UTF-8 would encode it (which UTF-8 forbids). */
const LONE_IN_QUERY = '/docs/%ED%A0%80';

let dir: string;
let db: string;
let store: RuleStore;
let server: AdminServer;
let sock: string;

beforeAll(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-validation-')));
  fs.writeFileSync(path.join(dir, 'passwd'), PASSWD);
  fs.writeFileSync(path.join(dir, 'group'), GROUP);
  db = path.join(dir, 'db');
  store = RuleStore.open(db, native);
  const service = new AdminService({
    store,
    identity: null,
    defaultPolicy: 'deny',
    version: '9.9.9',
  });
  sock = path.join(dir, 'run', 'aclfs.sock');
  server = await AdminServer.start({ socketPath: sock, gid: 0, api: service, accounts: new SystemNameResolver({ passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') }) });
  // The rule an ill-formed path would be confused with, and one more.
  for (const p of ['/docs/\ufffd', '/docs']) expect((await req('POST', '/v1/rules', rule(p))).status).toBe(201);
});

afterAll(async () => {
  await server?.close();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function req(method: string, target: string, body?: unknown): Promise<HttpReply> {
  return httpUnix(sock, method, target, body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function rule(p: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { path: p, owner: 0, defaccess: 'r--', acl: [], ...extra };
}

function expectInvalid(res: HttpReply, message: RegExp): void {
  expect(res.status).toBe(400);
  expect(res.json?.error?.code).toBe('invalid');
  expect(res.json.error.message).toMatch(message);
  expect(res.json.error.message).not.toContain('\n');
}

/** Everything a client can see of the rules, to compare before and after. */
async function snapshot(): Promise<{ list: unknown; exported: string; generation: number; rules: number }> {
  const list = await req('GET', '/v1/rules');
  const exported = await req('GET', '/v1/rules/export');
  const status = await req('GET', '/v1/status');
  expect(list.status).toBe(200);
  expect(exported.status).toBe(200);
  return { list: list.json, exported: exported.text, generation: status.json.generation, rules: status.json.rules };
}

describeAsRoot('ill-formed paths are 400 on every route that takes a rule path, and change nothing', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    before = await snapshot();
    expect(before.rules).toBe(2);
  });

  it('create: a lone surrogate and a NUL', async () => {
    expectInvalid(await req('POST', '/v1/rules', rule(LONE)), /^rule "\/docs\/\\ud800": path: path "\/docs\/\\ud800" is not well-formed Unicode \(lone surrogate U\+D800 at index 6\)$/);
    expectInvalid(await req('POST', '/v1/rules', rule(WITH_NUL)), /^rule "\/a\\u0000b": path: path "\/a\\u0000b" contains a NUL byte$/);
    expectInvalid(await req('POST', '/v1/rules', rule('/ok\ud83d/x')), /path: .*lone surrogate U\+D83D/);
  });

  it('replace by id and set by path (the body, and the path in the query)', async () => {
    const id = before.list && (before.list as { rules: { id: number; path: string }[] }).rules.find((r) => r.path === '/docs')!.id;
    expectInvalid(await req('PUT', `/v1/rules/${id}`, rule(LONE)), /path: path "\/docs\/\\ud800" is not well-formed Unicode/);
    expectInvalid(await req('PUT', '/v1/rules/999', rule(WITH_NUL)), /path: .*contains a NUL byte/);
    expectInvalid(await req('PUT', `/v1/rules/by-path?path=${LONE_IN_QUERY}`, rule(LONE)), /^query parameter "path" is not UTF-8 once percent-decoded$/);
    expectInvalid(await req('PUT', `/v1/rules/by-path?path=${encodeURIComponent('/docs/x')}`, rule(LONE)), /path: .*lone surrogate/);
    expectInvalid(await req('PUT', '/v1/rules/by-path?path=/a%00b', rule(WITH_NUL)), /^query path: "\/a\\u0000b" contains a NUL byte$/);
  });

  it('find and delete by path', async () => {
    for (const method of ['GET', 'DELETE']) {
      expectInvalid(await req(method, `/v1/rules/by-path?path=${LONE_IN_QUERY}`), /^query parameter "path" is not UTF-8 once percent-decoded$/);
      expectInvalid(await req(method, '/v1/rules/by-path?path=/docs/%FF'), /not UTF-8/);
      expectInvalid(await req(method, '/v1/rules/by-path?path=/docs/%00'), /NUL/);
    }
  });

  it('list: prefix and cursor', async () => {
    expectInvalid(await req('GET', `/v1/rules?prefix=${LONE_IN_QUERY}`), /^query parameter "prefix" is not UTF-8/);
    expectInvalid(await req('GET', '/v1/rules?prefix=/a%00'), /^query prefix: .*NUL/);
    expectInvalid(await req('GET', `/v1/rules?prefix=/docs&cursor=${LONE_IN_QUERY}`), /^query parameter "cursor" is not UTF-8/);
  });

  it('check: the path, and uid/gid/groups (uid_t)-1, given or resolved from a name', async () => {
    const check = (body: Record<string, unknown>) => req('POST', '/v1/check', { uid: 1000, gid: 1000, groups: [], path: '/docs/a', access: 'r', ...body });
    expect((await check({})).status).toBe(200);
    expectInvalid(await check({ path: LONE }), /^check path: "\/docs\/\\ud800" is not well-formed Unicode/);
    expectInvalid(await check({ path: WITH_NUL }), /^check path: .*NUL/);
    expectInvalid(await check({ uid: UID_MINUS_1 }), /^check uid: 4294967295 is not a uid \(0-4294967294; 4294967295 is \(uid_t\)-1/);
    expectInvalid(await check({ gid: UID_MINUS_1 }), /^check gid: 4294967295 is not a gid/);
    expectInvalid(await check({ groups: [1, UID_MINUS_1] }), /^check groups\.1: 4294967295 is not a gid/);
    expectInvalid(await check({ uid: 'ghost' }), /^user "ghost": 4294967295 is not a uid/);
    expectInvalid(await check({ groups: ['nogroup'] }), /^group "nogroup": 4294967295 is not a gid/);
    expect((await check({ uid: 4294967294, gid: 4294967294, groups: [4294967294] })).status).toBe(200);
  });

  it('owner, acl user and acl group (uid_t)-1, as numbers, numeric strings or names', async () => {
    for (const [body, message] of [
      [rule('/new', { owner: UID_MINUS_1 }), /^rule \/new: owner: 4294967295 is not a uid \(0-4294967294; 4294967295 is \(uid_t\)-1, which names no one\)$/],
      [rule('/new', { owner: '4294967295' }), /^rule \/new: owner: "4294967295": 4294967295 is not a uid/],
      [rule('/new', { owner: 'ghost' }), /^rule \/new: owner: "ghost": 4294967295 is not a uid/],
      [rule('/new', { acl: [{ user: UID_MINUS_1, access: 'r--' }] }), /^rule \/new: acl\[0\]\.user: 4294967295 is not a uid/],
      [rule('/new', { acl: [{ group: UID_MINUS_1, access: 'r--' }] }), /^rule \/new: acl\[0\]\.group: 4294967295 is not a gid/],
      [rule('/new', { acl: [{ group: 'nogroup', access: 'r--' }] }), /^rule \/new: acl\[0\]\.group: "nogroup": 4294967295 is not a gid/],
    ] as const) {
      expectInvalid(await req('POST', '/v1/rules', body), message);
      expectInvalid(await req('PUT', '/v1/rules/by-path?path=/new', body), message);
    }
  });

  it('rule ids outside 1-4294967295', async () => {
    for (const id of ['0', '4294967296', '99999999999', '-1', '1.5']) {
      expectInvalid(await req('GET', `/v1/rules/${id}`), /is not a rule id/);
      expectInvalid(await req('PUT', `/v1/rules/${id}`, rule('/new')), /is not a rule id/);
    }
  });

  it('import: a file with one such rule changes nothing and names the rule and the field', async () => {
    const file = (bad: Record<string, unknown>) => ({ version: 1, rules: [rule('/imported/a'), bad, rule('/imported/b')] });
    expectInvalid(await req('POST', '/v1/rules/import', file(rule(LONE))), /^rule 1 \("\/docs\/\\ud800"\): path: path "\/docs\/\\ud800" is not well-formed Unicode/);
    expectInvalid(await req('POST', '/v1/rules/import', file(rule(WITH_NUL))), /^rule 1 \("\/a\\u0000b"\): path: .*NUL/);
    expectInvalid(await req('POST', '/v1/rules/import', file(rule('/x', { owner: UID_MINUS_1 }))), /^rule 1 \(\/x\): owner: 4294967295 is not a uid/);
    expectInvalid(await req('POST', '/v1/rules/import?replace=true', file(rule(LONE))), /^rule 1 /);
  });

  it('afterwards: listing, export and lookups work and show exactly what was there', async () => {
    const after = await snapshot();
    expect(after).toEqual(before);
    expect(JSON.parse(after.exported).rules.map((r: { path: string }) => r.path)).toEqual(['/docs', '/docs/\ufffd']);
    expect((await req('GET', `/v1/rules/by-path?path=${encodeURIComponent('/docs/\ufffd')}`)).status).toBe(200);
    expect(store.verifyIndexes()).toEqual([]);
  });
});

describeAsRoot('the CLI, on the same database directly (--db)', () => {
  const cli = (args: string[], input?: string) => run(process.execPath, [ACLFS, ...args, '--db', db], input === undefined ? {} : { input });
  const oneLine = (res: { code: number; stdout: string; stderr: string }, code: number, message: RegExp): void => {
    expect(res.code).toBe(code);
    expect(res.stdout).toBe('');
    expect(res.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(res.stderr).toMatch(message);
  };

  it('refuses such rules in a rule file, ids (uid_t)-1 and out-of-range rule ids (exit 2), and ls and export still work', async () => {
    const exportedBefore = (await cli(['export'])).stdout;
    const badFiles: [string, RegExp][] = [
      [`{"version":1,"rules":[{"path":"/ok","owner":0,"defaccess":"r--"},{"path":"/docs/\\ud800","owner":0,"defaccess":"r--"}]}`, /^aclfs: rule 1 \("\/docs\/\\ud800"\): path: .*lone surrogate U\+D800/],
      [`{"version":1,"rules":[{"path":"/a\\u0000b","owner":0,"defaccess":"r--"}]}`, /^aclfs: rule 0 \("\/a\\u0000b"\): path: .*NUL/],
      [`{"version":1,"rules":[{"path":"/ok","owner":4294967295,"defaccess":"r--"}]}`, /^aclfs: rule 0 \(\/ok\): owner: 4294967295 is not a uid/],
    ];
    for (const [text, message] of badFiles) {
      oneLine(await cli(['import', '-'], text), 2, message);
      oneLine(await cli(['import', '-', '--replace'], text), 2, message);
    }
    oneLine(await cli(['rule', 'add', '/new', '--owner', '4294967295', '--default', 'r--']), 2, /owner: 4294967295 is not a uid/);
    oneLine(await cli(['rule', 'add', '/new', '--owner', '0', '--default', 'r--', '--group', '4294967295:r--']), 2, /acl\[0\]\.group: 4294967295 is not a gid/);
    oneLine(await cli(['check', '/docs', '--uid', '4294967295', '--gid', '0', '--access', 'r']), 2, /uid: 4294967295 is not a uid/);
    oneLine(await cli(['check', '/docs', '--uid', '0', '--gid', '0', '--groups', '4294967295', '--access', 'r']), 2, /groups\.0: 4294967295 is not a gid/);
    oneLine(await cli(['rule', 'show', '0']), 2, /rule id must be an integer 1-4294967295/);
    oneLine(await cli(['rule', 'rm', '4294967296']), 2, /rule id must be an integer 1-4294967295/);
    const ls = await cli(['rule', 'ls']);
    expect(ls).toMatchObject({ code: 0, stderr: '' });
    expect(ls.stdout.trim().split('\n')).toHaveLength(2);
    const exported = await cli(['export']);
    expect(exported).toMatchObject({ code: 0, stderr: '', stdout: exportedBefore });
  });
});
