// The durable audit log (src/store/auditLog.ts) over a real LMDB environment
// in a temporary directory, with an injected clock and process facts:
// numbering and every field, restarts, the count and age bounds, queries
// against a plain filter over the list (a model), and a slow or failing
// disk (an injected backend).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditFilter, DetailedAuditRecord } from '../../src/rules/audit';
import { DurableAuditLog, LmdbAuditBackend, type AuditBackend, type AuditLogOptions } from '../../src/store/auditLog';

let dir: string;
const opened: DurableAuditLog[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-auditlog-'));
});

afterEach(async () => {
  for (const log of opened.splice(0)) await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A clock the test moves. */
function testClock(): { now: () => number; advance: (ms: number) => void } {
  let t = T0;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function openLog(options: Partial<AuditLogOptions> = {}, where = dir): DurableAuditLog {
  const log = new DurableAuditLog({
    backend: LmdbAuditBackend.open(where),
    processFacts: (pid) => ({ program: `/bin/prog${pid}`, cmdline: `prog${pid} --flag` }),
    flushIntervalMs: 60_000,
    ...options,
  });
  opened.push(log);
  return log;
}

/** Writes everything queued (the timer would, every flush interval). */
async function drain(log: DurableAuditLog): Promise<void> {
  for (let i = 0; i < 1000 && log.stats().queued > 0; i++) {
    log.flush();
    await log.settled();
  }
}

/** The model: each filter field written out plainly. */
function modelMatches(r: DetailedAuditRecord, f: AuditFilter): boolean {
  const t = Date.parse(r.time);
  const under = (p: string, prefix: string): boolean => prefix === '/' || p === prefix || p.startsWith(`${prefix}/`);
  return (
    (f.since === undefined || t >= f.since) &&
    (f.until === undefined || t < f.until) &&
    (f.uid === undefined || r.uid === f.uid) &&
    (f.path === undefined || under(r.path, f.path)) &&
    (f.decision === undefined || r.decision === f.decision) &&
    (f.op === undefined || r.op === f.op) &&
    (f.rule === undefined || r.rule === f.rule)
  );
}

const entry = (n: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  op: 'open',
  path: `/docs/f${n}`,
  uid: 1000 + (n % 3),
  gid: 100,
  groups: [100, 200],
  pid: 4000 + n,
  file: { dev: 64, ino: 9000 + n },
  access: 'r--',
  decision: 'deny',
  enforced: true,
  rule: 7,
  rulePath: '/docs',
  entry: 'defaccess:---',
  epoch: 12,
  reason: `deny: record ${n}`,
  ...over,
});

describe('DurableAuditLog', () => {
  it('numbers from 1, stamps its clock, reads program and cmdline, and keeps every field', async () => {
    const clock = testClock();
    const log = openLog({ clock: clock.now });
    expect(log.append(entry(1))).toBe(1);
    clock.advance(1500);
    expect(log.append(entry(2, { decision: 'allow', enforced: false, entry: 'user:1001:r--' }))).toBe(2);
    const expected: DetailedAuditRecord = {
      seq: 1,
      time: '2026-01-01T00:00:00.000Z',
      op: 'open',
      path: '/docs/f1',
      uid: 1001,
      gid: 100,
      groups: [100, 200],
      pid: 4001,
      program: '/bin/prog4001',
      cmdline: 'prog4001 --flag',
      file: { dev: 64, ino: 9001 },
      access: 'r--',
      decision: 'deny',
      enforced: true,
      rule: 7,
      rulePath: '/docs',
      entry: 'defaccess:---',
      epoch: 12,
      reason: 'deny: record 1',
    };
    // Found before it is written (the queue), and after.
    expect(log.since(0, 10).records[0]).toEqual(expected);
    await drain(log);
    const { records, next } = log.since(0, 10);
    expect(records[0]).toEqual(expected);
    expect(records[1]).toMatchObject({ seq: 2, time: '2026-01-01T00:00:01.500Z', decision: 'allow', enforced: false, entry: 'user:1001:r--' });
    expect(next).toBe(2);
    expect(log.stats()).toMatchObject({ queued: 0, dropped: 0, written: 2, failed: 0, records: 2, newest: 2 });
  });

  it('takes an entry of the first shape (core fields only): the rest unknown, a denial', async () => {
    const log = openLog({ processFacts: () => ({ program: null, cmdline: null }) });
    log.append({ op: 'read', path: '/a', uid: 1, gid: 2, pid: 3, access: 'r--', enforced: false, rule: null, reason: 'would deny' });
    await drain(log);
    expect(log.since(0, 1).records[0]).toMatchObject({
      op: 'read',
      groups: null,
      program: null,
      cmdline: null,
      file: null,
      decision: 'deny',
      enforced: false,
      rule: null,
      rulePath: null,
      entry: null,
      epoch: null,
      reason: 'would deny',
    });
  });

  it('tells each follower every record once it is complete, within a turn of the event loop', async () => {
    const log = openLog();
    const got: DetailedAuditRecord[] = [];
    const off = log.subscribe((r) => got.push(r));
    log.append(entry(1));
    log.append(entry(2));
    expect(got).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(got.map((r) => [r.seq, r.program])).toEqual([
      [1, '/bin/prog4001'],
      [2, '/bin/prog4002'],
    ]);
    off();
    log.append(entry(3));
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(2);
  });

  it('survives a restart: the records stay and seq continues from the newest stored', async () => {
    const first = openLog();
    for (let n = 1; n <= 5; n++) first.append(entry(n));
    await first.close();
    opened.splice(opened.indexOf(first), 1);
    const second = openLog();
    expect(second.newest()).toBe(5);
    expect(second.stats().records).toBe(5);
    expect(second.append(entry(6))).toBe(6);
    await drain(second);
    expect(second.since(0, 100).records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(second.since(0, 100).records[0]).toMatchObject({ path: '/docs/f1', program: '/bin/prog4001' });
  });

  it('keeps at most maxRecords, dropping the oldest first', async () => {
    const log = openLog({ maxRecords: 50 });
    for (let n = 1; n <= 120; n++) {
      log.append(entry(n));
      if (n % 7 === 0) await drain(log);
    }
    await drain(log);
    expect(log.stats().records).toBe(50);
    const seqs = log.since(0, 1000).records.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i));
    // A batch larger than the bound keeps only its newest.
    for (let n = 121; n <= 300; n++) log.append(entry(n));
    await drain(log);
    expect(log.since(0, 1000).records.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 251 + i));
    expect(log.stats().records).toBe(50);
  });

  it('drops records older than maxAge, oldest first, also when nothing new is written', async () => {
    const clock = testClock();
    const log = openLog({ clock: clock.now, maxAgeMs: 10_000 });
    for (let n = 1; n <= 10; n++) {
      log.append(entry(n));
      clock.advance(1000);
    }
    await drain(log);
    expect(log.stats().records).toBe(10);
    // Now T0+10s: records 1..10 were made at T0..T0+9s. At T0+14.5s, 1..5 are older than 10 s.
    clock.advance(4500);
    log.flush();
    await log.settled();
    expect(log.since(0, 100).records.map((r) => r.seq)).toEqual([6, 7, 8, 9, 10]);
    expect(log.stats().records).toBe(5);
    clock.advance(60_000);
    log.append(entry(11));
    await drain(log);
    expect(log.since(0, 100).records.map((r) => r.seq)).toEqual([11]);
  });

  it('answers every filter exactly as a plain filter over the list does, page by page', async () => {
    const clock = testClock();
    const log = openLog({ clock: clock.now });
    const ops = ['open', 'write', 'unlink', 'admin'];
    const paths = ['/', '/docs', '/docs/a', '/docs/a/b', '/docsx', '/docs/ab', '/other/docs'];
    const all: DetailedAuditRecord[] = [];
    const rand = fc.sample(fc.tuple(fc.nat(3), fc.nat(6), fc.nat(4), fc.boolean(), fc.nat(3), fc.nat(2000)), { numRuns: 400, seed: 7 });
    for (const [i, [op, p, uid, allow, rule, dt]] of rand.entries()) {
      clock.advance(dt);
      log.append(
        entry(i, {
          op: ops[op]!,
          path: paths[p]!,
          uid,
          decision: allow ? 'allow' : 'deny',
          enforced: !allow,
          rule: rule === 0 ? null : rule,
        }),
      );
      // Half written, half still queued when queried.
      if (i === 200) await drain(log);
    }
    await new Promise((r) => setImmediate(r));
    all.push(...log.since(0, 10_000).records);
    expect(all).toHaveLength(400);
    const span = [all[0]!.time, all[399]!.time].map(Date.parse) as [number, number];
    const filters = fc.sample(
      fc.record(
        {
          since: fc.integer({ min: span[0] - 1000, max: span[1] + 1000 }),
          until: fc.integer({ min: span[0] - 1000, max: span[1] + 1000 }),
          uid: fc.nat(5),
          path: fc.constantFrom('/', '/docs', '/docs/a', '/doc', '/other'),
          decision: fc.constantFrom('allow' as const, 'deny' as const),
          op: fc.constantFrom(...ops, 'read'),
          rule: fc.integer({ min: 1, max: 4 }),
        },
        { requiredKeys: [] },
      ),
      { numRuns: 150, seed: 11 },
    );
    for (const filter of filters as AuditFilter[]) {
      const expected = all.filter((r) => modelMatches(r, filter)).map((r) => r.seq);
      // Small budgets and limits: the paging must stitch pages together exactly.
      for (const [limit, budget] of [
        [1000, 20_000],
        [7, 13],
        [3, 1000],
      ] as const) {
        const got: number[] = [];
        let after = 0;
        for (let guard = 0; guard < 10_000; guard++) {
          const page = log.query(filter, after, limit, budget);
          expect(page.records.length).toBeLessThanOrEqual(limit);
          got.push(...page.records.map((r) => r.seq));
          after = page.next;
          if (page.more !== true) break;
        }
        expect(got).toEqual(expected);
      }
    }
    // The path prefix is by whole components.
    const under = (p: string): string[] => log.query({ path: p }, 0, 1000).records.map((r) => r.path);
    expect(new Set(under('/docs'))).toEqual(new Set(['/docs', '/docs/a', '/docs/a/b', '/docs/ab']));
    expect(under('/docs/a').every((p) => p === '/docs/a' || p === '/docs/a/b')).toBe(true);
  });

  it('drops and counts instead of blocking when the disk is slow, and writes again once it answers', async () => {
    const inner = LmdbAuditBackend.open(dir);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const slow: AuditBackend = {
      newest: () => inner.newest(),
      count: () => inner.count(),
      range: (a, l) => inner.range(a, l),
      oldest: (l) => inner.oldest(l),
      write: async (records, remove) => {
        await gate;
        return inner.write(records, remove);
      },
      close: () => inner.close(),
    };
    const log = new DurableAuditLog({ backend: slow, queueCapacity: 100, flushIntervalMs: 60_000 });
    opened.push(log);
    for (let n = 1; n <= 50; n++) log.append(entry(n));
    await new Promise((r) => setImmediate(r));
    log.flush(); // takes 50 into the batch that hangs
    const started = process.hrtime.bigint();
    let accepted = 0;
    for (let n = 51; n <= 10_050; n++) if (log.append(entry(n)) > 0) accepted++;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // 100 more fit in the queue; the other 9,900 are dropped, at once.
    expect(accepted).toBe(100);
    expect(log.stats()).toMatchObject({ dropped: 9_900, queued: 150, written: 0 });
    expect(ms).toBeLessThan(1000);
    log.flush(); // one batch in flight at a time: nothing more is taken
    expect(log.stats().queued).toBe(150);
    release();
    await drain(log);
    expect(log.stats()).toMatchObject({ dropped: 9_900, queued: 0, written: 150, records: 150 });
    expect(log.since(0, 1000).records.map((r) => r.seq)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
  });

  it('counts a failed batch, logs it once, never retries it, and goes on', async () => {
    const inner = LmdbAuditBackend.open(dir);
    let failing = true;
    const flaky: AuditBackend = {
      newest: () => inner.newest(),
      count: () => inner.count(),
      range: (a, l) => inner.range(a, l),
      oldest: (l) => inner.oldest(l),
      write: (records, remove) => (failing ? Promise.reject(new Error('ENOSPC: no space left on device')) : inner.write(records, remove)),
      close: () => inner.close(),
    };
    const said: string[] = [];
    const log = new DurableAuditLog({
      backend: flaky,
      flushIntervalMs: 60_000,
      log: { error: (_o, msg) => said.push(`error: ${msg}`), info: (_o, msg) => said.push(`info: ${msg}`) },
    });
    opened.push(log);
    for (let batch = 0; batch < 3; batch++) {
      for (let n = 1; n <= 4; n++) log.append(entry(batch * 4 + n));
      await drain(log);
    }
    expect(log.stats()).toMatchObject({ failed: 12, failedBatches: 3, written: 0, queued: 0, records: 0 });
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^error: audit log write failed/);
    failing = false;
    log.append(entry(13));
    await drain(log);
    expect(said).toHaveLength(2);
    expect(said[1]).toMatch(/^info: audit log writes succeed again/);
    expect(log.since(0, 100).records.map((r) => r.seq)).toEqual([13]);
    expect(log.stats()).toMatchObject({ failed: 12, written: 1, records: 1 });
  });

  it('writes on its own timer, one flush interval after an append', async () => {
    const log = openLog({ flushIntervalMs: 50 });
    log.append(entry(1));
    const deadline = Date.now() + 2000;
    while (log.stats().written < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(log.stats().written).toBe(1);
  });

  it('a filtered query from a cursor past the newest comes back to what exists', async () => {
    const log = openLog();
    for (let n = 1; n <= 3; n++) log.append(entry(n));
    await drain(log);
    expect(log.query({ uid: 1001 }, 50, 10)).toEqual({ records: [], next: 3 });
    expect(log.since(3, 10)).toEqual({ records: [], next: 3 });
  });
});
