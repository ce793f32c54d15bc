// The layers of src/, as docs/design.md draws them, checked on every import:
// a module may import only what its layer's row allows. TypeScript's own
// pre-processor lists the imports, so comments and strings never count.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '..', '..', 'src');

type Layer = 'rules' | 'store' | 'fs' | 'admin' | 'system' | 'native' | 'metrics' | 'sync' | 'errors' | 'main';

/** What each layer may import: our layers by name, packages by name, `node:` builtins when `node` is listed. */
const ALLOWED: Record<Layer, { layers: Layer[]; packages: string[]; node: boolean }> = {
  // The pure domain: no I/O, no database, no binding.
  rules: { layers: ['rules', 'errors'], packages: ['zod'], node: false },
  errors: { layers: ['errors'], packages: [], node: false },
  native: { layers: ['native', 'errors'], packages: ['fuse-native'], node: true },
  system: { layers: ['system', 'rules', 'errors'], packages: [], node: true },
  store: { layers: ['store', 'rules', 'errors', 'native'], packages: ['lmdb', 'msgpackr'], node: true },
  fs: { layers: ['fs', 'rules', 'store', 'errors', 'native'], packages: ['pino'], node: true },
  admin: { layers: ['admin', 'rules', 'store', 'system', 'errors'], packages: ['zod', 'commander', 'cli-progress'], node: true },
  // The daemon's metrics: its sources are functions main.ts wires, never another layer.
  metrics: { layers: ['metrics', 'errors'], packages: ['prom-client'], node: true },
  // Fleet sync: etcd to the store, through the store's public API; never fs, admin or the binding.
  sync: { layers: ['sync', 'rules', 'store', 'errors'], packages: ['etcd3', 'cockatiel'], node: true },
  main: { layers: ['main', 'rules', 'store', 'fs', 'admin', 'system', 'native', 'metrics', 'sync', 'errors'], packages: ['pino'], node: true },
};

function layerOf(file: string): Layer {
  const rel = path.relative(SRC, file).split(path.sep);
  // A folder imported by its name (its index.ts) is its layer.
  if (rel.length === 1 && !(rel[0]! in ALLOWED)) {
    // A module named with or without its extension (imports leave it out).
    const name = rel[0]!.replace(/\.[jt]s$/, '');
    if (name === 'main') return 'main';
    if (name === 'errors') return 'errors';
    throw new Error(`no layer for src/${rel.join('/')}`);
  }
  const top = rel[0] as Layer;
  if (!(top in ALLOWED)) throw new Error(`no layer for src/${rel.join('/')}`);
  return top;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((i) => i.fileName);
}

/** Every import of `file` (whose text is `text`) that its layer does not allow, as "src/a.ts -> what". */
function violations(file: string, text: string = fs.readFileSync(file, 'utf8')): string[] {
  const rule = ALLOWED[layerOf(file)];
  const imports = importsOf(text);
  const bad: string[] = [];
  for (const spec of imports) {
    let ok: boolean;
    if (spec.startsWith('.')) {
      ok = rule.layers.includes(layerOf(path.resolve(path.dirname(file), spec)));
    } else if (spec.startsWith('node:')) {
      ok = rule.node;
    } else {
      ok = rule.packages.includes(spec.split('/')[0]!);
    }
    if (!ok) bad.push(`src/${path.relative(SRC, file)} -> ${spec}`);
  }
  return bad;
}

describe('layers', () => {
  const files = sourceFiles(SRC);

  it('finds the source files', () => {
    expect(files.length).toBeGreaterThan(20);
  });

  it('every import stays within what its layer may use', () => {
    expect(files.flatMap((file) => violations(file))).toEqual([]);
  });

  it('exactly one module imports the native addon', () => {
    const importers = files.filter((file) => importsOf(fs.readFileSync(file, 'utf8')).includes('fuse-native'));
    expect(importers.map((f) => path.relative(SRC, f))).toEqual(['native/binding.ts']);
  });

  it('the checker refuses crossings and allows what a row lists', () => {
    const inRules = path.join(SRC, 'rules', 'probe.ts');
    const text = [
      "import { RuleStore } from '../store/store';",
      "import * as fs from 'node:fs';",
      "import { open } from 'lmdb';",
      "// import { Mount } from '../fs/mount';",
      "import { z } from 'zod';",
      "import { decide } from './decide';",
    ].join('\n');
    expect(violations(inRules, text)).toEqual([
      'src/rules/probe.ts -> ../store/store',
      'src/rules/probe.ts -> node:fs',
      'src/rules/probe.ts -> lmdb',
    ]);
    expect(violations(path.join(SRC, 'fs', 'probe.ts'), "import type { X } from '../admin/protocol';")).toEqual([
      'src/fs/probe.ts -> ../admin/protocol',
    ]);
    expect(violations(path.join(SRC, 'main.ts'), "import { X } from './admin/server';")).toEqual([]);
    // The admin server serves the metrics main.ts hands it; the metrics read what main.ts wires.
    expect(violations(path.join(SRC, 'admin', 'probe.ts'), "import { createDaemonMetrics } from '../metrics/registry';")).toEqual([
      'src/admin/probe.ts -> ../metrics/registry',
    ]);
    expect(violations(path.join(SRC, 'metrics', 'probe.ts'), "import { FilterMeters } from '../fs/meters';\nimport { native } from '../native/binding';")).toEqual([
      'src/metrics/probe.ts -> ../fs/meters',
      'src/metrics/probe.ts -> ../native/binding',
    ]);
  });
});
