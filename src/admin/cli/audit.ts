// aclfs audit: the daemon's audit log (denials, allows when the level asks
// for them, what permissive mode let through, and changes made over the
// API), filtered, as a listing or followed live; aclfs audit-level: which
// decisions it records. The daemon keeps the log, so --db is refused.
import { Argument, type Command } from 'commander';
import { invalid } from '../../errors';
import { AUDIT_LEVELS, MAX_AUDIT_LIMIT, type AuditFilterQuery, type AuditLevel, type AuditRecordView } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { daemonOnlyDbOption, json, jsonOption, parseDuration, parseLimit, parseSeq, socketOption } from './options';

/** The state column: refused, let through although denied, allowed, or a change. */
function state(r: AuditRecordView): string {
  if (r.op === 'admin') return 'admin     ';
  if ((r.decision ?? 'deny') === 'allow') return 'allowed   ';
  if (r.enforced) return 'enforced  ';
  // Let through by an audit-only rule (its reason says what enforcing it would do), or by permissive mode.
  return r.reason.startsWith('would deny: ') ? 'audit-only' : 'permissive';
}

/**
 * One line per audit record: seq, time, state, who, what, where and why,
 * then the caller's program and command line where known.
 */
function auditLine(r: AuditRecordView): string {
  const program = r.cmdline ?? r.program ?? null;
  return `${String(r.seq).padStart(6)}  ${r.time}  ${state(r)}  uid ${r.uid} gid ${r.gid} pid ${r.pid}  ${r.op} ${r.access}  ${r.path}  ${r.reason}${program === null ? '' : `  [${program}]`}\n`;
}

/** --since/--until: an ISO 8601 time, or a duration ago ("15m", "2h", "7d"). */
export function parseTime(text: string, what: string): string {
  if (/^\d+(ms|s|m|h|d|w)$/.test(text)) return new Date(Date.now() - parseDuration(text, what)).toISOString();
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && Number.isFinite(Date.parse(text))) return text;
  throw invalid(`${what} must be an ISO 8601 time (2026-12-07T05:00:00Z) or a duration ago (15m, 2h, 7d), got ${JSON.stringify(text)}`);
}

interface AuditOptions extends TargetOptions {
  follow: boolean;
  after?: string;
  limit?: string;
  json: boolean;
  since?: string;
  until?: string;
  uid?: string;
  path?: string;
  decision?: string;
  op?: string;
  rule?: string;
}

/** The filter options given, as the API takes them (the daemon checks them again). */
function filterOf(o: AuditOptions): AuditFilterQuery {
  const filter: { -readonly [K in keyof AuditFilterQuery]: AuditFilterQuery[K] } = {};
  if (o.since !== undefined) filter.from = parseTime(o.since, '--since');
  if (o.until !== undefined) filter.to = parseTime(o.until, '--until');
  if (o.uid !== undefined) {
    if (!/^\d{1,10}$/.test(o.uid)) throw invalid(`--uid must be a numeric uid, got ${JSON.stringify(o.uid)}`);
    filter.uid = Number(o.uid);
  }
  if (o.path !== undefined) filter.path = o.path;
  if (o.decision !== undefined) {
    if (o.decision !== 'allow' && o.decision !== 'deny') throw invalid(`--decision must be allow or deny, got ${JSON.stringify(o.decision)}`);
    filter.decision = o.decision;
  }
  if (o.op !== undefined) filter.op = o.op;
  if (o.rule !== undefined) {
    if (!/^\d{1,10}$/.test(o.rule)) throw invalid(`--rule must be a rule id, got ${JSON.stringify(o.rule)}`);
    filter.rule = Number(o.rule);
  }
  return filter;
}

export function addAuditCommand(program: Command, { io, withDaemon }: CliContext): void {
  program
    .command('audit')
    .description("the daemon's audit log, oldest first, filtered; --follow prints new records as they happen")
    .option('--follow', 'after the stored records, print each new one as it happens, until SIGINT/SIGTERM', false)
    .option('--after <seq>', 'only records after this seq (the next of an earlier --json listing)')
    .option('--limit <n>', `print at most N records (1-${MAX_AUDIT_LIMIT}; not with --follow)`)
    .option('--since <time>', 'only records at or after this time: ISO 8601, or a duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'only records before this time: ISO 8601, or a duration ago')
    .option('--uid <uid>', 'only records of this numeric uid')
    .option('--path <prefix>', 'only records of this path or below it (whole components)')
    .option('--decision <decision>', 'only allows or only denials (allow|deny)')
    .option('--op <op>', 'only this operation (open, write, unlink, admin, ...)')
    .option('--rule <id>', 'only records decided by this rule (or changes of it)')
    .addOption(socketOption())
    .addOption(daemonOnlyDbOption())
    .addOption(jsonOption())
    .action(async (o: AuditOptions) => {
      const after = o.after === undefined ? 0 : parseSeq(o.after);
      if (o.follow && o.limit !== undefined) throw invalid('--limit does not apply with --follow');
      const max = o.limit === undefined ? Infinity : parseLimit(o.limit);
      if (max !== Infinity && max > MAX_AUDIT_LIMIT) throw invalid(`--limit must be 1-${MAX_AUDIT_LIMIT}, got ${max}`);
      const filter = filterOf(o);
      await withDaemon(o, 'the audit log', async (api) => {
        if (o.follow) {
          const follow = await api.followAudit(after, (r) => io.stdout(o.json ? `${JSON.stringify(r)}\n` : auditLine(r)), filter);
          const stop = (): void => follow.stop();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          try {
            // Resolves on a signal (exit 0); rejects (unavailable, exit 6) when the daemon goes away.
            await follow.ended;
          } finally {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          }
          return;
        }
        // Every matching record after --after (all pages), or the first N.
        const records: AuditRecordView[] = [];
        let next = after;
        for (;;) {
          const page = await api.auditLog({ ...filter, after: next, limit: Math.min(MAX_AUDIT_LIMIT, max - records.length) });
          records.push(...page.records);
          next = page.next;
          // A filtered page may hold fewer than asked, even none, while more follow.
          if (records.length >= max || !(page.more ?? page.records.length > 0)) break;
        }
        io.stdout(o.json ? json({ records, next }) : records.map(auditLine).join(''));
      });
    });

  program
    .command('audit-level')
    .description("show which decisions the daemon's audit log records, or set it: deny (denials), allow (allows), all")
    .addArgument(new Argument('[level]', 'the level to switch to').choices([...AUDIT_LEVELS]))
    .addOption(socketOption())
    .addOption(daemonOnlyDbOption())
    .addOption(jsonOption())
    .action(async (level: AuditLevel | undefined, o: TargetOptions & { json: boolean }) => {
      const result = await withDaemon(o, 'the audit level', (api) => (level === undefined ? api.getAuditLevel() : api.setAuditLevel(level)));
      io.stdout(o.json ? json(result) : `${result.level}\n`);
    });
}
