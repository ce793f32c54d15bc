#!/usr/bin/env node
// Records what node_modules was installed from, so scripts/setup.sh can skip
// `npm ci` when nothing it depends on has changed. The stamp is a digest of
// everything `npm ci` turns into node_modules here: package-lock.json, the
// fuse-native patch and the project's C compiled into it (native/, without
// its unit tests), the postinstall that compiles it, and the Node version and
// architecture the addon is built for.
//   node scripts/install-stamp.js write   after a successful install (postinstall)
//   node scripts/install-stamp.js check   exit 0 if current; else 1 and why, on stdout
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const stampFile = path.join(root, 'node_modules', '.aclfs-install-stamp');

/** Files under `dir`, sorted, relative to the root; `skip` names subdirectories left out. */
function filesUnder(dir, skip = []) {
  const out = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) {
        if (!skip.includes(child)) walk(child);
      } else if (entry.isFile()) {
        out.push(child);
      }
    }
  };
  walk(dir);
  return out.sort();
}

function digest() {
  const hash = crypto.createHash('sha256');
  hash.update(`node ${process.version} ${process.arch}\n`);
  // Sources only: a build or editor leaving other files in native/ changes nothing installed.
  const nativeSources = filesUnder('native', ['native/test']).filter((f) => /\.(c|h|gypi)$/.test(f));
  const files = ['package-lock.json', 'scripts/build-fuse-native.js', ...filesUnder('patches'), ...nativeSources];
  for (const file of files) {
    hash.update(`${file}\n`);
    hash.update(fs.readFileSync(path.join(root, file)));
  }
  return hash.digest('hex');
}

const command = process.argv[2];
if (command === 'write') {
  fs.writeFileSync(stampFile, `${digest()}\n`);
} else if (command === 'check') {
  let recorded = null;
  try {
    recorded = fs.readFileSync(stampFile, 'utf8').trim();
  } catch {
    // no stamp: installed before stamps, by hand, or not at all
  }
  if (recorded === null) {
    process.stdout.write('node_modules has no install stamp\n');
    process.exit(1);
  }
  if (recorded !== digest()) {
    process.stdout.write('package-lock.json, patches/, native/ or the Node version changed since node_modules was installed\n');
    process.exit(1);
  }
} else {
  process.stderr.write('usage: install-stamp.js write|check\n');
  process.exit(2);
}
