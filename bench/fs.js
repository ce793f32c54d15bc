#!/usr/bin/env node
// Benchmark: what does an aclfs mount cost compared with the plain directory
// and with bindfs, the closest stock FUSE passthrough, with file data served
// by the daemon and by FUSE passthrough?
//
//   node bench/fs.js [--runs N] [--quick] [--json] [--only SCENARIO[,SCENARIO...]]
//
// Root only (it mounts, drops the page cache and switches uid). It builds a
// fresh tree under a temp dir, mounts it with bindfs (default options, and
// with the cache options aclfs mounts with) and with aclfs twice (deny by
// default, one recursive rule granting the benchmark user r--, so every open
// through aclfs is a real allowed decision): `aclfs` with --data daemon and
// `aclfs-passthrough` with --data passthrough (checked with `aclfs status`
// to be served so after every mount), and runs the scenarios in
// bench/scenarios/ (all of them, or those --only names), interleaving the
// variants in every round, each unpinned and with the daemon and the load
// sharing one CPU:
//   - open-read-close: open + 4 KiB read + close of small files, µs/op;
//   - parallel-readers: the same by 8 reader processes at once, aggregate ops/s;
//   - sequential-read: sequential read of one big file, MB/s (10^6 bytes/s),
//     cold (after drop_caches; three times per round, the noisiest figure)
//     and re-read;
//   - metadata-walk: `find DIR -type f -print0 | xargs -0 stat > /dev/null`
//     over 10,000 files on a cold mount (that variant unmounted and mounted
//     again, and drop_caches, before every run), seconds.
// It prints medians over the rounds and the goals with PASS/FAIL (--json:
// one object with medians, ratios, goals and raw samples). --quick: the same
// shape at a fraction of the cost, one round, to check the harness. The
// daemon's memory with 1,000,000 rules is bench/rss.js. Everything it starts
// is stopped and the temp dir removed, also on error or SIGINT/SIGTERM.
'use strict';

const { parseArgs } = require('node:util');

const { BENCH_UID, PAR_READERS, READ_BUF, SMALL_FILES, SMALL_SIZE, commandLine, hostFacts, requireRootAndBuild } = require('./lib/env');
const { cpuPlan } = require('./lib/cpus');
const { cleanup, log, makeWorkDir, run, runMain } = require('./lib/processes');
const { summarize, table } = require('./lib/report');
const { measureRounds, metricsOf } = require('./lib/rounds');
const { ACLFS_DATA, aclfsDataPath, mountAll, sanityCheck, setup } = require('./lib/variants');

const SCENARIOS = require('./scenarios');

// coldReads: cold reads per variant and round (their figure is the noisiest;
// see lib/cold.js), all of them samples of the same median.
const FULL = { bigMiB: 256, ops: 20000, runs: 5, parSeconds: 2, metaFiles: 10000, coldReads: 3 };
// --quick: the same shape at a fraction of the cost, to check the harness.
const QUICK = { bigMiB: 32, ops: 2000, runs: 1, parSeconds: 0.5, metaFiles: 2000, coldReads: 1 };

const USAGE = `usage: node bench/fs.js [--runs N] [--quick] [--json] [--only SCENARIO[,SCENARIO...]]
scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}
`;

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const base = values.quick ? QUICK : FULL;
  let runs = base.runs;
  if (values.runs !== undefined) {
    runs = Number(values.runs);
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  }
  return { json: values.json, quick: values.quick, runs, bigMiB: base.bigMiB, ops: base.ops, parSeconds: base.parSeconds, metaFiles: base.metaFiles, coldReads: base.coldReads, scenarios: selectScenarios(values.only) };
}

/** The scenarios --only names (comma-separated or repeated), in measuring order; all without it. */
function selectScenarios(only) {
  if (only === undefined) return SCENARIOS;
  const names = only.flatMap((o) => o.split(',')).filter(Boolean);
  for (const name of names) {
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`--only: no scenario ${name}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return SCENARIOS.filter((s) => names.includes(s.name));
}

async function main() {
  const started = Date.now();
  const opts = parseOptions(process.argv.slice(2));
  requireRootAndBuild('mounts, drop_caches, setpriv');
  const { scenarios } = opts;
  const metrics = metricsOf(scenarios);

  const meta = {
    date: new Date().toISOString(),
    command: commandLine(),
    cwd: process.cwd(),
    host: { ...hostFacts(), bindfs: (await run('bindfs', ['--version'])).trim() },
  };

  const cpus = await cpuPlan();
  const tmp = makeWorkDir('aclfs-bench-');
  log(`setting up in ${tmp} (${SMALL_FILES} small files, ${opts.metaFiles} metadata files, ${opts.bigMiB} MiB file)`);
  await setup(tmp, opts);
  log('mounting aclfs, then aclfs-passthrough, bindfs and bindfs-cache');
  const mounted = await mountAll(tmp);
  await sanityCheck(tmp, mounted, opts);

  const samples = await measureRounds({ tmp, mounted, opts, cpus, scenarios });
  // How each aclfs daemon served file data (since its last mount: the
  // metadata walk mounts it afresh).
  const dataPath = {};
  for (const v of Object.keys(ACLFS_DATA)) dataPath[v] = await aclfsDataPath(mounted.specs[v].socket);
  const summary = summarize(samples, metrics, scenarios.flatMap((s) => s.goals));
  meta.config = {
    runs: opts.runs,
    coldReads: opts.coldReads,
    quick: opts.quick,
    ops: opts.ops,
    smallFiles: SMALL_FILES,
    smallSize: SMALL_SIZE,
    bigMiB: opts.bigMiB,
    readBuf: READ_BUF,
    parReaders: PAR_READERS,
    parSeconds: opts.parSeconds,
    metaFiles: opts.metaFiles,
    uid: BENCH_UID,
    pinCpu: cpus.pinCpu,
    allCpus: cpus.all,
    bindfsCacheOpts: mounted.bindfsCache.opts,
    bindfsCacheSource: mounted.bindfsCache.source,
    aclfsFuseOptions: mounted.bindfsCache.aclfsOptions,
    aclfsData: ACLFS_DATA,
    dataPath,
    ...(scenarios.length < SCENARIOS.length ? { scenarios: scenarios.map((s) => s.name) } : {}),
    units: Object.fromEntries(Object.entries(metrics).map(([m, { unit }]) => [m, unit])),
  };
  await cleanup();
  meta.durationSec = (Date.now() - started) / 1000;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...meta, ...summary, samples }, null, 2)}\n`);
  } else {
    process.stdout.write(`${table(meta, summary, samples, metrics)}\n`);
  }
}

runMain('bench', main);
