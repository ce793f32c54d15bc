// A new user's first mistakes with the built `aclfs` that need a running
// daemon: paths pasted as seen under the mountpoint, a file that is not in
// the source, and an unmount that cannot happen yet.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, ACLFS, Daemon, isMounted, makeWorkspace, requireFuse, waitFor, type Workspace } from '../helpers/mounts';

let ws: Workspace;
let daemon: Daemon;
let S: string[];

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-cli-errors-');
  fs.mkdirSync(path.join(ws.src, 'docs'));
  fs.writeFileSync(path.join(ws.src, 'docs', 'secret.txt'), 'secret\n', { mode: 0o644 });
  daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  S = ['--socket', ws.socket];
  const added = await aclfs(['rule', 'add', '/docs/secret.txt', '--owner', 'root', '--default', '---', ...S]);
  expect(added).toMatchObject({ code: 0, stderr: '' });
});

afterAll(async () => {
  await daemon?.ensureStopped();
  ws?.cleanup();
});

describeWithFuse('paths under the mountpoint', () => {
  it('check takes a path under the mountpoint for the path inside the mount, and decides on the file', async () => {
    const pasted = path.join(ws.mnt, 'docs', 'secret.txt');
    const res = await aclfs(['check', '--uid', '1001', '--gid', '1001', '--groups', '', '--access', 'r', pasted, ...S]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(1);
    const [reason, detail] = res.stdout.split('\n');
    expect(reason).toMatch(/^deny: rule \d+ \(\/docs\/secret\.txt, by inode\): defaccess --- lacks r$/);
    expect(detail).toMatch(/^  for uid 1001 gid 1001 groups none, \/docs\/secret\.txt \(file dev \d+ ino \d+\), generation \d+$/);
    // The mountpoint itself is the mount's root.
    const root = await aclfs(['check', '--uid', '0', '--access', 'r', ws.mnt, '--json', ...S]);
    expect(JSON.parse(root.stdout)).toMatchObject({ path: '/' });
  });

  it('a relative path is taken from the working directory when that is under the mountpoint', async () => {
    const res = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [ACLFS, 'check', '--uid', '1001', '--gid', '1001', '--groups', '', '--access', 'r', 'secret.txt', '--json', ...S],
        { cwd: path.join(ws.mnt, 'docs'), encoding: 'utf8' },
        (err, stdout) => resolve({ code: err === null ? 0 : Number(err.code), stdout }),
      );
    });
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ path: '/docs/secret.txt', allow: false, match: 'inode' });
  });

  it('check says when the file is not in the source: the decision is then by path only', async () => {
    const res = await aclfs(['check', '--uid', '1001', '--gid', '1001', '--groups', '', '--access', 'r', path.join(ws.mnt, 'docs', 'nothere.txt'), ...S]);
    expect(res.code).toBe(1);
    expect(res.stdout.split('\n')[1]).toBe(
      `  for uid 1001 gid 1001 groups none, /docs/nothere.txt (no such file in the source ${path.join(fs.realpathSync(ws.src), 'docs', 'nothere.txt')}: decided by path only), generation ${JSON.parse((await aclfs(['status', '--json', ...S])).stdout).generation}`,
    );
  });

  it('rule add, show, ls and rm take paths under the mountpoint too', async () => {
    const under = path.join(ws.mnt, 'docs', 'new.txt');
    expect((await aclfs(['rule', 'add', under, '--owner', 'root', '--default', 'r--', ...S])).stdout).toMatch(/^created rule \d+: \/docs\/new\.txt\n$/);
    expect((await aclfs(['rule', 'set', under, '--owner', 'root', '--default', 'r-x', ...S])).stdout).toMatch(/^replaced rule \d+: \/docs\/new\.txt\n$/);
    expect(JSON.parse((await aclfs(['rule', 'show', under, '--json', ...S])).stdout)).toMatchObject({ path: '/docs/new.txt', defaccess: 'r-x' });
    const listed = JSON.parse((await aclfs(['rule', 'ls', path.join(ws.mnt, 'docs'), '--json', ...S])).stdout);
    expect(listed.rules.map((r: { path: string }) => r.path)).toEqual(['/docs/new.txt', '/docs/secret.txt']);
    expect((await aclfs(['rule', 'rm', under, ...S])).stdout).toMatch(/^removed rule \d+: \/docs\/new\.txt\n$/);
    // A path inside the mount is still taken as it is.
    expect(JSON.parse((await aclfs(['rule', 'show', '/docs/secret.txt', '--json', ...S])).stdout)).toMatchObject({ path: '/docs/secret.txt' });
  });
});

describeWithFuse('aclfs unmount of a live mount', () => {
  it('a busy mount is a conflict (exit 4) with fusermount\'s reason; once free it unmounts and the daemon ends', async () => {
    // A process with its working directory inside the mount keeps it busy.
    const holder: ChildProcess = spawn('sleep', ['60'], { cwd: path.join(ws.mnt, 'docs'), stdio: 'ignore' });
    try {
      await waitFor(() => fs.existsSync(`/proc/${String(holder.pid)}/cwd`), 5000, 'the holder to start');
      const busy = await aclfs(['unmount', ws.mnt]);
      expect(busy.code).toBe(4);
      expect(busy.stdout).toBe('');
      expect(busy.stderr).toMatch(/^aclfs: failed to unmount \S+: Device or resource busy \([^\n]*\)\n$/);
      expect(isMounted(ws.mnt)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => (holder.exitCode === null && holder.signalCode === null ? holder.once('exit', resolve) : resolve(undefined)));
    }
    expect(await aclfs(['unmount', ws.mnt])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // A daemon whose mount was removed from outside ends by itself.
    await waitFor(() => daemon.child.exitCode !== null, 10_000, 'the daemon to end');
    expect(daemon.child.exitCode).toBe(0);
    const again = await aclfs(['unmount', ws.mnt]);
    expect(again.code).toBe(3);
    expect(again.stderr).toBe(`aclfs: ${ws.mnt} is not mounted\n`);
  });
});
