#!/usr/bin/env node
// Runs the benchmarks in turn, each in a process of its own (so one's memory
// and caches do not weigh on the next), stopping at the first that fails:
//
//   node bench/run.js [--quick] [--json] [--only NAME[,NAME...]]
//
//   fs      bench/fs.js: aclfs (file data through the daemon, and by FUSE
//           passthrough) against the plain directory, bindfs and
//           bindfs-cache; its scenarios are in bench/scenarios/ and may be
//           named on their own (open-read-close, parallel-readers,
//           sequential-read, metadata-walk)
//   admin   bench/admin.js: the admin API over its socket
//   decide  bench/decide.js: the in-process decision
//   rss     bench/rss.js: the daemon's memory with 1,000,000 rules
//
// --quick and --json are passed to each; --quick makes every one a short
// harness check (tiny sizes, one round) whose figures say little. Every
// benchmark but decide needs root.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const FS_SCENARIOS = require('./scenarios').map((s) => s.name);
const SUITES = ['fs', 'admin', 'decide', 'rss'];

const USAGE = `usage: node bench/run.js [--quick] [--json] [--only NAME[,NAME...]]
names: ${SUITES.join(', ')}, or a scenario of fs: ${FS_SCENARIOS.join(', ')}
`;

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const common = [...(values.quick ? ['--quick'] : []), ...(values.json ? ['--json'] : [])];
  return { plan: plan(values.only), common };
}

/** [suite, extra args] in run order: every suite, or those --only names (an fs scenario selects fs with --only). */
function plan(only) {
  if (only === undefined) return SUITES.map((s) => [s, []]);
  const names = only.flatMap((o) => o.split(',')).filter(Boolean);
  for (const name of names) {
    if (!SUITES.includes(name) && !FS_SCENARIOS.includes(name)) throw new Error(`--only: no benchmark ${name}\n${USAGE}`);
  }
  const scenarios = names.filter((n) => FS_SCENARIOS.includes(n));
  return SUITES.filter((s) => names.includes(s) || (s === 'fs' && scenarios.length > 0)).map((s) => [
    s,
    s === 'fs' && !names.includes('fs') ? ['--only', scenarios.join(',')] : [],
  ]);
}

/** The running benchmark, to pass a SIGTERM on (a terminal's SIGINT reaches it directly). */
let current = null;

function runSuite(suite, args) {
  return new Promise((resolve, reject) => {
    current = spawn(process.execPath, [path.join(__dirname, `${suite}.js`), ...args], { stdio: 'inherit' });
    current.on('error', reject);
    current.on('exit', (code, signal) => {
      current = null;
      resolve(code ?? (signal === 'SIGINT' ? 130 : 143));
    });
  });
}

async function main() {
  const { plan: suites, common } = parseOptions(process.argv.slice(2));
  let stopped = null;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      stopped = signal;
      // The benchmark cleans up on its signal and exits; then so do we.
      if (current !== null && signal === 'SIGTERM') current.kill('SIGTERM');
    });
  }
  for (const [suite, args] of suites) {
    const code = await runSuite(suite, [...args, ...common]);
    if (stopped !== null) {
      process.stderr.write(`bench: stopped by ${stopped} during ${suite}\n`);
      process.exitCode = code !== 0 ? code : stopped === 'SIGINT' ? 130 : 143;
      return;
    }
    if (code !== 0) {
      process.stderr.write(`bench: ${suite} failed (exit ${code}); the benchmarks after it were not run\n`);
      process.exitCode = code;
      return;
    }
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exitCode = 2;
});
