// What every benchmark shares: where the project is, who the benchmark user
// is, the data it reads, and the facts about the host a report starts with.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const ACLFS_BIN = path.join(ROOT, 'bin', 'aclfs');

/** Benchmark user: owns nothing, has no groups, is named in exactly one ACL entry. */
const BENCH_UID = 2500;
/** A second uid that no rule names: must be refused by aclfs (sanity check). */
const OTHER_UID = 2501;

const SMALL_FILES = 1000;
const SMALL_SIZE = 4096;
const READ_BUF = 128 * 1024;
/** Reader processes of the parallel figures. */
const PAR_READERS = 8;

/**
 * The one rule every filesystem benchmark mounts with: root owns "/", nobody
 * gets anything by default, the benchmark user gets r-- through its own ACL
 * entry, so every open through aclfs is a real allowed decision.
 */
const BENCH_RULE = { path: '/', recursive: true, owner: 0, defaccess: '---', acl: [{ user: BENCH_UID, access: 'r--' }] };

/** Throws unless this process may mount and that the daemon is built. */
function requireRootAndBuild(why) {
  if (process.getuid() !== 0) throw new Error(`must run as root (${why})`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) throw new Error('dist/ is missing: run npm run build first');
}

/** CPUs, CPU model, kernel and node version, as each report's header prints them. */
function hostFacts() {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown', kernel: os.release(), node: process.version };
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command line that started this process, quoted for a shell (the report names it). */
function commandLine() {
  return process.argv.map(shellQuote).join(' ');
}

module.exports = {
  ROOT,
  ACLFS_BIN,
  BENCH_UID,
  OTHER_UID,
  SMALL_FILES,
  SMALL_SIZE,
  READ_BUF,
  PAR_READERS,
  BENCH_RULE,
  requireRootAndBuild,
  hostFacts,
  commandLine,
  shellQuote,
};
