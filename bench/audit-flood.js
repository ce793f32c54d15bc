#!/usr/bin/env node
// Benchmark: the durable audit log under a flood of denials. One aclfs
// daemon (--audit deny, --audit-max-records 100,000); first a quiet phase
// (one process, 20,000 denied opens), then the flood (four processes,
// 200,000 denied opens at once). Reported: the daemon's own decision
// latency (its aclfs_decision_duration_seconds histogram, read from
// /metrics before and after each phase: mean, and p50/p99 from the
// buckets), the daemon's RSS (sampled every 100 ms) and the audit log's
// records, drops and size on disk after the flood.
//
// Goals: decisions during the flood at most 1.10x their quiet-phase mean;
// the log within its record bound; RSS at most 150 MiB.
//
//   node bench/audit-flood.js [--json]
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { ACLFS_BIN, OTHER_UID, requireRootAndBuild, commandLine } = require('./lib/env');
const { makeWorkDir, run, runMain, start, log } = require('./lib/processes');
const { startDaemon, waitForMount } = require('./lib/processes');

const DENIED_FILES = 2000;
const QUIET_OPENS = 20_000;
const FLOOD_PROCESSES = 4;
const FLOOD_OPENS = 200_000;
const MAX_RECORDS = 100_000;
const GOAL_SLOWDOWN = 1.1;
const GOAL_RSS_MIB = 150;

/** GET `target` on the admin socket; resolves with the body. */
function get(socket, target) {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socket, path: target, headers: { host: 'aclfs' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${target}: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
  });
}

/** The decision histogram summed over every label: {count, sum, buckets: [[le, cumulative]]}. */
async function decisionHistogram(socket) {
  const text = await get(socket, '/metrics');
  let count = 0;
  let sum = 0;
  const buckets = new Map();
  for (const line of text.split('\n')) {
    const m = /^aclfs_decision_duration_seconds_(bucket|sum|count)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (m[1] === 'sum') sum += value;
    else if (m[1] === 'count') count += value;
    else {
      const le = /le="([^"]+)"/.exec(m[2] ?? '')?.[1] ?? '+Inf';
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    }
  }
  return { count, sum, buckets };
}

/** The phase between two histogram readings: decisions, mean, p50 and p99 (bucket upper bounds), µs. */
function phase(before, after) {
  const count = after.count - before.count;
  const sum = after.sum - before.sum;
  const les = [...after.buckets.keys()].sort((a, b) => Number(a) - Number(b));
  const quantile = (q) => {
    for (const le of les) {
      if (after.buckets.get(le) - (before.buckets.get(le) ?? 0) >= q * count) return le === '+Inf' ? Infinity : Number(le) * 1e6;
    }
    return Infinity;
  };
  return { decisions: count, meanUs: count === 0 ? NaN : (sum / count) * 1e6, p50Us: quantile(0.5), p99Us: quantile(0.99) };
}

/** The load: `opens` denied opens of the files of `dir`, round robin, as OTHER_UID. */
const FLOOD_PROGRAM = `
const fs = require('node:fs');
const [dir, opens, files] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
// The directory cannot be listed by this user: the names are known.
const names = Array.from({ length: files }, (_, i) => dir + '/f' + String(i).padStart(4, '0'));
let denied = 0;
for (let i = 0; i < opens; i++) {
  try { fs.closeSync(fs.openSync(names[i % names.length], 'r')); } catch (err) { if (err.code === 'EACCES') denied++; else throw err; }
}
process.stdout.write(JSON.stringify({ denied }) + '\\n');
`;

function flood(mnt, opens) {
  return start('setpriv', ['--reuid', String(OTHER_UID), '--regid', String(OTHER_UID), '--clear-groups', process.execPath, '-e', FLOOD_PROGRAM, path.join(mnt, 'denied'), String(opens), String(DENIED_FILES)]).done.then(
    (out) => JSON.parse(out.trim()).denied,
  );
}

function rssMiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

async function main() {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } }, strict: true });
  requireRootAndBuild('the audit flood benchmark mounts aclfs');
  const tmp = makeWorkDir('aclfs-audit-flood-');
  const src = path.join(tmp, 'src');
  const mnt = path.join(tmp, 'mnt');
  const db = path.join(tmp, 'db');
  const socket = path.join(tmp, 'run', 'aclfs.sock');
  fs.mkdirSync(path.join(src, 'denied'), { recursive: true });
  fs.mkdirSync(mnt);
  for (let i = 0; i < DENIED_FILES; i++) fs.writeFileSync(path.join(src, 'denied', `f${String(i).padStart(4, '0')}`), 'x', { mode: 0o644 });
  fs.chmodSync(src, 0o755);
  fs.chmodSync(path.join(src, 'denied'), 0o755);
  log(`mounting aclfs (--audit deny, --audit-max-records ${MAX_RECORDS})`);
  const daemon = startDaemon('aclfs', ACLFS_BIN, ['mount', src, mnt, '--db', db, '--default', 'deny', '--log-level', 'warn', '--socket', socket, '--audit', 'deny', '--audit-max-records', String(MAX_RECORDS)], mnt);
  await waitForMount(daemon);
  const pid = daemon.child.pid;

  log(`quiet: ${QUIET_OPENS} denied opens, one process`);
  // One untimed pass first, so both phases decide from a warm cache.
  await flood(mnt, DENIED_FILES);
  const q0 = await decisionHistogram(socket);
  const quietDenied = await flood(mnt, QUIET_OPENS);
  const q1 = await decisionHistogram(socket);
  const quiet = phase(q0, q1);

  log(`flood: ${FLOOD_OPENS} denied opens, ${FLOOD_PROCESSES} processes at once`);
  const rssBefore = rssMiB(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 100);
  const started = Date.now();
  const f0 = await decisionHistogram(socket);
  const counts = await Promise.all(Array.from({ length: FLOOD_PROCESSES }, () => flood(mnt, FLOOD_OPENS / FLOOD_PROCESSES)));
  const f1 = await decisionHistogram(socket);
  const seconds = (Date.now() - started) / 1000;
  // The writer drains what is queued (one batch every 100 ms).
  await new Promise((r) => setTimeout(r, 1500));
  clearInterval(sampler);
  const flooded = phase(f0, f1);
  const status = JSON.parse(await get(socket, '/v1/status'));
  const audit = status.audit;
  const auditBytes = Number((await run('du', ['-sb', path.join(db, 'audit')])).split(/\s/)[0]);
  const rssAfter = rssMiB(pid);

  const ratio = flooded.meanUs / quiet.meanUs;
  const result = {
    command: commandLine(),
    date: new Date().toISOString(),
    quiet: { ...quiet, denied: quietDenied },
    flood: { ...flooded, denied: counts.reduce((a, b) => a + b, 0), seconds, perSecond: Math.round(counts.reduce((a, b) => a + b, 0) / seconds) },
    rssMiB: { before: rssBefore, peak: rssPeak, after: rssAfter },
    audit: { records: audit.records, maxRecords: audit.maxRecords, dropped: audit.dropped, failed: audit.failed, written: audit.written, bytesOnDisk: auditBytes },
    goals: [
      { goal: `decision mean during the flood <= ${GOAL_SLOWDOWN}x quiet`, measured: ratio, pass: ratio <= GOAL_SLOWDOWN },
      { goal: `audit records <= --audit-max-records (${MAX_RECORDS})`, measured: audit.records, pass: audit.records <= MAX_RECORDS },
      { goal: `daemon RSS peak <= ${GOAL_RSS_MIB} MiB`, measured: rssPeak, pass: rssPeak <= GOAL_RSS_MIB },
    ],
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const f = (n) => (Number.isFinite(n) ? n.toFixed(2) : String(n));
  process.stdout.write(
    [
      `decisions (daemon-measured)  quiet: ${quiet.decisions} mean ${f(quiet.meanUs)} µs p50 <= ${f(quiet.p50Us)} µs p99 <= ${f(quiet.p99Us)} µs`,
      `                             flood: ${flooded.decisions} mean ${f(flooded.meanUs)} µs p50 <= ${f(flooded.p50Us)} µs p99 <= ${f(flooded.p99Us)} µs (${result.flood.perSecond} denials/s for ${seconds.toFixed(1)} s)`,
      `daemon RSS MiB               before ${f(rssBefore)}, peak ${f(rssPeak)}, after ${f(rssAfter)}`,
      `audit log                    ${audit.records} records (bound ${audit.maxRecords}), ${audit.written} written, ${audit.dropped} dropped, ${audit.failed} failed, ${(auditBytes / 1048576).toFixed(1)} MiB on disk`,
      ...result.goals.map((g) => `goal: ${g.goal}: ${f(g.measured)} ${g.pass ? 'PASS' : 'FAIL'}`),
      '',
    ].join('\n'),
  );
}

runMain('audit-flood', main);
