// Integration over a real FUSE mount with real (numeric) users switched to by
// setpriv. Every test here mounts, so under CI (root, /dev/fuse) none may be
// skipped: requireFuse() fails loudly instead.
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import {
  ALICE,
  BOB,
  CAROL,
  CAROL_IN_TEAM,
  CAROL_PRIMARY_TEAM,
  TEAM,
  aclfs,
  Daemon,
  FileHolder,
  isMounted,
  makeWorkspace,
  requireFuse,
  run,
  runAs,
  waitFor,
  type Workspace,
} from '../helpers/mounts';

const RULES = {
  version: 1,
  rules: [
    { path: '/docs', recursive: true, owner: 0, defaccess: 'r--', acl: [{ user: BOB.uid, access: '---' }] },
    { path: '/docs/secret.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] },
    { path: '/docs/team.txt', owner: 0, defaccess: '---', acl: [{ group: TEAM, access: 'r--' }] },
    { path: '/pub', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/big.bin', owner: 0, defaccess: 'r--', acl: [] },
    { path: '/held.bin', owner: 0, defaccess: 'r--', acl: [] },
    { path: '/trunc.txt', owner: 0, defaccess: 'r--', acl: [{ user: ALICE.uid, access: 'rw-' }] },
  ],
};

async function importRules(db: string, rules: unknown): Promise<void> {
  const res = await aclfs(['import', '-', '--db', db], { input: JSON.stringify(rules) });
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
}

describeWithFuse('protected mount', () => {
  let ws: Workspace;
  let daemon: Daemon;
  const big = Buffer.alloc(8 * 1024 * 1024);

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    mkdirSync(path.join(ws.src, 'docs'), { mode: 0o755 });
    mkdirSync(path.join(ws.src, 'pub'), { mode: 0o755 });
    writeFileSync(path.join(ws.src, 'docs', 'a.txt'), 'alpha\n', { mode: 0o644 });
    writeFileSync(path.join(ws.src, 'docs', 'secret.txt'), 'the secret\n', { mode: 0o644 });
    writeFileSync(path.join(ws.src, 'docs', 'team.txt'), 'team notes\n', { mode: 0o644 });
    writeFileSync(path.join(ws.src, 'pub', 'open.txt'), 'open to all\n', { mode: 0o644 });
    writeFileSync(path.join(ws.src, 'unruled.txt'), 'no rule here\n', { mode: 0o644 });
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    writeFileSync(path.join(ws.src, 'big.bin'), big, { mode: 0o644 });
    // Only ever read by the revocation test: none of its data is in the page
    // cache, which (by default) may serve what was read before a revoke.
    writeFileSync(path.join(ws.src, 'held.bin'), big, { mode: 0o644 });
    writeFileSync(path.join(ws.src, 'trunc.txt'), 'keep me\n');
    // World-writable, so Unix permissions let everyone through and only the
    // rules stand between a caller and the truncation.
    chmodSync(path.join(ws.src, 'trunc.txt'), 0o666);
    await importRules(ws.db, RULES);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  const m = (p: string): string => path.join(ws.mnt, p);

  it('serves the exact bytes of an allowed file', async () => {
    const res = await runAs(ALICE, 'cat', [m('docs/a.txt')]);
    expect(res).toMatchObject({ code: 0, stdout: 'alpha\n' });
    const bigRead = await runAs(ALICE, 'sha256sum', [m('big.bin')]);
    const plain = await run('sha256sum', [path.join(ws.src, 'big.bin')]);
    expect(bigRead.stdout.split(' ')[0]).toBe(plain.stdout.split(' ')[0]);
  });

  it('denies an open with EACCES ("Permission denied")', async () => {
    const res = await runAs(BOB, 'cat', [m('docs/a.txt')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('Permission denied');
    expect(res.stdout).toBe('');
  });

  it('decides per caller: user entry, defaccess and the default policy', async () => {
    expect((await runAs(ALICE, 'cat', [m('docs/secret.txt')])).stdout).toBe('the secret\n');
    expect((await runAs(CAROL, 'cat', [m('docs/secret.txt')])).stderr).toContain('Permission denied');
    // No rule governs /unruled.txt and the default policy is deny, for root too.
    expect((await runAs(ALICE, 'cat', [m('unruled.txt')])).stderr).toContain('Permission denied');
    expect((await run('cat', [m('unruled.txt')])).stderr).toContain('Permission denied');
    // Owner 0 gets rwx through its rule.
    expect((await run('cat', [m('docs/secret.txt')])).stdout).toBe('the secret\n');
  });

  it('honours group entries through the primary and the supplementary groups', async () => {
    expect((await runAs(CAROL, 'cat', [m('docs/team.txt')])).stderr).toContain('Permission denied');
    expect((await runAs(CAROL_IN_TEAM, 'cat', [m('docs/team.txt')])).stdout).toBe('team notes\n');
    expect((await runAs(CAROL_PRIMARY_TEAM, 'cat', [m('docs/team.txt')])).stdout).toBe('team notes\n');
  });

  it('gates listing a directory on r', async () => {
    const alice = await runAs(ALICE, 'ls', ['-a', m('docs')]);
    expect(alice.code).toBe(0);
    expect(alice.stdout.split('\n').filter(Boolean).sort()).toEqual(['.', '..', 'a.txt', 'secret.txt', 'team.txt']);
    const bob = await runAs(BOB, 'ls', [m('docs')]);
    expect(bob.code).not.toBe(0);
    expect(bob.stderr).toContain('Permission denied');
  });

  it('decides O_TRUNC before anything is truncated', async () => {
    const file = m('trunc.txt');
    const denied = await runAs(CAROL, 'sh', ['-c', `: > "${file}"`]);
    expect(denied.stderr).toContain('Permission denied');
    expect(readFileSync(path.join(ws.src, 'trunc.txt'), 'utf8')).toBe('keep me\n');
    const allowed = await runAs(ALICE, 'sh', ['-c', `: > "${file}"`]);
    expect(allowed).toMatchObject({ code: 0, stderr: '' });
    expect(statSync(path.join(ws.src, 'trunc.txt')).size).toBe(0);
  });

  it('keeps a denied file denied through a hard link made under an allowed directory', async () => {
    linkSync(path.join(ws.src, 'docs', 'secret.txt'), path.join(ws.src, 'pub', 'link.txt'));
    expect((await runAs(CAROL, 'cat', [m('pub/open.txt')])).stdout).toBe('open to all\n');
    expect((await runAs(CAROL, 'cat', [m('pub/link.txt')])).stderr).toContain('Permission denied');
    expect((await runAs(ALICE, 'cat', [m('pub/link.txt')])).stdout).toBe('the secret\n');
  });

  it('keeps a denied file denied after it is renamed behind the mount', async () => {
    renameSync(path.join(ws.src, 'docs', 'team.txt'), path.join(ws.src, 'pub', 'moved.txt'));
    expect((await runAs(CAROL, 'cat', [m('pub/moved.txt')])).stderr).toContain('Permission denied');
    expect((await runAs(CAROL_IN_TEAM, 'cat', [m('pub/moved.txt')])).stdout).toBe('team notes\n');
  });

  it('applies a rule written to the database while mounted at the next open', async () => {
    expect((await runAs(ALICE, 'cat', [m('docs/a.txt')])).stdout).toBe('alpha\n');
    await importRules(ws.db, { version: 1, rules: [{ path: '/docs/a.txt', owner: 0, defaccess: '---', acl: [] }] });
    expect((await runAs(ALICE, 'cat', [m('docs/a.txt')])).stderr).toContain('Permission denied');
    await importRules(ws.db, {
      version: 1,
      rules: [{ path: '/docs/a.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] }],
    });
    expect((await runAs(ALICE, 'cat', [m('docs/a.txt')])).stdout).toBe('alpha\n');
  });

  it('re-checks an open file at its next read once the rules changed', async () => {
    const { holder, first } = await FileHolder.open(ALICE, m('held.bin'), 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect(await holder.send(`${2 * 1024 * 1024}`)).toEqual({ ok: true, bytes: 4096 });
      await importRules(ws.db, { version: 1, rules: [{ path: '/held.bin', owner: 0, defaccess: '---', acl: [] }] });
      // Far from anything read so far, so not in the page cache: the read
      // reaches the daemon, which sees the new generation.
      expect(await holder.send(`${6 * 1024 * 1024}`)).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
    }
  });
});

describeWithFuse('mount lifecycle', () => {
  let ws: Workspace;
  const daemons: Daemon[] = [];

  beforeAll(() => {
    requireFuse();
    ws = makeWorkspace();
    writeFileSync(path.join(ws.src, 'f.txt'), 'hello\n', { mode: 0o644 });
  });

  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.ensureStopped();
  });

  afterAll(() => ws?.cleanup());

  const start = async (extra: string[] = []): Promise<Daemon> => {
    const d = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, ...extra], ws.mnt);
    daemons.push(d);
    return d;
  };

  it('unmounts cleanly on SIGTERM and on SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const d = await start();
      expect(isMounted(ws.mnt)).toBe(true);
      expect(await d.stop(signal)).toBe(0);
      expect(isMounted(ws.mnt)).toBe(false);
    }
  });

  it('serves everything with --default allow when no rule governs', async () => {
    await start(['--default', 'allow']);
    expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'f.txt')])).stdout).toBe('hello\n');
  });

  it('clears a stale mount left by a crashed daemon', async () => {
    const crashed = await start();
    crashed.child.kill('SIGKILL');
    await waitFor(() => crashed.child.exitCode !== null || crashed.child.signalCode !== null, 5000, 'daemon to die');
    // The kernel still lists the mount, but it answers ENOTCONN.
    expect(isMounted(ws.mnt)).toBe(true);
    const res = await run('stat', [ws.mnt]);
    expect(res.stderr).toContain('Transport endpoint is not connected');
    await start(['--default', 'allow']);
    expect((await run('cat', [path.join(ws.mnt, 'f.txt')])).stdout).toBe('hello\n');
  });

  it('refuses a live FUSE mount at the mountpoint, covers any other mount', async () => {
    const first = await start(['--default', 'allow']);
    const second = await aclfs(['mount', ws.src, ws.mnt, '--db', ws.db, '--socket', path.join(ws.dir, 'run2', 'sock')]);
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(/already a FUSE mountpoint/);
    expect(await first.stop()).toBe(0);
    // A bind mount (e.g. one made shared so the host sees the view) is
    // covered like mount(8) would, and uncovered again at unmount.
    expect((await run('mount', ['--bind', ws.mnt, ws.mnt])).code).toBe(0);
    try {
      await start(['--default', 'allow']);
      expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'f.txt')])).stdout).toBe('hello\n');
    } finally {
      for (const d of daemons.splice(0)) await d.ensureStopped();
      await run('umount', [ws.mnt]);
    }
  });

  it('refuses a mountpoint inside the source', async () => {
    mkdirSync(path.join(ws.src, 'inner'), { recursive: true });
    const res = await aclfs(['mount', ws.src, path.join(ws.src, 'inner'), '--db', ws.db]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain('must not contain each other');
  });
});
