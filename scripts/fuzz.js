#!/usr/bin/env node
// A longer run of the adversarial model test (test/mount/adversarial.test.ts):
// random operations by several users through a real mount, compared after
// every step with the reference model. Needs root and /dev/fuse, like the
// integration tests.
//
//   npm run fuzz                            50,000 steps, random seed
//   npm run fuzz -- --steps 200000 --seed 42
//   npm run fuzz -- --time 600              as many steps as fit in 10 minutes
//   npm run fuzz -- --replay '[...]'        one sequence printed with a divergence
//
// Options (or the environment variables they set):
//   --steps N        FUZZ_STEPS        steps to run (default 50000)
//   --time S         FUZZ_TIME         run for S seconds instead
//   --seed N         FUZZ_SEED         fast-check seed (default random; printed)
//   --per-run N      FUZZ_PER_RUN      operations per sequence (default 250)
//   --replay JSON    FUZZ_REPLAY       run this sequence of concrete operations only
//   --default P      FUZZ_DEFAULT      the daemon's default policy: deny (default) or allow
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const OPTIONS = {
  '--steps': 'FUZZ_STEPS',
  '--time': 'FUZZ_TIME',
  '--seed': 'FUZZ_SEED',
  '--per-run': 'FUZZ_PER_RUN',
  '--replay': 'FUZZ_REPLAY',
  '--default': 'FUZZ_DEFAULT',
};

function usage(message) {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--steps N | --time S] [--seed N] [--per-run N] [--default deny|allow] [--replay JSON]\n`);
  process.exit(2);
}

const env = { ...process.env };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--help' || arg === '-h') usage('the adversarial model test, run longer');
  const [name, inline] = arg.split(/=(.*)/s, 2);
  const variable = OPTIONS[name];
  if (variable === undefined) usage(`unknown option ${arg}`);
  const value = inline ?? args[++i];
  if (value === undefined) usage(`${name} needs a value`);
  if (name === '--default' && !['deny', 'allow'].includes(value)) usage(`--default takes deny or allow, got ${value}`);
  else if (!['--replay', '--default'].includes(name) && !/^\d+$/.test(value)) usage(`${name} takes a whole number, got ${value}`);
  env[variable] = value;
}
if (env.FUZZ_STEPS === undefined && env.FUZZ_TIME === undefined) env.FUZZ_STEPS = '50000';

const root = path.resolve(__dirname, '..');
const vitest = path.join(root, 'node_modules', '.bin', 'vitest');
const res = spawnSync(vitest, ['run', 'test/mount/adversarial.test.ts', '-t', 'random steps'], { cwd: root, env, stdio: 'inherit' });
process.exit(res.status ?? 1);
