// aclfs history, diff, rollback: the commits that changed the rule set, what
// changed between two generations, and putting an earlier rule set back.
import type { Command } from 'commander';
import { invalid } from '../../errors';
import type { DiffResponse, HistoryRecordView, RuleChangeView } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { counted, dbOption, json, jsonOption, socketOption } from './options';

/** One line per changed path: "+ PATH RULE", "~ PATH RULE" then "    was RULE", "- PATH". */
export function changeLines(changes: readonly RuleChangeView[]): string {
  return changes
    .flatMap((c) => {
      if (c.before === null) return [`+ ${c.path} ${JSON.stringify(c.after)}`];
      if (c.after === null) return [`- ${c.path} ${JSON.stringify(c.before)}`];
      return [`~ ${c.path} ${JSON.stringify(c.after)}`, `    was ${JSON.stringify(c.before)}`];
    })
    .map((l) => `${l}\n`)
    .join('');
}

function recordLine(r: HistoryRecordView): string {
  const what = r.changes === null ? `more than ${counted(Math.max(r.changed, 0), 'change')} (not recorded one by one)` : counted(r.changed, 'change');
  const paths = r.changes === null ? '' : `: ${r.changes.slice(0, 3).map((c) => `${c.before === null ? '+' : c.after === null ? '-' : '~'}${c.path}`).join(' ')}${r.changes.length > 3 ? ' ...' : ''}`;
  return `${String(r.generation).padStart(6)}  ${r.time}  ${r.who}${r.note === null ? '' : ` (${r.note})`}  ${what}${paths}\n`;
}

function generationArg(text: string, what: string): number {
  if (!/^\d{1,10}$/.test(text)) throw invalid(`${what} must be a generation number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function diffText(d: DiffResponse): string {
  if (d.changes.length === 0) return `no rule differs between generations ${d.from} and ${d.to}\n`;
  return `${changeLines(d.changes)}${counted(d.changes.length, 'rule')} ${d.changes.length === 1 ? 'differs' : 'differ'} from generation ${d.from} to ${d.to}\n`;
}

export function addHistoryCommands(program: Command, { io, withApi }: CliContext): void {
  program
    .command('history')
    .description('the commits that changed the rule set, newest first: generation, time, who, what changed')
    .option('--limit <n>', 'how many (default 20)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (o: TargetOptions & { limit?: string; json: boolean }) => {
      const limit = o.limit === undefined ? undefined : generationArg(o.limit, '--limit');
      const h = await withApi(o, false, (api) => api.history(limit));
      if (o.json) {
        io.stdout(json(h));
        return;
      }
      io.stdout(`generation ${h.generation}; the history reaches back to generation ${h.floor}\n${h.records.map(recordLine).join('')}`);
    });

  program
    .command('diff')
    .description('what changed in the rule set from generation FROM to TO (default: now), by path')
    .argument('<from>', 'generation')
    .argument('[to]', 'generation (default: now)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (from: string, to: string | undefined, o: TargetOptions & { json: boolean }) => {
      const d = await withApi(o, false, (api) => api.diff(generationArg(from, 'FROM'), to === undefined ? undefined : generationArg(to, 'TO')));
      io.stdout(o.json ? json(d) : diffText(d));
    });

  program
    .command('rollback')
    .description('put the rule set of generation GEN back in force, as a new commit (itself in the history)')
    .argument('<gen>', 'generation to restore')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (gen: string, o: TargetOptions & { json: boolean }) => {
      const r = await withApi(o, true, (api) => api.rollback(generationArg(gen, 'GEN')));
      if (o.json) {
        io.stdout(json(r));
        return;
      }
      io.stdout(
        r.changes.length === 0
          ? `the rule set is already that of generation ${r.restored}: nothing changed\n`
          : `${changeLines(r.changes)}restored the rule set of generation ${r.restored} (${counted(r.changes.length, 'rule')} changed): now generation ${r.generation}\n`,
      );
    });
}
