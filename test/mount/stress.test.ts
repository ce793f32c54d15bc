// 8 parallel readers, some allowed and some denied, for 20 s against one
// daemon: no wrong answer, and the daemon's RSS stays flat (libfuse starts
// and ends worker threads under such load; the patched binding must not
// leak per thread).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, Daemon, makeWorkspace, requireFuse, setprivArgs, type Identity, type Workspace } from '../helpers/mounts';

const DURATION_MS = 20_000;
const FIRST_SAMPLE_MS = 2_000;

interface ReaderResult {
  ops: number;
  right: number;
  wrong: number;
  samples: string[];
}

function reader(who: Identity, file: string, expect: 'allow' | 'deny', expectedHex: string): Promise<ReaderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      [...setprivArgs(who), process.execPath, path.join(__dirname, '..', 'fixtures', 'reader-loop.js'), file, expect, String(DURATION_MS), expectedHex],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`reader exited ${String(code)}: ${err}`));
      resolve(JSON.parse(out) as ReaderResult);
    });
  });
}

describeWithFuse('stress: parallel readers', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    for (let i = 0; i < 4; i++) writeFileSync(path.join(ws.src, `f${i}.txt`), `content of file ${i}\n`.repeat(100), { mode: 0o644 });
    const rules = {
      version: 1,
      rules: [0, 1, 2, 3].map((i) => ({
        path: `/f${i}.txt`,
        owner: 0,
        defaccess: '---',
        acl: [{ user: 2100 + i, access: 'r--' }],
      })),
    };
    const res = await aclfs(['import', '-', '--db', ws.db], { input: JSON.stringify(rules) });
    expect(res.code).toBe(0);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it(
    'gives zero wrong answers and keeps RSS within 20% over 20 s',
    async () => {
      const jobs: Promise<ReaderResult>[] = [];
      for (let i = 0; i < 8; i++) {
        const file = i % 4;
        const hex = Buffer.from(`content of file ${file}\n`.repeat(100)).toString('hex');
        // Even readers are the file's allowed user, odd ones someone else.
        const allowed = i % 2 === 0;
        const who: Identity = allowed ? { uid: 2100 + file, gid: 2100 + file } : { uid: 2200 + i, gid: 2200 + i };
        jobs.push(reader(who, path.join(ws.mnt, `f${file}.txt`), allowed ? 'allow' : 'deny', hex));
      }
      await new Promise((r) => setTimeout(r, FIRST_SAMPLE_MS));
      const rssEarly = daemon.rssKiB();
      const results = await Promise.all(jobs);
      const rssLate = daemon.rssKiB();
      const total = results.reduce((a, r) => a + r.ops, 0);
      const wrong = results.reduce((a, r) => a + r.wrong, 0);
      const status = await aclfs(['status', '--json', '--socket', ws.socket]);
      const workers = (JSON.parse(status.stdout) as { workerLocals: { created: number; idle: number } }).workerLocals;
      console.log(
        `stress: ${total} ops, ${wrong} wrong, RSS ${rssEarly} KiB at 2 s -> ${rssLate} KiB at 20 s, ` +
          `worker thread slots made ${workers.created} (${workers.idle} idle)`,
      );
      expect(results.flatMap((r) => r.samples)).toEqual([]);
      expect(wrong).toBe(0);
      expect(total).toBeGreaterThan(1000);
      expect(rssLate).toBeLessThanOrEqual(rssEarly * 1.2);
      // libfuse starts and ends worker threads all along; their per-thread
      // state is reused, so it is bounded by the most threads alive at once
      // (libfuse 2 keeps at most 10 idle), not by how many came and went.
      expect(workers.created).toBeLessThanOrEqual(64);
    },
    DURATION_MS + 30_000,
  );
});
