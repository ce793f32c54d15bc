// The admin server over a real Unix socket in a temp dir, serving an
// AdminService over a temp RuleStore in this process (no FUSE: the server
// does not need a mount). Every endpoint, every error class, the body limits,
// malformed input of every kind, and after each bad request the server
// still answers /v1/status.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { AdminClient } from '../../src/admin/client';
import { httpStatusFor, type AdminApi, type ClosableAdminApi } from '../../src/admin/protocol';
import { AdminServer } from '../../src/admin/server';
import { AdminService, type AdminOperations } from '../../src/admin/service';
import { SystemNameResolver } from '../../src/system/names';
import { AclfsError, ERROR_CLASSES } from '../../src/errors';
import { RuleStore } from '../../src/store/store';
import type { FileIdentity } from '../../src/rules/types';
import { httpUnix, rawUnix } from '../helpers/admin';
import { native } from '../../src/native/binding';
import { describeAsRoot } from '../helpers/facilities';

const PASSWD = ['root:x:0:0::/root:/bin/sh', 'alice:x:2001:2001::/home/alice:/bin/sh', 'bob:x:2002:2002::/:/bin/sh', ''].join('\n');
const GROUP = ['root:x:0:', 'alice:x:2001:', 'staff:x:3001:alice,bob', 'team:x:3002:bob', ''].join('\n');

let dir: string;
let src: string;
let store: RuleStore;
let service: AdminService;
/** The names the server resolves with: the test's own passwd and group. */
let accounts: SystemNameResolver;
let server: AdminServer;
let sock: string;

function lstatIdentity(root: string): (p: string) => FileIdentity | null {
  return (p) => {
    try {
      const st = fs.lstatSync(p === '/' ? root : root + p);
      return { dev: st.dev, ino: st.ino, birth: null };
    } catch {
      return null;
    }
  };
}

beforeAll(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-admin-')));
  src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs', 'a.txt'), 'a');
  fs.writeFileSync(path.join(dir, 'passwd'), PASSWD);
  fs.writeFileSync(path.join(dir, 'group'), GROUP);
  store = RuleStore.open(path.join(dir, 'db'), native);
  accounts = new SystemNameResolver({ passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') });
  service = new AdminService({
    store,
    identity: lstatIdentity(src),
    defaultPolicy: 'deny',
    version: '9.9.9',
  });
  sock = path.join(dir, 'run', 'aclfs.sock');
  server = await AdminServer.start({ socketPath: sock, gid: 3001, api: service, accounts });
});

afterAll(async () => {
  await server?.close();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const req = (method: string, p: string, body?: unknown, opts: { raw?: boolean; chunked?: boolean } = {}) =>
  httpUnix(sock, method, p, {
    ...(body === undefined ? {} : { body: opts.raw ? (body as string | Buffer) : JSON.stringify(body) }),
    chunked: opts.chunked,
  });

async function expectServing(): Promise<void> {
  const res = await req('GET', '/v1/status');
  expect(res.status).toBe(200);
  expect(res.json.version).toBe('9.9.9');
}

function expectError(res: { status: number; json: any }, status: number, code: string, text?: string | RegExp): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.json)).toEqual(['error']);
  expect(Object.keys(res.json.error).sort()).toEqual(['code', 'message']);
  expect(res.json.error.code).toBe(code);
  expect(typeof res.json.error.message).toBe('string');
  expect(res.json.error.message).not.toContain('\n');
  if (text !== undefined) expect(res.json.error.message).toMatch(text);
}

const rule = (p: string, extra: Record<string, unknown> = {}) => ({ path: p, owner: 0, defaccess: 'r--', acl: [], ...extra });

describeAsRoot('admin socket file', () => {
  it('is a 0660 socket owned by root and the admin group, in a 0750 directory of the same group', () => {
    const st = fs.lstatSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o660);
    expect(st.uid).toBe(0);
    expect(st.gid).toBe(3001);
    const d = fs.lstatSync(path.dirname(sock));
    expect(d.mode & 0o7777).toBe(0o750);
    expect(d.gid).toBe(3001);
  });

  it('replaces a stale socket left by a crashed process, refuses a live one and a non-socket, removes its own on close', async () => {
    const p = path.join(dir, 'run', 'stale.sock');
    // A process that dies without cleaning up leaves a socket nobody answers.
    const crash = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(crash.signal).toBe('SIGKILL');
    expect(fs.lstatSync(p).isSocket()).toBe(true);
    const s = await AdminServer.start({ socketPath: p, gid: 0, api: service, accounts });
    try {
      expect((await httpUnix(p, 'GET', '/v1/status')).status).toBe(200);
      // A second daemon on a live socket is refused (conflict) and leaves it alone.
      const second = await AdminServer.start({ socketPath: p, gid: 0, api: service, accounts }).then(
        () => 'started',
        (e: unknown) => e,
      );
      expect(second).toBeInstanceOf(AclfsError);
      expect((second as AclfsError).code).toBe('conflict');
      expect((second as AclfsError).message).toContain('another aclfs daemon');
      expect((await httpUnix(p, 'GET', '/v1/status')).status).toBe(200);
    } finally {
      await s.close();
    }
    expect(fs.existsSync(p)).toBe(false);

    fs.writeFileSync(p, 'not a socket');
    const notSocket = await AdminServer.start({ socketPath: p, gid: 0, api: service, accounts }).catch((e: unknown) => e);
    expect((notSocket as AclfsError).code).toBe('conflict');
    expect(fs.readFileSync(p, 'utf8')).toBe('not a socket');
    fs.rmSync(p);
  });

  it('refuses a runtime directory that others can enter or the group can write, and never changes its mode', async () => {
    for (const mode of [0o755, 0o770, 0o1777]) {
      const d = path.join(dir, `open-${mode.toString(8)}`);
      fs.mkdirSync(d);
      fs.chmodSync(d, mode);
      const err = await AdminServer.start({ socketPath: path.join(d, 'aclfs.sock'), gid: 0, api: service, accounts }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AclfsError);
      expect((err as AclfsError).code).toBe('invalid');
      expect((err as AclfsError).message).toMatch(/0750 or tighter/);
      expect(fs.statSync(d).mode & 0o7777).toBe(mode);
      expect(fs.existsSync(path.join(d, 'aclfs.sock'))).toBe(false);
    }
    const notOurs = path.join(dir, 'not-ours');
    fs.mkdirSync(notOurs, { mode: 0o750 });
    fs.chownSync(notOurs, 2001, 0);
    const err = await AdminServer.start({ socketPath: path.join(notOurs, 'aclfs.sock'), gid: 0, api: service, accounts }).catch((e: unknown) => e);
    expect((err as AclfsError).message).toMatch(/owned by uid 2001/);
  });

  it('binds the socket 0600 and only then gives it to the admin group and opens it to 0660; the umask is restored', async () => {
    const p = path.join(dir, 'run-window', 'aclfs.sock');
    const seen: { op: string; mode: number; gid: number }[] = [];
    const record = (op: string, target: fs.PathLike): void => {
      if (String(target) !== p) return;
      const st = fs.lstatSync(p);
      seen.push({ op, mode: st.mode & 0o7777, gid: st.gid });
    };
    const originalChown = fs.chownSync;
    const originalChmod = fs.chmodSync;
    const chown = vi.spyOn(fs, 'chownSync').mockImplementation((target, uid, gid) => {
      record('chown', target);
      originalChown.call(fs, target, uid, gid);
    });
    const chmod = vi.spyOn(fs, 'chmodSync').mockImplementation((target, mode) => {
      record('chmod', target);
      originalChmod.call(fs, target, mode);
    });
    const umask = process.umask();
    let s: AdminServer | undefined;
    try {
      s = await AdminServer.start({ socketPath: p, gid: 3002, api: service, accounts });
    } finally {
      chown.mockRestore();
      chmod.mockRestore();
    }
    try {
      // When the group is handed over the socket is still 0600; after, 0660.
      expect(seen).toEqual([
        { op: 'chown', mode: 0o600, gid: 0 },
        { op: 'chmod', mode: 0o600, gid: 3002 },
      ]);
      const st = fs.lstatSync(p);
      expect(st.mode & 0o7777).toBe(0o660);
      expect(st.gid).toBe(3002);
      expect(process.umask()).toBe(umask);
    } finally {
      await s?.close();
    }
  });

  it('accepts an existing 0700 directory and gives it the admin group', async () => {
    const d = path.join(dir, 'tight');
    fs.mkdirSync(d, { mode: 0o700 });
    const s = await AdminServer.start({ socketPath: path.join(d, 'aclfs.sock'), gid: 3002, api: service, accounts });
    try {
      expect(fs.statSync(d).mode & 0o7777).toBe(0o700);
      expect(fs.statSync(d).gid).toBe(3002);
      expect(fs.lstatSync(path.join(d, 'aclfs.sock')).mode & 0o7777).toBe(0o660);
    } finally {
      await s.close();
    }
  });
});

describeAsRoot('admin endpoints', () => {
  it('GET /v1/status describes the database and the process', async () => {
    const res = await req('GET', '/v1/status');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.json).sort()).toEqual(
      [
        'cache',
        'dataPath',
        'db',
        'decisions',
        'defaultPolicy',
        'fastPath',
        'mode',
        'generation',
        'mounted',
        'mountpoint',
        'options',
        'pid',
        'rules',
        'socket',
        'source',
        'startedAt',
        'uptimeSeconds',
        'version',
        'workerLocals',
      ].sort(),
    );
    expect(res.json).toMatchObject({ version: '9.9.9', pid: process.pid, db: path.join(dir, 'db'), defaultPolicy: 'deny' });
    // No daemon's mode switch behind this service, and no mount.
    expect(res.json.mode).toBeNull();
    expect(res.json.dataPath).toBeNull();
    expect(res.json.generation).toBe(store.generation());
    expect(res.json.rules).toBe(store.count());
  });

  it('POST /v1/rules creates (201, Location), resolves names, and is 409 for a path that has a rule', async () => {
    const res = await req('POST', '/v1/rules', {
      path: '/docs//new.txt',
      owner: 'alice',
      defaccess: 5,
      acl: [{ user: 'bob', access: 'rw-' }, { group: 'staff', access: 4 }],
    });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v1/rules/${res.json.id}`);
    expect(res.json).toEqual({
      id: res.json.id,
      path: '/docs/new.txt',
      dev: null,
      ino: null,
      birth: null,
      owner: 2001,
      defaccess: 'r-x',
      acl: [
        { user: 2002, access: 'rw-' },
        { group: 3001, access: 'r--' },
      ],
      recursive: false,
      revocable: false,
      auditOnly: false,
    });
    const again = await req('POST', '/v1/rules', rule('/docs/new.txt'));
    expectError(again, 409, 'conflict', /already governs \/docs\/new.txt/);
    await expectServing();
  });

  it('rejects an invalid rule body with 400 naming the field, and stores nothing', async () => {
    const before = store.generation();
    const cases: [unknown, RegExp][] = [
      [rule('/x', { defaccess: 'rwz' }), /defaccess: "rwz" is not an access/],
      [rule('/x', { acl: [{ user: 1, group: 2, access: 'r--' }] }), /acl\[0\]: needs exactly one of "user" or "group"/],
      [rule('/x', { owner: 'nosuchuser' }), /owner: unknown user "nosuchuser"/],
      [rule('/x', { recursve: true }), /unknown field "recursve"/],
      [{ owner: 0, defaccess: 'r--' }, /path: is required/],
      [[rule('/x')], /must be one rule/],
      ['just a string', /must be one rule/],
    ];
    for (const [body, message] of cases) {
      expectError(await req('POST', '/v1/rules', body), 400, 'invalid', message);
    }
    expect(store.generation()).toBe(before);
    await expectServing();
  });

  it('revocable: create, get, list, replace by id and by path carry it (false when not given); anything but a boolean is 400', async () => {
    const made = await req('POST', '/v1/rules', rule('/rev', { recursive: true, revocable: true }));
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ path: '/rev', recursive: true, revocable: true });
    expect(store.findByPath('/rev')?.revocable).toBe(true);
    expect((await req('GET', `/v1/rules/${made.json.id}`)).json).toEqual(made.json);
    expect((await req('GET', '/v1/rules/by-path?path=/rev')).json).toEqual(made.json);
    const plain = await req('POST', '/v1/rules', rule('/rev/plain', { revocable: false }));
    expect(plain.json.revocable).toBe(false);
    const listed = await req('GET', '/v1/rules?prefix=/rev');
    expect(listed.json.rules.map((r: { path: string; revocable: boolean }) => [r.path, r.revocable])).toEqual([
      ['/rev', true],
      ['/rev/plain', false],
    ]);
    // A replacement is the whole rule: without revocable it is not revocable.
    const replaced = await req('PUT', `/v1/rules/${made.json.id}`, rule('/rev', { recursive: true }));
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ id: made.json.id, revocable: false });
    expect(store.findByPath('/rev')?.revocable).toBeUndefined();
    const byPath = await req('PUT', '/v1/rules/by-path?path=/rev/plain', rule('/rev/plain', { revocable: true }));
    expect(byPath.status).toBe(200);
    expect(byPath.json).toMatchObject({ id: plain.json.id, revocable: true });

    const before = store.generation();
    for (const revocable of ['true', 1, 0, null, {}, []]) {
      const body = rule('/rev/bad', { revocable });
      expectError(await req('POST', '/v1/rules', body), 400, 'invalid', /^rule \/rev\/bad: revocable: must be true or false$/);
      expectError(await req('PUT', `/v1/rules/${made.json.id}`, rule('/rev', { revocable })), 400, 'invalid', /revocable: must be true or false/);
      expectError(await req('PUT', '/v1/rules/by-path?path=/rev/plain', rule('/rev/plain', { revocable })), 400, 'invalid', /revocable: must be true or false/);
    }
    expectError(
      await req('POST', '/v1/rules/import', { version: 1, rules: [rule('/rev/ok'), rule('/rev/bad', { revocable: 'yes' })] }),
      400,
      'invalid',
      /^rule 1 \(\/rev\/bad\): revocable: must be true or false$/,
    );
    expect(store.generation()).toBe(before);
    expect(store.findByPath('/rev/bad')).toBeUndefined();
    // Export writes it for the revocable rule only; an import of that file restores it.
    const exported = (await req('GET', '/v1/rules/export')).json.rules as { path: string }[];
    expect(exported.find((r) => r.path === '/rev')).toEqual({ path: '/rev', recursive: true, owner: 0, defaccess: 'r--', acl: [] });
    expect(exported.find((r) => r.path === '/rev/plain')).toEqual({ path: '/rev/plain', recursive: false, revocable: true, owner: 0, defaccess: 'r--', acl: [] });
    for (const id of [made.json.id, plain.json.id]) expect((await req('DELETE', `/v1/rules/${id}`)).status).toBe(200);
    await expectServing();
  });

  it('auditOnly: create, get, list and replace carry it (false when not given); anything but a boolean is 400', async () => {
    const made = await req('POST', '/v1/rules', rule('/aud', { recursive: true, auditOnly: true }));
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ path: '/aud', recursive: true, revocable: false, auditOnly: true });
    expect(store.findByPath('/aud')?.auditOnly).toBe(true);
    expect((await req('GET', `/v1/rules/${made.json.id}`)).json).toEqual(made.json);
    const plain = await req('POST', '/v1/rules', rule('/aud/plain'));
    expect(plain.json.auditOnly).toBe(false);
    const listed = await req('GET', '/v1/rules?prefix=/aud');
    expect(listed.json.rules.map((r: { path: string; auditOnly: boolean }) => [r.path, r.auditOnly])).toEqual([
      ['/aud', true],
      ['/aud/plain', false],
    ]);
    // A replacement is the whole rule: without auditOnly it is enforced.
    const replaced = await req('PUT', `/v1/rules/${made.json.id}`, rule('/aud', { recursive: true }));
    expect(replaced.json).toMatchObject({ id: made.json.id, auditOnly: false });
    expect(store.findByPath('/aud')?.auditOnly).toBeUndefined();
    const byPath = await req('PUT', '/v1/rules/by-path?path=/aud/plain', rule('/aud/plain', { auditOnly: true }));
    expect(byPath.json).toMatchObject({ id: plain.json.id, auditOnly: true });
    const before = store.generation();
    for (const auditOnly of ['true', 1, null, {}]) {
      expectError(await req('POST', '/v1/rules', rule('/aud/bad', { auditOnly })), 400, 'invalid', /^rule \/aud\/bad: auditOnly: must be true or false$/);
    }
    expect(store.generation()).toBe(before);
    const exported = (await req('GET', '/v1/rules/export')).json.rules as { path: string }[];
    expect(exported.find((r) => r.path === '/aud')).toEqual({ path: '/aud', recursive: true, owner: 0, defaccess: 'r--', acl: [] });
    expect(exported.find((r) => r.path === '/aud/plain')).toEqual({ path: '/aud/plain', recursive: false, auditOnly: true, owner: 0, defaccess: 'r--', acl: [] });
    for (const id of [made.json.id, plain.json.id]) expect((await req('DELETE', `/v1/rules/${id}`)).status).toBe(200);
    await expectServing();
  });

  it('GET /v1/rules/{id}: 200, 404 for a missing id, 400 for a malformed one', async () => {
    const created = (await req('POST', '/v1/rules', rule('/get-me'))).json;
    const res = await req('GET', `/v1/rules/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual(created);
    expectError(await req('GET', '/v1/rules/999999'), 404, 'not_found', /no rule with id 999999/);
    for (const bad of ['abc', '0', '-1', '4294967296', '1e3', '01']) {
      expectError(await req('GET', `/v1/rules/${bad}`), 400, 'invalid', /not a rule id/);
    }
    await expectServing();
  });

  it('PUT /v1/rules/{id} replaces (200) or creates with that id (201); never reuses a deleted id', async () => {
    const created = (await req('POST', '/v1/rules', rule('/put-me'))).json;
    const replaced = await req('PUT', `/v1/rules/${created.id}`, rule('/put-me', { defaccess: '---', recursive: true }));
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ id: created.id, path: '/put-me', defaccess: '---', recursive: true });
    // Moving a rule onto another rule's path is a conflict.
    expectError(await req('PUT', `/v1/rules/${created.id}`, rule('/get-me')), 409, 'conflict');
    // A fresh, higher id is created with exactly that id; ids handed out later are above it.
    const high = 500_000;
    const made = await req('PUT', `/v1/rules/${high}`, rule('/put-high'));
    expect(made.status).toBe(201);
    expect(made.headers.location).toBe(`/v1/rules/${high}`);
    expect(made.json.id).toBe(high);
    const next = (await req('POST', '/v1/rules', rule('/after-high'))).json;
    expect(next.id).toBe(high + 1);
    // A deleted id stays dead.
    expect((await req('DELETE', `/v1/rules/${next.id}`)).status).toBe(200);
    expectError(await req('PUT', `/v1/rules/${next.id}`, rule('/after-high')), 409, 'conflict', /never reused/);
    await expectServing();
  });

  it('DELETE /v1/rules/{id} returns the rule removed; a second delete is 404', async () => {
    const created = (await req('POST', '/v1/rules', rule('/delete-me'))).json;
    const res = await req('DELETE', `/v1/rules/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual(created);
    expectError(await req('DELETE', `/v1/rules/${created.id}`), 404, 'not_found');
    expectError(await req('GET', '/v1/rules/by-path?path=/delete-me'), 404, 'not_found');
  });

  it('by-path: GET finds, PUT upserts (201 then 200), DELETE removes; the body must name the same path', async () => {
    expectError(await req('GET', '/v1/rules/by-path?path=/bp'), 404, 'not_found', /no rule for \/bp/);
    const made = await req('PUT', '/v1/rules/by-path?path=/bp', rule('/bp'));
    expect(made.status).toBe(201);
    const replaced = await req('PUT', '/v1/rules/by-path?path=//bp/', rule('/bp', { defaccess: 'rw-' }));
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ id: made.json.id, defaccess: 'rw-' });
    const found = await req('GET', `/v1/rules/by-path?path=${encodeURIComponent('/bp')}`);
    expect(found.json).toEqual(replaced.json);
    expectError(await req('PUT', '/v1/rules/by-path?path=/other', rule('/bp')), 400, 'invalid', /does not match/);
    expectError(await req('GET', '/v1/rules/by-path'), 400, 'invalid', /path/);
    const removed = await req('DELETE', '/v1/rules/by-path?path=/bp');
    expect(removed.json.id).toBe(made.json.id);
    expectError(await req('DELETE', '/v1/rules/by-path?path=/bp'), 404, 'not_found');
    await expectServing();
  });

  it('by-inode finds the rule bound to a dev:ino', async () => {
    const created = (await req('POST', '/v1/rules', rule('/docs/a.txt', { defaccess: '---' }))).json;
    const st = fs.lstatSync(path.join(src, 'docs', 'a.txt'));
    store.bind(created.id, st.dev, st.ino);
    const res = await req('GET', `/v1/rules/by-inode?dev=${st.dev}&ino=${st.ino}`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: created.id, dev: st.dev, ino: st.ino });
    expectError(await req('GET', `/v1/rules/by-inode?dev=${st.dev}&ino=1`), 404, 'not_found', /no rule bound to/);
    expectError(await req('GET', '/v1/rules/by-inode?dev=-1&ino=2'), 400, 'invalid', /dev/);
    expectError(await req('GET', '/v1/rules/by-inode?dev=1'), 400, 'invalid', /ino/);
    await expectServing();
  });

  it('GET /v1/rules lists by prefix in pages that follow nextCursor, limit 1-10000', async () => {
    for (let i = 0; i < 25; i++) expect((await req('POST', '/v1/rules', rule(`/list/f${String(i).padStart(2, '0')}`))).status).toBe(201);
    await req('POST', '/v1/rules', rule('/listx'));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/rules?prefix=/list&limit=10${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const res = await req('GET', q);
      expect(res.status).toBe(200);
      expect(Object.keys(res.json).sort()).toEqual(['nextCursor', 'rules']);
      seen.push(...res.json.rules.map((r: { path: string }) => r.path));
      cursor = res.json.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `/list/f${String(i).padStart(2, '0')}`));
    const all = await req('GET', '/v1/rules?limit=10000');
    expect(all.json.rules.length).toBe(store.count());
    expect(all.json.nextCursor).toBeNull();
    expectError(await req('GET', '/v1/rules?limit=10001'), 400, 'invalid', /1-10000/);
    expectError(await req('GET', '/v1/rules?limit=0'), 400, 'invalid', /1-10000/);
    expectError(await req('GET', '/v1/rules?limit=ten'), 400, 'invalid');
    expectError(await req('GET', '/v1/rules?prefx=/list'), 400, 'invalid', /unknown parameter "prefx"/);
    expectError(await req('GET', '/v1/rules?prefix=/a&prefix=/b'), 400, 'invalid', /given twice/);
    expectError(await req('GET', '/v1/rules?prefix=/list&cursor=/elsewhere'), 400, 'invalid', /cursor/);
    await expectServing();
  });

  it('POST /v1/rules/import is atomic: one bad rule changes nothing and the error names the rule and field', async () => {
    const before = { generation: store.generation(), exported: await service.exportRules() };
    const bad = {
      version: 1,
      rules: [rule('/imp/ok1'), rule('/imp/ok2'), rule('/imp/bad', { acl: [{ user: 'alice', access: 'rwz' }] })],
    };
    expectError(await req('POST', '/v1/rules/import', bad), 400, 'invalid', /rule 2 \(\/imp\/bad\): acl\[0\]\.access/);
    expect(store.generation()).toBe(before.generation);
    expect(await service.exportRules()).toBe(before.exported);
    const good = await req('POST', '/v1/rules/import', { version: 1, rules: [rule('/imp/ok1'), rule('/get-me', { defaccess: 'rwx' })] });
    expect(good.status).toBe(200);
    expect(good.json).toEqual({ created: 1, updated: 1, rules: store.count(), generation: store.generation() });
    expect(store.findByPath('/get-me')?.defaccess).toBe(7);
    await expectServing();
  });

  it('accepts an import body far over the 1 MiB limit of other endpoints (chunked or not)', async () => {
    const rules = Array.from({ length: 25_000 }, (_, i) => rule(`/big/${String(i).padStart(6, '0')}`, { acl: [{ user: 1000 + (i % 7), access: 'r--' }] }));
    const body = JSON.stringify({ version: 1, rules });
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
    const res = await req('POST', '/v1/rules/import', body, { raw: true, chunked: true });
    expect(res.status).toBe(200);
    expect(res.json.created).toBe(25_000);
    const replaced = await req('POST', '/v1/rules/import?replace=true', body, { raw: true });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ created: 25_000, updated: 0, rules: 25_000 });
    expectError(await req('POST', '/v1/rules/import?replace=maybe', body, { raw: true }), 400, 'invalid', /replace/);
    await expectServing();
  });

  it('GET /v1/rules/export gives the rule file, which imports back to the same rules', async () => {
    const res = await req('GET', '/v1/rules/export');
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(1);
    expect(res.json.rules.length).toBe(store.count());
    expect(res.json.rules[0]).toEqual({ path: '/big/000000', recursive: false, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'r--' }] });
    const generation = store.generation();
    const again = await req('POST', '/v1/rules/import?replace=true', res.text, { raw: true });
    expect(again.json.rules).toBe(res.json.rules.length);
    expect(store.generation()).toBe(generation + 1);
    expect((await req('GET', '/v1/rules/export')).text).toBe(res.text);
  });

  it('POST /v1/check decides for a caller with the full reason, counting a rule bound to the inode', async () => {
    await req('POST', '/v1/rules/import?replace=true', {
      version: 1,
      rules: [
        rule('/docs', { recursive: true, defaccess: 'r--', acl: [{ user: 'bob', access: '---' }, { group: 'team', access: 'rw-' }] }),
        rule('/docs/a.txt', { defaccess: '---', acl: [{ user: 'alice', access: 'r--' }] }),
      ],
    });
    // Bind /docs/a.txt to its inode, then reach the same file by a hard link.
    const st = fs.lstatSync(path.join(src, 'docs', 'a.txt'));
    store.bind(store.findByPath('/docs/a.txt')!.id, st.dev, st.ino);
    fs.linkSync(path.join(src, 'docs', 'a.txt'), path.join(src, 'docs', 'link.txt'));

    const alice = await req('POST', '/v1/check', { uid: 'alice', path: '/docs/link.txt', access: 'r' });
    expect(alice.status).toBe(200);
    expect(alice.json).toEqual({
      allow: true,
      decision: 'allow',
      reason: `allow: rule ${store.findByPath('/docs/a.txt')!.id} (/docs/a.txt, by inode): user 2001 r-- grants r`,
      caller: { uid: 2001, gid: 2001, groups: [3001] },
      path: '/docs/link.txt',
      file: { dev: st.dev, ino: st.ino },
      requested: 'r--',
      granted: 'r--',
      rule: { id: store.findByPath('/docs/a.txt')!.id, path: '/docs/a.txt' },
      match: 'inode',
      source: { kind: 'user', uid: 2001 },
      defaultPolicy: 'deny',
      generation: store.generation(),
      auditOnly: false,
    });
    const write = await req('POST', '/v1/check', { uid: 2001, gid: 2001, groups: [], path: '/docs/a.txt', access: 'rw' });
    expect(write.json).toMatchObject({ allow: false, decision: 'deny', requested: 'rw-', granted: 'r--', match: 'inode' });
    expect(write.json.reason).toMatch(/^deny: .* lacks w$/);
    // bob's groups come from /etc/group (staff, team): the user entry wins over groups.
    const bob = await req('POST', '/v1/check', { uid: 'bob', path: '/docs/new-file', access: 'r' });
    expect(bob.json).toMatchObject({ allow: false, match: 'ancestor', caller: { uid: 2002, gid: 2002, groups: [3001, 3002] }, file: null });
    // A uid with no entry of its own and an explicit group: the group entry grants.
    const grp = await req('POST', '/v1/check', { uid: 4242, gid: 'team', path: '/docs/x', access: 'rw' });
    expect(grp.json).toMatchObject({ allow: true, source: { kind: 'groups', gids: [3002] } });
    const none = await req('POST', '/v1/check', { uid: 0, gid: 0, path: '/elsewhere', access: 'r' });
    expect(none.json).toMatchObject({ allow: false, match: 'default', rule: null, source: { kind: 'default-policy', policy: 'deny' } });
    expect(none.json.reason).toBe('deny: no rule: default policy deny --- lacks r');
  });

  it('POST /v1/check with explain: true returns every step, the deciding one last; without it, none', async () => {
    await req('POST', '/v1/rules/import?replace=true', {
      version: 1,
      rules: [rule('/docs', { recursive: true, defaccess: 'r--' }), rule('/docs/planned.txt', { defaccess: '---', auditOnly: true })],
    });
    const docs = store.findByPath('/docs')!.id;
    const planned = store.findByPath('/docs/planned.txt')!.id;
    const st = fs.lstatSync(path.join(src, 'docs', 'a.txt'));
    const ancestor = await req('POST', '/v1/check', { uid: 2001, gid: 2001, groups: [], path: '/docs/a.txt', access: 'r', explain: true });
    expect(ancestor.status).toBe(200);
    expect(ancestor.json).toMatchObject({ allow: true, match: 'ancestor', auditOnly: false });
    expect(ancestor.json.steps).toEqual([
      { kind: 'inode', dev: st.dev, ino: st.ino, file: true, result: 'miss', rule: null, text: `inode index: dev ${st.dev} ino ${st.ino}: miss, no rule is bound to this file` },
      { kind: 'path', path: '/docs/a.txt', rule: null, text: 'path /docs/a.txt: no rule' },
      { kind: 'ancestor', path: '/docs', rule: { id: docs, path: '/docs', recursive: true, auditOnly: false }, text: `ancestor /docs: rule ${docs} (/docs, recursive): governs` },
      {
        kind: 'grant',
        rule: { id: docs, path: '/docs', recursive: true, auditOnly: false },
        source: { kind: 'defaccess' },
        granted: 'r--',
        text: `rule ${docs} (/docs, recursive) grants r-- through its default access (no entry names the caller)`,
      },
    ]);
    // A file that does not exist yet: nothing to look up by inode; the path rule decides.
    const missing = await req('POST', '/v1/check', { uid: 2001, gid: 2001, groups: [], path: '/docs/planned.txt', access: 'r', explain: true });
    expect(missing.json).toMatchObject({ allow: false, file: null, match: 'path', auditOnly: true });
    expect(missing.json.steps.map((s: { text: string }) => s.text)).toEqual([
      'inode index: no file known at this path (none yet, or no mount to look in): nothing to look up by inode',
      `path /docs/planned.txt: rule ${planned} (/docs/planned.txt, audit-only): governs`,
      `rule ${planned} (/docs/planned.txt, audit-only) grants --- through its default access (no entry names the caller)`,
    ]);
    expect((await req('POST', '/v1/check', { uid: 2001, gid: 2001, groups: [], path: '/docs/a.txt', access: 'r' })).json.steps).toBeUndefined();
    expect((await req('POST', '/v1/check', { uid: 2001, gid: 2001, groups: [], path: '/docs/a.txt', access: 'r', explain: false })).json.steps).toBeUndefined();
    expectError(await req('POST', '/v1/check', { uid: 0, gid: 0, path: '/docs', access: 'r', explain: 'yes' }), 400, 'invalid', /explain: must be true or false/);
  });

  it('rejects a bad check with 400', async () => {
    const cases: [unknown, RegExp][] = [
      [{ uid: 4242, path: '/docs', access: 'r' }, /no entry in \/etc\/passwd.*give a gid/],
      [{ uid: 'nobody-here', gid: 0, path: '/docs', access: 'r' }, /unknown user "nobody-here"/],
      [{ uid: 0, gid: 'nogroup-here', path: '/docs', access: 'r' }, /unknown group/],
      [{ uid: 0, gid: 0, path: '/docs', access: 'q' }, /not a requested access/],
      [{ uid: 0, gid: 0, path: '/docs', access: 0 }, /access 0/],
      [{ uid: -1, gid: 0, path: '/docs', access: 'r' }, /uid/],
      [{ uid: 0, gid: 0, path: '/docs', access: 'r', pid: 5 }, /unknown field "pid"/],
      [{ uid: 0, gid: 0, access: 'r' }, /path/],
    ];
    for (const [body, message] of cases) expectError(await req('POST', '/v1/check', body), 400, 'invalid', message);
    await expectServing();
  });
});

describeAsRoot('bad requests never hurt the server', () => {
  let generation: number;
  let exported: string;

  beforeAll(async () => {
    generation = store.generation();
    exported = await service.exportRules();
  });

  afterEach(async () => {
    await expectServing();
  });

  afterAll(async () => {
    // Nothing a bad request carried changed a rule.
    expect(store.generation()).toBe(generation);
    expect(await service.exportRules()).toBe(exported);
  });

  it('413 for a body over 1 MiB, declared or chunked, on every endpoint but import', async () => {
    const big = JSON.stringify(rule('/huge', { acl: [], pad: 'x'.repeat(1024 * 1024) }));
    expectError(await req('POST', '/v1/rules', big, { raw: true }), 413, 'too_large', /1 MiB/);
    expectError(await req('POST', '/v1/rules', big, { raw: true, chunked: true }), 413, 'too_large');
    expectError(await req('PUT', '/v1/rules/1', big, { raw: true }), 413, 'too_large');
    expectError(await req('PUT', '/v1/rules/by-path?path=/huge', big, { raw: true, chunked: true }), 413, 'too_large');
    expectError(await req('POST', '/v1/check', big, { raw: true }), 413, 'too_large');
    // Just under the limit is read (and then judged on its content).
    const under = JSON.stringify(rule('/huge', { pad: 'x'.repeat(1024 * 1024 - 200) }));
    expect(under.length).toBeLessThanOrEqual(1024 * 1024);
    expectError(await req('POST', '/v1/rules', under, { raw: true }), 400, 'invalid', /unknown field "pad"/);
  });

  it('the import endpoint has its own limit, also answered with 413', async () => {
    const p = path.join(dir, 'run', 'small-import.sock');
    const small = await AdminServer.start({ socketPath: p, gid: 0, api: service, accounts, importLimitBytes: 3 * 1024 * 1024 });
    try {
      const body = JSON.stringify({ version: 1, rules: [rule('/x', { pad: 'y'.repeat(4 * 1024 * 1024) })] });
      expectError(await httpUnix(p, 'POST', '/v1/rules/import', { body }), 413, 'too_large', /3 MiB/);
      expectError(await httpUnix(p, 'POST', '/v1/rules/import', { body, chunked: true }), 413, 'too_large');
      expect((await httpUnix(p, 'GET', '/v1/status')).status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('400 for malformed JSON and empty bodies', async () => {
    expectError(await req('POST', '/v1/rules', '{"path": "/x", ', { raw: true }), 400, 'invalid', /not valid JSON/);
    expectError(await req('POST', '/v1/rules', '', { raw: true }), 400, 'invalid', /empty/);
    expectError(await req('POST', '/v1/check', '\u0000\u00ff', { raw: true }), 400, 'invalid', /not valid JSON/);
    expectError(await req('POST', '/v1/rules/import', 'nope', { raw: true }), 400, 'invalid', /not valid JSON/);
    expectError(await req('POST', '/v1/rules/import', '{"version": 2, "rules": []}', { raw: true }), 400, 'invalid', /version/);
  });

  it('404 for an unknown route, 405 (with Allow) for a known route with the wrong method', async () => {
    expectError(await req('GET', '/v1/nope'), 404, 'not_found', /no such endpoint/);
    expectError(await req('GET', '/'), 404, 'not_found');
    expectError(await req('GET', '/v2/status'), 404, 'not_found');
    expectError(await req('GET', '/v1/rules/1/extra'), 404, 'not_found');
    const wrong = await req('DELETE', '/v1/status');
    expectError(wrong, 405, 'method_not_allowed');
    expect(wrong.headers.allow).toBe('GET');
    expect((await req('GET', '/v1/check')).headers.allow).toBe('POST');
    expectError(await req('POST', '/v1/rules/1', rule('/x')), 405, 'method_not_allowed');
    expectError(await req('PATCH', '/v1/rules', rule('/x')), 405, 'method_not_allowed');
  });

  it('400 for paths that escape the root or are not absolute, wherever a path is taken', async () => {
    expectError(await req('GET', '/v1/rules/by-path?path=/../etc/passwd'), 400, 'invalid', /escapes the root/);
    expectError(await req('GET', `/v1/rules/by-path?path=${encodeURIComponent('/docs/../../x')}`), 400, 'invalid', /escapes the root/);
    expectError(await req('GET', '/v1/rules/by-path?path=docs/a.txt'), 400, 'invalid', /not absolute/);
    expectError(await req('GET', '/v1/rules/by-path?path=/a%00b'), 400, 'invalid', /NUL/);
    expectError(await req('DELETE', '/v1/rules/by-path?path=/..'), 400, 'invalid', /escapes the root/);
    expectError(await req('POST', '/v1/rules', rule('/docs/../../etc')), 400, 'invalid', /escapes the root/);
    expectError(await req('POST', '/v1/rules', rule('etc/passwd')), 400, 'invalid', /not absolute/);
    expectError(await req('PUT', '/v1/rules/by-path?path=/../x', rule('/x')), 400, 'invalid', /escapes the root/);
    expectError(await req('GET', '/v1/rules?prefix=../'), 400, 'invalid', /prefix .* not absolute/);
    expectError(await req('GET', '/v1/rules?prefix=/a/../..'), 400, 'invalid', /escapes the root/);
    expectError(await req('POST', '/v1/check', { uid: 0, gid: 0, path: '/../../etc/shadow', access: 'r' }), 400, 'invalid', /escapes/);
    expectError(await req('POST', '/v1/check', { uid: 0, gid: 0, path: 'relative', access: 'r' }), 400, 'invalid', /not absolute/);
    expectError(
      await req('POST', '/v1/rules/import', { version: 1, rules: [rule('/ok'), rule('/../../x')] }),
      400,
      'invalid',
      /rule 1 \(\/\.\.\/\.\.\/x\): path: .*escapes/,
    );
    // Dot segments in the request target itself are resolved before routing.
    expect((await req('GET', '/v1/rules/../status')).status).toBe(200);
  });

  it('400 for malformed HTTP, and a client that hangs up mid-body does no harm', async () => {
    const reply = await rawUnix(sock, 'THIS IS NOT HTTP\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain('"code":"invalid"');
    const bad = await rawUnix(sock, 'GET /v1/status HTTP/1.1\r\nContent-Length: abc\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    // Half a body, then gone.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ path: sock }, () => {
        s.write('POST /v1/rules HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"path": "/cut');
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 100);
      });
      s.on('error', reject);
    });
  });

  it('answers many concurrent bad and good requests', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? req('GET', '/v1/status') : i % 3 === 1 ? req('POST', '/v1/check', '{', { raw: true }) : req('GET', '/v1/rules?limit=5'),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 60 }, (_, i) => (i % 3 === 1 ? 400 : 200)));
  });
});

describeAsRoot('error classes', () => {
  it('maps every class to one HTTP status', () => {
    const map = Object.fromEntries(ERROR_CLASSES.map((c) => [c, httpStatusFor(c)]));
    expect(map).toEqual({
      invalid: 400,
      not_found: 404,
      conflict: 409,
      forbidden: 403,
      unavailable: 503,
      internal: 500,
      too_large: 413,
      method_not_allowed: 405,
    });
  });

  it('carries every class over the socket as {error: {code, message}}, a non-AclfsError as internal, and the client maps them back', async () => {
    let next: unknown;
    const thrower = new Proxy({} as AdminOperations, {
      get: (_target, prop) =>
        prop === 'then'
          ? undefined
          : async () => {
              throw next;
            },
    });
    const p = path.join(dir, 'run', 'errors.sock');
    const s = await AdminServer.start({ socketPath: p, gid: 0, api: thrower, accounts });
    const client = new AdminClient(p);
    try {
      for (const code of ERROR_CLASSES) {
        next = new AclfsError(code, `a ${code} error`);
        const res = await httpUnix(p, 'GET', '/v1/status');
        expectError(res, httpStatusFor(code), code, `a ${code} error`);
        const viaClient = await client.status().catch((e: unknown) => e);
        expect(viaClient).toBeInstanceOf(AclfsError);
        expect((viaClient as AclfsError).code).toBe(code);
        expect((viaClient as AclfsError).message).toBe(`a ${code} error`);
      }
      next = new TypeError('boom');
      expectError(await httpUnix(p, 'GET', '/v1/status'), 500, 'internal', 'boom');
      next = 'a string thrown';
      // A body the server's edge accepts, so the call reaches the operations.
      expectError(await httpUnix(p, 'POST', '/v1/check', { body: '{"uid":0,"path":"/x","access":"r"}' }), 500, 'internal');
    } finally {
      await client.close();
      await s.close();
    }
  });
});

describeAsRoot('AdminClient', () => {
  let client: ClosableAdminApi;
  beforeAll(() => {
    client = new AdminClient(sock);
  });
  afterAll(async () => {
    await client.close();
  });

  it('offers every operation over the socket', async () => {
    const made = await client.createRule({ path: '/client/a', owner: 'alice', defaccess: 'r--', acl: [{ group: 'staff', access: 'rw-' }] });
    expect(made).toMatchObject({ path: '/client/a', owner: 2001, acl: [{ group: 3001, access: 'rw-' }] });
    expect(await client.getRule(made.id)).toEqual(made);
    expect(await client.findByPath('/client/a')).toEqual(made);
    expect(await client.putRule(made.id, { path: '/client/a', owner: 0, defaccess: '---' })).toMatchObject({ created: false, rule: { defaccess: '---' } });
    expect(await client.setRuleByPath('/client/b', { path: '/client/b', owner: 0, defaccess: 'rwx' })).toMatchObject({ created: true });
    expect((await client.listRules({ prefix: '/client' })).rules.map((r) => r.path)).toEqual(['/client/a', '/client/b']);
    const imported = await client.importRules(JSON.stringify({ version: 1, rules: [{ path: '/client/c', owner: 0, defaccess: 'r--' }] }));
    expect(imported.created).toBe(1);
    expect(JSON.parse(await client.exportRules()).rules.some((r: { path: string }) => r.path === '/client/c')).toBe(true);
    const st = fs.lstatSync(path.join(src, 'docs'));
    const docs = store.findByPath('/docs')!;
    store.bind(docs.id, st.dev, st.ino);
    expect((await client.findByInode(st.dev, st.ino)).id).toBe(docs.id);
    expect((await client.check({ uid: 0, gid: 0, path: '/client/b', access: 'rwx' })).allow).toBe(true);
    expect((await client.deleteRuleByPath('/client/b')).path).toBe('/client/b');
    expect((await client.deleteRule(made.id)).id).toBe(made.id);
    expect((await client.status()).rules).toBe(store.count());
    const err = await client.getRule(made.id).catch((e: unknown) => e);
    expect((err as AclfsError).code).toBe('not_found');
  });

  it('reports a missing or dead socket as unavailable', async () => {
    const missing = new AdminClient(path.join(dir, 'run', 'missing.sock'));
    const e1 = await missing.status().catch((e: unknown) => e);
    expect((e1 as AclfsError).code).toBe('unavailable');
    expect((e1 as AclfsError).message).toMatch(/cannot reach the aclfs daemon at .*missing\.sock/);
    await missing.close();
    const dead = path.join(dir, 'run', 'dead.sock');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(dead)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    const deadClient = new AdminClient(dead);
    const e2 = await deadClient.status().catch((e: unknown) => e);
    expect((e2 as AclfsError).code).toBe('unavailable');
    expect((e2 as AclfsError).message).toMatch(/connection refused/);
    await deadClient.close();
  });

  it('reports upload progress for a large import', async () => {
    const rules = Array.from({ length: 12_000 }, (_, i) => ({ path: `/progress/${i}`, owner: 0, defaccess: 'r--' }));
    const seen: { phase: string; done: number; total: number }[] = [];
    const result = await client.importRules(JSON.stringify({ version: 1, rules }), { onProgress: (p) => seen.push(p) });
    expect(result.created).toBe(12_000);
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((p) => p.phase === 'upload')).toBe(true);
    expect(seen[seen.length - 1]!.done).toBe(seen[0]!.total);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.done).toBeGreaterThanOrEqual(seen[i - 1]!.done);
  });
});

describeAsRoot('the edge in front of the operations', () => {
  it('hands the operations ids only: names in rule bodies, rule files and checks resolved, an unknown name a 400 that never reaches them', async () => {
    const calls: [string, unknown[]][] = [];
    const recorder = new Proxy({} as AdminOperations, {
      get: (_target, prop) =>
        prop === 'then'
          ? undefined
          : async (...args: unknown[]) => {
              calls.push([String(prop), args]);
              return prop === 'createRule' ? { id: 1 } : prop === 'putRule' || prop === 'setRuleByPath' ? { rule: { id: 1 }, created: true } : {};
            },
    });
    const p = path.join(dir, 'run', 'edge.sock');
    const s = await AdminServer.start({ socketPath: p, gid: 0, api: recorder, accounts });
    try {
      const body = { path: '/docs', owner: 'alice', defaccess: 'r--', acl: [{ group: 'staff', access: 'r--' }, { user: 'bob', access: 'rw-' }] };
      const rule = { path: '/docs', recursive: false, owner: 2001, defaccess: 4, acl: [{ group: 3001, access: 4 }, { user: 2002, access: 6 }] };
      expect((await httpUnix(p, 'POST', '/v1/rules', { body: JSON.stringify(body) })).status).toBe(201);
      expect((await httpUnix(p, 'PUT', '/v1/rules/7', { body: JSON.stringify(body) })).status).toBe(201);
      expect((await httpUnix(p, 'PUT', '/v1/rules/by-path?path=/docs/', { body: JSON.stringify(body) })).status).toBe(201);
      expect((await httpUnix(p, 'POST', '/v1/check', { body: '{"uid":"bob","path":"/docs","access":"r"}' })).status).toBe(200);
      expect((await httpUnix(p, 'POST', '/v1/rules/import?replace=true', { body: JSON.stringify({ version: 1, rules: [body] }) })).status).toBe(200);
      expect(calls).toEqual([
        ['createRule', [rule]],
        ['putRule', [7, rule]],
        ['setRuleByPath', [rule]],
        ['check', [{ uid: 2002, gid: 2002, groups: [3001, 3002], path: '/docs', requested: 4 }]],
        ['importRules', [{ rules: [rule], replace: true }]],
      ]);
      calls.length = 0;
      expectError(await httpUnix(p, 'POST', '/v1/rules', { body: JSON.stringify({ ...body, owner: 'nosuchuser' }) }), 400, 'invalid', /owner: unknown user "nosuchuser"/);
      expectError(await httpUnix(p, 'POST', '/v1/check', { body: '{"uid":"nobody-here","gid":0,"path":"/docs","access":"r"}' }), 400, 'invalid', /unknown user "nobody-here"/);
      expect(calls).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
