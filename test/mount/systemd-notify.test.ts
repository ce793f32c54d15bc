// The daemon under a service manager's notification protocol, against a
// fake NOTIFY_SOCKET (a python3 datagram server this test starts and ends by
// pid) with WATCHDOG_USEC at 2 s: READY=1 comes only once the mount answers
// and the admin socket listens; WATCHDOG=1 keeps coming while the mount is
// idle and while requests flow, stops while a request hangs in the daemon
// (SRC lives on a bindfs this test stops with SIGSTOP), and resumes once it
// is answered; STOPPING=1 on SIGTERM. And `aclfs mount --check`, which
// mounts nothing and changes nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, ACLFS, isLiveAclfs, isMounted, isStale, makeWorkspace, requireFuse, run, waitFor, type Workspace } from '../helpers/mounts';

const WATCHDOG_MS = 2000;

/**
 * Receives datagrams on the socket argv[1] and appends one JSON line per
 * message to argv[2]: the message, when it came (ms), whether the mount at
 * argv[3] answered statfs as FUSE then and whether the admin socket argv[4]
 * existed.
 */
const NOTIFY_SERVER = `
import json, os, socket, sys, time
sock_path, log_path, mnt, admin = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
open(log_path, 'a').close()
while True:
    data = s.recv(4096).decode()
    at = time.time() * 1000
    mounted = False
    if data.startswith('READY=1'):
        with open('/proc/self/mountinfo') as f:
            mounted = any(line.split(' ')[4] == mnt and ' fuse.aclfs ' in line for line in f)
        if mounted:
            os.statvfs(mnt)
    with open(log_path, 'a') as log:
        log.write(json.dumps({'message': data, 'at': at, 'mounted': mounted, 'admin': os.path.exists(admin)}) + '\\n')
`;

interface Received {
  readonly message: string;
  readonly at: number;
  readonly mounted: boolean;
  readonly admin: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describeWithFuse('systemd notification protocol (fake NOTIFY_SOCKET)', () => {
  let ws: Workspace;
  let lower = '';
  let notifySocket = '';
  let logFile = '';
  let server: ChildProcess | undefined;
  let bindfs: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  let daemonStderr = '';
  const readers: ChildProcess[] = [];

  const received = (): Received[] =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Received)
      : [];
  const pingsSince = (t: number): number => received().filter((r) => r.message === 'WATCHDOG=1' && r.at >= t).length;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-notify-');
    lower = path.join(ws.dir, 'lower');
    mkdirSync(path.join(lower, 'docs'), { recursive: true });
    for (const name of ['a.txt', 'b.txt']) writeFileSync(path.join(lower, 'docs', name), `${name}\n`);
    // A file in a directory nothing lists: its name is never known to the
    // kernel before the hang (a listing of docs/ hands the kernel its
    // entries with their attributes, and a name it holds is opened without
    // a LOOKUP).
    mkdirSync(path.join(lower, 'docs', 'unlisted'));
    writeFileSync(path.join(lower, 'docs', 'unlisted', 'c.txt'), 'c.txt\n');
    // SRC is a bindfs view of `lower`: stopping the bindfs process makes
    // SRC a backing filesystem that hangs.
    bindfs = spawn('bindfs', ['-f', lower, ws.src], { stdio: 'ignore' });
    await waitFor(() => isMounted(ws.src), 10_000, 'bindfs at SRC');
    const add = await aclfs(['rule', 'add', '/docs', '--recursive', '--owner', '0', '--default', 'r--', '--db', ws.db]);
    expect(add.code, add.stderr).toBe(0);

    notifySocket = path.join(ws.dir, 'notify.sock');
    logFile = path.join(ws.dir, 'notify.log');
    server = spawn('python3', ['-u', '-c', NOTIFY_SERVER, notifySocket, logFile, ws.mnt, ws.socket], { stdio: 'ignore' });
    await waitFor(() => existsSync(logFile), 10_000, 'the fake notify socket');
  }, 60_000);

  afterAll(async () => {
    if (bindfs?.pid !== undefined && bindfs.exitCode === null) process.kill(bindfs.pid, 'SIGCONT');
    for (const reader of readers) if (reader.exitCode === null && reader.signalCode === null) reader.kill('SIGKILL');
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM');
      await Promise.race([exited(daemon), sleep(15_000)]);
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    }
    if (isMounted(ws.mnt) && (await isStale(ws.mnt))) await run('fusermount', ['-uz', ws.mnt]);
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await exited(server);
    }
    if (bindfs !== undefined && bindfs.exitCode === null && bindfs.signalCode === null) {
      await run('fusermount', ['-u', ws.src]);
      await Promise.race([exited(bindfs), sleep(5000)]);
      if (bindfs.exitCode === null && bindfs.signalCode === null) bindfs.kill('SIGKILL');
    }
    if (isMounted(ws.src)) await run('fusermount', ['-uz', ws.src]);
    ws?.cleanup();
  }, 60_000);

  it('sends READY=1 once the mount answers and the admin socket listens, then WATCHDOG=1 while idle', async () => {
    daemon = spawn(ACLFS, ['mount', ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) },
    });
    daemon.stderr?.on('data', (d: Buffer) => (daemonStderr += d.toString()));
    await waitFor(() => received().length > 0 || daemon?.exitCode !== null, 20_000, 'a first notification');
    const [first] = received();
    expect(first?.message, daemonStderr).toMatch(/^READY=1\nSTATUS=serving /);
    expect(first?.mounted).toBe(true);
    expect(first?.admin).toBe(true);
    expect(await isLiveAclfs(ws.mnt)).toBe(true);

    // Idle: a ping every second (half the interval).
    const idleFrom = Date.now();
    await sleep(3500);
    expect(pingsSince(idleFrom)).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('keeps pinging while requests flow', async () => {
    const from = Date.now();
    const file = path.join(ws.mnt, 'docs', 'a.txt');
    const reader = spawn('sh', ['-c', `end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do cat ${file} >/dev/null; ls ${path.dirname(file)} >/dev/null; done`], {
      stdio: 'ignore',
    });
    readers.push(reader);
    expect(await exited(reader)).toBe(0);
    expect(pingsSince(from)).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('withholds WATCHDOG=1 while a request hangs in the daemon, and resumes once it is answered', async () => {
    process.kill(bindfs!.pid!, 'SIGSTOP');
    // A name never looked up before: its LOOKUP reaches the daemon, whose
    // statx of SRC waits for the stopped bindfs (on a request thread: the
    // daemon's event loop, where the watchdog is fed, stays free).
    const reader = spawn('cat', [path.join(ws.mnt, 'docs', 'unlisted', 'c.txt')], { stdio: ['ignore', 'pipe', 'ignore'] });
    readers.push(reader);
    let out = '';
    reader.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    // Pings stop once the request has been in flight longer than the
    // interval (checked every half interval)...
    await sleep(WATCHDOG_MS + WATCHDOG_MS / 2 + 500);
    expect(reader.exitCode).toBeNull();
    const quietFrom = Date.now();
    // ...and stay away for more than the interval systemd would allow.
    await sleep(WATCHDOG_MS + 1500);
    expect(pingsSince(quietFrom)).toBe(0);
    expect(reader.exitCode).toBeNull();

    process.kill(bindfs!.pid!, 'SIGCONT');
    expect(await exited(reader)).toBe(0);
    expect(out).toBe('c.txt\n');
    const resumedFrom = Date.now();
    await sleep(2500);
    expect(pingsSince(resumedFrom)).toBeGreaterThanOrEqual(2);
    expect(daemonStderr).toMatch(/watchdog pings withheld/);
  }, 60_000);

  it('sends STOPPING=1 on SIGTERM and exits 0', async () => {
    daemon!.kill('SIGTERM');
    expect(await exited(daemon!)).toBe(0);
    await waitFor(() => received().some((r) => r.message.startsWith('STOPPING=1')), 5000, 'STOPPING=1');
    expect(isMounted(ws.mnt)).toBe(false);
  }, 30_000);
});

describeWithFuse('aclfs mount --check', () => {
  let ws: Workspace;

  beforeAll(() => {
    ws = makeWorkspace('aclfs-check-');
  });
  afterAll(() => ws?.cleanup());

  it('passes a start that would work, silently, creating nothing and mounting nothing', async () => {
    const r = await run(ACLFS, ['mount', '--check', ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket]);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(existsSync(ws.db)).toBe(false);
    expect(existsSync(path.dirname(ws.socket))).toBe(false);
    expect(isMounted(ws.mnt)).toBe(false);
  });

  it('refuses a missing SRC or MNT with exit 3 and one line', async () => {
    for (const [src, mnt, what] of [
      [path.join(ws.dir, 'nosrc'), ws.mnt, 'source'],
      [ws.src, path.join(ws.dir, 'nomnt'), 'mountpoint'],
    ] as const) {
      const r = await run(ACLFS, ['mount', '--check', src, mnt, '--db', ws.db, '--socket', ws.socket]);
      expect(r.code).toBe(3);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`${what} `);
    }
    expect(existsSync(ws.db)).toBe(false);
  });

  it('refuses bad options (exit 2) and a database in a newer format, reading it unchanged', async () => {
    const socketInSrc = await run(ACLFS, ['mount', '--check', ws.src, ws.mnt, '--db', ws.db, '--socket', path.join(ws.src, 'a.sock')]);
    expect(socketInSrc.code).toBe(2);
    expect(socketInSrc.stderr).toMatch(/^aclfs: admin socket .* must not be inside the source/);

    const add = await aclfs(['rule', 'add', '/docs', '--owner', '0', '--default', 'r--', '--db', ws.db]);
    expect(add.code, add.stderr).toBe(0);
    const good = await run(ACLFS, ['mount', '--check', ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket]);
    expect(good).toMatchObject({ code: 0, stdout: '', stderr: '' });

    // A format this aclfs does not know yet.
    const { open } = await import('lmdb');
    const env = open({ path: ws.db, noSubdir: false, maxDbs: 9 });
    env.openDB<number, string>({ name: 'meta' }).putSync('recordFormat', 99);
    await env.close();
    const before = readFileSync(path.join(ws.db, 'data.mdb'));
    const newer = await run(ACLFS, ['mount', '--check', ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket]);
    expect(newer.code).toBe(8);
    expect(newer.stderr.trim().split('\n')).toHaveLength(1);
    expect(newer.stderr).toMatch(/record format 99, newer than this aclfs reads/);
    expect(readFileSync(path.join(ws.db, 'data.mdb')).equals(before)).toBe(true);
  });
});
