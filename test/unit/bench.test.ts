// The benchmark code without running a benchmark: every module loads, the
// goals are the ones the figures are judged by, and the report keeps its
// shape. Needs no root and no mount.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const BENCH = path.join(__dirname, '..', '..', 'bench');
const benchRequire = createRequire(path.join(BENCH, 'run.js'));

type Pin = 'pinned' | 'unpinned';
interface Goal {
  n: number;
  metric: string;
  pin: Pin;
  of?: string;
  vs: string;
  op: '<=' | '>=';
  target: number;
}
interface Metric {
  label: string;
  better: 'lower' | 'higher';
  unit: string;
}
interface Scenario {
  name: string;
  metrics: Record<string, Metric>;
  goals: Goal[];
  measure: (ctx: unknown) => Promise<void>;
}
type Samples = Record<Pin, Record<string, Record<string, number[]>>>;
interface Summary {
  goals: (Goal & { ratio: number; pass: boolean })[];
}
interface ReportModule {
  summarize: (samples: Samples, metrics: Record<string, Metric>, goals: Goal[]) => Summary;
  table: (meta: unknown, summary: Summary, samples: Samples, metrics: Record<string, Metric>) => string;
}
interface RoundsModule {
  median: (xs: number[]) => number;
  metricsOf: (scenarios: Scenario[]) => Record<string, Metric>;
  PIN_MODES: Pin[];
}

const scenarios = benchRequire('./scenarios') as Scenario[];
const { summarize, table } = benchRequire('./lib/report.js') as ReportModule;
const { median, metricsOf, PIN_MODES } = benchRequire('./lib/rounds.js') as RoundsModule;
const { VARIANTS } = benchRequire('./lib/variants.js') as { VARIANTS: string[] };

describe('bench', () => {
  it('every library and scenario module loads', () => {
    for (const dir of ['lib', 'scenarios']) {
      for (const name of fs.readdirSync(path.join(BENCH, dir))) {
        // The two programs copied into a run's temp dir run on their own.
        if (name === 'load-child.js' || name === 'fuse-opts-probe.js') continue;
        expect(() => benchRequire(`./${dir}/${name}`)).not.toThrow();
      }
    }
  });

  it('the programs parse and print their usage', () => {
    for (const file of ['run.js', 'fs.js', 'rss.js', 'lib/load-child.js', 'lib/fuse-opts-probe.js', 'admin.js', 'decide.js', 'sync.js', 'audit-flood.js']) {
      expect(spawnSync(process.execPath, ['--check', path.join(BENCH, file)]).status).toBe(0);
    }
    const run = spawnSync(process.execPath, [path.join(BENCH, 'run.js'), '--help'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('fs, admin, decide, rss');
    expect(run.stdout).toContain('open-read-close, parallel-readers, sequential-read, metadata-walk');
    const fsBench = spawnSync(process.execPath, [path.join(BENCH, 'fs.js'), '--help'], { encoding: 'utf8' });
    expect(fsBench.status).toBe(0);
    expect(fsBench.stdout).toContain('--only SCENARIO');
  });

  it('the scenarios and their goals, in report order', () => {
    expect(scenarios.map((s) => s.name)).toEqual(['open-read-close', 'parallel-readers', 'sequential-read', 'metadata-walk']);
    expect(Object.keys(metricsOf(scenarios))).toEqual(['openReadCloseUs', 'parOpsPerSec', 'seqColdMBps', 'seqWarmMBps', 'metaSec']);
    const goals = scenarios.flatMap((s) => s.goals).map((g) => `${g.n} ${g.metric} ${g.pin} ${g.of ?? 'aclfs'}/${g.vs} ${g.op} ${g.target}`);
    expect(goals).toEqual([
      '1 openReadCloseUs pinned aclfs/bindfs <= 0.8',
      '1 openReadCloseUs unpinned aclfs/bindfs <= 1',
      '1 openReadCloseUs pinned aclfs/bindfs-cache <= 1.2',
      '1 openReadCloseUs unpinned aclfs/bindfs-cache <= 1.2',
      '6 openReadCloseUs pinned aclfs-passthrough/bindfs <= 0.7',
      '2 parOpsPerSec pinned aclfs/bindfs >= 1',
      '2 parOpsPerSec unpinned aclfs/bindfs >= 1',
      '7 parOpsPerSec pinned aclfs-passthrough/bindfs >= 1.5',
      '7 parOpsPerSec unpinned aclfs-passthrough/bindfs >= 1.5',
      '3 seqColdMBps pinned aclfs/bindfs >= 1',
      '3 seqColdMBps unpinned aclfs/bindfs >= 1',
      '3 seqWarmMBps pinned aclfs/bindfs >= 1',
      '3 seqWarmMBps unpinned aclfs/bindfs >= 1',
      '3 seqWarmMBps pinned aclfs/plain >= 0.8',
      '3 seqWarmMBps unpinned aclfs/plain >= 0.8',
      '8 seqColdMBps pinned aclfs-passthrough/plain >= 0.9',
      '8 seqColdMBps unpinned aclfs-passthrough/plain >= 0.9',
      '8 seqWarmMBps pinned aclfs-passthrough/plain >= 0.9',
      '8 seqWarmMBps unpinned aclfs-passthrough/plain >= 0.9',
      '4 metaSec pinned aclfs/bindfs <= 1',
      '4 metaSec unpinned aclfs/bindfs <= 1',
    ]);
  });

  it('medians of odd and even sample counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('goals are judged on the ratio of medians, and the report lists every metric, range and goal', () => {
    const metrics = metricsOf(scenarios);
    // aclfs at 0.5x, aclfs-passthrough at 0.4x, bindfs-cache at 0.75x of bindfs, the plain directory at 0.25x, in every metric and mode.
    const scale: Record<string, number> = { plain: 0.25, bindfs: 1, 'bindfs-cache': 0.75, aclfs: 0.5, 'aclfs-passthrough': 0.4 };
    const samples = {} as Samples;
    for (const pin of PIN_MODES) {
      samples[pin] = {};
      for (const v of VARIANTS) {
        samples[pin][v] = {};
        for (const m of Object.keys(metrics)) samples[pin][v][m] = [100, 300, 200].map((x) => x * (scale[v] ?? Number.NaN));
      }
    }
    const summary = summarize(samples, metrics, scenarios.flatMap((s) => s.goals));
    expect(summary.goals.map((g) => `${g.ratio.toFixed(3)} ${g.pass ? 'PASS' : 'FAIL'}`)).toEqual([
      '0.500 PASS', // open-read-close vs bindfs
      '0.500 PASS',
      '0.667 PASS', // vs bindfs-cache
      '0.667 PASS',
      '0.400 PASS', // aclfs-passthrough vs bindfs
      '0.500 FAIL', // parallel readers
      '0.500 FAIL',
      '0.400 FAIL', // aclfs-passthrough
      '0.400 FAIL',
      '0.500 FAIL', // cold reads
      '0.500 FAIL',
      '0.500 FAIL', // re-reads vs bindfs
      '0.500 FAIL',
      '2.000 PASS', // re-reads vs the plain directory
      '2.000 PASS',
      '1.600 PASS', // aclfs-passthrough vs the plain directory, cold and re-read
      '1.600 PASS',
      '1.600 PASS',
      '1.600 PASS',
      '0.500 PASS', // metadata walk
      '0.500 PASS',
    ]);
    const meta = {
      date: '2026-01-01T00:00:00.000Z',
      command: 'node bench/fs.js',
      host: { cpus: 2, cpuModel: 'cpu', kernel: '6.0', node: 'v20', bindfs: 'bindfs 1.14.7' },
      config: { runs: 3, coldReads: 3, ops: 20000, bigMiB: 256, parSeconds: 2, metaFiles: 10000, pinCpu: 1, allCpus: '0,1', bindfsCacheOpts: 'allow_other', bindfsCacheSource: 'probe', aclfsFuseOptions: ['allow_other'] },
      durationSec: 1,
    };
    const lines = table(meta, summary, samples, metrics).split('\n');
    expect(lines[0]).toBe('aclfs benchmark, 2026-01-01T00:00:00.000Z');
    const at = (title: string) => lines.indexOf(title);
    expect(lines[at('medians') + 1]).toMatch(
      /^metric +cpus +plain +bindfs +bindfs-cache +aclfs +aclfs-passthrough +aclfs\/bindfs +aclfs\/bindfs-cache +aclfs-passthrough\/bindfs +aclfs-passthrough\/plain +better$/,
    );
    // Five metrics in both modes: a header, a rule and ten rows in each table.
    expect(lines[at('medians') + 13]).toBe('');
    expect(lines[at('medians') + 3]).toMatch(/^open\+read 4K\+close µs\/op +unpinned +50\.00 +200\.0 +150\.0 +100\.0 +80\.00 +0\.50x +0\.67x +0\.40x +1\.60x +lower$/);
    expect(lines[at('range over rounds (min-max)') + 3]).toMatch(
      /^open\+read 4K\+close µs\/op +unpinned +25\.00-75\.00 +100\.0-300\.0 +75\.00-225\.0 +50\.00-150\.0 +40\.00-120\.0$/,
    );
    expect(lines[at('goals') + 3]).toMatch(/^1\. open\+read 4K\+close µs\/op +pinned +aclfs\/bindfs +0\.500x +<= 0\.80x +PASS$/);
    expect(lines[at('goals') + 7]).toMatch(/^6\. open\+read 4K\+close µs\/op +pinned +aclfs-passthrough\/bindfs +0\.400x +<= 0\.70x +PASS$/);
    expect(lines).toContain('13 of 21 goals above met');
    expect(lines[lines.length - 1]).toBe('total time 1.0 s');
  });
});
