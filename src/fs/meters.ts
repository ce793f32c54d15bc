// The filter's own counts, for the daemon's metrics: FUSE requests by
// operation, decisions by operation and result, and how long decisions
// take. Plain numbers, read when the metrics are scraped (src/metrics). No
// metrics library on the request path: prom-client's inc() and observe()
// hash their labels and look the series up on every call (~200 ns each,
// more than a cached decision), where here a request bumps a counter it
// was bound to when the operations were wrapped (guardOperations), and a
// decision costs one Map lookup by op, two clock reads and a short bucket
// search.
//
// Threads: every field is read and written on the JS thread only (the
// handlers, the gate and the scrape all run there).

/** What a decision came to: allowed, refused, or denied by the rules but let through (permissive mode). */
export type DecisionResult = 'allow' | 'deny' | 'letthrough';

/** Upper bounds of the decision latency buckets, in seconds: a cached decision takes about 0.1 µs, an uncached one 2 µs, a slow store read milliseconds. */
export const DECISION_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
]);

/** One operation's request counter, bound once by whoever counts its requests. */
export interface RequestCounter {
  count: number;
}

/** Decisions of one operation, by result. */
export interface DecisionCounts {
  allow: number;
  deny: number;
  letthrough: number;
}

/** A latency histogram as counted: per bucket (not cumulative; the last is beyond every bound), their sum and count. */
export interface LatencySnapshot {
  /** Upper bounds in seconds, ascending. */
  readonly bounds: readonly number[];
  /** bounds.length + 1 counts: counts[i] observations in (bounds[i-1], bounds[i]], the last above every bound. */
  readonly counts: readonly number[];
  /** Seconds, all observations together. */
  readonly sum: number;
  readonly count: number;
}

export class FilterMeters {
  private readonly requests = new Map<string, RequestCounter>();
  private readonly decisions = new Map<string, DecisionCounts>();
  private readonly bounds: readonly number[] = DECISION_LATENCY_BUCKETS;
  private readonly buckets = new Float64Array(DECISION_LATENCY_BUCKETS.length + 1);
  private latencySum = 0;
  private latencyCount = 0;

  /** The counter of `op`'s requests (made on first ask): bound once per operation, then bumped. */
  requestCounter(op: string): RequestCounter {
    let counter = this.requests.get(op);
    if (counter === undefined) {
      counter = { count: 0 };
      this.requests.set(op, counter);
    }
    return counter;
  }

  /** Counts a decision on an `op` request, and its duration (seconds; NaN: not timed, e.g. refused before deciding). */
  decided(op: string, result: DecisionResult, seconds: number): void {
    let counts = this.decisions.get(op);
    if (counts === undefined) {
      counts = { allow: 0, deny: 0, letthrough: 0 };
      this.decisions.set(op, counts);
    }
    counts[result]++;
    if (seconds !== seconds) return;
    let i = 0;
    const bounds = this.bounds;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.buckets[i]!++;
    this.latencySum += seconds;
    this.latencyCount++;
  }

  /** Requests counted so far, by operation (operations bound but never asked for: 0). */
  requestCounts(): Array<readonly [op: string, count: number]> {
    return [...this.requests].map(([op, c]) => [op, c.count] as const);
  }

  /** Decisions so far, by operation. */
  decisionCounts(): Array<readonly [op: string, counts: Readonly<DecisionCounts>]> {
    return [...this.decisions].map(([op, c]) => [op, { ...c }] as const);
  }

  /** The decision latency histogram so far. */
  decisionLatency(): LatencySnapshot {
    return { bounds: this.bounds, counts: [...this.buckets], sum: this.latencySum, count: this.latencyCount };
  }
}
