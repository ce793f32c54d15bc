// Medians, ratios and goals of the variant comparison, and the text report.
'use strict';

const { PAR_READERS, READ_BUF, SMALL_FILES, SMALL_SIZE, BENCH_UID } = require('./env');
const { PIN_MODES, median } = require('./rounds');
const { VARIANTS } = require('./variants');

/** Goal 5 is measured by bench/rss.js; named here so the list is whole. */
const RSS_GOAL = '5. daemon RSS with 1,000,000 rules after a 5-minute 8-reader run <= 150 MiB: bench/rss.js (after this in npm run bench)';

/** The variants whose ratios to the others are computed: the two aclfs mounts. */
const SUBJECTS = ['aclfs', 'aclfs-passthrough'];
/** The ratio columns of the medians table, after the variants' own columns. */
const RATIO_COLUMNS = ['aclfs/bindfs', 'aclfs/bindfs-cache', 'aclfs-passthrough/bindfs', 'aclfs-passthrough/plain'];

/**
 * Medians per pin mode, variant and metric; the ratios of each aclfs
 * variant to every other variant ('aclfs/bindfs', 'aclfs-passthrough/plain',
 * ...); and each goal ({ n, metric, pin, of?, vs, op, target }: of is the
 * variant judged, aclfs when absent) with the ratio it met and whether it
 * passed.
 */
function summarize(samples, metrics, goalList) {
  const medians = {};
  const ratios = {};
  for (const pin of PIN_MODES) {
    medians[pin] = {};
    ratios[pin] = {};
    for (const v of VARIANTS) {
      medians[pin][v] = {};
      for (const m of Object.keys(metrics)) medians[pin][v][m] = median(samples[pin][v][m]);
    }
    for (const m of Object.keys(metrics)) {
      ratios[pin][m] = { better: metrics[m].better };
      for (const of of SUBJECTS) {
        for (const vs of VARIANTS) {
          if (vs !== of) ratios[pin][m][`${of}/${vs}`] = medians[pin][of][m] / medians[pin][vs][m];
        }
      }
    }
  }
  const goals = goalList.map((g) => {
    const ratio = ratios[g.pin][g.metric][`${g.of ?? 'aclfs'}/${g.vs}`];
    const pass = g.op === '<=' ? ratio <= g.target : ratio >= g.target;
    return { ...g, ratio, pass };
  });
  return { medians, ratios, goals };
}

function fmt(x) {
  if (x >= 1000) return x.toFixed(0);
  if (x >= 100) return x.toFixed(1);
  // Seconds of the metadata walk can be well under 1.
  if (x < 1) return x.toFixed(3);
  return x.toFixed(2);
}

/** Aligned text columns: the first two and the last left-aligned, numbers right-aligned. */
function grid(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells.map((c, i) => (i < 2 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function goalLines(goals, metrics) {
  const rows = goals.map((g) => [
    `${g.n}. ${metrics[g.metric].label}`,
    g.pin,
    `${g.of ?? 'aclfs'}/${g.vs}`,
    `${g.ratio.toFixed(3)}x`,
    `${g.op} ${g.target.toFixed(2)}x`,
    g.pass ? 'PASS' : 'FAIL',
  ]);
  const passed = goals.filter((g) => g.pass).length;
  return [
    ...grid(['metric', 'cpus', 'ratio', 'measured', 'goal', 'result'], rows),
    RSS_GOAL,
    `${passed} of ${goals.length} goals above met`,
  ];
}

/** How each aclfs daemon served file data at the end of the run, from its status. */
function dataPathLine(dataPath) {
  const each = Object.entries(dataPath).map(
    ([v, d]) => `${v} mode ${d.mode}${d.refusal === null ? '' : ` (refused: ${d.refusal})`}, ${d.passthroughOpens} opens by passthrough`,
  );
  return `file data at the end (aclfs status; counts since each daemon's last mount): ${each.join('; ')}`;
}

/** The text report: setup, medians, ranges over the rounds, goals. */
function table(meta, summary, samples, metrics) {
  const rows = [];
  const ranges = [];
  for (const m of Object.keys(metrics)) {
    for (const pin of PIN_MODES) {
      const med = summary.medians[pin];
      const r = summary.ratios[pin][m];
      rows.push([
        metrics[m].label,
        pin,
        ...VARIANTS.map((v) => fmt(med[v][m])),
        ...RATIO_COLUMNS.map((c) => `${r[c].toFixed(2)}x`),
        metrics[m].better,
      ]);
      // The spread shows which medians can be trusted: on a VM a few metrics
      // are bimodal from one round to the next.
      ranges.push([
        metrics[m].label,
        pin,
        ...VARIANTS.map((v) => `${fmt(Math.min(...samples[pin][v][m]))}-${fmt(Math.max(...samples[pin][v][m]))}`),
        '',
      ]);
    }
  }
  return [
    `aclfs benchmark, ${meta.date}`,
    `command: ${meta.command}`,
    `host: ${meta.host.cpus} CPUs (${meta.host.cpuModel}), kernel ${meta.host.kernel}, node ${meta.host.node}, ${meta.host.bindfs}`,
    `setup: ${SMALL_FILES} x ${SMALL_SIZE} B files, ${meta.config.bigMiB} MiB file, ${meta.config.ops} ops/sample, ` +
      `${READ_BUF / 1024} KiB reads, uid ${BENCH_UID}, medians of ${meta.config.runs} interleaved round(s) ` +
      `(cold reads: ${meta.config.coldReads} per variant and round)`,
    `${PAR_READERS} readers = ${PAR_READERS} processes over the small files at once for ${meta.config.parSeconds} s, ops/s summed; ` +
      `find|xargs stat = find DIR -type f -print0 | xargs -0 stat > /dev/null over ${meta.config.metaFiles} files, ` +
      'after unmounting and mounting that variant again and drop_caches',
    `pinned = daemon (all threads) and load on CPU ${meta.config.pinCpu}; unpinned = CPUs ${meta.config.allCpus}`,
    `bindfs = bindfs -o allow_other (single-threaded, its default); bindfs-cache = bindfs -o ${meta.config.bindfsCacheOpts} (${meta.config.bindfsCacheSource})`,
    `aclfs = --default deny, access granted by one recursive ACL rule, --data daemon; libfuse options ${meta.config.aclfsFuseOptions?.join(',') ?? 'unknown'}`,
    'aclfs-passthrough = the same with --data passthrough (aclfs status checked to say mode passthrough after every mount): after an allowed open the kernel reads the backing file itself',
    ...(meta.config.dataPath === undefined ? [] : [dataPathLine(meta.config.dataPath)]),
    '',
    'medians',
    ...grid(['metric', 'cpus', ...VARIANTS, ...RATIO_COLUMNS, 'better'], rows),
    '',
    'ratio = an aclfs variant median / the other variant median, raw: for µs/op and s above 1 means aclfs is slower, for MB/s and ops/s below 1 means aclfs is slower',
    '',
    'range over rounds (min-max)',
    ...grid(['metric', 'cpus', ...VARIANTS, ''], ranges),
    '',
    'goals',
    ...goalLines(summary.goals, metrics),
    '',
    `total time ${meta.durationSec.toFixed(1)} s`,
  ].join('\n');
}

module.exports = { summarize, table };
