#!/usr/bin/env node
// Micro-benchmark of the in-process decision: store lookup + decide(), with
// 1,000,000 rules, uncached (what the daemon does on a decision-cache miss:
// store.snapshot() — the commit-epoch read that precedes every decision —
// and decide() over the LMDB store) and cached (the policy engine with its
// decision cache, on a working set that fits the cache). Prints p50/p99 in
// µs per decision.
//
//   node bench/decide.js [--rules N] [--quick] [--json]
//
// Needs `npm run build` (uses dist/). The database lives in a temp dir that
// is removed at the end. --quick: 10,000 rules, to check the harness.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { ROOT: root } = require('./lib/env');
const { RuleStore } = require(path.join(root, 'dist/store/store.js'));
const { native } = require(path.join(root, 'dist/native/binding.js'));
const { decide } = require(path.join(root, 'dist/rules/decide.js'));
const { DecisionCache } = require(path.join(root, 'dist/rules/cache.js'));
const { PolicyEngine } = require(path.join(root, 'dist/rules/engine.js'));

const { values } = parseArgs({ options: { rules: { type: 'string' }, quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const n = Number(values.rules ?? (values.quick ? 10_000 : 1_000_000));
const SAMPLES = 200_000;
const BATCH = 100; // time batches: one hrtime call per decision would dominate

function percentiles(perBatch) {
  const sorted = [...perBatch].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

function measure(fn) {
  for (let i = 0; i < 20_000; i++) fn(i); // warm up
  const perBatch = [];
  for (let b = 0; b < SAMPLES / BATCH; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) fn(b * BATCH + i);
    perBatch.push(Number(process.hrtime.bigint() - start) / BATCH / 1000);
  }
  return percentiles(perBatch);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-bench-decide-'));
try {
  const store = RuleStore.open(path.join(dir, 'db'), native);
  const t0 = Date.now();
  // 1000 recursive directory rules, the rest per-file rules bound to inodes,
  // each with a user and a group entry: a realistic mix for the lookups.
  const rules = [];
  for (let d = 0; d < 1000; d++) rules.push({ path: `/d${d}`, recursive: true, owner: 0, defaccess: 4, acl: [{ group: 100, access: 5 }] });
  for (let i = 0; rules.length < n; i++) {
    rules.push({ path: `/d${i % 1000}/f${i}`, recursive: false, owner: 0, defaccess: 0, acl: [{ user: 1000 + (i % 50), access: 6 }], dev: 64769, ino: 100_000 + i });
  }
  store.importRules(rules);
  const importMs = Date.now() - t0;
  const files = n - 1000;
  const caller = { uid: 1000, gid: 1000, groups: [100], pid: 4242 };
  const target = (i) => {
    const f = (i * 7919) % files;
    return { path: `/d${f % 1000}/f${f}`, dev: 64769, ino: 100_000 + f, birth: null };
  };
  // Uncached: what a decision costs when the cache cannot answer — exactly
  // what PolicyEngine.check() does on a miss: the snapshot (epoch read; the
  // read transaction is renewed only when the epoch moved) and decide() over
  // LMDB.
  const uncached = measure((i) => {
    store.snapshot();
    return decide(store, caller, target(i), 4, 'deny');
  });
  // Cached: the engine on a working set of 10,000 files that fits the cache.
  const engine = new PolicyEngine(store, new DecisionCache(), 'deny');
  const cached = measure((i) => engine.check(caller, target(i % 10_000), 4));
  store.close();
  const result = { rules: n, importMs, uncached, cached, samples: SAMPLES };
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`decision micro-benchmark, ${n} rules (import ${importMs} ms), ${SAMPLES} decisions each`);
    console.log(`  uncached (snapshot + store lookups + decide):   p50 ${uncached.p50.toFixed(2)} µs, p99 ${uncached.p99.toFixed(2)} µs`);
    console.log(`  cached (engine + decision cache):               p50 ${cached.p50.toFixed(2)} µs, p99 ${cached.p99.toFixed(2)} µs`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
