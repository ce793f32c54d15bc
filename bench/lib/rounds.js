// The measurement method of the variant comparison: rounds in which every
// scenario measures every variant in turn, the order rotated each round,
// each round once unpinned and once with daemon and load sharing one CPU;
// the figures are the medians over the rounds.
'use strict';

const { setDaemonAffinity } = require('./cpus');
const { log } = require('./processes');
const { VARIANTS } = require('./variants');

const PIN_MODES = ['unpinned', 'pinned'];

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The metrics of the given scenarios, in scenario order: { key: { label, better, unit } }. */
function metricsOf(scenarios) {
  return Object.assign({}, ...scenarios.map((s) => s.metrics));
}

/**
 * Runs `runs` rounds of the scenarios over the mounted variants and returns
 * every sample: samples[pin][variant][metric] = [one value per sample].
 * Each scenario's `measure(ctx)` measures every variant of `ctx.order` and
 * hands each value to `ctx.record(variant, metric, value)`.
 */
async function measureRounds({ tmp, mounted, opts, cpus, scenarios }) {
  const metrics = Object.keys(metricsOf(scenarios));
  const samples = {};
  for (const pin of PIN_MODES) {
    samples[pin] = {};
    for (const v of VARIANTS) {
      samples[pin][v] = {};
      for (const m of metrics) samples[pin][v][m] = [];
    }
  }
  for (let round = 0; round < opts.runs; round++) {
    // Rotate who goes first each round, so drift (thermal, noisy neighbours,
    // leftover cache state) does not always fall on the same variant.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    for (const pin of PIN_MODES) {
      const pinCpu = pin === 'pinned' ? cpus.pinCpu : null;
      const daemonCpus = pin === 'pinned' ? String(cpus.pinCpu) : cpus.all;
      // Pinned: daemon and load compete for one CPU, so every request costs
      // the full context-switch round trip; unpinned: they may overlap.
      await setDaemonAffinity(daemonCpus);
      log(`round ${round + 1}/${opts.runs} ${pin}: ${order.join(', ')}`);
      const record = (v, m, value) => samples[pin][v][m].push(value);
      for (const scenario of scenarios) {
        await scenario.measure({ tmp, roots: mounted.roots, specs: mounted.specs, opts, order, pinCpu, daemonCpus, record });
      }
    }
  }
  return samples;
}

module.exports = { PIN_MODES, measureRounds, median, metricsOf };
