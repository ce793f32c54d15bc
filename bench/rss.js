#!/usr/bin/env node
// Benchmark: how much memory does the aclfs daemon hold with a large rule set
// after serving readers for a while?
//
//   node bench/rss.js [--seconds N] [--rules N] [--quick] [--json]
//
// Root only (it mounts and switches uid). It builds a fresh tree under a
// temp dir (1,000 files of 4 KiB), imports --rules rules (default 1,000,000)
// into a fresh database with `aclfs import FILE --db DIR`:
//   - one recursive rule on "/" granting the benchmark user r--: it governs
//     every file the readers read, so every open is a real allowed decision;
//   - the rest per-file rules on paths under /other/ that no file exists at
//     (rules written ahead of their files, waiting to be bound),
// mounts aclfs over the tree as bench/fs.js does (--default deny), runs
// 8 reader processes as the benchmark user (open + 4 KiB read + close over the
// files, unpinned) for --seconds (default 300), and samples the daemon's
// VmRSS and VmHWM (and RssAnon/RssFile) from /proc/PID/status once the mount
// is up, when the readers start, every 30 s and at the end. It prints start,
// end and peak MiB and the goal with PASS/FAIL: daemon RSS after the run
// <= 150 MiB (--json: one object with every sample). --quick: 1,000 rules
// and 2 s, to check the harness (the figures then say nothing).
//
// It uses the machinery of bench/lib: the load runs in child processes as
// the benchmark user, this process never reads through the mount, and
// everything it starts is stopped (by pid; the mount with it) and the temp
// dir removed, also on error or SIGINT/SIGTERM.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { ACLFS_BIN, BENCH_RULE, BENCH_UID, OTHER_UID, PAR_READERS, SMALL_FILES, SMALL_SIZE, commandLine, hostFacts, requireRootAndBuild } = require('./lib/env');
const { installLoadProgram, load, parallelLoad } = require('./lib/loads');
const { alive, cleanup, log, makeWorkDir, run, runMain, startDaemon, waitForMount } = require('./lib/processes');
const { aclfsMountArgs, writeSmallFiles } = require('./lib/variants');

/** The goal: daemon RSS after the run, MiB. Not to be tuned to the results. */
const GOAL_MIB = 150;
const SAMPLE_EVERY_MS = 30000;
/** Rules per directory of the waiting per-file rules (/other/dNNN/fN). */
const RULES_PER_DIR = 1000;
/** Rules written to the rule file per write call. */
const WRITE_BATCH = 10000;
/** Importing and binding a million rules takes a while; a stuck step must still end. */
const IMPORT_TIMEOUT_MS = 30 * 60 * 1000;
const MOUNT_TIMEOUT_MS = 10 * 60 * 1000;
const STATUS_FIELDS = ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile'];
const FULL = { seconds: '300', rules: '1000000' };
/** --quick: a harness check, not a measurement. */
const QUICK = { seconds: '2', rules: '1000' };

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      rules: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: node bench/rss.js [--seconds N] [--rules N] [--quick] [--json]\n');
    process.exit(0);
  }
  const base = values.quick ? QUICK : FULL;
  values.seconds ??= base.seconds;
  values.rules ??= base.rules;
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
  const rules = Number(values.rules);
  if (!Number.isInteger(rules) || rules < 1) throw new Error(`--rules must be a positive integer, got ${values.rules}`);
  return { json: values.json, seconds, rules };
}

// ---------------------------------------------------------------- setup

/** Writes the rule file piecewise: a million rules are ~120 MiB of JSON. */
function writeRuleFile(file, n) {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    // The rule the filesystem benchmark mounts with (see BENCH_RULE).
    fs.writeSync(fd, `{"version":1,"rules":[\n${JSON.stringify(BENCH_RULE)}`);
    // The usual shape of a per-file rule: a user entry and a group entry
    // (as bench/admin.js imports them).
    for (let i = 0; i < n - 1; i += WRITE_BATCH) {
      const lines = [];
      for (let j = i; j < Math.min(n - 1, i + WRITE_BATCH); j++) {
        const rule = {
          path: `/other/d${Math.floor(j / RULES_PER_DIR)}/f${j}`,
          owner: 0,
          defaccess: '---',
          acl: [{ user: 1000 + (j % 50), access: 'rw-' }, { group: 100, access: 'r--' }],
        };
        lines.push(`,\n${JSON.stringify(rule)}`);
      }
      fs.writeSync(fd, lines.join(''));
    }
    fs.writeSync(fd, '\n]}\n');
  } finally {
    fs.closeSync(fd);
  }
}

/** Bytes the database files take on disk (LMDB files may be sparse). */
function diskBytes(dir) {
  let total = 0;
  for (const name of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, name)).blocks * 512;
  return total;
}

// ---------------------------------------------------------------- sampling

/** VmRSS, VmHWM, RssAnon, RssFile of a process, MiB (procfs, not the mount). */
async function memoryOf(pid) {
  const text = await fs.promises.readFile(`/proc/${pid}/status`, 'utf8');
  const out = {};
  for (const field of STATUS_FIELDS) {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    out[field] = Number(m[1]) / 1024;
  }
  return out;
}

// ---------------------------------------------------------------- report

function mib(x) {
  return `${x.toFixed(1)} MiB`;
}

function report(meta, result) {
  const rows = result.samples.map((s) => [
    s.label,
    s.t === null ? '-' : s.t.toFixed(1),
    ...STATUS_FIELDS.map((f) => s[f].toFixed(1)),
  ]);
  const header = ['sample', 't s', ...STATUS_FIELDS.map((f) => `${f} MiB`)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const { start, end, peak, highestSampled, goal } = result;
  return [
    `aclfs daemon memory benchmark, ${meta.date}`,
    `command: ${meta.command}`,
    `host: ${meta.host.cpus} CPUs (${meta.host.cpuModel}), kernel ${meta.host.kernel}, node ${meta.host.node}`,
    `rules: ${meta.rules.count} (1 recursive on / granting uid ${BENCH_UID} r--, which governs every file read; ` +
      `${meta.rules.count - 1} per-file rules on paths under /other/ where no file exists), ` +
      `rule file ${mib(meta.rules.fileMiB)}, database ${mib(meta.rules.dbMiB)} on disk, aclfs import --db ${meta.rules.importSec.toFixed(1)} s`,
    `mount: aclfs mount --default deny, up ${meta.mount.readySec.toFixed(1)} s after start, daemon pid ${meta.mount.pid}`,
    `load: ${PAR_READERS} reader processes (uid ${BENCH_UID}, unpinned) x ${meta.seconds} s of open + 4 KiB read + close ` +
      `over ${SMALL_FILES} x ${SMALL_SIZE} B files: ${Math.round(result.load.opsPerSec)} ops/s in all`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `RssAnon = the daemon's own memory (JS heap, native allocations); RssFile = pages of mapped files it has touched ` +
      `(the LMDB database, node's binary and libraries), counted in VmRSS, reclaimable by the kernel`,
    '',
    `start VmRSS ${mib(start)}, end VmRSS ${mib(end)}, peak ${mib(peak)} (VmHWM at the end: the most since the daemon started, ` +
      `its start with the rules included); highest VmRSS sampled during the run ${mib(highestSampled)}`,
    `goal: daemon RSS after the run <= ${GOAL_MIB} MiB: end VmRSS ${mib(end)} ${goal.end ? 'PASS' : 'FAIL'}`,
    `      and the peak:                   VmHWM ${mib(peak)} ${goal.peak ? 'PASS' : 'FAIL'}`,
    '',
    `total time ${meta.durationSec.toFixed(1)} s`,
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  const opts = parseOptions(process.argv.slice(2));
  requireRootAndBuild('mount, setpriv');

  const meta = {
    date: new Date().toISOString(),
    command: commandLine(),
    seconds: opts.seconds,
    host: hostFacts(),
  };

  let timer = null;
  try {
    const tmp = makeWorkDir('aclfs-bench-rss-');
    const src = path.join(tmp, 'src');
    const mnt = path.join(tmp, 'mnt-aclfs');
    const db = path.join(tmp, 'db');
    log(`setting up in ${tmp} (${SMALL_FILES} small files, ${opts.rules} rules)`);
    writeSmallFiles(path.join(src, 'small'));
    installLoadProgram(tmp);
    fs.mkdirSync(mnt, { mode: 0o755 });
    const ruleFile = path.join(tmp, 'rules.json');
    writeRuleFile(ruleFile, opts.rules);

    log(`importing ${opts.rules} rules: aclfs import ${ruleFile} --db ${db}`);
    const t0 = Date.now();
    const imported = await run(process.execPath, [ACLFS_BIN, 'import', ruleFile, '--db', db], { timeoutMs: IMPORT_TIMEOUT_MS });
    const importSec = (Date.now() - t0) / 1000;
    const total = /(\d+) in total/.exec(imported);
    if (!total || Number(total[1]) !== opts.rules) throw new Error(`import: expected ${opts.rules} rules in total, got: ${imported.trim()}`);
    meta.rules = { count: opts.rules, fileMiB: fs.statSync(ruleFile).size / 1048576, dbMiB: diskBytes(db) / 1048576, importSec };
    fs.rmSync(ruleFile);

    log('mounting aclfs');
    const t1 = Date.now();
    // As bench/fs.js mounts it: bin/aclfs directly (env execs node, so the
    // pid we hold is the daemon's), a private socket.
    const daemon = startDaemon('aclfs', ACLFS_BIN, aclfsMountArgs(tmp, src, mnt, db), mnt);
    await waitForMount(daemon, MOUNT_TIMEOUT_MS);
    const pid = daemon.child.pid;
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    if (comm !== 'node') throw new Error(`pid ${pid} is ${comm}, not the node daemon`);
    meta.mount = { pid, readySec: (Date.now() - t1) / 1000 };

    // The mount decides: the benchmark user is let in, an unnamed user is not.
    const file = path.join(mnt, 'small', 'f0000');
    for (const [uid, want] of [[BENCH_UID, 'ok'], [OTHER_UID, 'EACCES']]) {
      const { result } = await load(tmp, uid, null, ['try-open', file]);
      if (result !== want) throw new Error(`sanity: uid ${uid} opening ${file} gave ${result}, expected ${want}`);
    }

    const samples = [];
    let go = null;
    const sample = async (label) => {
      const t = go === null ? null : (Date.now() - go) / 1000;
      samples.push({ label, t, ...(await memoryOf(pid)) });
      log(`${label}: VmRSS ${mib(samples[samples.length - 1].VmRSS)}`);
    };
    await sample('mounted');
    // Samples taken while the readers run are awaited at the end; a failed
    // one (daemon gone) is reported then, never left as an unhandled rejection.
    const pending = [];
    const sampleLater = (label) => pending.push(sample(label).then(() => null, (err) => err));
    log(`${PAR_READERS} readers for ${opts.seconds} s`);
    const results = await parallelLoad(tmp, BENCH_UID, null, {
      dir: path.join(mnt, 'small'),
      seconds: opts.seconds,
      readers: PAR_READERS,
      onGo: () => {
        go = Date.now();
        sampleLater('start');
        timer = setInterval(() => sampleLater(`${Math.round((Date.now() - go) / 1000)} s`), SAMPLE_EVERY_MS);
      },
    });
    clearInterval(timer);
    timer = null;
    const failed = (await Promise.all(pending)).find((err) => err !== null);
    if (failed) throw failed;
    // Interval samples may finish out of order; the table is in time order.
    samples.sort((a, b) => (a.t ?? -1) - (b.t ?? -1));
    if (!alive(daemon.child)) throw new Error(`the daemon exited during the run: ${daemon.stderr.trim()}`);
    await sample('end');

    const during = samples.filter((s) => s.t !== null);
    const start = during[0].VmRSS;
    const last = samples[samples.length - 1];
    const result = {
      samples,
      load: { readers: PAR_READERS, opsPerSec: results.reduce((sum, r) => sum + r.opsPerSec, 0) },
      start,
      end: last.VmRSS,
      peak: last.VmHWM,
      highestSampled: Math.max(...during.map((s) => s.VmRSS)),
      goal: { mib: GOAL_MIB, end: last.VmRSS <= GOAL_MIB, peak: last.VmHWM <= GOAL_MIB },
    };
    await cleanup();
    meta.durationSec = (Date.now() - started) / 1000;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ ...meta, units: 'MiB (2^20 bytes), t in s since the readers started', ...result }, null, 2)}\n`);
    } else {
      process.stdout.write(`${report(meta, result)}\n`);
    }
  } finally {
    if (timer !== null) clearInterval(timer);
  }
}

runMain('bench-rss', main);
