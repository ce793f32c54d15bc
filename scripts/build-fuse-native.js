#!/usr/bin/env node
// postinstall: apply our patch to fuse-native and compile it from source
// against this machine's Node headers and Debian's libfuse2. fuse-native's own
// install script (node-gyp-build) is not relied on: npm 11 does not run
// dependency install scripts unless allowed, and upstream's prebuilt binary is
// exactly what we must not load (no caller identity, leaks per thread).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const fuseDir = path.join(root, 'node_modules', 'fuse-native');

function fail(message) {
  process.stderr.write(`aclfs postinstall: ${message}\n`);
  process.exit(1);
}

function libfuse2Present() {
  for (const dir of ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/lib']) {
    if (fs.existsSync(path.join(dir, 'libfuse.so.2'))) return true;
  }
  return false;
}

if (!fs.existsSync(fuseDir)) fail('node_modules/fuse-native is missing');
if (!libfuse2Present()) {
  fail("Debian's libfuse2 is not installed; run scripts/setup.sh as root (or: apt-get install fuse libfuse2)");
}

// patch-package is idempotent: an already applied patch is left alone.
execFileSync(process.execPath, [require.resolve('patch-package/index.js'), '--error-on-fail'], {
  cwd: root,
  stdio: 'inherit',
});

// node-gyp cannot download headers here; build against the local Node's.
const nodedir = path.resolve(path.dirname(process.execPath), '..');
if (!fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail(`Node headers not found under ${nodedir}/include/node`);
}
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
execFileSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
  cwd: fuseDir,
  stdio: 'inherit',
});
process.stdout.write('aclfs postinstall: fuse-native patched and built from source\n');
// Lets scripts/setup.sh skip `npm ci` until something this install came from changes.
execFileSync(process.execPath, [path.join(__dirname, 'install-stamp.js'), 'write'], { stdio: 'inherit' });
