// Fleet sync end to end: a real etcd on loopback and three daemons on three
// mountpoints following one prefix. What a pushed change does (enforced by
// all three within a second), what survives (an etcd restart, a daemon
// restart, a daemon started while etcd is down, a compaction past a
// daemon's revision), a value that does not parse (fails closed), and the
// admin API's writes (refused, or with --sync-writable compare-and-swapped
// so that of two concurrent writers one wins and the other gets 409).
import { writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AclfsError } from '../../src/errors';
import type { RuleInput } from '../../src/rules/types';
import type { RuleStore } from '../../src/store/store';
import { FleetWriter, Follower, syncTarget } from '../../src/sync';
import { httpUnix } from '../helpers/admin';
import { EtcdServer } from '../helpers/etcd';
import { describeWithEtcd } from '../helpers/facilities';
import { aclfs, ALICE, BOB, Daemon, makeWorkspace, requireFuse, runAs, waitFor, type Identity, type Workspace } from '../helpers/mounts';

const PREFIX = '/fleet';
const SECRET = '/docs/secret.txt';

interface SyncStatus {
  state: string;
  revision: number | null;
  fullLoads: number;
  invalidPaths: string[];
  writable: boolean;
  secondsSinceContact: number | null;
}

/** A rule file: everything r-x for all, the secret readable by `reader` only. */
function rulesFor(reader: Identity, extra: object[] = []): object {
  return {
    version: 1,
    rules: [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x' },
      { path: SECRET, owner: 0, defaccess: '---', acl: [{ user: reader.uid, access: 'r--' }] },
      ...extra,
    ],
  };
}

describeWithEtcd('fleet sync through etcd', () => {
  let etcd: EtcdServer;
  const hosts: { ws: Workspace; daemon: Daemon | null; writable: boolean }[] = [];
  let rulesFile = '';

  const url = (): string => etcd.url(PREFIX);

  async function push(rules: object): Promise<void> {
    writeFileSync(rulesFile, JSON.stringify(rules));
    const res = await aclfs(['push', rulesFile, '--sync', url()]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  }

  async function startDaemon(i: number): Promise<Daemon> {
    const host = hosts[i]!;
    const args = [host.ws.src, host.ws.mnt, '--db', host.ws.db, '--socket', host.ws.socket, '--sync', url(), ...(host.writable ? ['--sync-writable'] : [])];
    host.daemon = await Daemon.start(args, host.ws.mnt);
    return host.daemon;
  }

  async function syncStatus(i: number): Promise<SyncStatus> {
    const res = await httpUnix(hosts[i]!.ws.socket, 'GET', '/v1/status');
    expect(res.status).toBe(200);
    return res.json.sync as SyncStatus;
  }

  async function canRead(i: number, who: Identity): Promise<boolean> {
    const res = await runAs(who, 'cat', [path.join(hosts[i]!.ws.mnt, SECRET)]);
    if (res.code === 0) return true;
    expect(res.stderr).toMatch(/Permission denied/);
    return false;
  }

  /** Waits until every running host lets `reader` (and not the other) read the secret; returns the ms it took. */
  async function enforcedEverywhere(reader: Identity, other: Identity, timeoutMs: number, which = [0, 1, 2]): Promise<number> {
    const started = Date.now();
    await waitFor(
      async () => {
        for (const i of which) if (!(await canRead(i, reader)) || (await canRead(i, other))) return false;
        return true;
      },
      timeoutMs,
      `uid ${reader.uid} alone reading ${SECRET} on hosts ${which.join(',')}`,
    );
    return Date.now() - started;
  }

  /**
   * A write from host `i`'s view, made as if the rule at `path` had been
   * applied there one revision before the one it really has: what a host
   * that has not yet seen the latest change sends.
   */
  async function stalePutThrough(i: number, rulePath: string, rule: RuleInput): Promise<unknown> {
    expect((await syncStatus(i)).writable).toBe(true);
    const current = await etcd.ctl(['get', `${PREFIX}/rules${rulePath}`, '-w', 'json']);
    const modRevision = Number((JSON.parse(current.stdout) as { kvs: { mod_revision: number }[] }).kvs[0]!.mod_revision);
    const follower = new Follower({
      store: { syncMark: () => null } as unknown as RuleStore,
      target: syncTarget({ url: url() }),
      names: { user: () => undefined, group: () => undefined },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    const staleStore = { syncRevisionOf: () => modRevision - 1 } as unknown as RuleStore;
    try {
      await new FleetWriter(follower, staleStore).write([{ path: rulePath, rule }]);
      return null;
    } catch (err) {
      return err;
    } finally {
      follower.etcd.close();
    }
  }

  async function following(i: number, revision: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      async () => {
        const st = await syncStatus(i);
        return st.state === 'following' && (st.revision ?? 0) >= revision;
      },
      timeoutMs,
      `host ${i} following etcd at revision ${revision}`,
    );
  }

  beforeAll(async () => {
    requireFuse();
    etcd = await EtcdServer.start();
    for (let i = 0; i < 3; i++) {
      const ws = makeWorkspace(`aclfs-fleet${i}-`);
      mkdirSync(path.join(ws.src, 'docs'), { mode: 0o755 });
      writeFileSync(path.join(ws.src, SECRET), 'secret\n');
      chmodSync(path.join(ws.src, SECRET), 0o644);
      // Hosts 0 and 1 send API writes to etcd; host 2 refuses them.
      hosts.push({ ws, daemon: null, writable: i < 2 });
    }
    rulesFile = path.join(hosts[0]!.ws.dir, 'rules.json');
    await push(rulesFor(ALICE));
    const revision = await etcd.revision();
    await Promise.all([0, 1, 2].map((i) => startDaemon(i)));
    for (let i = 0; i < 3; i++) await following(i, revision);
  });

  afterAll(async () => {
    for (const host of hosts) await host.daemon?.ensureStopped();
    await etcd?.stop();
    for (const host of hosts) host.ws.cleanup();
  });


  it('loads the rule set at start, and a pushed change is enforced by all three hosts within one second', async () => {
    await enforcedEverywhere(ALICE, BOB, 1000);
    for (let i = 0; i < 3; i++) expect((await syncStatus(i)).fullLoads).toBe(1);
    await push(rulesFor(BOB));
    const ms = await enforcedEverywhere(BOB, ALICE, 1000);
    expect(ms).toBeLessThan(1000);
    // And back.
    await push(rulesFor(ALICE));
    expect(await enforcedEverywhere(ALICE, BOB, 1000)).toBeLessThan(1000);
  });

  it('push --dry-run prints the difference and writes nothing', async () => {
    const before = await etcd.revision();
    writeFileSync(rulesFile, JSON.stringify(rulesFor(BOB)));
    const res = await aclfs(['push', rulesFile, '--sync', url(), '--dry-run']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`~ ${SECRET} {"path":"${SECRET}","recursive":false,"owner":0,"defaccess":"---","acl":[{"user":${BOB.uid},"access":"r--"}]}`);
    expect(res.stdout).toMatch(/dry run: would push 0 added, 1 changed, 0 removed, 1 unchanged/);
    expect(await etcd.revision()).toBe(before);
    // An invalid rule file pushes nothing.
    writeFileSync(rulesFile, JSON.stringify({ version: 1, rules: [{ path: '/x', owner: 0, defaccess: 'rwz' }] }));
    const bad = await aclfs(['push', rulesFile, '--sync', url()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/rule 0 \(\/x\): defaccess/);
    expect(await etcd.revision()).toBe(before);
  });

  it('a value that does not parse grants nothing at its path (fail closed), and a push repairs it', async () => {
    const put = await etcd.ctl(['put', `${PREFIX}/rules${SECRET}`, '{"path":"/docs/secret.txt","owner":0,"defaccess":"rwz"}']);
    expect(put.code).toBe(0);
    await waitFor(async () => !(await canRead(0, ALICE)) && !(await canRead(1, ALICE)) && !(await canRead(2, ALICE)), 2000, 'the invalid rule denying');
    for (let i = 0; i < 3; i++) expect((await syncStatus(i)).invalidPaths).toEqual([SECRET]);
    expect(await canRead(0, BOB)).toBe(false);
    await push(rulesFor(ALICE));
    await enforcedEverywhere(ALICE, BOB, 2000);
    expect((await syncStatus(0)).invalidPaths).toEqual([]);
  });

  it('refuses rule writes through the API unless --sync-writable; with it, of two concurrent writers one wins and the other gets 409', async () => {
    const body = (uid: number): string => JSON.stringify({ path: '/docs/new', owner: 0, defaccess: 'r--', acl: [{ user: uid, access: 'rw-' }] });
    const refused = await httpUnix(hosts[2]!.ws.socket, 'POST', '/v1/rules', { body: body(1), headers: { 'Content-Type': 'application/json' } });
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toMatch(/follow etcd .* not written here: change them in etcd \(aclfs push\), or start the daemon with --sync-writable/);
    const cli = await aclfs(['rule', 'rm', SECRET, '--socket', hosts[2]!.ws.socket]);
    expect(cli.code).toBe(4);

    // Two admins create the same rule at once, through two hosts.
    const [a, b] = await Promise.all(
      [0, 1].map((i) => httpUnix(hosts[i]!.ws.socket, 'POST', '/v1/rules', { body: body(1000 + i), headers: { 'Content-Type': 'application/json' } })),
    );
    expect([a!.status, b!.status].sort()).toEqual([201, 409]);
    const winner = a!.status === 201 ? 1000 : 1001;
    const loser = a!.status === 201 ? b! : a!;
    expect(loser.json.error.code).toBe('conflict');
    // The winner's rule reaches every host through the watch.
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await httpUnix(hosts[i]!.ws.socket, 'GET', '/v1/rules/by-path?path=/docs/new')).json?.acl?.[0]?.user === winner, 2000, `host ${i} has the winner's rule`);
    }

    // A replace compares the key with the mod revision this host applied:
    // one written meanwhile by another admin (here straight into etcd, as
    // a host that has not applied it yet would see it) is not overwritten.
    const seen = await etcd.revision();
    await following(0, seen);
    const stalePut = await stalePutThrough(0, '/docs/new', { path: '/docs/new', owner: 0, defaccess: 4, acl: [{ user: 3000, access: 6 }], recursive: false });
    expect(stalePut).toBeInstanceOf(AclfsError);
    expect((stalePut as AclfsError).code).toBe('conflict');
    expect((stalePut as AclfsError).message).toMatch(/was changed in etcd by another writer since this host applied it: nothing was written/);
    expect(await etcd.revision()).toBe(seen);
    // From an up-to-date view, the same replace goes through (and is back here once applied).
    const replaced = await httpUnix(hosts[1]!.ws.socket, 'PUT', '/v1/rules/by-path?path=/docs/new', { body: body(3001), headers: { 'Content-Type': 'application/json' } });
    expect(replaced.status).toBe(200);
    expect(replaced.json.acl).toEqual([{ user: 3001, access: 'rw-' }]);
    // Remove it through a writable host: the delete compares with what that host applied.
    await following(0, await etcd.revision());
    const removed = await httpUnix(hosts[0]!.ws.socket, 'DELETE', '/v1/rules/by-path?path=/docs/new');
    expect(removed.status).toBe(200);
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await httpUnix(hosts[i]!.ws.socket, 'GET', '/v1/rules/by-path?path=/docs/new')).status === 404, 2000, `host ${i} without /docs/new`);
    }
  });

  it('an etcd restart loses nothing: the hosts keep enforcing while it is down, then follow again', async () => {
    await etcd.pause();
    await waitFor(async () => (await syncStatus(0)).state === 'unreachable', 5000, 'host 0 seeing etcd unreachable');
    // The last rule set applied stays in force.
    await enforcedEverywhere(ALICE, BOB, 1000);
    const down = await syncStatus(0);
    expect(down.secondsSinceContact).not.toBeNull();
    const st = await aclfs(['status', '--socket', hosts[0]!.ws.socket]);
    expect(st.stdout).toMatch(/^sync {9}unreachable etcd:\/\/127\.0\.0\.1:\d+\/fleet, revision \d+, writable; etcd answered /m);
    await etcd.resume();
    const revision = await etcd.revision();
    for (let i = 0; i < 3; i++) await following(i, revision, 15_000);
    await push(rulesFor(BOB));
    await enforcedEverywhere(BOB, ALICE, 1000);
    // A restart is no reason to reload.
    for (let i = 0; i < 3; i++) expect((await syncStatus(i)).fullLoads).toBe(1);
  });

  it('a daemon restart loses nothing: it resumes after the revision it applied', async () => {
    await hosts[2]!.daemon!.stop();
    await push(rulesFor(ALICE));
    const daemon = await startDaemon(2);
    await enforcedEverywhere(ALICE, BOB, 5000);
    await following(2, await etcd.revision());
    expect(daemon.stderr).toContain('fleet sync: resuming after the revision applied here');
    expect((await syncStatus(2)).fullLoads).toBe(0);
  });

  it('a daemon started while etcd is down enforces its last rule set', async () => {
    await hosts[2]!.daemon!.stop();
    await etcd.pause();
    const daemon = await startDaemon(2);
    await enforcedEverywhere(ALICE, BOB, 1000, [2]);
    await waitFor(async () => (await syncStatus(2)).state === 'unreachable', 5000, 'host 2 seeing etcd unreachable');
    await etcd.resume();
    const revision = await etcd.revision();
    for (let i = 0; i < 3; i++) await following(i, revision, 15_000);
    expect(daemon.stderr).toContain('fleet sync: resuming after the revision applied here');
  });

  it('a rule written into a following host\'s database outside the sync makes it reload the rule set from etcd', async () => {
    const before = (await syncStatus(1)).fullLoads;
    const local = await aclfs(['rule', 'add', '/local', '--owner', '0', '--default', 'rwx', '--db', hosts[1]!.ws.db]);
    expect(local.code, local.stderr).toBe(0);
    await waitFor(async () => (await syncStatus(1)).fullLoads === before + 1, 10_000, 'host 1 reloading');
    expect((await httpUnix(hosts[1]!.ws.socket, 'GET', '/v1/rules/by-path?path=/local')).status).toBe(404);
    await enforcedEverywhere(ALICE, BOB, 1000, [1]);
  });

  it('a compaction past a stopped daemon\'s revision makes it reload the whole rule set', async () => {
    await hosts[2]!.daemon!.stop();
    await push(rulesFor(BOB));
    await push(rulesFor(BOB, [{ path: '/docs', recursive: true, owner: 0, defaccess: 'r-x' }]));
    const revision = await etcd.revision();
    const compact = await etcd.ctl(['compact', String(revision)]);
    expect(compact.code, compact.stderr).toBe(0);
    const daemon = await startDaemon(2);
    await following(2, revision);
    expect(daemon.stderr).toMatch(/"reason":"etcd has compacted past revision \d+, the next one this host needs".*full reload/);
    expect((await syncStatus(2)).fullLoads).toBe(1);
    await enforcedEverywhere(BOB, ALICE, 1000);
    const listed = await httpUnix(hosts[2]!.ws.socket, 'GET', '/v1/rules');
    expect(listed.json.rules.map((r: { path: string }) => r.path)).toEqual(['/', '/docs', SECRET]);
  });
});

describeWithEtcd('fleet sync with etcd user authentication', () => {
  let etcd: EtcdServer;
  let dir: Workspace;

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    dir = makeWorkspace('aclfs-fleet-auth-');
    // A user that may read and write only the fleet's prefix.
    for (const args of [
      ['user', 'add', 'root:rootpw'],
      ['user', 'add', 'aclfs:s3cret'],
      ['role', 'add', 'fleet'],
      ['role', 'grant-permission', 'fleet', '--prefix=true', 'readwrite', `${PREFIX}/`],
      ['user', 'grant-role', 'aclfs', 'fleet'],
      ['auth', 'enable'],
    ]) {
      const res = await etcd.ctl(args);
      expect(res.code, `etcdctl ${args.join(' ')}: ${res.stderr}`).toBe(0);
    }
    writeFileSync(path.join(dir.dir, 'password'), 's3cret\n');
    writeFileSync(path.join(dir.dir, 'wrong'), 'guess\n');
    writeFileSync(path.join(dir.dir, 'rules.json'), JSON.stringify(rulesFor(ALICE)));
  });

  afterAll(async () => {
    await etcd?.stop();
    dir?.cleanup();
  });

  it('push authenticates with --sync-user and --sync-password-file; without them, or with a wrong password, etcd refuses (exit 5)', async () => {
    const file = path.join(dir.dir, 'rules.json');
    const as = (password: string): string[] => ['--sync-user', 'aclfs', '--sync-password-file', path.join(dir.dir, password)];
    const ok = await aclfs(['push', file, '--sync', etcd.url(PREFIX), ...as('password')]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/^pushed 2 added/);
    for (const [args, said] of [
      [[], /user name is empty/],
      [as('wrong'), /authentication failed/],
      [['--sync', etcd.url('/elsewhere'), ...as('password')], /permission denied/],
    ] as const) {
      const res = await aclfs(['push', file, '--sync', etcd.url(PREFIX), ...args]);
      expect(res.code, res.stderr).toBe(5);
      expect(res.stderr).toMatch(said);
    }
  });
});
