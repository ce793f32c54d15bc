// aclfs import, aclfs export: whole rule files, with a progress bar for
// large imports.
import { Option, type Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import type { ImportProgress } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { counted, dbOption, json, jsonOption, socketOption } from './options';

/** `aclfs import` shows a progress bar (on a terminal) from this many rules. */
export const PROGRESS_MIN_RULES = 10_000;

/** cli-progress bar on `stream`; null-object when there is no terminal. */
class ImportBar {
  private bar: SingleBar | null = null;
  private phase: ImportProgress['phase'] | null = null;

  constructor(private readonly stream: NodeJS.WritableStream | null) {}

  update(p: ImportProgress): void {
    if (this.stream === null) return;
    if (this.bar === null || this.phase !== p.phase) {
      this.bar?.stop();
      this.phase = p.phase;
      const label = p.phase === 'upload' ? 'uploading ' : 'validating';
      const unit = p.phase === 'upload' ? 'MiB' : 'rules';
      this.bar = new SingleBar(
        {
          stream: this.stream,
          format: `${label} |{bar}| {percentage}% | {shown} ${unit}{note}`,
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        Presets.shades_classic,
      );
      this.bar.start(p.total, p.done, { shown: this.shown(p), note: '' });
    }
    // Once everything is sent, the daemon validates and commits before it answers.
    const note = p.phase === 'upload' && p.done === p.total ? ' | sent; the daemon is validating and committing' : '';
    this.bar.update(p.done, { shown: this.shown(p), note });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }

  private shown(p: ImportProgress): string {
    if (p.phase === 'upload') return `${(p.done / 1048576).toFixed(1)}/${(p.total / 1048576).toFixed(1)}`;
    return `${p.done}/${p.total}`;
  }
}

/** Rules in a rule file's text, or 0 if it cannot tell (the daemon will say why). */
function countRules(text: string): number {
  try {
    const data = JSON.parse(text) as { rules?: unknown };
    return Array.isArray(data.rules) ? data.rules.length : 0;
  } catch {
    return 0;
  }
}

export function addImportExportCommands(program: Command, { io, withApi }: CliContext): void {
  program
    .command('import')
    .description('import a rule file atomically (a file with one bad rule changes nothing); rules are matched by path')
    .argument('<file>', 'rule file (JSON, see docs/product.md); - for standard input')
    .option('--replace', 'delete every existing rule first', false)
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (file: string, o: TargetOptions & { replace: boolean; json: boolean }) => {
      const text = await io.readFile(file);
      const bar = new ImportBar(io.progress !== null && countRules(text) >= PROGRESS_MIN_RULES ? io.progress : null);
      let summary;
      try {
        summary = await withApi(o, true, (api) => api.importRules(text, { replace: o.replace, onProgress: (p) => bar.update(p) }));
      } finally {
        bar.stop();
      }
      io.stdout(
        o.json
          ? json(summary)
          : `imported ${counted(summary.created + summary.updated, 'rule')} (${summary.created} created, ${summary.updated} updated), ${summary.rules} in total, generation ${summary.generation}\n`,
      );
    });

  program
    .command('export')
    .description('print every rule as a rule file (JSON, the import format)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(new Option('--json', 'print JSON (the rule file is JSON already)').default(false))
    .action(async (o: TargetOptions) => {
      io.stdout(await withApi(o, false, (api) => api.exportRules()));
    });
}
