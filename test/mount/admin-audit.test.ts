// The audit log and enforce/permissive endpoints over a real Unix socket:
// an AdminService given an AuditLog and a ModeSwitch as the daemon gives
// them (main.ts), served in this process (no FUSE: records are appended
// here as the filter would). Query paging and validation, the live follow
// (NDJSON) and its end when the server closes, mode get/put/validation,
// status, and the same through AdminClient.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { AdminClient } from '../../src/admin/client';
import { AdminServer } from '../../src/admin/server';
import { AdminService } from '../../src/admin/service';
import { SystemNameResolver } from '../../src/system/names';
import { AclfsError } from '../../src/errors';
import { AuditLog, type AuditEntry } from '../../src/fs/audit';
import { ModeSwitch, type EnforcementMode } from '../../src/fs/mode';
import { RuleStore } from '../../src/store/store';
import { httpUnix } from '../helpers/admin';
import { native } from '../../src/native/binding';
import { describeAsRoot } from '../helpers/facilities';

let dir: string;
let store: RuleStore;
let audit: AuditLog;
let mode: ModeSwitch;
let modeChanges: string[];
let service: AdminService;
const accounts = new SystemNameResolver();
let server: AdminServer;
let sock: string;

const denial = (n: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  op: 'open',
  path: `/docs/f${n}.txt`,
  uid: 2001,
  gid: 2001,
  pid: 5000 + n,
  access: 'r--',
  enforced: true,
  rule: 7,
  reason: 'deny: rule 7 (/docs, ancestor): defaccess --- lacks r',
  ...over,
});

beforeAll(async () => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-audit-')));
  store = RuleStore.open(path.join(dir, 'db'), native);
  audit = new AuditLog();
  modeChanges = [];
  mode = new ModeSwitch((now, previous) => modeChanges.push(`${previous}>${now}`));
  service = new AdminService({ store, identity: null, defaultPolicy: 'deny', version: '9.9.9', audit, mode });
  sock = path.join(dir, 'run', 'aclfs.sock');
  server = await AdminServer.start({ socketPath: sock, gid: 0, api: service, accounts });
});

afterAll(async () => {
  await server?.close();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const req = (method: string, p: string, body?: unknown) =>
  httpUnix(sock, method, p, body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) });

function expectError(res: { status: number; json: any }, status: number, code: string, text?: RegExp): void {
  expect(res.status).toBe(status);
  expect(res.json).toEqual({ error: { code, message: expect.any(String) } });
  if (text !== undefined) expect(res.json.error.message).toMatch(text);
}

/** A raw follow (as curl -N would do it): every line received, and how it ended. */
interface RawFollow {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly lines: string[];
  /** Resolves when the server ends the body. */
  readonly ended: Promise<void>;
  waitForLines(n: number): Promise<void>;
  destroy(): void;
}

function rawFollow(socketPath: string, query: string): Promise<RawFollow> {
  return new Promise((resolve, reject) => {
    const r = http.request({ socketPath, method: 'GET', path: `/v1/audit?${query}`, agent: false }, (res) => {
      const lines: string[] = [];
      let pending = '';
      const waiters: (() => void)[] = [];
      res.setEncoding('utf8');
      res.on('data', (t: string) => {
        pending += t;
        const parts = pending.split('\n');
        pending = parts.pop()!;
        lines.push(...parts);
        waiters.splice(0).forEach((w) => w());
      });
      const ended = new Promise<void>((done) => res.once('end', () => done()));
      resolve({
        status: res.statusCode ?? 0,
        contentType: res.headers['content-type'],
        lines,
        ended,
        waitForLines: async (n) => {
          const deadline = Date.now() + 5000;
          while (lines.length < n) {
            if (Date.now() > deadline) throw new Error(`only ${lines.length} of ${n} lines arrived`);
            await new Promise<void>((w) => {
              waiters.push(w);
              setTimeout(w, 100);
            });
          }
        },
        destroy: () => r.destroy(),
      });
    });
    r.on('error', reject);
    r.end();
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeAsRoot('GET /v1/audit', () => {
  it('is empty at first, with next 0', async () => {
    const res = await req('GET', '/v1/audit');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({ records: [], next: 0 });
  });

  it('gives records oldest first, 100 by default, and pages by passing next back as after', async () => {
    for (let n = 1; n <= 250; n++) audit.append(denial(n, n === 250 ? { enforced: false, rule: null, op: 'read', access: 'rw-' } : {}));
    const first = await req('GET', '/v1/audit');
    expect(first.status).toBe(200);
    expect(first.json.records).toHaveLength(100);
    expect(first.json.records.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(first.json.next).toBe(100);
    expect(first.json.records[0]).toEqual({ seq: 1, time: expect.any(String), ...denial(1) });
    expect(Number.isNaN(Date.parse(first.json.records[0].time))).toBe(false);
    const second = await req('GET', '/v1/audit?after=100&limit=120');
    expect(second.json.records.map((r: { seq: number }) => r.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 101));
    expect(second.json.next).toBe(220);
    const last = await req('GET', `/v1/audit?after=${second.json.next}&limit=10000`);
    expect(last.json.records).toHaveLength(30);
    expect(last.json.records.at(-1)).toMatchObject({ seq: 250, enforced: false, rule: null, op: 'read', access: 'rw-' });
    expect(last.json.next).toBe(250);
    expect((await req('GET', '/v1/audit?after=250')).json).toEqual({ records: [], next: 250 });
    // follow=false is the plain query.
    expect((await req('GET', '/v1/audit?follow=false&after=249')).json.records.map((r: { seq: number }) => r.seq)).toEqual([250]);
  });

  it.each([
    ['limit=0', /limit: must be a decimal integer 1-10000/],
    ['limit=10001', /limit: must be a decimal integer 1-10000/],
    ['limit=ten', /limit/],
    ['after=-1', /after: must be a decimal integer >= 0/],
    ['after=1.5', /after/],
    ['after=', /after/],
    ['follow=maybe', /follow: must be true or false/],
    ['follow=true&limit=5', /limit: does not apply with follow=true/],
    ['after=1&after=2', /"after" is given twice/],
    ['since=3', /unknown parameter "since"/],
  ])('400 for ?%s', async (q, text) => {
    expectError(await req('GET', `/v1/audit?${q}`), 400, 'invalid', text);
  });

  it('405 for other methods', async () => {
    const res = await req('POST', '/v1/audit', {});
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe('GET');
  });
});

describeAsRoot('GET /v1/audit?follow=true', () => {
  it('streams NDJSON: the stored records after `after`, then each new one as it is recorded', async () => {
    const from = audit.newest() - 2;
    const f = await rawFollow(sock, `follow=true&after=${from}`);
    try {
      expect(f.status).toBe(200);
      expect(f.contentType).toBe('application/x-ndjson');
      await f.waitForLines(2);
      expect(f.lines.map((l) => JSON.parse(l).seq)).toEqual([from + 1, from + 2]);
      await until(() => audit.followers() === 1, 'the follow to subscribe');
      const appended = audit.append(denial(900, { path: '/live.txt', uid: 2002 }));
      await f.waitForLines(3);
      expect(JSON.parse(f.lines[2]!)).toEqual(appended);
      audit.append(denial(901));
      await f.waitForLines(4);
      expect(JSON.parse(f.lines[3]!).seq).toBe(appended.seq + 1);
    } finally {
      f.destroy();
    }
    // The client hanging up unsubscribes it.
    await until(() => audit.followers() === 0, 'the follow to unsubscribe');
    expect((await req('GET', '/v1/status')).status).toBe(200);
  });

  it('without after, starts from the oldest record kept', async () => {
    const f = await rawFollow(sock, 'follow=1');
    try {
      await f.waitForLines(audit.newest());
      expect(JSON.parse(f.lines[0]!).seq).toBe(1);
      expect(f.lines).toHaveLength(audit.newest());
    } finally {
      f.destroy();
    }
  });

  it('ends every follow when the server closes, without waiting out the grace period', async () => {
    const p = path.join(dir, 'run', 'closing.sock');
    const s = await AdminServer.start({ socketPath: p, gid: 0, api: service, accounts });
    const raw = await rawFollow(p, `follow=true&after=${audit.newest()}`);
    const client = new AdminClient(p);
    const viaClient: number[] = [];
    const follow = await client.followAudit(audit.newest(), (r) => viaClient.push(r.seq));
    await until(() => audit.followers() === 2, 'both follows to subscribe');
    const rec = audit.append(denial(950));
    await raw.waitForLines(1);
    await until(() => viaClient.length === 1, 'the client to receive the record');
    expect(viaClient).toEqual([rec.seq]);
    const started = Date.now();
    await s.close(10_000);
    expect(Date.now() - started).toBeLessThan(2000);
    await raw.ended;
    const err = await follow.ended.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AclfsError);
    expect((err as AclfsError).code).toBe('unavailable');
    expect((err as AclfsError).message).toMatch(/ended the audit follow/);
    expect(audit.followers()).toBe(0);
    expect(fs.existsSync(p)).toBe(false);
    await client.close();
  });
});

describeAsRoot('/v1/mode', () => {
  beforeEach(() => {
    mode.set('enforce');
    modeChanges.length = 0;
  });

  it('GET gives the mode (enforce at start); PUT switches it, and status shows it', async () => {
    expect((await req('GET', '/v1/mode')).json).toEqual({ mode: 'enforce' });
    expect((await req('GET', '/v1/status')).json.mode).toBe('enforce');
    const put = await req('PUT', '/v1/mode', { mode: 'permissive' });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ mode: 'permissive' });
    expect(mode.get()).toBe('permissive');
    expect(modeChanges).toEqual(['enforce>permissive']);
    expect((await req('GET', '/v1/mode')).json).toEqual({ mode: 'permissive' });
    expect((await req('GET', '/v1/status')).json.mode).toBe('permissive');
    // Setting the mode in force changes nothing (no epoch advance in the daemon).
    expect((await req('PUT', '/v1/mode', { mode: 'permissive' })).json).toEqual({ mode: 'permissive' });
    expect(modeChanges).toEqual(['enforce>permissive']);
    expect((await req('PUT', '/v1/mode', { mode: 'enforce' })).json).toEqual({ mode: 'enforce' });
    expect(modeChanges).toEqual(['enforce>permissive', 'permissive>enforce']);
  });

  it.each([
    [{ mode: 'off' }, /mode mode: must be "enforce" or "permissive"/],
    [{ mode: 'Permissive' }, /must be "enforce" or "permissive"/],
    [{}, /mode mode: must be "enforce" or "permissive"/],
    [{ mode: 'enforce', now: true }, /unknown field "now"/],
    [['permissive'], /must be an object like/],
    ['"permissive"', /must be an object like/],
    ['{"mode": ', /not valid JSON/],
    ['', /empty/],
  ])('PUT %j is 400 and changes nothing', async (body, text) => {
    mode.set('permissive');
    modeChanges.length = 0;
    expectError(await req('PUT', '/v1/mode', body), 400, 'invalid', text);
    expect(mode.get()).toBe('permissive');
    expect(modeChanges).toEqual([]);
  });

  it('400 for a query, 405 for other methods', async () => {
    expectError(await req('GET', '/v1/mode?mode=x'), 400, 'invalid', /unknown parameter "mode"/);
    const res = await req('POST', '/v1/mode', { mode: 'permissive' });
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe('GET, PUT');
  });
});

describeAsRoot('without a daemon behind the service (--db)', () => {
  it('audit and mode are unavailable (503 over a socket), and status has no mode', async () => {
    const bare = new AdminService({ store, identity: null, defaultPolicy: 'deny' });
    for (const op of [() => bare.auditLog(), () => bare.followAudit(0, () => undefined), () => bare.getMode(), () => bare.setMode('permissive')]) {
      const e = await op().catch((err: unknown) => err);
      expect(e).toBeInstanceOf(AclfsError);
      expect((e as AclfsError).code).toBe('unavailable');
    }
    expect((await bare.status()).mode).toBeNull();
    const p = path.join(dir, 'run', 'bare.sock');
    const s = await AdminServer.start({ socketPath: p, gid: 0, api: bare, accounts });
    try {
      expectError(await httpUnix(p, 'GET', '/v1/audit'), 503, 'unavailable', /running aclfs daemon/);
      expectError(await httpUnix(p, 'GET', '/v1/audit?follow=true'), 503, 'unavailable', /running aclfs daemon/);
      expectError(await httpUnix(p, 'PUT', '/v1/mode', { body: '{"mode":"permissive"}' }), 503, 'unavailable', /running aclfs daemon/);
    } finally {
      await s.close();
    }
  });
});

describeAsRoot('AdminClient', () => {
  it('queries the audit log, follows it, and gets and sets the mode', async () => {
    const client = new AdminClient(sock);
    try {
      const newest = audit.newest();
      const page = await client.auditLog({ after: newest - 3, limit: 2 });
      expect(page.records.map((r) => r.seq)).toEqual([newest - 2, newest - 1]);
      expect(page.next).toBe(newest - 1);
      expect((await client.auditLog()).records).toHaveLength(100);
      const e = await client.auditLog({ limit: 0 }).catch((err: unknown) => err);
      expect((e as AclfsError).code).toBe('invalid');

      const got: number[] = [];
      const follow = await client.followAudit(newest - 1, (r) => got.push(r.seq));
      await until(() => got.length === 1 && audit.followers() === 1, 'the stored record and the subscription');
      const rec = audit.append(denial(990));
      await until(() => got.length === 2, 'the new record');
      expect(got).toEqual([newest, rec.seq]);
      follow.stop();
      await expect(follow.ended).resolves.toBeUndefined();
      await until(() => audit.followers() === 0, 'the follow to unsubscribe');
      const bad = await client.followAudit(-1, () => undefined).catch((err: unknown) => err);
      expect((bad as AclfsError).code).toBe('invalid');

      expect(await client.getMode()).toEqual({ mode: 'enforce' });
      expect(await client.setMode('permissive' as EnforcementMode)).toEqual({ mode: 'permissive' });
      expect(mode.get()).toBe('permissive');
      expect(await client.setMode('enforce')).toEqual({ mode: 'enforce' });
      const badMode = await client.setMode('lenient' as EnforcementMode).catch((err: unknown) => err);
      expect((badMode as AclfsError).code).toBe('invalid');
    } finally {
      await client.close();
    }
  });

  it('reports a follow of a missing daemon as unavailable', async () => {
    const missing = new AdminClient(path.join(dir, 'run', 'missing.sock'));
    const e = await missing.followAudit(0, () => undefined).catch((err: unknown) => err);
    expect((e as AclfsError).code).toBe('unavailable');
    expect((e as AclfsError).message).toMatch(/cannot reach the aclfs daemon/);
    await missing.close();
  });
});
