// aclfs import, aclfs export: whole rule files, with a progress bar for
// large ones on a terminal.
import { Option, type Command } from 'commander';
import type { ExportProgress, ImportProgress } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { invalid } from '../../errors';
import { changeLines } from './history';
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

/** "90", "90s", "5m", "1h" as whole seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})\s*([smh]?)$/.exec(text.trim());
  if (m === null) throw invalid(`${JSON.stringify(text)} is not a duration like 90, 90s, 5m or 1h`);
  const seconds = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600 }[m[2] as '' | 's' | 'm' | 'h'];
  if (seconds < 1 || seconds > 86_400) throw invalid(`${JSON.stringify(text)}: a duration from 1s to 24h`);
  return seconds;
}

/** One line: the recorded accesses the rule set after an import would decide differently (aclfs replay). */
async function replayLine(withDaemon: CliContext['withDaemon'], o: TargetOptions, text: string, replace: boolean): Promise<string> {
  const given = (JSON.parse(text) as { rules: { path: string }[] }).rules;
  const r = await withDaemon(o, 'the audit log', async (api) => {
    const now = replace ? [] : (JSON.parse(await api.exportRules()) as { rules: { path: string }[] }).rules;
    const paths = new Set(given.map((g) => g.path));
    return api.replay({ rules: { version: 1, rules: [...now.filter((n) => !paths.has(n.path)), ...given] } });
  });
  const toAllow = r.groups.reduce((n, g) => n + g.toAllow, 0);
  const toDeny = r.groups.reduce((n, g) => n + g.toDeny, 0);
  const partial = r.level === 'deny' ? ' (audit level deny: allows were not recorded)' : '';
  return `the audit log: ${counted(r.changed, 'recorded access', 'recorded accesses')} of ${r.examined} would be decided differently (${toAllow} denied then would be allowed, ${toDeny} allowed then would be denied)${partial}; aclfs replay lists them\n`;
}

export function addImportExportCommands(program: Command, { io, withApi, withDaemon }: CliContext): void {
  program
    .command('import')
    .description('import a rule file atomically (a file with one bad rule changes nothing); rules are matched by path')
    .argument('<file>', 'rule file (JSON, see docs/product.md); - for standard input')
    .option('--replace', 'delete every existing rule first', false)
    .option('--dry-run', 'write nothing: print what the import would change (+ added, ~ changed, - removed)', false)
    .addOption(
      new Option(
        '--confirm-within <duration>',
        'apply, and put the rule set back as it was unless `aclfs confirm` follows within DURATION (90, 90s, 5m, 1h; a daemon only)',
      ).argParser(parseDuration),
    )
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (file: string, o: TargetOptions & { replace: boolean; dryRun: boolean; confirmWithin?: number; json: boolean }) => {
      const text = await io.readFile(file);
      const bar = new PhaseBar(io.progress !== null && countRules(text) >= PROGRESS_MIN_RULES ? io.progress : null);
      let summary;
      try {
        summary = await withApi(o, !o.dryRun, (api) =>
          api.importRules(text, {
            replace: o.replace,
            dryRun: o.dryRun,
            ...(o.confirmWithin === undefined ? {} : { confirmWithin: o.confirmWithin }),
            onProgress: (p) => bar.update(importStep(p)),
          }),
        );
      } finally {
        bar.stop();
      }
      if (o.json) {
        io.stdout(json(summary));
        return;
      }
      if (summary.changes !== undefined) {
        const removed = summary.changes.filter((c) => c.after === null).length;
        io.stdout(
          `${changeLines(summary.changes)}dry run: would import ${counted(summary.created + summary.updated, 'rule')} (${summary.created} created, ${summary.updated} updated${removed > 0 ? `, ${removed} removed` : ''}; ${counted(summary.changes.length, 'rule')} would change), generation ${summary.generation}; nothing written\n`,
        );
        // With a daemon, what the rule set after the import would have decided
        // differently for the accesses its audit log recorded.
        if (o.db === undefined && summary.changes.length > 0) {
          io.stdout(
            await replayLine(withDaemon, o, text, o.replace).catch(
              (err: unknown) => `the audit log: not replayed (${err instanceof Error ? err.message : String(err)})\n`,
            ),
          );
        }
        return;
      }
      io.stdout(
        `imported ${counted(summary.created + summary.updated, 'rule')} (${summary.created} created, ${summary.updated} updated), ${summary.rules} in total, generation ${summary.generation}\n`,
      );
      if (summary.confirmBy !== undefined) {
        io.stdout(`confirm with \`aclfs confirm\` by ${summary.confirmBy}, or the rule set of generation ${String(summary.restores)} comes back by itself\n`);
      }
    });

  program
    .command('confirm')
    .description('keep the import made with --confirm-within (else it is rolled back at its deadline)')
    .addOption(socketOption())
    .addOption(jsonOption())
    .action(async (o: TargetOptions & { json: boolean }) => {
      const r = await withApi(o, true, (api) => api.confirm());
      io.stdout(o.json ? json(r) : r.confirmed ? `confirmed: generation ${r.generation} stays\n` : `nothing awaits confirmation (generation ${r.generation})\n`);
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
