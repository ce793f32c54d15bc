// aclfs audit: the daemon's recent denials (and what permissive mode let
// through), as a listing or followed live. The daemon keeps them in its
// memory, so --db is refused.
import type { Command } from 'commander';
import { invalid } from '../../errors';
import { MAX_AUDIT_LIMIT, type AuditRecordView } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { daemonOnlyDbOption, json, jsonOption, parseLimit, parseSeq, socketOption } from './options';

/**
 * One line per audit record: seq, time, enforced (refused), audit-only (let
 * through by an audit-only rule: its reason is "would deny: ...") or
 * permissive (let through by permissive mode), who, what, where and why.
 */
function auditLine(r: AuditRecordView): string {
  const outcome = r.enforced ? 'enforced  ' : r.reason.startsWith('would deny: ') ? 'audit-only' : 'permissive';
  return `${String(r.seq).padStart(6)}  ${r.time}  ${outcome}  uid ${r.uid} gid ${r.gid} pid ${r.pid}  ${r.op} ${r.access}  ${r.path}  ${r.reason}\n`;
}

export function addAuditCommand(program: Command, { io, withDaemon }: CliContext): void {
  program
    .command('audit')
    .description("the daemon's recent denials (last 10,000), oldest first; --follow prints new ones as they happen")
    .option('--follow', 'after the stored records, print each new one as it happens, until SIGINT/SIGTERM', false)
    .option('--after <seq>', 'only records after this seq (the next of an earlier --json listing)')
    .option('--limit <n>', `print at most N records (1-${MAX_AUDIT_LIMIT}; not with --follow)`)
    .addOption(socketOption())
    .addOption(daemonOnlyDbOption())
    .addOption(jsonOption())
    .action(async (o: TargetOptions & { follow: boolean; after?: string; limit?: string; json: boolean }) => {
      const after = o.after === undefined ? 0 : parseSeq(o.after);
      if (o.follow && o.limit !== undefined) throw invalid('--limit does not apply with --follow');
      const max = o.limit === undefined ? Infinity : parseLimit(o.limit);
      if (max !== Infinity && max > MAX_AUDIT_LIMIT) throw invalid(`--limit must be 1-${MAX_AUDIT_LIMIT}, got ${max}`);
      await withDaemon(o, 'the audit log', async (api) => {
        if (o.follow) {
          const follow = await api.followAudit(after, (r) => io.stdout(o.json ? `${JSON.stringify(r)}\n` : auditLine(r)));
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
        // Every stored record after --after (all pages), or the first N.
        const records: AuditRecordView[] = [];
        let next = after;
        for (;;) {
          const page = await api.auditLog({ after: next, limit: Math.min(MAX_AUDIT_LIMIT, max - records.length) });
          records.push(...page.records);
          next = page.next;
          if (page.records.length === 0 || records.length >= max) break;
        }
        io.stdout(o.json ? json({ records, next }) : records.map(auditLine).join(''));
      });
    });
}
