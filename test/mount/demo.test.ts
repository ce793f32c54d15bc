// scripts/demo.sh run twice as CI runs it (root, no terminal), in a copy of
// the checkout so that whatever setup it does (a build, `npm ci` if the
// install stamp is not current) never touches the tree the tests run from:
// the second run skips every setup step, still ends with a working mount,
// and the commands it prints do what their comments say.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ROOT, isMounted, makeWorkspace, requireFuse, run, waitFor, type Workspace } from '../helpers/mounts';

interface DemoRun {
  readonly child: ChildProcess;
  /** stdout and stderr as they arrive (the daemon's JSON log lines included). */
  output: string;
  /** The daemon's pid, once the demo has printed it. */
  daemonPid: number | null;
  readonly exited: Promise<number | null>;
}

/** Lines the demo prints under "try": the command, and its comment. */
interface Suggestion {
  readonly command: string;
  readonly comment: string;
}

const READY = 'Ctrl-C here unmounts.';

let ws: Workspace;
let repo: string;
let demoDir: string;
const started: DemoRun[] = [];

function startDemo(): DemoRun {
  const child = spawn('bash', [path.join(repo, 'scripts', 'demo.sh')], {
    env: { ...process.env, ACLFS_DEMO_DIR: demoDir, ACLFS_DEMO_SOCKET: ws.socket },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const demo: DemoRun = {
    child,
    output: '',
    daemonPid: null,
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  const onData = (chunk: Buffer): void => {
    demo.output += chunk.toString('utf8');
    const m = /aclfs mount is pid (\d+)/.exec(demo.output);
    if (m !== null) demo.daemonPid = Number(m[1]);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  started.push(demo);
  return demo;
}

async function untilReady(demo: DemoRun, timeoutMs: number): Promise<void> {
  let exited = false;
  void demo.exited.then(() => (exited = true));
  await waitFor(() => demo.output.includes(READY) || exited, timeoutMs, 'the demo to print what to try');
  if (!demo.output.includes(READY)) throw new Error(`the demo exited before it was ready:\n${demo.output}`);
}

function suggestions(output: string): Suggestion[] {
  const block = output.slice(output.indexOf('try, in another shell'), output.indexOf(READY));
  return [...block.matchAll(/^ {2}(.+?) {3}# (.+)$/gm)].map((m) => ({ command: m[1]!, comment: m[2]! }));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Setup lines that say a step ran rather than was skipped. */
const SETUP_RAN = /^setup: (npm ci|npm run build|installing)|^added \d+ packages|^demo: (creating files|importing)/m;

describeWithFuse('scripts/demo.sh', () => {
  beforeAll(() => {
    requireFuse();
    ws = makeWorkspace('aclfs-demo-test-');
    repo = path.join(ws.dir, 'repo');
    demoDir = path.join(ws.dir, 'demo');
    const skip = new Set(['node_modules', 'dist', '.git', 'tmp', 'build'].map((d) => path.join(ROOT, d)));
    cpSync(ROOT, repo, { recursive: true, filter: (from) => !skip.has(from) });
    // node_modules as hard links (no copy of 116 MB): an `npm ci` in the copy
    // replaces files, it never writes through them.
    const linked = spawnSync('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules')]);
    if (linked.status !== 0) cpSync(path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  });

  afterAll(async () => {
    for (const demo of started) {
      if (demo.child.exitCode === null && demo.child.pid !== undefined) process.kill(demo.child.pid, 'SIGTERM');
      await demo.exited;
      if (demo.daemonPid !== null && alive(demo.daemonPid)) process.kill(demo.daemonPid, 'SIGTERM');
    }
    if (demoDir !== undefined) {
      const mnt = path.join(demoDir, 'mnt');
      await waitFor(async () => !(await isMounted(mnt)), 10_000, 'the demo mount to go').catch(() => run('fusermount', ['-uz', mnt]));
    }
    ws?.cleanup();
  });

  it('comes up, serves the rules it printed, and unmounts on Ctrl-C; a second run skips all setup', async () => {
    const mnt = path.join(demoDir, 'mnt');

    // First run: whatever setup is missing in the copy (at least the build).
    const first = startDemo();
    await untilReady(first, 280_000);
    expect(first.output).toMatch(/^setup: npm run build/m);
    expect(first.output).toMatch(/^demo: creating files in /m);
    expect(first.output).toMatch(/^demo: importing the demo rules into /m);
    expect(await isMounted(mnt)).toBe(true);
    const builtAt = statSync(path.join(repo, 'dist', 'main.js')).mtimeMs;
    const installedAt = statSync(path.join(repo, 'node_modules', '.aclfs-install-stamp')).mtimeMs;
    // Ctrl-C reaches the script (a terminal signals its foreground group; the
    // script is what matters: the daemon ignores SIGINT as a background job).
    process.kill(first.child.pid!, 'SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.daemonPid).not.toBeNull();
    expect(alive(first.daemonPid!)).toBe(false);
    expect(await isMounted(mnt)).toBe(false);

    // Second run: every setup step says it is skipped, and none runs.
    const t0 = Date.now();
    const second = startDemo();
    await untilReady(second, 60_000);
    const secondSeconds = (Date.now() - t0) / 1000;
    console.log(`demo.sh second run: ready in ${secondSeconds.toFixed(1)} s`);
    for (const skipped of [
      /^setup: Debian packages present \(skipping apt-get\)$/m,
      /^setup: node_modules is up to date with package-lock.json \(skipping npm ci\)$/m,
      /^setup: dist\/ is newer than src\/ \(skipping npm run build\)$/m,
      /^demo: files in .+ are present \(skipping\)$/m,
      /^demo: rule database .+ is present \(skipping import; rm -rf .+ to start over\)$/m,
    ]) {
      expect(second.output).toMatch(skipped);
    }
    expect(second.output).not.toMatch(SETUP_RAN);
    expect(statSync(path.join(repo, 'dist', 'main.js')).mtimeMs).toBe(builtAt);
    expect(statSync(path.join(repo, 'node_modules', '.aclfs-install-stamp')).mtimeMs).toBe(installedAt);
    expect(await isMounted(mnt)).toBe(true);

    // The printed commands, run exactly as printed, do what their comments say.
    const tries = suggestions(second.output);
    expect(tries.map((t) => t.comment)).toEqual([
      'allowed',
      'Permission denied',
      'allowed',
      'deny (exit 1), and why',
      'the denial, as recorded',
      'the rules',
    ]);
    const sh = (command: string): Promise<{ code: number; stdout: string; stderr: string }> => run('bash', ['-c', command]);
    const allowed = await sh(tries[0]!.command);
    expect(allowed).toEqual({ code: 0, stdout: 'only uid 1000 may read this\n', stderr: '' });
    const denied = await sh(tries[1]!.command);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(/secret\.txt: Permission denied/);
    expect(await sh(tries[2]!.command)).toEqual({ code: 0, stdout: 'public notes\n', stderr: '' });
    const check = await sh(tries[3]!.command);
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/^deny: rule \d+ \(\/docs\/secret\.txt, by inode\): defaccess --- lacks r\n/);
    const audit = await sh(tries[4]!.command);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/uid 1001 gid 1001 .* open r-- {2}\/docs\/secret\.txt {2}deny/);
    const rules = await sh(tries[5]!.command);
    expect(rules.code).toBe(0);
    expect(rules.stdout).toMatch(/ \/docs\/secret\.txt {2}user:1000:r--\n$/);

    // SIGTERM (systemd, a test runner) stops it as Ctrl-C does.
    process.kill(second.child.pid!, 'SIGTERM');
    expect(await second.exited).toBe(0);
    expect(alive(second.daemonPid!)).toBe(false);
    expect(await isMounted(mnt)).toBe(false);
  }, 400_000);
});
