// FUSE passthrough (--data passthrough): after an allowed open the kernel
// reads and writes the backing file itself. Each test proves on a real
// mount that the data is the backing file's, byte for byte, whatever is
// done to it; that a revoke stops new opens at once while a handle opened
// before keeps its access (decided at open, as documented); that a
// revocable rule's files are never served by passthrough, so a revoke
// stops their open handles; and that a kernel refusing passthrough leaves
// a mount that serves through the daemon and says so.
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, BOB, aclfs, Daemon, FileHolder, importRules, makeWorkspace, pyAs, requireFuse, runAs, waitFor, PY_OPEN_FOR_READING, type Workspace } from '../helpers/mounts';

interface DataPathView {
  requested: string;
  mode: string;
  refusal: string | null;
  passthroughOpens: number;
  registrations: number;
  passthroughMinSize: number;
}

interface StatusView {
  dataPath: DataPathView;
  fastPath: { opens: number; reads: number; writes: number };
}

async function status(ws: Workspace): Promise<StatusView> {
  const res = await aclfs(['status', '--json', '--socket', ws.socket]);
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as StatusView;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const py = pyAs;

const OPEN = PY_OPEN_FOR_READING;

/**
 * Every way of changing a file's data, through the mount (argv[1], a new
 * file), mirrored in an in-memory model: creating and writing, appending,
 * writing in the middle, truncating shorter and longer, writing through a
 * shared mapping, O_DIRECT writes and reads, fsync; a second handle that
 * only reads sees each change at once. Prints the model's sha256 and
 * whether every read through the mount matched it.
 */
const MUTATE = `
import hashlib, mmap, os, sys
name = sys.argv[1]
model = bytearray()
mismatches = []
def check(what, fd):
    os.lseek(fd, 0, os.SEEK_SET)
    got = b''
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk: break
        got += chunk
    if got != bytes(model): mismatches.append(what)
def pattern(n, seed):
    return bytes((i * 7 + seed) % 251 for i in range(n))
w = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
data = pattern(300000, 1)
os.write(w, data); model[:] = data
r = os.open(name, os.O_RDONLY)
check('write', r)
a = os.open(name, os.O_WRONLY | os.O_APPEND)
more = pattern(5000, 2)
os.write(a, more); model += more
os.close(a)
check('append', r)
mid = pattern(12345, 3)
os.pwrite(w, mid, 100000); model[100000:100000 + len(mid)] = mid
check('pwrite', r)
os.ftruncate(w, 200000); del model[200000:]
check('truncate shorter', r)
os.ftruncate(w, 250000); model += bytes(50000)
check('truncate longer', r)
m = mmap.mmap(w, 0)
m[4096:4096 + 11] = b'hello, mmap'; model[4096:4096 + 11] = b'hello, mmap'
m.flush()
if m[0:len(model)] != bytes(model): mismatches.append('mmap read')
m.close()
check('mmap write', r)
d = os.open(name, os.O_RDWR | os.O_DIRECT)
block = mmap.mmap(-1, 8192)
block.write(pattern(8192, 4))
os.pwritev(d, [block], 8192); model[8192:16384] = pattern(8192, 4)
back = mmap.mmap(-1, 8192)
os.preadv(d, [back], 8192)
if back[:] != pattern(8192, 4): mismatches.append('O_DIRECT read')
os.close(d)
check('O_DIRECT write', r)
os.fsync(w)
os.close(w)
os.close(r)
print(hashlib.sha256(bytes(model)).hexdigest(), ','.join(mismatches) or 'none')
`;

const BIG = Buffer.alloc(2 * 1024 * 1024);
for (let off = 0; off + 4 <= BIG.length; off += 4) BIG.writeUInt32LE(off ^ 0x5a5a5a5a, off);

const ROOT_RULE = { path: '/', recursive: true, owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] };
const REVOCABLE_RULE = { path: '/revocable.bin', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }], revocable: true };

function setupFiles(ws: Workspace): void {
  for (const name of ['big.bin', 'kept.bin', 'revocable.bin', 'shared.bin']) {
    writeFileSync(path.join(ws.src, name), BIG);
    chmodSync(path.join(ws.src, name), 0o666);
  }
  chmodSync(ws.src, 0o777);
}

describeWithFuse('FUSE passthrough (--data passthrough)', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    setupFiles(ws);
    await importRules(ws.db, [ROOT_RULE, REVOCABLE_RULE]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny', '--data', 'passthrough'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('serves allowed opens by passthrough, says so, and its reads never reach the daemon', async () => {
    const before = await status(ws);
    expect(before.dataPath).toMatchObject({ requested: 'passthrough', mode: 'passthrough', refusal: null });
    await waitFor(() => daemon.stderr.includes('file data served by FUSE passthrough'), 5000, 'the data path logged');
    const file = path.join(ws.mnt, 'big.bin');
    for (let i = 0; i < 3; i++) {
      const res = await runAs(ALICE, 'sha256sum', [file]);
      expect(res.stdout.split(' ')[0]).toBe(sha256(BIG));
    }
    const after = await status(ws);
    expect(after.dataPath.passthroughOpens - before.dataPath.passthroughOpens).toBe(3);
    expect(after.fastPath.reads).toBe(before.fastPath.reads);
    const text = await aclfs(['status', '--socket', ws.socket]);
    expect(text.stdout).toMatch(/file data +passthrough \(decided at open/);
  });

  it('keeps the data the backing file has through writes, appends, truncates, mmap, O_DIRECT and fsync', async () => {
    const before = await status(ws);
    const [modelSum, mismatches] = (await py(ALICE, MUTATE, path.join(ws.mnt, 'made.bin'))).split(' ');
    expect(mismatches).toBe('none');
    expect(sha256(readFileSync(path.join(ws.src, 'made.bin')))).toBe(modelSum);
    const after = await status(ws);
    // The create and the opens after it, all by passthrough.
    expect(after.dataPath.passthroughOpens - before.dataPath.passthroughOpens).toBeGreaterThanOrEqual(4);
  });

  it('shows a change made behind the mount to a file open by passthrough', async () => {
    const { holder, first } = await FileHolder.open(ALICE, path.join(ws.mnt, 'shared.bin'), 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      writeFileSync(path.join(ws.src, 'shared.bin'), Buffer.alloc(4096, 0x41), { flag: 'r+' });
      const res = await runAs(ALICE, 'head', ['-c', '4', path.join(ws.mnt, 'shared.bin')]);
      expect(res.stdout).toBe('AAAA');
    } finally {
      holder.close();
    }
  });

  it('gives a read-only passthrough handle no way to write: write, shared writable mapping, and the backing file stays as it was', async () => {
    await importRules(ws.db, [{ path: '/kept.bin', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] }]);
    try {
      const before = await status(ws);
      const out = await py(
        ALICE,
        `import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
res = []
for attempt in (lambda: os.write(fd, b'x'), lambda: mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)):
    try:
        attempt()
        res.append('ok')
    except OSError as e:
        res.append(errno.errorcode[e.errno])
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    res.append('ok')
except OSError as e:
    res.append(errno.errorcode[e.errno])
os.close(fd)
print(' '.join(res))`,
        path.join(ws.mnt, 'kept.bin'),
      );
      expect(out).toBe('EBADF EACCES EACCES');
      expect((await status(ws)).dataPath.passthroughOpens).toBeGreaterThan(before.dataPath.passthroughOpens);
      expect(sha256(readFileSync(path.join(ws.src, 'kept.bin')))).toBe(sha256(BIG));
    } finally {
      expect((await aclfs(['rule', 'rm', '/kept.bin', '--db', ws.db])).code).toBe(0);
    }
  });

  it('never serves an open that only permissive mode let through by passthrough: back to enforce, its next uncached read is refused', async () => {
    const file = path.join(ws.mnt, 'kept.bin');
    expect((await aclfs(['mode', 'permissive', '--socket', ws.socket])).code).toBe(0);
    const before = await status(ws);
    const { holder, first } = await FileHolder.open(BOB, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect((await status(ws)).dataPath.passthroughOpens).toBe(before.dataPath.passthroughOpens);
      expect((await aclfs(['mode', 'enforce', '--socket', ws.socket])).code).toBe(0);
      expect(await holder.send(String(1900 * 1024))).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
      await aclfs(['mode', 'enforce', '--socket', ws.socket]);
    }
  });

  it('decides at open: a revoke stops new opens at once, a handle opened before keeps reading', async () => {
    const file = path.join(ws.mnt, 'kept.bin');
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      await importRules(ws.db, [{ path: '/kept.bin', owner: 0, defaccess: '---', acl: [] }]);
      expect(await py(ALICE, OPEN, file)).toBe('EACCES');
      // Documented: the kernel reads the backing file itself; the daemon
      // never sees this read, far beyond anything read or read ahead.
      expect(await holder.send(String(1900 * 1024))).toEqual({ ok: true, bytes: 4096 });
    } finally {
      holder.close();
      expect((await aclfs(['rule', 'rm', '/kept.bin', '--db', ws.db])).code).toBe(0);
    }
  });

  it("serves a revocable rule's files through the daemon: a revoke stops an open handle at its next uncached read", async () => {
    const file = path.join(ws.mnt, 'revocable.bin');
    const before = await status(ws);
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect((await status(ws)).dataPath.passthroughOpens).toBe(before.dataPath.passthroughOpens);
      await importRules(ws.db, [{ ...REVOCABLE_RULE, acl: [] }]);
      expect(await holder.send(String(1900 * 1024))).toEqual({ ok: false, code: 'EACCES' });
      expect(await py(ALICE, OPEN, file)).toBe('EACCES');
    } finally {
      holder.close();
      await importRules(ws.db, [REVOCABLE_RULE]);
    }
  });

  it('refuses an open that must go through the daemon while its file is open by passthrough (EBUSY), until it is closed', async () => {
    const file = path.join(ws.mnt, 'shared.bin');
    const { holder, first } = await FileHolder.open(ALICE, file, 'r');
    let open = true;
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      // Still allowed, now revocable: its opens may no longer be passthrough.
      await importRules(ws.db, [{ ...REVOCABLE_RULE, path: '/shared.bin' }]);
      expect(await py(ALICE, OPEN, file)).toBe('EBUSY');
      holder.close();
      open = false;
      // The kernel sends RELEASE once the holder has gone.
      let got = '';
      for (let i = 0; i < 100 && got !== 'ok'; i++) {
        got = await py(ALICE, OPEN, file);
        if (got !== 'ok') await new Promise((r) => setTimeout(r, 50));
      }
      expect(got).toBe('ok');
    } finally {
      if (open) holder.close();
      expect((await aclfs(['rule', 'rm', '/shared.bin', '--db', ws.db])).code).toBe(0);
    }
  });

  it('reads a small file opened read-only through the daemon; opened for writing it is passthrough, and a read-only open then joins it', async () => {
    const small = Buffer.from('small file, read through the daemon\n'.repeat(100));
    writeFileSync(path.join(ws.src, 'small.txt'), small);
    chmodSync(path.join(ws.src, 'small.txt'), 0o666);
    const file = path.join(ws.mnt, 'small.txt');
    const before = await status(ws);
    for (let i = 0; i < 3; i++) expect((await runAs(ALICE, 'cat', [file])).stdout).toBe(small.toString());
    const afterReads = await status(ws);
    expect(afterReads.dataPath.passthroughMinSize).toBe(64 * 1024);
    expect(afterReads.dataPath.passthroughOpens).toBe(before.dataPath.passthroughOpens);
    const text = await aclfs(['status', '--socket', ws.socket]);
    expect(text.stdout).toMatch(/file data +passthrough \(.*files under 64K opened read-only through the daemon\)/);
    // A writer's open is passthrough; a read-only open while it is open
    // joins its registration (not EBUSY) and sees what it wrote.
    const seen = await py(
      ALICE,
      `import os, sys
w = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(w, b'WRITTEN', 0)
r = os.open(sys.argv[1], os.O_RDONLY)
print(os.read(r, 7).decode())
os.close(r)
os.close(w)`,
      file,
    );
    expect(seen).toBe('WRITTEN');
    expect((await status(ws)).dataPath.passthroughOpens - afterReads.dataPath.passthroughOpens).toBe(2);
    expect(readFileSync(path.join(ws.src, 'small.txt')).subarray(0, 7).toString()).toBe('WRITTEN');
  });

  it('refuses --data passthrough with --revoke immediate (a usage error)', async () => {
    const res = await aclfs(['mount', ws.src, path.join(ws.dir, 'unused'), '--data', 'passthrough', '--revoke', 'immediate']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--data passthrough.*--revoke immediate/);
  });
});

describeWithFuse('FUSE passthrough refused by the kernel (simulated)', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    setupFiles(ws);
    await importRules(ws.db, [ROOT_RULE]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--data', 'passthrough'], ws.mnt, {
      wrapper: ['env', 'ACLFS_SIMULATE_NO_PASSTHROUGH=1'],
    });
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('mounts, logs one line why, serves through the daemon and says so in status', async () => {
    await waitFor(() => daemon.stderr.includes('passthrough refused'), 5000, 'the refusal logged');
    const refusals = daemon.stderr.split('\n').filter((l) => l.includes('passthrough refused'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toContain('does not offer FUSE passthrough');
    const res = await runAs(ALICE, 'sha256sum', [path.join(ws.mnt, 'big.bin')]);
    expect(res.stdout.split(' ')[0]).toBe(sha256(BIG));
    const st = await status(ws);
    expect(st.dataPath).toMatchObject({ requested: 'passthrough', mode: 'daemon', passthroughOpens: 0, registrations: 0 });
    expect(st.dataPath.refusal).toContain('simulated');
    const text = await aclfs(['status', '--socket', ws.socket]);
    expect(text.stdout).toMatch(/file data +daemon \(passthrough refused: /);
  });
});
