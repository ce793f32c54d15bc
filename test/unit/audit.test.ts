// The audit ring (src/fs/audit.ts) and the mode switch (src/fs/mode.ts):
// pure, so tables of cases, no mount.
import { describe, expect, it } from 'vitest';
import { AUDIT_CAPACITY, AuditLog, type AuditEntry, type AuditRecord } from '../../src/fs/audit';
import { ModeSwitch, type EnforcementMode } from '../../src/fs/mode';

const entry = (n: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  op: 'open',
  path: `/f${n}`,
  uid: 1000 + n,
  gid: 100,
  pid: 4000 + n,
  access: 'r--',
  enforced: true,
  rule: n % 2 === 0 ? n : null,
  reason: `deny: record ${n}`,
  ...over,
});

/** A log of `capacity` with `appended` records, on a clock that ticks 1 s per record. */
function filled(capacity: number, appended: number): AuditLog {
  let t = Date.parse('2026-01-01T00:00:00Z');
  const log = new AuditLog(capacity, () => new Date((t += 1000)));
  for (let n = 1; n <= appended; n++) log.append(entry(n));
  return log;
}

const seqs = (records: readonly AuditRecord[]): number[] => records.map((r) => r.seq);
const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('AuditLog', () => {
  it('keeps 10,000 records by default', () => {
    expect(AUDIT_CAPACITY).toBe(10_000);
    expect(new AuditLog().capacity).toBe(10_000);
  });

  it('numbers from 1, stamps the time from its clock, and keeps every field it was given', () => {
    const log = filled(4, 0);
    const r = log.append(entry(7, { op: 'write', access: '-w-', enforced: false }));
    expect(r).toEqual({
      seq: 1,
      time: '2026-01-01T00:00:01.000Z',
      op: 'write',
      path: '/f7',
      uid: 1007,
      gid: 100,
      pid: 4007,
      access: '-w-',
      enforced: false,
      rule: null,
      reason: 'deny: record 7',
    });
    expect(log.append(entry(8)).seq).toBe(2);
    expect(log.newest()).toBe(2);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a capacity of %s', (capacity) => {
    expect(() => new AuditLog(capacity)).toThrow(RangeError);
  });

  // capacity, appended, oldest kept, newest
  it.each([
    [4, 0, 1, 0],
    [4, 1, 1, 1],
    [4, 4, 1, 4],
    [4, 5, 2, 5],
    [4, 11, 8, 11],
    [1, 3, 3, 3],
    [10_000, 10_001, 2, 10_001],
    [10_000, 25_000, 15_001, 25_000],
  ])('capacity %i after %i appends keeps %i..%i, oldest first', (capacity, appended, oldest, newest) => {
    const log = filled(capacity, appended);
    expect(log.oldest()).toBe(oldest);
    expect(log.newest()).toBe(newest);
    const page = log.since(0, capacity);
    expect(seqs(page.records)).toEqual(range(oldest, newest));
    // The records are the ones appended with those numbers (nothing shifted by the wrap).
    for (const r of page.records) expect(r.path).toBe(`/f${r.seq}`);
    expect(page.next).toBe(newest);
  });

  // appended (capacity 5), after, limit → seqs returned, next
  it.each([
    [3, 0, 10, [1, 2, 3], 3],
    [3, 1, 10, [2, 3], 3],
    [3, 3, 10, [], 3],
    [3, 0, 2, [1, 2], 2],
    [3, 2, 1, [3], 3],
    [8, 0, 10, [4, 5, 6, 7, 8], 8], // 1-3 dropped: from the oldest kept
    [8, 2, 2, [4, 5], 5], // a cursor older than the ring: from the oldest kept
    [8, 5, 2, [6, 7], 7],
    [8, 7, 100, [8], 8],
    [8, 8, 100, [], 8],
    [8, 50, 10, [], 8], // a cursor from before a restart: next comes back to what exists
    [0, 0, 10, [], 0],
    [0, 9, 10, [], 0],
    [3, 0, 0, [], 0], // limit 0: nothing, cursor unchanged
  ])('after %i appends: since(%i, %i) gives %j, next %i', (appended, after, limit, expected, next) => {
    const page = filled(5, appended).since(after, limit);
    expect(seqs(page.records)).toEqual(expected);
    expect(page.next).toBe(next);
  });

  it('keeps every field of every kept record when strings repeat, and past the pool of reused strings (4,096)', () => {
    const log = new AuditLog(6000, () => new Date(Date.UTC(2026, 0, 1)));
    // Distinct paths beyond the pool's size, the same reason over and over,
    // rule ids and null, both enforcement flags.
    for (let n = 1; n <= 9000; n++) {
      log.append(entry(n, { reason: 'deny: the same reason', rule: n % 3 === 0 ? null : n, enforced: n % 2 === 0 }));
    }
    const { records } = log.since(0, 6000);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 6000 }, (_, i) => 3001 + i));
    for (const r of records) {
      expect(r).toEqual({
        seq: r.seq,
        time: '2026-01-01T00:00:00.000Z',
        op: 'open',
        path: `/f${r.seq}`,
        uid: 1000 + r.seq,
        gid: 100,
        pid: 4000 + r.seq,
        access: 'r--',
        enforced: r.seq % 2 === 0,
        rule: r.seq % 3 === 0 ? null : r.seq,
        reason: 'deny: the same reason',
      });
    }
  });

  it('pages through everything by passing next back as after', () => {
    const log = filled(7, 20);
    const seen: number[] = [];
    let after = 0;
    for (let page = log.since(after, 3); page.records.length > 0; page = log.since(after, 3)) {
      seen.push(...seqs(page.records));
      after = page.next;
    }
    expect(seen).toEqual(range(14, 20));
  });

  it('tells each subscriber every record appended after it subscribed, until it unsubscribes', () => {
    const log = filled(3, 2);
    const a: number[] = [];
    const b: number[] = [];
    const offA = log.subscribe((r) => a.push(r.seq));
    log.append(entry(3));
    const offB = log.subscribe((r) => b.push(r.seq));
    expect(log.followers()).toBe(2);
    log.append(entry(4));
    offA();
    log.append(entry(5));
    offA(); // twice is harmless
    offB();
    log.append(entry(6));
    expect(a).toEqual([3, 4]);
    expect(b).toEqual([4, 5]);
    expect(log.followers()).toBe(0);
  });

  it('gives the same function subscribed twice two feeds, unsubscribed one by one', () => {
    const log = filled(3, 0);
    const got: number[] = [];
    const listener = (r: AuditRecord): void => void got.push(r.seq);
    const off1 = log.subscribe(listener);
    log.subscribe(listener);
    log.append(entry(1));
    off1();
    log.append(entry(2));
    expect(got).toEqual([1, 1, 2]);
  });

  it('drops a subscriber that throws, and still records and tells the others', () => {
    const log = filled(3, 0);
    const got: number[] = [];
    log.subscribe(() => {
      throw new Error('connection gone');
    });
    log.subscribe((r) => got.push(r.seq));
    expect(log.append(entry(1)).seq).toBe(1);
    expect(log.followers()).toBe(1);
    log.append(entry(2));
    expect(got).toEqual([1, 2]);
    expect(seqs(log.since(0, 10).records)).toEqual([1, 2]);
  });

  it('lets a subscriber unsubscribe while being told (others still hear of that record)', () => {
    const log = filled(3, 0);
    const got: string[] = [];
    const off = log.subscribe((r) => {
      got.push(`a${r.seq}`);
      off();
    });
    log.subscribe((r) => got.push(`b${r.seq}`));
    log.append(entry(1));
    log.append(entry(2));
    expect(got).toEqual(['a1', 'b1', 'b2']);
  });
});

describe('ModeSwitch', () => {
  it('starts in enforce', () => {
    const m = new ModeSwitch();
    expect(m.get()).toBe('enforce');
    expect(m.permissive()).toBe(false);
  });

  // sets in order → modes after each, and the changes reported
  it.each([
    [['permissive'], ['permissive'], ['enforce>permissive']],
    [['enforce'], ['enforce'], []],
    [['permissive', 'permissive', 'enforce'], ['permissive', 'permissive', 'enforce'], ['enforce>permissive', 'permissive>enforce']],
    [['permissive', 'enforce', 'enforce', 'permissive'], ['permissive', 'enforce', 'enforce', 'permissive'], ['enforce>permissive', 'permissive>enforce', 'enforce>permissive']],
  ] as [EnforcementMode[], EnforcementMode[], string[]][])('set %j → %j, reporting only real changes %j', (sets, modes, changes) => {
    const reported: string[] = [];
    const m = new ModeSwitch((now, previous) => reported.push(`${previous}>${now}`));
    expect(sets.map((mode) => m.set(mode))).toEqual(modes);
    expect(reported).toEqual(changes);
    expect(m.permissive()).toBe(modes.at(-1) === 'permissive');
  });
});
