// aclfs import, aclfs export: whole rule files, with a progress bar for
// large ones on a terminal.
import { Option, type Command } from 'commander';
import type { ExportProgress, ImportProgress } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { counted, dbOption, json, jsonOption, socketOption } from './options';
import { barStreamBesideOutput, mib, PhaseBar, PROGRESS_MIN_RULES } from './progress';

export { PROGRESS_MIN_RULES } from './progress';

/** A step of import's bar: bytes uploaded (daemon) or rules validated (--db). */
function importStep(p: ImportProgress): Parameters<PhaseBar['update']>[0] {
  if (p.phase === 'validate') return { label: 'validating', done: p.done, total: p.total, shown: `${p.done}/${p.total} rules` };
  // Once everything is sent, the daemon validates and commits before it answers.
  const note = p.done === p.total ? ' | sent; the daemon is validating and committing' : '';
  return { label: 'uploading ', done: p.done, total: p.total, shown: `${mib(p.done)}/${mib(p.total)} MiB`, note };
}

/** A step of export's bar: rules read (--db) or bytes received from the daemon. */
function exportStep(p: ExportProgress): Parameters<PhaseBar['update']>[0] {
  if (p.phase === 'read') return { label: 'reading    ', done: p.done, total: p.total, shown: `${p.done}/${p.total} rules` };
  return { label: 'downloading', done: p.done, total: p.total, shown: `${mib(p.done)}/${mib(p.total)} MiB` };
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
      const bar = new PhaseBar(io.progress !== null && countRules(text) >= PROGRESS_MIN_RULES ? io.progress : null);
      let summary;
      try {
        summary = await withApi(o, true, (api) => api.importRules(text, { replace: o.replace, onProgress: (p) => bar.update(importStep(p)) }));
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
      const stream = barStreamBesideOutput(io);
      const text = await withApi(o, false, async (api) => {
        // The bar is worth drawing only for many rules; asking costs one status.
        const bar = new PhaseBar(stream !== null && (await api.status()).rules >= PROGRESS_MIN_RULES ? stream : null);
        try {
          return await api.exportRules(bar.drawn ? { onProgress: (p) => bar.update(exportStep(p)) } : {});
        } finally {
          bar.stop();
        }
      });
      io.stdout(text);
    });
}
