// The daemon's metrics in the Prometheus text format: one prom-client
// Registry of its own (never the library's global one), whose every aclfs_
// metric is read at scrape time from what the daemon counts anyway (the
// filter's meters, the decision engine and cache, the binding's counters,
// the store, the audit log), through collect() callbacks. So nothing is
// counted twice, and nothing of prom-client runs on the request path: its
// inc() and observe() hash their labels on every call, which costs more
// than a cached decision (see src/fs/meters.ts).
//
// The sources are plain functions main.ts wires; this module imports no
// other layer. A source that cannot be read at scrape time (a store read
// that fails) shows NaN rather than failing the whole scrape.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The audit log's figures (the log's stats()). */
export interface AuditStats {
  /** Records accepted but not yet written. */
  readonly queued: number;
  /** Records lost (queue full, write failed) since the daemon started. */
  readonly dropped: number;
  /** Records written since the daemon started. */
  readonly written: number;
  /** Records the log holds now. */
  readonly records: number;
}

/** Decisions of one operation, by result. */
export interface DecisionCountsView {
  readonly allow: number;
  readonly deny: number;
  readonly letthrough: number;
}

/** A histogram as counted: per bucket (not cumulative; one more count than bounds, the last above every bound), sum and count. */
export interface HistogramView {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** Where each metric is read, at scrape time. */
export interface MetricsSources {
  /** FUSE requests that reached JS, by operation. */
  requests(): Iterable<readonly [op: string, count: number]>;
  /** The binding's request loop: requests received (all, answered in C or JS) and answered. */
  requestLoop(): { readonly started: number; readonly finished: number };
  /** Decisions by operation. */
  decisions(): Iterable<readonly [op: string, counts: DecisionCountsView]>;
  /** How long decisions took, in seconds. */
  decisionLatency(): HistogramView;
  /** Decisions that failed (store unreadable, bad record): each denied. */
  decisionErrors(): number;
  /** Requests the binding answered in C by replaying an allow (opens) or serving a vouched-for handle (reads, writes). */
  fastPath(): { readonly opens: number; readonly reads: number; readonly writes: number };
  /** The decision cache's counts. */
  cache(): {
    readonly hits: number;
    readonly misses: number;
    readonly size: number;
    readonly maxSize: number;
    readonly evictions: number;
    readonly invalidations: number;
  };
  /** Open handles now, and the most all users together may hold. */
  openHandles(): { readonly open: number; readonly limit: number };
  /** Rules in the database. */
  rules(): number;
  /** The policy generation: advanced by every commit that changed rules. */
  generation(): number;
  /** The commit epoch (shared with every process that commits; a mode switch advances it too). */
  epoch(): number;
  /** Whether denials are let through now (permissive mode). */
  permissive(): boolean;
  /** The audit log's figures; absent: the series are not shown. */
  audit?: () => AuditStats;
}

/** A scrape's answer. */
export interface MetricsPage {
  readonly contentType: string;
  readonly text: string;
}

export interface DaemonMetrics {
  /** The registry (its own, never prom-client's global one). */
  readonly registry: Registry;
  /** Every metric now, in the Prometheus text format. */
  page(): Promise<MetricsPage>;
}

/** `read()`, or NaN when it throws (a value that could not be read at this scrape). */
function orNaN(read: () => number): number {
  try {
    return read();
  } catch {
    return Number.NaN;
  }
}

/** What a metric's get() gives the registry. */
type MetricResult = Awaited<ReturnType<Histogram<string>['get']>>;

/**
 * A histogram whose buckets are counted elsewhere (a HistogramView read at
 * scrape time) and only shown here: prom-client's Histogram has no way to
 * set its buckets, so its series are made from the view, in the shape
 * Histogram.get() gives them (cumulative `_bucket` series with `le`, then
 * `_sum` and `_count`). observe() must not be called (nothing would show).
 */
class ViewedHistogram extends Histogram<string> {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly view: () => HistogramView,
    registry: Registry,
  ) {
    super({ name: metricName, help: helpText, buckets: [...view().bounds], registers: [registry] });
  }

  override get(): Promise<MetricResult> {
    const { bounds, counts, sum, count } = this.view();
    const name = this.metricName;
    const values: MetricResult['values'] = [];
    let cumulative = 0;
    for (let i = 0; i <= bounds.length; i++) {
      cumulative += counts[i] ?? 0;
      values.push({ metricName: `${name}_bucket`, labels: { le: i < bounds.length ? bounds[i]! : '+Inf' }, value: cumulative });
    }
    values.push({ metricName: `${name}_sum`, labels: {}, value: sum });
    values.push({ metricName: `${name}_count`, labels: {}, value: count });
    // prom-client's types give `type` as a numeric enum; at run time, and
    // in the registry's text, it is the string.
    return Promise.resolve({ name, help: this.helpText, type: 'histogram', aggregator: 'sum', values } as unknown as MetricResult);
  }

  /** What the registry renders from (it prefers this to get()). */
  getForPromString(): Promise<MetricResult> {
    return this.get();
  }
}

/** A counter whose value is read at scrape time (a count kept elsewhere). */
function viewedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(orNaN(read));
    },
  });
}

/** A gauge whose value is read at scrape time. */
function viewedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(orNaN(read));
    },
  });
}

/** The daemon's registry, every metric read from `sources` at scrape time. */
export function createDaemonMetrics(sources: MetricsSources): DaemonMetrics {
  const registry = new Registry();

  new Counter({
    name: 'aclfs_fuse_requests_total',
    help: 'FUSE requests served by the daemon\'s handlers (in JS), by operation; those the binding answers in C (attributes, fast-path opens, reads and writes) are in aclfs_fuse_requests_received_total and aclfs_fast_path_hits_total.',
    labelNames: ['op'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [op, count] of sources.requests()) this.inc({ op }, count);
    },
  });
  viewedCounter(registry, 'aclfs_fuse_requests_received_total', 'FUSE requests the binding\'s request loop received, every operation, answered in C or in JS.', () => sources.requestLoop().started);
  viewedGauge(registry, 'aclfs_fuse_requests_in_flight', 'FUSE requests received and not answered yet.', () => {
    const { started, finished } = sources.requestLoop();
    return started - finished;
  });

  new Counter({
    name: 'aclfs_decisions_total',
    help: 'Decisions on requests, by result (allow; deny: refused, including failures to decide; letthrough: denied by the rules, let through in permissive mode) and operation. Opens the fast path replays are in aclfs_fast_path_hits_total.',
    labelNames: ['result', 'op'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [op, counts] of sources.decisions()) {
        this.inc({ result: 'allow', op }, counts.allow);
        this.inc({ result: 'deny', op }, counts.deny);
        this.inc({ result: 'letthrough', op }, counts.letthrough);
      }
    },
  });
  new ViewedHistogram('aclfs_decision_duration_seconds', 'Time to decide a request (decision cache lookup, and the rules on a miss), in seconds.', () => sources.decisionLatency(), registry);
  viewedCounter(registry, 'aclfs_decision_errors_total', 'Decisions that failed (store unreadable, bad record); each was denied.', () => sources.decisionErrors());

  new Counter({
    name: 'aclfs_fast_path_hits_total',
    help: 'Requests the binding answered in C without JS: opens by replaying a published allow, reads and writes on a handle vouched for at the current commit epoch.',
    labelNames: ['op'],
    registers: [registry],
    collect() {
      this.reset();
      const { opens, reads, writes } = sources.fastPath();
      this.inc({ op: 'open' }, opens);
      this.inc({ op: 'read' }, reads);
      this.inc({ op: 'write' }, writes);
    },
  });

  viewedCounter(registry, 'aclfs_decision_cache_hits_total', 'Decisions answered from the decision cache.', () => sources.cache().hits);
  viewedCounter(registry, 'aclfs_decision_cache_misses_total', 'Decisions the cache could not answer (decided by the rules, then cached).', () => sources.cache().misses);
  viewedCounter(registry, 'aclfs_decision_cache_evictions_total', 'Cache entries dropped to stay within the cache size.', () => sources.cache().evictions);
  viewedCounter(registry, 'aclfs_decision_cache_invalidations_total', 'Times the cache was emptied because the commit epoch moved.', () => sources.cache().invalidations);
  viewedGauge(registry, 'aclfs_decision_cache_entries', 'Entries in the decision cache now.', () => sources.cache().size);
  viewedGauge(registry, 'aclfs_decision_cache_capacity', 'Most entries the decision cache holds.', () => sources.cache().maxSize);

  viewedGauge(registry, 'aclfs_open_handles', 'Files and directories open through the mount now (each holds a descriptor of the daemon).', () => sources.openHandles().open);
  viewedGauge(registry, 'aclfs_open_handles_limit', 'Most open handles all users together may hold.', () => sources.openHandles().limit);
  viewedGauge(registry, 'aclfs_rules', 'Rules in the database.', () => sources.rules());
  viewedGauge(registry, 'aclfs_policy_generation', 'The policy generation: advanced by every commit that changed rules.', () => sources.generation());
  viewedGauge(registry, 'aclfs_policy_epoch', 'The commit epoch: advanced by every commit (by any process) and mode switch; cached and fast-path decisions hold while it stays put.', () => sources.epoch());
  viewedGauge(registry, 'aclfs_permissive', '1 while in permissive mode (denials let through and recorded), 0 while enforcing.', () => (sources.permissive() ? 1 : 0));

  const audit = sources.audit;
  if (audit !== undefined) {
    viewedGauge(registry, 'aclfs_audit_queue_depth', 'Audit records accepted and not yet written.', () => audit().queued);
    viewedCounter(registry, 'aclfs_audit_dropped_total', 'Audit records lost (queue full, write failed).', () => audit().dropped);
    viewedCounter(registry, 'aclfs_audit_written_total', 'Audit records written.', () => audit().written);
    viewedGauge(registry, 'aclfs_audit_records', 'Audit records the log holds now.', () => audit().records);
  }

  // CPU, memory, descriptors, event-loop lag, GC: the client library's
  // standard set, under its standard names (process_*, nodejs_*), which
  // dashboards and alerts for any Node process already know.
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    page: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}
