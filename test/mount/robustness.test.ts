// No caller can crash the daemon. Over a real mount: a daemon started with a
// low descriptor limit (prlimit --nofile=512:512) has every descriptor taken,
// by one reader holding opens of an allowed file and by connections held to
// its admin socket (which also take what a bound on open files would leave);
// the daemon stays up, its periodic mount check survives, and once they let
// go the mount and the admin socket answer as before. The daemon raises its soft descriptor
// limit to the hard one. In this process: the guard every FUSE request runs
// in, and the admin server turning away connections it has no descriptor
// for, then listening again.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../../src/admin/server';
import { AdminService } from '../../src/admin/service';
import { SystemNameResolver } from '../../src/system/names';
import { EACCES, EIO, OK } from '../../src/fs/errno';
import { guardOperations, raisedInBinding, type RequestFault } from '../../src/fs/guard';
import { descriptorLimits, raiseDescriptorLimit } from '../../src/main';
import { RuleStore } from '../../src/store/store';
import type { Fuse } from '../../src/native/binding';
import { httpUnix } from '../helpers/admin';
import { native } from '../../src/native/binding';
import { describeAsRoot, describeWithFuse } from '../helpers/facilities';
import {
  ACLFS,
  ALICE,
  BOB,
  aclfs,
  importRules,
  isLiveAclfs,
  isMounted,
  isStale,
  makeWorkspace,
  requireFuse,
  run,
  runAs,
  setprivArgs,
  waitFor,
  type Identity,
  type Workspace,
} from '../helpers/mounts';

const NOBODY: Identity = { uid: 65534, gid: 65534 };
const HOLD_MANY = path.join(__dirname, '..', 'fixtures', 'hold-many.js');
const HOLD_CONNECTIONS = path.join(__dirname, '..', 'fixtures', 'hold-connections.js');

/** "Max open files" of a process: [soft, hard]. */
function limitsOf(pid: number): [string, string] {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const m = line === undefined ? null : /^Max open files\s+(\S+)\s+(\S+)/.exec(line);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error(`no descriptor limit for pid ${pid}`);
  return [m[1], m[2]];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A daemon started under prlimit (which sets the limit and execs bin/aclfs:
 * the child's pid is the daemon's). Stopped by its pid only.
 */
class LimitedDaemon {
  stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly mnt: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('daemon has no pid');
    return this.child.pid;
  }

  static async start(nofile: string, args: readonly string[], mnt: string): Promise<LimitedDaemon> {
    const child = spawn('prlimit', [`--nofile=${nofile}`, ACLFS, 'mount', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const daemon = new LimitedDaemon(child, mnt);
    try {
      await waitFor(async () => daemon.gone() || (await isLiveAclfs(mnt)), 20_000, `mount at ${mnt}`);
    } catch (err) {
      await daemon.ensureStopped();
      throw err;
    }
    if (daemon.gone()) throw new Error(`daemon exited before mounting: ${daemon.stderr}`);
    return daemon;
  }

  gone(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async stop(): Promise<number | null> {
    if (!this.gone()) this.child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000));
    const result = await Promise.race([this.exited, timeout]);
    if (result === 'timeout') throw new Error('daemon did not exit within 15 s of SIGTERM');
    return result;
  }

  /** Never leaves this daemon or a stale mount of it behind. */
  async ensureStopped(): Promise<void> {
    if (!this.gone()) {
      try {
        await this.stop();
      } catch {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    if (isMounted(this.mnt) && (await isStale(this.mnt))) await run('fusermount', ['-uz', this.mnt]);
  }
}

/**
 * A fixture script (hold-many.js, hold-connections.js) run as `who`: it takes
 * what it can, reports it in one JSON line, and holds it until release().
 */
class Holder<Report> {
  private readonly lines: AsyncIterator<string>;
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    if (child.stdout === null) throw new Error('holder has no stdout');
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start<Report>(who: Identity | null, script: string, args: readonly string[]): Promise<{ holder: Holder<Report>; report: Report }> {
    const argv = [process.execPath, script, ...args];
    const [cmd, ...rest] = who === null ? argv : ['setpriv', ...setprivArgs(who), ...argv];
    const child = spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
    const holder = new Holder<Report>(child);
    const { value, done } = await holder.lines.next();
    if (done) throw new Error(`${path.basename(script)} ended without a report`);
    return { holder, report: JSON.parse(String(value)) as Report };
  }

  /** Lets go of everything it holds; resolves once it has exited. */
  async release(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin?.end();
    await this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describeWithFuse('descriptor exhaustion over a real mount', () => {
  let ws: Workspace;
  let daemon: LimitedDaemon | undefined;
  const holders: Holder<unknown>[] = [];

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-robust-');
    writeFileSync(path.join(ws.src, 'open.txt'), 'open to all\n');
    writeFileSync(path.join(ws.src, 'alice.txt'), 'for alice\n');
    for (const f of ['open.txt', 'alice.txt']) chmodSync(path.join(ws.src, f), 0o644);
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/alice.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] },
    ]);
  });

  afterEach(async () => {
    for (const h of holders.splice(0)) h.kill();
    await daemon?.ensureStopped();
    daemon = undefined;
  });

  afterAll(() => ws?.cleanup());

  const m = (p: string): string => path.join(ws.mnt, p);

  it('keeps serving while every descriptor the daemon has is taken', async () => {
    daemon = await LimitedDaemon.start('512:512', [ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], ws.mnt);
    expect(limitsOf(daemon.pid)).toEqual(['512', '512']);

    // A reader as nobody opens all it can: it meets EMFILE (the daemon out of
    // descriptors, or a bound on open files), never a dead mount (ENOTCONN).
    const reader = await Holder.start<{ opened: number; errors: Record<string, number> }>(NOBODY, HOLD_MANY, [m('open.txt'), '2000']);
    holders.push(reader.holder);
    expect(reader.report.opened).toBeGreaterThan(0);
    expect(reader.report.opened).toBeLessThan(512);
    expect(Object.keys(reader.report.errors).length).toBeGreaterThan(0);
    for (const code of Object.keys(reader.report.errors)) expect(['EMFILE', 'ENFILE', 'EACCES', 'EPERM']).toContain(code);
    // Connections to the admin socket take whatever descriptors are left. A
    // client's connect completes in the listen backlog before the daemon
    // accepts it, so the daemon's descriptors fill up a moment later.
    const connections = await Holder.start<{ connected: number }>(null, HOLD_CONNECTIONS, [ws.socket, '600']);
    holders.push(connections.holder);
    const held = (): number => readdirSync(`/proc/${daemon!.pid}/fd`).length;
    await waitFor(() => held() > 500, 10_000, 'the daemon to accept connections until it holds over 500 descriptors');
    expect(held()).toBeGreaterThan(500);

    // Exhausted for a while: the mount check runs (each second) and cannot
    // read the mount table; an admin client cannot get a connection.
    const status = await aclfs(['status', '--socket', ws.socket]);
    expect([0, 6]).toContain(status.code);
    await waitFor(() => daemon!.stderr.includes('cannot read the mount table'), 5000, 'the mount check to meet EMFILE');
    await new Promise((r) => setTimeout(r, 1500));
    expect(alive(daemon.pid)).toBe(true);
    expect(daemon.gone()).toBe(false);
    expect(isMounted(ws.mnt)).toBe(true);

    for (const h of holders.splice(0)) await h.release();

    // Everything answers again, and still decides.
    expect((await run('stat', [ws.mnt])).code).toBe(0);
    const listing = await runAs(BOB, 'ls', [ws.mnt]);
    expect(listing.stdout.split('\n').filter(Boolean).sort()).toEqual(['alice.txt', 'open.txt']);
    expect(await runAs(ALICE, 'cat', [m('alice.txt')])).toMatchObject({ code: 0, stdout: 'for alice\n' });
    expect((await runAs(BOB, 'cat', [m('alice.txt')])).stderr).toContain('Permission denied');
    // The admin socket may be listening again only a moment after it let go.
    let after = await aclfs(['status', '--socket', ws.socket, '--json']);
    const deadline = Date.now() + 5000;
    while (after.code === 6 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await aclfs(['status', '--socket', ws.socket, '--json']);
    }
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as { pid: number; mounted: boolean }).pid).toBe(daemon.pid);
    expect((JSON.parse(after.stdout) as { mounted: boolean }).mounted).toBe(true);
    // No fault got as far as the last resort.
    expect(daemon.stderr).not.toContain('uncaught error');

    expect(await daemon.stop()).toBe(0);
    expect(isMounted(ws.mnt)).toBe(false);
  });

  it('raises its soft descriptor limit to the hard limit, and says so', async () => {
    daemon = await LimitedDaemon.start('256:4096', [ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], ws.mnt);
    expect(limitsOf(daemon.pid)).toEqual(['4096', '4096']);
    const logged = (): string | undefined => daemon?.stderr.split('\n').find((l) => l.includes('"msg":"descriptor limit"'));
    // Logged just after the mount goes live.
    await waitFor(() => logged() !== undefined, 5000, 'the descriptor limit to be logged');
    const line = logged();
    expect(JSON.parse(line!)).toMatchObject({ soft: 4096, hard: 4096 });
    expect(await daemon.stop()).toBe(0);
  });
});

describe('raiseDescriptorLimit', () => {
  it('raises a lowered soft limit to the hard limit with prlimit', async () => {
    const before = descriptorLimits();
    // This process's own limit, lowered and raised again; restored whatever happens.
    const lowered = Math.min(before.hard, 1024) - 1;
    expect((await run('prlimit', ['--pid', String(process.pid), `--nofile=${lowered}:`])).code).toBe(0);
    try {
      expect(descriptorLimits().soft).toBe(lowered);
      expect(await raiseDescriptorLimit()).toEqual({ soft: before.hard, hard: before.hard });
      expect(descriptorLimits()).toEqual({ soft: before.hard, hard: before.hard });
    } finally {
      await run('prlimit', ['--pid', String(process.pid), `--nofile=${before.soft}:`]);
    }
  });
});

describe('the guard around every FUSE request', () => {
  type Cb = (errno: number, a?: unknown, b?: unknown) => void;
  const replies: unknown[][] = [];
  const faults: RequestFault[] = [];
  const reply: Cb = (...args) => void replies.push(args);

  afterEach(() => {
    replies.length = 0;
    faults.length = 0;
  });

  const guard = (ops: Record<string, (...args: never[]) => void>): Record<string, (...args: unknown[]) => void> =>
    guardOperations(ops as unknown as Fuse.Operations, (f) => faults.push(f)) as unknown as Record<string, (...args: unknown[]) => void>;

  it('passes answers through unchanged and keeps the operations the binding implements', () => {
    const ops = guard({ open: (_req: unknown, _path: string, _flags: number, cb: Cb) => cb(OK, 42) });
    expect(Object.keys(ops)).toEqual(['open']);
    ops.open?.({}, '/a', 0, reply);
    expect(replies).toEqual([[OK, 42, undefined]]);
    expect(faults).toEqual([]);
  });

  it('answers a throw with its errno (EIO when it has none), and reports it', () => {
    const emfile = Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE', errno: -24 });
    const ops = guard({
      open: () => {
        throw emfile;
      },
      read: () => {
        throw new TypeError('a bug');
      },
    });
    ops.open?.({}, '/a', 0, reply);
    ops.read?.({}, '/a', 3, Buffer.alloc(1), 1, 0, reply);
    expect(replies).toEqual([
      [-24, undefined, undefined],
      [EIO, undefined, undefined],
    ]);
    expect(faults.map((f) => [f.op, f.kind, f.errno])).toEqual([
      ['open', 'threw', -24],
      ['read', 'threw', EIO],
    ]);
  });

  it('never answers one request twice', () => {
    const ops = guard({
      release: (_req: unknown, _path: string, _fd: number, cb: Cb) => {
        cb(OK);
        cb(EACCES);
      },
      flush: (_req: unknown, _path: string, _fd: number, cb: Cb) => {
        cb(OK);
        throw new Error('after the answer');
      },
    });
    ops.release?.({}, '/a', 3, reply);
    ops.flush?.({}, '/a', 3, reply);
    expect(replies).toEqual([[OK, undefined, undefined], [OK, undefined, undefined]]);
    expect(faults.map((f) => [f.op, f.kind])).toEqual([
      ['release', 'second-reply'],
      ['flush', 'threw-after-reply'],
    ]);
  });

  it('answers EIO for an answer the binding could not send, and still answers once the binding threw taking one', () => {
    let calls = 0;
    const flaky: Cb = (...args) => {
      calls++;
      if (calls === 1) throw new TypeError('could not take it');
      replies.push(args);
    };
    const ops = guard({
      access: (_req: unknown, _path: string, _mode: number, cb: (e: unknown) => void) => cb(undefined),
      statfs: (_req: unknown, _path: string, cb: Cb) => cb(OK, { bsize: 1 }),
    });
    ops.access?.({}, '/a', 4, reply);
    ops.statfs?.({}, '/', flaky);
    expect(replies).toEqual([[EIO], [EIO, undefined, undefined]]);
    expect(faults.map((f) => [f.op, f.kind])).toEqual([
      ['access', 'bad-reply'],
      ['statfs', 'threw'],
    ]);
  });

  it("tells the binding's own errors from every other", () => {
    const inBinding = new Error('boom');
    inBinding.stack = `TypeError: boom\n    at Fuse._op_readdir (${path.join('/x', 'node_modules', 'fuse-native', 'index.js')}:512:20)`;
    expect(raisedInBinding(inBinding)).toBe(true);
    const inSeam = new Error('boom');
    inSeam.stack = `TypeError: boom\n    at Fuse._op_getxattr (${path.join('/x', 'dist', 'native', 'binding.js')}:180:20)`;
    expect(raisedInBinding(inSeam)).toBe(true);
    expect(raisedInBinding(new Error('napi_get_value_int32(env, argv[1], &res) failed!'))).toBe(true);
    expect(raisedInBinding(new Error('EPIPE'))).toBe(false);
    expect(raisedInBinding('a string')).toBe(false);
  });
});

describeAsRoot('the admin server out of descriptors', () => {
  let dir: string;
  let store: RuleStore;
  let server: AdminServer;
  let sock: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'aclfs-robust-admin-'));
    store = RuleStore.open(path.join(dir, 'db'), native);
    sock = path.join(dir, 'run', 'aclfs.sock');
    server = await AdminServer.start({
      socketPath: sock,
      gid: 0,
      accounts: new SystemNameResolver(),
      api: new AdminService({ store, identity: null, defaultPolicy: 'deny', version: '9.9.9' }),
    });
  });

  afterAll(async () => {
    await server?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // The server's own listening socket, as libuv reports a failed accept on it.
  const acceptFails = (code: string): void => {
    const listening = (server as unknown as { server: http.Server }).server;
    listening.emit('error', Object.assign(new Error(`accept ${code}`), { code, errno: code === 'EMFILE' ? -24 : -23, syscall: 'accept' }));
  };

  it('turns clients away for a moment, then listens again', async () => {
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
    acceptFails('EMFILE');
    // Not listening: the socket file went with the listening socket.
    expect(existsSync(sock)).toBe(false);
    await waitFor(() => existsSync(sock), 5000, 'the admin socket to come back');
    await waitFor(
      async () => {
        try {
          return (await httpUnix(sock, 'GET', '/v1/status')).status === 200;
        } catch {
          return false;
        }
      },
      5000,
      'the admin socket to answer',
    );
    // Made again with the same restricted mode.
    expect((await run('stat', ['-c', '%a', sock])).stdout.trim()).toBe('660');
  });

  it('survives any other error of the listening socket', async () => {
    acceptFails('ECONNABORTED');
    expect((await httpUnix(sock, 'GET', '/v1/status')).status).toBe(200);
  });

  it('closes cleanly while it is not listening', async () => {
    acceptFails('ENFILE');
    expect(existsSync(sock)).toBe(false);
    await server.close();
    await new Promise((r) => setTimeout(r, 600));
    // It does not come back after close.
    expect(existsSync(sock)).toBe(false);
  });
});
