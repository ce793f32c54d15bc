// End to end: an administrator changes a rule with the CLI over the admin
// socket, and the very next open through the mount by that user follows it
// (no wait: the decision cache is keyed on the store generation).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { httpUnix } from '../helpers/admin';
import { aclfs, Daemon, makeWorkspace, requireFuse, runAs, type Identity, type Workspace } from '../helpers/mounts';

const ALICE: Identity = { uid: 2001, gid: 2001 };
const BOB: Identity = { uid: 2002, gid: 2002 };

let ws: Workspace;
let daemon: Daemon;

async function cli(args: string[]): Promise<void> {
  const res = await aclfs([...args, '--socket', ws.socket]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
}

const cat = (who: Identity, rel: string) => runAs(who, 'cat', [path.join(ws.mnt, rel)]);
const append = (who: Identity, rel: string, text: string) => runAs(who, 'sh', ['-c', `printf '%s' '${text}' >> "${path.join(ws.mnt, rel)}"`]);

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-e2e-');
  fs.mkdirSync(path.join(ws.src, 'docs'), { mode: 0o755 });
  fs.writeFileSync(path.join(ws.src, 'docs', 'a.txt'), 'alpha\n');
  fs.chmodSync(path.join(ws.src, 'docs', 'a.txt'), 0o666);
  daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  await cli(['rule', 'add', '/docs', '--owner', '0', '--default', 'r--', '--recursive']);
});

afterAll(async () => {
  await daemon?.ensureStopped();
  ws?.cleanup();
});

describeWithFuse('rule changes over the admin socket reach the mount at once', () => {
  it('rule set revokes, grants per user, and rule rm falls back to the ancestor rule, each at the next open', async () => {
    expect(await cat(ALICE, 'docs/a.txt')).toMatchObject({ code: 0, stdout: 'alpha\n' });
    expect(await cat(BOB, 'docs/a.txt')).toMatchObject({ code: 0, stdout: 'alpha\n' });

    await cli(['rule', 'set', '/docs/a.txt', '--owner', '0', '--default', '---']);
    expect((await cat(ALICE, 'docs/a.txt')).stderr).toContain('Permission denied');
    expect((await cat(BOB, 'docs/a.txt')).stderr).toContain('Permission denied');

    await cli(['rule', 'set', '/docs/a.txt', '--owner', '0', '--default', '---', '--user', `${ALICE.uid}:r--`]);
    expect(await cat(ALICE, 'docs/a.txt')).toMatchObject({ code: 0, stdout: 'alpha\n' });
    expect((await cat(BOB, 'docs/a.txt')).stderr).toContain('Permission denied');

    await cli(['rule', 'rm', '/docs/a.txt']);
    expect(await cat(BOB, 'docs/a.txt')).toMatchObject({ code: 0, stdout: 'alpha\n' });
  });

  it('grants and revokes write access the same way', async () => {
    const denied = await append(ALICE, 'docs/a.txt', 'x');
    expect(denied.stderr).toContain('Permission denied');
    await cli(['rule', 'set', '/docs/a.txt', '--owner', '0', '--default', 'r--', '--user', `${ALICE.uid}:rw-`]);
    expect(await append(ALICE, 'docs/a.txt', 'x')).toMatchObject({ code: 0, stderr: '' });
    expect(fs.readFileSync(path.join(ws.src, 'docs', 'a.txt'), 'utf8')).toBe('alpha\nx');
    await cli(['rule', 'set', '/docs/a.txt', '--owner', '0', '--default', 'r--']);
    expect((await append(ALICE, 'docs/a.txt', 'y')).stderr).toContain('Permission denied');
    expect(fs.readFileSync(path.join(ws.src, 'docs', 'a.txt'), 'utf8')).toBe('alpha\nx');
  });

  it('a raw PUT on the API (as curl would send it) takes effect the same way, and check agrees with the mount', async () => {
    const id = JSON.parse((await aclfs(['rule', 'show', '/docs/a.txt', '--json', '--socket', ws.socket])).stdout).id as number;
    const put = await httpUnix(ws.socket, 'PUT', `/v1/rules/${id}`, {
      body: JSON.stringify({ path: '/docs/a.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] }),
    });
    expect(put.status).toBe(200);
    expect((await cat(ALICE, 'docs/a.txt')).stderr).toContain('Permission denied');
    expect((await cat(BOB, 'docs/a.txt')).stdout).toBe('alpha\nx');
    for (const [who, expected] of [
      [ALICE, 1],
      [BOB, 0],
    ] as const) {
      const check = await aclfs(['check', '--uid', String(who.uid), '--gid', String(who.gid), '--groups', '', '--access', 'r', '/docs/a.txt', '--socket', ws.socket]);
      expect(check.code).toBe(expected);
      // The rule is bound to the file, and check finds it by inode as the mount does.
      expect(check.stdout).toMatch(new RegExp(`rule ${id} \\(/docs/a.txt, by (inode|path)\\)`));
    }
    const st = JSON.parse((await aclfs(['status', '--json', '--socket', ws.socket])).stdout);
    expect(st.decisions.denied).toBeGreaterThan(0);
    expect(st.decisions.allowed).toBeGreaterThan(0);
  });

  it('removes the socket when the daemon stops', async () => {
    expect(fs.lstatSync(ws.socket).isSocket()).toBe(true);
    expect(await daemon.stop()).toBe(0);
    expect(fs.existsSync(ws.socket)).toBe(false);
    const res = await aclfs(['status', '--socket', ws.socket]);
    expect(res.code).toBe(6);
  });
});
