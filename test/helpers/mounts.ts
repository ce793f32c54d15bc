// Test helpers for real mounts: a daemon started as a child process (never
// served from the test process itself, which would deadlock on its own
// mount), commands run as other users through setpriv, and cleanup that ends
// only what the test started, by pid.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { isMountpoint, isStaleMount, mountTypeAt } from '../../src/fs/mount';
import type { Readable, Writable } from 'node:stream';
import { missingFuse } from './facilities';

export const ROOT = path.resolve(__dirname, '..', '..');
export const ACLFS = path.join(ROOT, 'bin', 'aclfs');

/** Under CI=true a test that cannot run for lack of root or /dev/fuse fails. */
export function fuseAvailable(): boolean {
  return missingFuse() === null;
}

export function requireFuse(): void {
  const missing = missingFuse();
  if (missing !== null) {
    throw new Error(`these tests need root and /dev/fuse (run them as root on a machine with FUSE); here: ${missing}`);
  }
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      [...args],
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly groups?: readonly number[];
}

/**
 * setpriv arguments that run a command as `who`, with exactly its groups,
 * and a PATH of system directories only (root's PATH may name directories
 * other users cannot search, which makes every lookup fail with EACCES).
 */
export function setprivArgs(who: Identity): string[] {
  const groups = who.groups && who.groups.length > 0 ? ['--groups', who.groups.join(',')] : ['--clear-groups'];
  return ['--reuid', String(who.uid), '--regid', String(who.gid), ...groups, '--', 'env', `PATH=${SYSTEM_PATH}`];
}

export const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';

export function runAs(who: Identity, cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<RunResult> {
  return run('setpriv', [...setprivArgs(who), cmd, ...args], opts);
}

/** Whether `mnt` is a mountpoint right now, from the kernel's own table. */
/** A python snippet for pyAs: opens argv[1] for reading and closes it; prints "ok", or the errno's name. */
export const PY_OPEN_FOR_READING = `
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY))
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])
`;

/** Runs a python snippet as `who` (argv after the snippet); its stdout, trimmed. Throws on anything on stderr. */
export async function pyAs(who: Identity, code: string, ...args: string[]): Promise<string> {
  const res = await runAs(who, '/usr/bin/python3', ['-c', code, ...args]);
  if (res.stderr !== '') throw new Error(`python: ${res.stderr}`);
  return res.stdout.trim();
}

/**
 * Runs node with `args` in the project's root, asynchronously (a vitest
 * worker blocked for minutes would stop answering vitest), as a program of
 * its own rather than a worker of this vitest: its exit status and its
 * stdout and stderr together.
 */
export function runNode(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

export const isMounted = isMountpoint;

/** Filesystem type of the topmost mount at `mnt` ("fuse.aclfs", ...), or null. */
export const topMountType = mountTypeAt;

/** A FUSE mount whose daemon is gone answers statfs with ENOTCONN. */
export const isStale = isStaleMount;

const FUSE_SUPER_MAGIC = 0x65735546;

/**
 * Whether a live aclfs answers at `mnt` right now. statfs goes to whatever is
 * on top when it runs: checking the mount table and then statfs alone would
 * take the bare directory for a live mount when a daemon lazily unmounts a
 * stale mount in between (the kernel says FUSE in f_type only for a FUSE
 * filesystem that answered).
 */
export async function isLiveAclfs(mnt: string): Promise<boolean> {
  if (topMountType(mnt) !== 'fuse.aclfs') return false;
  try {
    return (await statfs(mnt)).type === FUSE_SUPER_MAGIC && topMountType(mnt) === 'fuse.aclfs';
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Workspace {
  readonly dir: string;
  readonly src: string;
  readonly mnt: string;
  readonly db: string;
  /**
   * Admin socket for a daemon of this workspace, in a runtime directory the
   * daemon creates 0750 (the workspace directory itself is 0755, which the
   * daemon rightly refuses to put a socket in). Tests pass it explicitly so
   * they never touch the host's /run/aclfs.
   */
  readonly socket: string;
  cleanup(): void;
}

export function makeWorkspace(prefix = 'aclfs-test-'): Workspace {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  // Other users must be able to reach the mountpoint at all.
  chmodSync(dir, 0o755);
  const ws = {
    dir,
    src: path.join(dir, 'src'),
    mnt: path.join(dir, 'mnt'),
    db: path.join(dir, 'db'),
    socket: path.join(dir, 'run', 'aclfs.sock'),
    cleanup: () => {
      // A mount left at MNT (its daemon ended without lifting it, or a
      // test stopped short) is lifted first: the removal must never go
      // through a mount, nor leave one behind.
      if (isMounted(path.join(dir, 'mnt'))) execFileSync('fusermount', ['-uz', path.join(dir, 'mnt')]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const d of [ws.src, ws.mnt]) mkdirSync(d, { mode: 0o755 });
  return ws;
}

/**
 * ACLFS_TEST_DATA_PATH=passthrough runs every daemon a test starts with
 * --data passthrough (unless it chose its own data path or --revoke
 * immediate), so that whole test files can be run again over passthrough
 * (test/mount/passthrough-security.test.ts does); every file, however
 * small, is then served by passthrough (--passthrough-min-size 0).
 */
function dataPathArgs(args: readonly string[]): string[] {
  const wanted = process.env.ACLFS_TEST_DATA_PATH;
  if (wanted === undefined || wanted === '' || args.includes('--data') || args.includes('--revoke')) return [];
  return wanted === 'passthrough' ? ['--data', wanted, '--passthrough-min-size', '0'] : ['--data', wanted];
}

export class Daemon {
  private exited: Promise<number | null>;
  stderr = '';
  stdout = '';

  private constructor(
    readonly child: ChildProcess,
    readonly mnt: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('daemon has no pid');
    return this.child.pid;
  }

  /** `opts.wrapper`: a command line the daemon runs under (e.g. prlimit's), before bin/aclfs. */
  static async start(args: readonly string[], mnt: string, opts: { taskset?: string; wrapper?: readonly string[] } = {}): Promise<Daemon> {
    // bin/aclfs runs as installed, through its shebang (which carries the
    // daemon's V8 flags), not as `node bin/aclfs`.
    const dataPath = dataPathArgs(args);
    const argv = ['mount', ...args, ...dataPath];
    const command = [...(opts.wrapper ?? []), ...(opts.taskset ? ['taskset', '-c', opts.taskset] : []), ACLFS, ...argv];
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new Daemon(child, mnt);
    let exitCode: number | null | undefined;
    void daemon.exited.then((c) => (exitCode = c));
    try {
      // The mount table alone would also list a stale mount the daemon is
      // replacing; a live mount also answers statfs.
      await waitFor(
        async () => exitCode !== undefined || (await isLiveAclfs(mnt)),
        20_000,
        `mount at ${mnt}`,
      );
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    if (exitCode !== undefined) throw new Error(`daemon exited ${String(exitCode)} before mounting: ${daemon.stderr}`);
    if (dataPath.includes('passthrough')) {
      // A run over passthrough proves nothing if the kernel refused it.
      await waitFor(() => daemon.stderr.includes('file data served by FUSE passthrough'), 10_000, `passthrough at ${mnt}: ${daemon.stderr}`);
    }
    return daemon;
  }

  /** RSS of the daemon process in KiB. */
  rssKiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    if (!m?.[1]) throw new Error('no VmRSS');
    return Number(m[1]);
  }

  /** SIGTERM, wait for exit; returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
    const result = await Promise.race([this.exited, timer]);
    if (result === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      if (isMounted(this.mnt)) await run('fusermount', ['-uz', this.mnt]);
      throw new Error(`daemon did not exit within ${timeoutMs} ms of ${signal}`);
    }
    return result;
  }

  /**
   * Last-resort cleanup for afterAll/afterEach: never leaves a mount of this
   * daemon behind, and never touches a live mount another daemon now serves
   * at the same place.
   */
  async ensureStopped(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        await this.stop();
      } catch {
        /* already forced */
      }
    }
    if (isMounted(this.mnt) && (await isStale(this.mnt))) await run('fusermount', ['-uz', this.mnt]);
  }
}

/** `aclfs ARGS...` as a child process. */
export function aclfs(args: readonly string[], opts: { input?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [ACLFS, ...args], opts);
}

/** `aclfs import - --db DB` of these rules (a rule file of version 1); throws unless it succeeds quietly. */
export async function importRules(db: string, rules: unknown[]): Promise<void> {
  const res = await aclfs(['import', '-', '--db', db], { input: JSON.stringify({ version: 1, rules }) });
  if (res.code !== 0 || res.stderr !== '') throw new Error(`aclfs import failed (${String(res.code)}): ${res.stderr}`);
}

export interface HolderReply {
  readonly ok: boolean;
  readonly bytes?: number;
  readonly code?: string;
}

/**
 * A process of `who` holding `file` open (fixtures/hold-reader.js): its
 * first reply is for a read at 0; `send("<pos>")` reads, `send("w<pos>")`
 * writes, each answering with the outcome.
 */
export class FileHolder {
  private readonly replies: AsyncIterator<string>;

  private constructor(private readonly child: ChildProcess & { stdin: Writable; stdout: Readable }) {
    this.replies = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async open(who: Identity, file: string, mode: 'r' | 'w'): Promise<{ holder: FileHolder; first: HolderReply }> {
    const child = spawn('setpriv', [...setprivArgs(who), process.execPath, path.join(__dirname, '..', 'fixtures', 'hold-reader.js'), file, mode], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const holder = new FileHolder(child as ChildProcess & { stdin: Writable; stdout: Readable });
    return { holder, first: await holder.next() };
  }

  private async next(): Promise<HolderReply> {
    const { value, done } = await this.replies.next();
    if (done) throw new Error('holder process ended');
    return JSON.parse(String(value)) as HolderReply;
  }

  async send(command: string): Promise<HolderReply> {
    this.child.stdin.write(`${command}\n`);
    return this.next();
  }

  close(): void {
    this.child.stdin.end('quit\n');
    this.child.kill();
  }
}

/** Test users (numeric ids: no passwd entries needed) and their team group. */
export const TEAM = 3001;
export const ALICE: Identity = { uid: 2001, gid: 2001 };
export const BOB: Identity = { uid: 2002, gid: 2002 };
export const CAROL: Identity = { uid: 2003, gid: 2003 };
/** Carol with the team as a supplementary group. */
export const CAROL_IN_TEAM: Identity = { uid: 2003, gid: 2003, groups: [TEAM] };
/** Carol with the team as her primary group. */
export const CAROL_PRIMARY_TEAM: Identity = { uid: 2003, gid: TEAM };
