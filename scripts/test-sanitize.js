#!/usr/bin/env node
// npm run test:sanitize [-- <vitest files>]: builds the addon (fuse-native
// with the project's native/ C) a second time, with AddressSanitizer and
// UndefinedBehaviorSanitizer, into build/fuse-native-sanitize/ (the installed addon is
// left alone), then runs real-mount integration tests with every process
// loading that build: ACLFS_NATIVE_ADDON points fuse-native's loader at it,
// LD_PRELOAD puts the ASan runtime first in every Node process (Node itself
// is not instrumented; other programs the tests start go without it).
// Fails when a test fails or when a sanitizer reported anything (reports go
// to files, which are printed), even from a process that was not waited for.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const DEFAULT_TESTS = ['test/mount/security.test.ts', 'test/mount/fastpath.test.ts', 'test/mount/ops.test.ts', 'test/mount/passthrough.test.ts'];
const tests = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT_TESTS;

// Two levels below the root, as node_modules/fuse-native is: its
// binding.gyp finds the project's C at ../../native.
const addonDir = path.join(root, 'build', 'fuse-native-sanitize');
const reports = path.join(root, 'build', 'sanitize-reports');
const sanitize = '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined';

function log(message) {
  process.stdout.write(`aclfs test:sanitize: ${message}\n`);
}

// A copy of the patched fuse-native.
fs.rmSync(addonDir, { recursive: true, force: true });
fs.mkdirSync(addonDir, { recursive: true });
const installed = path.join(root, 'node_modules', 'fuse-native');
for (const name of fs.readdirSync(installed)) {
  if (name === 'build' || name === 'prebuilds' || name === 'test') continue;
  fs.cpSync(path.join(installed, name), path.join(addonDir, name), { recursive: true });
}
const nodedir = path.resolve(path.dirname(process.execPath), '..');
log('building the sanitized addon');
execFileSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
  cwd: addonDir,
  stdio: 'inherit',
  env: { ...process.env, CFLAGS: `${sanitize} -g`, LDFLAGS: sanitize },
});
const addon = path.join(addonDir, 'build', 'Release', 'fuse.node');

const libasan = execFileSync('cc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
if (!path.isAbsolute(libasan) || !fs.existsSync(libasan)) throw new Error(`libasan not found (cc says ${libasan})`);

fs.rmSync(reports, { recursive: true, force: true });
fs.mkdirSync(reports, { recursive: true });
const env = {
  ...process.env,
  ACLFS_NATIVE_ADDON: addon,
  LD_PRELOAD: libasan,
  // LD_PRELOAD goes on to Node processes only (see sanitize-preload.js).
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'sanitize-preload.js')}`.trim(),
  // Leaks are not checked: Node frees little at exit by design. Every
  // report ends the process that made it and lands in reports/.
  ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:log_path=${reports}/asan`,
  UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${reports}/ubsan`,
};
log(`running ${tests.join(' ')} with ${path.relative(root, addon)}`);
const started = Date.now();
const run = spawnSync(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...tests], {
  cwd: root,
  stdio: 'inherit',
  env,
});
log(`tests took ${Math.round((Date.now() - started) / 1000)} s`);

const found = fs.readdirSync(reports);
for (const name of found) {
  process.stderr.write(`---- ${name}\n${fs.readFileSync(path.join(reports, name), 'utf8')}\n`);
}
if (found.length > 0) {
  log(`FAILED: ${found.length} sanitizer report(s) above`);
  process.exit(1);
}
if (run.status !== 0) {
  log(`FAILED: the tests failed (exit ${String(run.status ?? run.signal)})`);
  process.exit(1);
}
log('passed, no sanitizer report');
