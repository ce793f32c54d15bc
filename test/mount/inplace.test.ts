// --in-place over a real mount: a daemon killed with SIGKILL leaves its dead
// mount over SRC itself, and a new daemon clears it and mounts again, still
// deciding; processes already inside SRC (working directory, open files)
// would keep an unfiltered view under the mount, so the mount is refused
// naming them, unless --force.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import {
  ALICE,
  BOB,
  aclfs,
  Daemon,
  importRules,
  isMounted,
  makeWorkspace,
  requireFuse,
  run,
  runAs,
  waitFor,
  type Workspace,
} from '../helpers/mounts';

describeWithFuse('--in-place', () => {
  let ws: Workspace;
  const daemons: Daemon[] = [];
  const others: ChildProcess[] = [];

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-inplace-');
    writeFileSync(path.join(ws.src, 'secret.txt'), 'in place secret\n');
    writeFileSync(path.join(ws.src, 'public.txt'), 'in place public\n');
    for (const f of ['secret.txt', 'public.txt']) chmodSync(path.join(ws.src, f), 0o644);
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/secret.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] },
    ]);
  });

  afterEach(async () => {
    for (const p of others.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const d of daemons.splice(0)) await d.ensureStopped();
  });

  afterAll(() => ws?.cleanup());

  const args = (...extra: string[]): string[] => [ws.src, ws.src, '--db', ws.db, '--socket', ws.socket, '--in-place', ...extra];

  const start = async (...extra: string[]): Promise<Daemon> => {
    const d = await Daemon.start(args(...extra), ws.src);
    daemons.push(d);
    return d;
  };

  const expectEnforcing = async (): Promise<void> => {
    expect(await runAs(ALICE, 'cat', [path.join(ws.src, 'secret.txt')])).toMatchObject({ code: 0, stdout: 'in place secret\n' });
    expect((await runAs(BOB, 'cat', [path.join(ws.src, 'secret.txt')])).stderr).toContain('Permission denied');
    expect((await runAs(BOB, 'cat', [path.join(ws.src, 'public.txt')])).stdout).toBe('in place public\n');
  };

  /** `sleep 60`, spawned with these options; killed after the test. */
  const sleeper = (opts: { cwd?: string; stdin?: number }): ChildProcess => {
    const child = spawn('sleep', ['60'], { cwd: opts.cwd, stdio: [opts.stdin ?? 'ignore', 'ignore', 'ignore'] });
    others.push(child);
    if (child.pid === undefined) throw new Error('sleep did not start');
    return child;
  };

  it('restarts after its daemon was killed with SIGKILL, and still decides', async () => {
    const crashed = await start();
    await expectEnforcing();
    crashed.child.kill('SIGKILL');
    await waitFor(() => crashed.child.exitCode !== null || crashed.child.signalCode !== null, 5000, 'daemon to die');
    // The dead mount still covers SRC.
    expect(isMounted(ws.src)).toBe(true);
    expect((await run('stat', [ws.src])).stderr).toContain('Transport endpoint is not connected');

    const restarted = await start();
    expect(restarted.stderr).toContain('cleared a stale mount');
    await expectEnforcing();
    expect(await restarted.stop()).toBe(0);
    expect(isMounted(ws.src)).toBe(false);
    expect(readFileSync(path.join(ws.src, 'secret.txt'), 'utf8')).toBe('in place secret\n');
  });

  it('refuses to mount over processes inside SRC, naming them', async () => {
    const inside = sleeper({ cwd: ws.src });
    const fd = openSync(path.join(ws.src, 'public.txt'), 'r');
    let holding: ChildProcess;
    try {
      holding = sleeper({ stdin: fd });
    } finally {
      // The test's own copy would put this process inside SRC too.
      closeSync(fd);
    }
    const res = await aclfs(['mount', ...args()]);
    expect(res.code).toBe(4);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`pid ${String(inside.pid)} (sleep) cwd ${ws.src}`);
    expect(lines[0]).toContain(`pid ${String(holding.pid)} (sleep) fd 0 ${path.join(ws.src, 'public.txt')}`);
    expect(lines[0]).toContain('--force');
    expect(lines[0]).not.toContain(`pid ${String(process.pid)} `);
    expect(isMounted(ws.src)).toBe(false);
  });

  it('mounts over them with --force, with a warning naming them', async () => {
    const inside = sleeper({ cwd: ws.src });
    const d = await start('--force');
    const warning = d.stderr.split('\n').find((l) => l.includes('"level":40') && l.includes('--force'));
    expect(warning).toBeDefined();
    const logged = JSON.parse(warning!) as { processes: { pid: number; holds: string[] }[] };
    expect(logged.processes).toContainEqual({ pid: inside.pid, command: 'sleep', holds: [`cwd ${ws.src}`] });
    await expectEnforcing();
    expect(await d.stop()).toBe(0);
  });

  it('mounts without --force once nothing is inside SRC', async () => {
    const d = await start();
    expect(d.stderr).not.toContain('--force');
    await expectEnforcing();
    expect(await d.stop()).toBe(0);
  });
});
