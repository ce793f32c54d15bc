// The daemon's metrics without a mount: the registry rendered from plain
// sources and read back by a real Prometheus text parser, the filter's
// meters (requests by op, decisions by result, latency buckets) as the gate
// and the guard bump them, the --metrics-listen address, and the TCP
// listener's few routes.
import http from 'node:http';
import pino from 'pino';
import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseListenAddress } from '../../src/admin/cli/mount';
import type { CallerResolver } from '../../src/fs/callers';
import type { BackingTree } from '../../src/fs/backing';
import { Gate, type Gatekeeper } from '../../src/fs/gate';
import { guardOperations } from '../../src/fs/guard';
import { DECISION_LATENCY_BUCKETS, FilterMeters } from '../../src/fs/meters';
import type { Operations } from '../../src/native/binding';
import { MetricsListener } from '../../src/metrics/listen';
import { createDaemonMetrics, type AuditStats, type MetricsSources } from '../../src/metrics/registry';
import type { Decision } from '../../src/rules/types';
import { DAEMON_FAMILIES, parseScrape, sampleValue } from '../helpers/prometheus';

function sources(overrides: Partial<MetricsSources> = {}): MetricsSources {
  const meters = new FilterMeters();
  meters.requestCounter('open').count = 7;
  meters.requestCounter('getxattr').count = 2;
  meters.decided('open', 'allow', 2e-6);
  meters.decided('open', 'deny', 3e-7);
  meters.decided('open', 'deny', 0.5);
  meters.decided('read', 'letthrough', 4e-5);
  const audit: AuditStats = { queued: 3, dropped: 1, written: 40, records: 37 };
  return {
    requests: () => meters.requestCounts(),
    requestLoop: () => ({ started: 100, finished: 98 }),
    decisions: () => meters.decisionCounts(),
    decisionLatency: () => meters.decisionLatency(),
    decisionErrors: () => 1,
    fastPath: () => ({ opens: 11, reads: 12, writes: 13 }),
    cache: () => ({ hits: 5, misses: 4, size: 3, maxSize: 65536, evictions: 2, invalidations: 1 }),
    openHandles: () => ({ open: 6, limit: 1000 }),
    rules: () => 42,
    generation: () => 9,
    epoch: () => 18,
    permissive: () => false,
    audit: () => audit,
    ...overrides,
  };
}

describe('the metrics registry', () => {
  it('renders every family, typed, with HELP, in a format a Prometheus parser reads', async () => {
    const page = await createDaemonMetrics(sources()).page();
    expect(page.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parseScrape(page.text);
    for (const [name, type] of Object.entries(DAEMON_FAMILIES)) {
      expect(families.get(name)?.type, name).toBe(type);
      expect(families.get(name)?.help.length, `${name} has HELP`).toBeGreaterThan(10);
    }
    // Counters end in _total, the histogram in _seconds (Prometheus naming).
    for (const [name, type] of Object.entries(DAEMON_FAMILIES)) {
      if (type === 'COUNTER') expect(name).toMatch(/_total$/);
      if (type === 'HISTOGRAM') expect(name).toMatch(/_seconds$/);
    }
    // Process metrics, under the client library's standard names.
    expect(families.get('process_cpu_seconds_total')?.type).toBe('COUNTER');
    expect(families.get('process_resident_memory_bytes')?.type).toBe('GAUGE');
    expect(families.get('nodejs_eventloop_lag_seconds')?.type).toBe('GAUGE');
  });

  it('shows what the sources count, read at scrape time', async () => {
    const families = parseScrape((await createDaemonMetrics(sources()).page()).text);
    expect(sampleValue(families, 'aclfs_fuse_requests_total', { op: 'open' })).toBe(7);
    expect(sampleValue(families, 'aclfs_fuse_requests_total', { op: 'getxattr' })).toBe(2);
    expect(sampleValue(families, 'aclfs_fuse_requests_received_total')).toBe(100);
    expect(sampleValue(families, 'aclfs_fuse_requests_in_flight')).toBe(2);
    expect(sampleValue(families, 'aclfs_decisions_total', { result: 'allow', op: 'open' })).toBe(1);
    expect(sampleValue(families, 'aclfs_decisions_total', { result: 'deny', op: 'open' })).toBe(2);
    expect(sampleValue(families, 'aclfs_decisions_total', { result: 'letthrough', op: 'read' })).toBe(1);
    expect(sampleValue(families, 'aclfs_fast_path_hits_total', { op: 'open' })).toBe(11);
    expect(sampleValue(families, 'aclfs_fast_path_hits_total', { op: 'write' })).toBe(13);
    expect(sampleValue(families, 'aclfs_decision_cache_hits_total')).toBe(5);
    expect(sampleValue(families, 'aclfs_decision_cache_misses_total')).toBe(4);
    expect(sampleValue(families, 'aclfs_open_handles')).toBe(6);
    expect(sampleValue(families, 'aclfs_rules')).toBe(42);
    expect(sampleValue(families, 'aclfs_policy_generation')).toBe(9);
    expect(sampleValue(families, 'aclfs_policy_epoch')).toBe(18);
    expect(sampleValue(families, 'aclfs_permissive')).toBe(0);
    expect(sampleValue(families, 'aclfs_audit_queue_depth')).toBe(3);
    expect(sampleValue(families, 'aclfs_audit_dropped_total')).toBe(1);
    expect(sampleValue(families, 'aclfs_audit_written_total')).toBe(40);
    expect(sampleValue(families, 'aclfs_audit_records')).toBe(37);
  });

  it('the latency histogram is cumulative over µs-scale buckets, with sum and count', async () => {
    const families = parseScrape((await createDaemonMetrics(sources()).page()).text);
    const h = families.get('aclfs_decision_duration_seconds')!.metrics[0]!;
    const buckets = Object.entries(h.buckets!).map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), Number(n)] as const);
    expect(buckets.map(([le]) => le)).toEqual([...DECISION_LATENCY_BUCKETS, Infinity]);
    expect(buckets[0]![0]).toBe(1e-6);
    expect(buckets.at(-2)![0]).toBe(1e-2);
    // 3e-7 and 2e-6 and 4e-5 and 0.5: one at ≤1µs, two by ≤2.5µs, three by ≤50µs, the 0.5 s only in +Inf.
    expect(Number(h.buckets!['0.000001'])).toBe(1);
    expect(Number(h.buckets!['0.0000025'])).toBe(2);
    expect(Number(h.buckets!['0.00005'])).toBe(3);
    expect(Number(h.buckets!['0.01'])).toBe(3);
    expect(Number(h.buckets!['+Inf'])).toBe(4);
    expect(Number(h.count)).toBe(4);
    expect(Number(h.sum)).toBeCloseTo(0.5 + 2e-6 + 3e-7 + 4e-5, 9);
  });

  it('counters follow their sources between scrapes, never counting twice', async () => {
    let opens = 1;
    const metrics = createDaemonMetrics(sources({ fastPath: () => ({ opens, reads: 0, writes: 0 }) }));
    expect(sampleValue(parseScrape((await metrics.page()).text), 'aclfs_fast_path_hits_total', { op: 'open' })).toBe(1);
    expect(sampleValue(parseScrape((await metrics.page()).text), 'aclfs_fast_path_hits_total', { op: 'open' })).toBe(1);
    opens = 5;
    expect(sampleValue(parseScrape((await metrics.page()).text), 'aclfs_fast_path_hits_total', { op: 'open' })).toBe(5);
  });

  it('a source that fails shows NaN, and the rest of the scrape stands', async () => {
    const failing = (): number => {
      throw new Error('MDB_CORRUPTED');
    };
    const families = parseScrape((await createDaemonMetrics(sources({ rules: failing, generation: failing })).page()).text);
    expect(sampleValue(families, 'aclfs_rules')).toBeNaN();
    expect(sampleValue(families, 'aclfs_policy_generation')).toBeNaN();
    expect(sampleValue(families, 'aclfs_policy_epoch')).toBe(18);
  });

  it('without an audit source the audit series are left out; its own registry, never the global one', async () => {
    const { audit: _audit, ...rest } = sources();
    const metrics = createDaemonMetrics(rest);
    const families = parseScrape((await metrics.page()).text);
    expect(families.has('aclfs_audit_queue_depth')).toBe(false);
    expect(families.has('aclfs_rules')).toBe(true);
    expect(metrics.registry).not.toBe(globalRegistry);
    expect(await globalRegistry.getSingleMetric('aclfs_rules')).toBeUndefined();
    // Two daemons' registries in one process do not clash.
    expect(() => createDaemonMetrics(sources())).not.toThrow();
  });
});

describe('the filter meters', () => {
  const allow: Decision = { allow: true, ruleId: 1, granted: 4, source: { kind: 'owner' } } as unknown as Decision;
  const deny: Decision = { allow: false, ruleId: 1, granted: 0, source: { kind: 'default-policy' } } as unknown as Decision;

  function gate(meters: FilterMeters, decision: () => Decision, permissive = false): Gate {
    const gatekeeper: Gatekeeper = {
      epoch: () => 1,
      check: () => ({ decision: decision(), epoch: 1 }),
      holdsForAnyGroups: () => true,
      checkMove: () => ({ ok: true }) as never,
    };
    return new Gate({
      tree: {} as BackingTree,
      gatekeeper,
      callers: { resolve: () => ({ uid: 1000, gid: 1000, pid: 1, groups: [] }) } as unknown as CallerResolver,
      log: pino({ level: 'silent' }),
      audit: { append: () => {} },
      permissive: () => permissive,
      meters,
    });
  }
  const caller = { uid: 1000, gid: 1000, pid: 1, groups: [] };
  const target = { path: '/a', dev: 1, ino: 2 };

  it('the gate counts each decision by op and result, and times it', () => {
    const meters = new FilterMeters();
    gate(meters, () => allow).allowedAt(caller, 'open', target, 4);
    gate(meters, () => allow).allowedAt(caller, 'open', target, 4);
    gate(meters, () => deny).allowedAt(caller, 'open', target, 4);
    gate(meters, () => deny, true).allowedAt(caller, 'read', target, 4);
    gate(meters, () => {
      throw new Error('store unreadable');
    }).allowedAt(caller, 'opendir', target, 4);
    const counts = new Map(meters.decisionCounts());
    expect(counts.get('open')).toEqual({ allow: 2, deny: 1, letthrough: 0 });
    expect(counts.get('read')).toEqual({ allow: 0, deny: 0, letthrough: 1 });
    expect(counts.get('opendir')).toEqual({ allow: 0, deny: 1, letthrough: 0 });
    const latency = meters.decisionLatency();
    expect(latency.count).toBe(5);
    expect(latency.counts.reduce((a, b) => a + b, 0)).toBe(5);
    expect(latency.sum).toBeGreaterThan(0);
  });

  it('a caller that cannot be established is a denial, counted untimed', () => {
    const meters = new FilterMeters();
    const g = new Gate({
      tree: {} as BackingTree,
      gatekeeper: {} as Gatekeeper,
      callers: {
        resolve: () => {
          throw new Error('no /proc');
        },
      } as unknown as CallerResolver,
      log: pino({ level: 'silent' }),
      audit: { append: () => {} },
      permissive: () => false,
      meters,
    });
    expect(() => g.caller({ uid: 1, gid: 1, pid: 1 }, 'open', '/a')).toThrow();
    expect(new Map(meters.decisionCounts()).get('open')).toEqual({ allow: 0, deny: 1, letthrough: 0 });
    expect(meters.decisionLatency().count).toBe(0);
  });

  it('the guard counts every request by op, in a counter bound once per op', () => {
    const meters = new FilterMeters();
    const bound: string[] = [];
    const ops = guardOperations(
      { open: (_c: unknown, _p: string, _f: number, cb: (e: number) => void) => cb(0), statfs: (_c: unknown, _p: string, cb: (e: number) => void) => cb(0) } as unknown as Operations,
      () => {},
      (op) => {
        bound.push(op);
        return meters.requestCounter(op);
      },
    ) as unknown as Record<string, (...args: unknown[]) => void>;
    for (let i = 0; i < 3; i++) ops.open!({ uid: 0, gid: 0, pid: 1 }, '/a', 0, () => {});
    ops.statfs!({ uid: 0, gid: 0, pid: 1 }, '/', () => {});
    expect(bound.sort()).toEqual(['open', 'statfs']);
    expect(new Map(meters.requestCounts())).toEqual(new Map([['open', 3], ['statfs', 1]]));
  });

  it('buckets: a value on a bound counts in that bound (le), above the last only in +Inf', () => {
    const meters = new FilterMeters();
    meters.decided('open', 'allow', 1e-6);
    meters.decided('open', 'allow', 1e-2);
    meters.decided('open', 'allow', 2e-2);
    const { counts } = meters.decisionLatency();
    expect(counts[0]).toBe(1);
    expect(counts[DECISION_LATENCY_BUCKETS.length - 1]).toBe(1);
    expect(counts[DECISION_LATENCY_BUCKETS.length]).toBe(1);
  });
});

describe('--metrics-listen', () => {
  it('a port alone is the loopback; IPv4 and bracketed IPv6 hosts are taken as written', () => {
    expect(parseListenAddress('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListenAddress('10.1.2.3:1')).toEqual({ host: '10.1.2.3', port: 1 });
    expect(parseListenAddress('[::1]:65535')).toEqual({ host: '::1', port: 65535 });
    expect(parseListenAddress('[::]:9464')).toEqual({ host: '::', port: 9464 });
  });

  it('anything else is refused', () => {
    for (const bad of ['', ':9464', 'abc', '0', '65536', '99999999', 'localhost:9464', '1.2.3:9464', '::1:9464', '[1.2.3.4]:9464', '[::1]', '127.0.0.1:', '127.0.0.1:x', ' 9464', '9464 ']) {
      expect(() => parseListenAddress(bad), JSON.stringify(bad)).toThrow(/expected PORT, IPV4:PORT or \[IPV6\]:PORT/);
    }
  });
});

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body, allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the TCP listener', () => {
  it('serves GET /metrics and nothing else', async () => {
    const metrics = createDaemonMetrics(sources());
    const listener = await MetricsListener.start({ host: '127.0.0.1', port: 0 }, () => metrics.page(), pino({ level: 'silent' }));
    try {
      const port = listener.address.port;
      const ok = await get(port, '/metrics');
      expect(ok.status).toBe(200);
      expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(parseScrape(ok.body).has('aclfs_decisions_total')).toBe(true);
      expect((await get(port, '/metrics?x=1')).status).toBe(200);
      expect((await get(port, '/metrics', 'HEAD')).body).toBe('');
      expect((await get(port, '/v1/status')).status).toBe(404);
      expect((await get(port, '/')).status).toBe(404);
      const post = await get(port, '/metrics', 'POST');
      expect(post.status).toBe(405);
      expect(post.allow).toBe('GET, HEAD');
    } finally {
      await listener.close();
      await listener.close();
    }
  });

  it('a scrape that fails is a 500, and the listener keeps serving', async () => {
    let fail = true;
    const metrics = createDaemonMetrics(sources());
    const listener = await MetricsListener.start(
      { host: '127.0.0.1', port: 0 },
      () => (fail ? Promise.reject(new Error('boom')) : metrics.page()),
      pino({ level: 'silent' }),
    );
    try {
      expect((await get(listener.address.port, '/metrics')).status).toBe(500);
      fail = false;
      expect((await get(listener.address.port, '/metrics')).status).toBe(200);
    } finally {
      await listener.close();
    }
  });

  it('an address in use, or not this machine\'s, is refused at start in words', async () => {
    const first = await MetricsListener.start({ host: '127.0.0.1', port: 0 }, () => createDaemonMetrics(sources()).page(), pino({ level: 'silent' }));
    try {
      await expect(MetricsListener.start({ host: '127.0.0.1', port: first.address.port }, () => Promise.reject(new Error('unused')), pino({ level: 'silent' }))).rejects.toThrow(/--metrics-listen 127\.0\.0\.1:\d+: the address is in use/);
      // TEST-NET-1 (RFC 5737): never an address of this machine.
      await expect(MetricsListener.start({ host: '192.0.2.1', port: 9464 }, () => Promise.reject(new Error('unused')), pino({ level: 'silent' }))).rejects.toThrow(
        /--metrics-listen 192\.0\.2\.1:9464: not an address of this machine/,
      );
    } finally {
      await first.close();
    }
  });
});
