// Reading a scrape as Prometheus would: the text format parsed by a real
// parser (parse-prometheus-text-format), families by name.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export type Family = ReturnType<typeof parsePrometheusTextFormat>[number];

/** The families of a scrape, by name; throws if the text does not parse. */
export function parseScrape(text: string): Map<string, Family> {
  return new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
}

/**
 * The value of the sample of `name` whose labels include `labels` (a
 * counter or gauge), as a number; 0 when the family has no such sample
 * yet (a counter not yet moved), undefined when the family is missing.
 */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  if (family === undefined) return undefined;
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? 0 : Number(sample.value);
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function sampleSum(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (family === undefined) return 0;
  return family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((n, m) => n + Number(m.value ?? 0), 0);
}

/** Every aclfs family the daemon shows, and its type. */
export const DAEMON_FAMILIES: Record<string, 'COUNTER' | 'GAUGE' | 'HISTOGRAM'> = {
  aclfs_fuse_requests_total: 'COUNTER',
  aclfs_fuse_requests_received_total: 'COUNTER',
  aclfs_fuse_requests_in_flight: 'GAUGE',
  aclfs_decisions_total: 'COUNTER',
  aclfs_decision_duration_seconds: 'HISTOGRAM',
  aclfs_decision_errors_total: 'COUNTER',
  aclfs_fast_path_hits_total: 'COUNTER',
  aclfs_decision_cache_hits_total: 'COUNTER',
  aclfs_decision_cache_misses_total: 'COUNTER',
  aclfs_decision_cache_evictions_total: 'COUNTER',
  aclfs_decision_cache_invalidations_total: 'COUNTER',
  aclfs_decision_cache_entries: 'GAUGE',
  aclfs_decision_cache_capacity: 'GAUGE',
  aclfs_open_handles: 'GAUGE',
  aclfs_open_handles_limit: 'GAUGE',
  aclfs_rules: 'GAUGE',
  aclfs_policy_generation: 'GAUGE',
  aclfs_policy_epoch: 'GAUGE',
  aclfs_permissive: 'GAUGE',
  aclfs_audit_queue_depth: 'GAUGE',
  aclfs_audit_dropped_total: 'COUNTER',
  aclfs_audit_written_total: 'COUNTER',
  aclfs_audit_records: 'GAUGE',
};
