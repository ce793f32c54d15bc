// Expiring acl entries on a real mount: an entry grants until its time and
// not after, for a new open, for an open the fast path replays in C, and
// for a handle already open (its next read that misses the page cache).
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, aclfs, Daemon, FileHolder, makeWorkspace, pyAs, requireFuse, PY_OPEN_FOR_READING, type Workspace } from '../helpers/mounts';

const OPEN = PY_OPEN_FOR_READING;

describeWithFuse('expiring acl entries', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    chmodSync(ws.src, 0o777);
    writeFileSync(path.join(ws.src, 'f.bin'), Buffer.alloc(2 * 1024 * 1024, 7), { mode: 0o644 });
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  async function fastOpens(): Promise<number> {
    const res = await aclfs(['status', '--json', '--socket', ws.socket]);
    return (JSON.parse(res.stdout) as { fastPath: { opens: number } }).fastPath.opens;
  }

  it('grants before the expiry and not after: new opens, opens replayed in C, open handles', async () => {
    const file = path.join(ws.mnt, 'f.bin');
    const expires = new Date(Date.now() + 4000);
    const added = await aclfs(['rule', 'add', '/f.bin', '--owner', '0', '--default', '---', '--user', `${ALICE.uid}:r--`, '--until', expires.toISOString(), '--socket', ws.socket]);
    expect(added.code, added.stderr).toBe(0);
    const shown = await aclfs(['rule', 'show', '/f.bin', '--socket', ws.socket]);
    expect(shown.stdout).toContain(`user ${ALICE.uid} r-- until ${expires.toISOString()}`);

    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');
    const replayed = await fastOpens();
    expect(await pyAs(ALICE, OPEN, file)).toBe('ok');
    expect(await fastOpens()).toBeGreaterThan(replayed);
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      await new Promise((r) => setTimeout(r, Math.max(0, expires.getTime() - Date.now()) + 800));
      const before = await fastOpens();
      expect(await pyAs(ALICE, OPEN, file)).toBe('EACCES');
      expect(await pyAs(ALICE, OPEN, file)).toBe('EACCES');
      expect(await fastOpens()).toBe(before);
      // The open handle, at its next read that misses the page cache.
      expect(await holder.send(String(1900 * 1024))).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
    }
    const after = await aclfs(['rule', 'show', '/f.bin', '--socket', ws.socket]);
    expect(after.stdout).toContain(`user ${ALICE.uid} r-- expired ${expires.toISOString()} (grants nothing)`);
    expect(daemon.stderr).toContain('acl entries expired: decided again from now on');
  });
});
