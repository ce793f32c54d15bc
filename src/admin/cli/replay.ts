// aclfs replay: what a candidate rule file would have decided differently
// for the accesses the audit log recorded, grouped by its deciding rule.
import type { Command } from 'commander';
import { invalid } from '../../errors';
import { MAX_REPLAY_LIMIT } from '../../rules/replay';
import type { ReplayResponse } from '../protocol';
import { parseTime } from './audit';
import type { CliContext, TargetOptions } from './context';
import { counted, json, jsonOption, socketOption } from './options';

/** --limit: 1 to the most a replay lists per rule. */
function parseLimit(text: string): number {
  const n = Number(text);
  if (!/^\d{1,6}$/.test(text) || n < 1 || n > MAX_REPLAY_LIMIT) throw invalid(`--limit must be a whole number from 1 to ${MAX_REPLAY_LIMIT}, got ${JSON.stringify(text)}`);
  return n;
}

function replayText(r: ReplayResponse): string {
  const lines = [
    `${counted(r.examined, 'recorded access', 'recorded accesses')} decided again, ${r.changed} would change${r.skipped > 0 ? ` (${r.skipped} records could not be: admin changes, or unknown groups)` : ''}`,
  ];
  if (r.level === 'deny') lines.push('  (audit level deny: allows were not recorded, so none of them can show here as a new denial; aclfs audit-level all records them)');
  for (const g of r.groups) {
    const rule = g.rule === null ? 'the default policy' : `rule ${g.rule.id} (${g.rule.path})`;
    const unlisted = g.toAllow + g.toDeny - g.accesses.length;
    lines.push(`${rule}: ${g.toAllow} denied then would be allowed, ${g.toDeny} allowed then would be denied${unlisted > 0 ? ` (the first ${g.accesses.length} listed: --limit)` : ''}`);
    for (const a of g.accesses) lines.push(`  ${String(a.seq).padStart(6)}  ${a.time}  uid ${a.uid}  ${a.op} ${a.access}  ${a.path}  ${a.was} -> ${a.now}`);
  }
  return `${lines.join('\n')}\n`;
}

export function addReplayCommand(program: Command, { io, withDaemon }: CliContext): void {
  program
    .command('replay')
    .description("decide the accesses the audit log recorded against a candidate rule file: which would change, by the candidate's rule")
    .argument('<file>', 'candidate rule file (JSON, the import format); - for standard input')
    .option('--since <time>', 'only accesses from then on: ISO 8601, or a duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'only accesses before then')
    .option('--limit <n>', 'changed accesses listed per rule (all are counted; default 1000)')
    .addOption(socketOption())
    .addOption(jsonOption())
    .action(async (file: string, o: TargetOptions & { since?: string; until?: string; limit?: string; json: boolean }) => {
      const text = await io.readFile(file);
      let rules: unknown;
      try {
        rules = JSON.parse(text) as unknown;
      } catch (err) {
        throw invalid(`${file}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      const request = {
        rules,
        ...(o.since === undefined ? {} : { from: parseTime(o.since, '--since') }),
        ...(o.until === undefined ? {} : { to: parseTime(o.until, '--until') }),
        ...(o.limit === undefined ? {} : { limit: parseLimit(o.limit) }),
      };
      const r = await withDaemon(o, 'the audit log', (api) => api.replay(request));
      io.stdout(o.json ? json(r) : replayText(r));
    });
}
