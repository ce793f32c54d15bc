// The five ways the same tree is read: the plain directory, bindfs (default
// options), bindfs-cache (bindfs with the cache options aclfs mounts with),
// aclfs (--default deny, one recursive rule granting the benchmark user r--,
// file data served by the daemon: --data daemon) and aclfs-passthrough (the
// same with --data passthrough: after an allowed open the kernel reads the
// backing file itself; the 4 KiB files, below the default
// --passthrough-min-size, are read through the daemon's kept page cache).
// Building the tree, mounting, remounting, and proving
// the mounts serve what they should.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { ACLFS_BIN, BENCH_RULE, BENCH_UID, OTHER_UID, ROOT, SMALL_FILES, SMALL_SIZE } = require('./env');
const { installLoadProgram, load } = require('./loads');
const { findDaemon, log, run, startDaemon, unmountDaemon, waitForMount } = require('./processes');
const { setAffinity } = require('./cpus');

const VARIANTS = ['plain', 'bindfs', 'bindfs-cache', 'aclfs', 'aclfs-passthrough'];

/** The aclfs variants and the --data mode each is mounted with (and must be found serving). */
const ACLFS_DATA = { aclfs: 'daemon', 'aclfs-passthrough': 'passthrough' };

/** Files per directory of the metadata tree (meta/dNNN/fNNN). */
const META_PER_DIR = 100;

// bindfs-cache is bindfs with the cache options aclfs itself mounts with, so
// the comparison is on equal caching. They are taken from the aclfs daemon at
// run time: a preload (fuse-opts-probe.js) records the option string
// fuse-native hands to libfuse, and the options below are copied from it.
// bindfs 1.14.7 (libfuse 2.9) passes these libfuse options through (checked:
// the mount comes up with auto_cache, attr_timeout=N and entry_timeout=N, and
// with auto_cache a re-read is served from the kernel's page cache without
// READ requests).
const CACHE_OPT_RE = /^(kernel_cache|auto_cache|direct_io|(entry|negative|attr|ac_attr)_timeout=.*)$/;
// What src/fs/mount.ts passed when this was written; used (with a warning in
// the output) only if the probe cannot read the options from the daemon.
const FALLBACK_ACLFS_CACHE_OPTS = ['auto_cache', 'attr_timeout=0'];

// ---------------------------------------------------------------- the tree

/** SMALL_FILES files of SMALL_SIZE random bytes in `small`. */
function writeSmallFiles(small) {
  fs.mkdirSync(small, { recursive: true, mode: 0o755 });
  for (let i = 0; i < SMALL_FILES; i++) {
    // Random bytes: nothing in the stack can shortcut the content.
    fs.writeFileSync(path.join(small, `f${String(i).padStart(4, '0')}`), crypto.randomBytes(SMALL_SIZE), { mode: 0o644 });
  }
}

/** src/small (the small files), src/meta (metaFiles files of 100 B), src/big.bin (bigMiB MiB). */
function writeTree(dir, { metaFiles, bigMiB }) {
  writeSmallFiles(path.join(dir, 'src', 'small'));
  // The metadata tree: META_PER_DIR files of 100 bytes per directory.
  for (let i = 0; i < metaFiles; i++) {
    const sub = path.join(dir, 'src', 'meta', `d${String(Math.floor(i / META_PER_DIR)).padStart(3, '0')}`);
    if (i % META_PER_DIR === 0) fs.mkdirSync(sub, { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(sub, `f${String(i % META_PER_DIR).padStart(3, '0')}`), crypto.randomBytes(100), { mode: 0o644 });
  }
  const chunk = crypto.randomBytes(1024 * 1024);
  const fd = fs.openSync(path.join(dir, 'src', 'big.bin'), 'w', 0o644);
  try {
    for (let i = 0; i < bigMiB; i++) fs.writeSync(fd, chunk);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes the tree, the load program, the probe and the rule database into the work dir `tmp`. */
async function setup(tmp, sizes) {
  writeTree(tmp, sizes);
  installLoadProgram(tmp);
  fs.writeFileSync(path.join(tmp, 'fuse-opts-probe.js'), fs.readFileSync(path.join(__dirname, 'fuse-opts-probe.js')), { mode: 0o644 });
  fs.writeFileSync(path.join(tmp, 'rules.json'), JSON.stringify({ version: 1, rules: [BENCH_RULE] }));
  // A database per aclfs daemon: the two share nothing but the tree.
  for (const v of Object.keys(ACLFS_DATA)) {
    await run(process.execPath, [ACLFS_BIN, 'import', path.join(tmp, 'rules.json'), '--db', aclfsDb(tmp, v)]);
  }
  for (const v of VARIANTS) if (v !== 'plain') fs.mkdirSync(path.join(tmp, `mnt-${v}`), { mode: 0o755 });
  // Written data must be on disk, or drop_caches cannot evict it.
  await run('sync', []);
}

// ---------------------------------------------------------------- mounting

/** The rule database of an aclfs variant's daemon. */
function aclfsDb(tmp, variant) {
  return path.join(tmp, variant === 'aclfs' ? 'db' : `db-${variant}`);
}

/** The admin socket of an aclfs variant's daemon. */
function aclfsSocket(tmp, variant = 'aclfs') {
  // A private socket in a directory the daemon creates 0750 keeps clear of
  // any other aclfs on the machine (and of the other variant's daemon).
  return path.join(tmp, variant === 'aclfs' ? 'run' : `run-${variant}`, 'aclfs.sock');
}

/**
 * The aclfs mount command's arguments, as every benchmark mounts it;
 * `data` ('daemon' | 'passthrough') adds --data, `socket` overrides the
 * default private socket.
 */
function aclfsMountArgs(tmp, src, mnt, db, { data, socket = aclfsSocket(tmp) } = {}) {
  return ['mount', src, mnt, '--db', db, '--default', 'deny', '--log-level', 'warn', '--socket', socket, ...(data === undefined ? [] : ['--data', data])];
}

/** The dataPath of an aclfs daemon's status (`aclfs status --json` over its socket). */
async function aclfsDataPath(socket) {
  const status = JSON.parse(await run(process.execPath, [ACLFS_BIN, 'status', '--json', '--socket', socket]));
  if (status.dataPath === null || typeof status.dataPath !== 'object') throw new Error(`aclfs status on ${socket} has no dataPath`);
  return status.dataPath;
}

/**
 * Throws unless the aclfs daemon of `spec` serves file data the way it was
 * mounted to: a passthrough variant silently served by the daemon (the
 * kernel refused passthrough) would measure the other variant twice.
 */
async function verifyDataPath(name, spec) {
  const d = await aclfsDataPath(spec.socket);
  if (d.requested !== spec.data || d.mode !== spec.data) {
    throw new Error(`${name}: mounted with --data ${spec.data}, but aclfs status says requested ${d.requested}, mode ${d.mode}` + (d.refusal === null ? '' : ` (refused: ${d.refusal})`));
  }
}

/**
 * How each mounted variant is started: { cmd, args, mountpoint }, and for
 * the aclfs variants the socket and the --data mode to verify once mounted.
 */
function daemonSpecs(tmp, bindfsCacheOpts) {
  const src = path.join(tmp, 'src');
  const mnt = (v) => path.join(tmp, `mnt-${v}`);
  // bin/aclfs directly, as installed (its shebang carries the daemon's V8
  // flags; env execs node, so the pid we hold is the daemon's).
  const aclfs = (v) => {
    const socket = aclfsSocket(tmp, v);
    const args = aclfsMountArgs(tmp, src, mnt(v), aclfsDb(tmp, v), { data: ACLFS_DATA[v], socket });
    return { cmd: ACLFS_BIN, args, mountpoint: mnt(v), socket, data: ACLFS_DATA[v] };
  };
  return {
    // -f keeps bindfs in the foreground as our child, so it is stopped by pid.
    bindfs: { cmd: 'bindfs', args: ['-f', '-o', 'allow_other', src, mnt('bindfs')], mountpoint: mnt('bindfs') },
    'bindfs-cache': { cmd: 'bindfs', args: ['-f', '-o', bindfsCacheOpts, src, mnt('bindfs-cache')], mountpoint: mnt('bindfs-cache') },
    aclfs: aclfs('aclfs'),
    'aclfs-passthrough': aclfs('aclfs-passthrough'),
  };
}

/** Starts one variant's daemon, waits for its mount and, for aclfs, checks how it serves file data. */
async function mountVariant(name, spec, env) {
  const entry = startDaemon(name, spec.cmd, spec.args, spec.mountpoint, env);
  await waitForMount(entry);
  if (spec.data !== undefined) await verifyDataPath(name, spec);
  return entry;
}

/** The libfuse options the aclfs daemon mounted with, as recorded by the probe, or null. */
function probedFuseOptions(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  return text.replace(/^-o/, '').split(',').filter(Boolean);
}

/**
 * Mounts aclfs first (with the probe), then aclfs-passthrough, bindfs with
 * its defaults and bindfs-cache with aclfs's cache options. Returns the
 * roots and the specs (for remounting) and where bindfs-cache's options
 * came from.
 */
async function mountAll(tmp) {
  const optsFile = path.join(tmp, 'aclfs-fuse-opts');
  const probeEnv = {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(tmp, 'fuse-opts-probe.js')}`.trim(),
    ACLFS_BENCH_ROOT: ROOT,
    ACLFS_BENCH_FUSE_OPTS: optsFile,
  };
  await mountVariant('aclfs', daemonSpecs(tmp, '').aclfs, probeEnv);
  const aclfsOptions = probedFuseOptions(optsFile);
  const cacheOpts = aclfsOptions === null ? FALLBACK_ACLFS_CACHE_OPTS : aclfsOptions.filter((o) => CACHE_OPT_RE.test(o));
  const bindfsCache = {
    opts: ['allow_other', ...cacheOpts].join(','),
    source: aclfsOptions === null ? 'NOT read from the aclfs daemon (probe failed): copy of src/fs/mount.ts when this benchmark was written' : 'cache options read from the aclfs daemon',
    aclfsOptions,
  };
  if (aclfsOptions === null) log(`WARNING: could not read aclfs's libfuse options; bindfs-cache uses ${bindfsCache.opts}`);
  const specs = daemonSpecs(tmp, bindfsCache.opts);
  await Promise.all(['aclfs-passthrough', 'bindfs', 'bindfs-cache'].map((v) => mountVariant(v, specs[v])));
  return {
    roots: {
      plain: path.join(tmp, 'src'),
      ...Object.fromEntries(VARIANTS.filter((v) => v !== 'plain').map((v) => [v, specs[v].mountpoint])),
    },
    specs,
    bindfsCache,
  };
}

/** Unmounts a variant (fusermount -u), mounts it again (aclfs: checked as at first) and gives it the CPUs of the others. */
async function remount(v, specs, cpus) {
  const old = findDaemon(v);
  if (old) await unmountDaemon(old);
  const entry = await mountVariant(v, specs[v]);
  await setAffinity(entry.child.pid, cpus);
}

/**
 * Proves the aclfs mounts decide (the benchmark user is let in, an unnamed
 * user is not) and that aclfs-passthrough's allowed open went by passthrough.
 */
async function sanityCheck(tmp, mounted, { metaFiles }) {
  const { roots, specs } = mounted;
  const file = (root) => path.join(root, 'small', 'f0000');
  const checks = [
    [roots.plain, OTHER_UID, 'ok'],
    [roots.bindfs, OTHER_UID, 'ok'],
    [roots.aclfs, BENCH_UID, 'ok'],
    [roots.aclfs, OTHER_UID, 'EACCES'],
    [roots['aclfs-passthrough'], BENCH_UID, 'ok'],
    [roots['aclfs-passthrough'], OTHER_UID, 'EACCES'],
  ];
  for (const [root, uid, want] of checks) {
    const { result } = await load(tmp, uid, null, ['try-open', file(root)]);
    if (result !== want) throw new Error(`sanity: uid ${uid} opening ${file(root)} gave ${result}, expected ${want}`);
  }
  // Mode 'passthrough' says the kernel agreed; the count says the benchmark
  // user's files are actually handed to it (no rule keeps them in the
  // daemon). The big file: the small ones are below --passthrough-min-size,
  // read through the daemon's kept page cache on purpose.
  for (const v of Object.keys(ACLFS_DATA)) {
    const { result } = await load(tmp, BENCH_UID, null, ['try-open', path.join(roots[v], 'big.bin')]);
    if (result !== 'ok') throw new Error(`sanity: opening big.bin in ${v} gave ${result}`);
  }
  for (const v of Object.keys(ACLFS_DATA)) {
    const { passthroughOpens } = await aclfsDataPath(specs[v].socket);
    const want = ACLFS_DATA[v] === 'passthrough';
    if ((passthroughOpens > 0) !== want) throw new Error(`sanity: ${v} served ${passthroughOpens} opens by passthrough, expected ${want ? 'some' : 'none'}`);
  }
  // Every variant shows the benchmark user the whole metadata tree.
  for (const v of VARIANTS) {
    const { files } = await load(tmp, BENCH_UID, null, ['count', path.join(roots[v], 'meta')]);
    if (files !== metaFiles) throw new Error(`sanity: find in ${v} saw ${files} files under meta/, expected ${metaFiles}`);
  }
}

module.exports = { ACLFS_DATA, VARIANTS, aclfsDataPath, aclfsMountArgs, mountAll, remount, sanityCheck, setup, writeSmallFiles };
