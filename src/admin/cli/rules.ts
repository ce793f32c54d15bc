// aclfs rule add|set|rm|show|ls: one rule at a time, and listings.
import type { Command } from 'commander';
import { invalid } from '../../errors';
import { MAX_LIST_LIMIT, type RuleBody, type RuleView } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { accessArg, collect, dbOption, idOrName, json, jsonOption, parseLimit, shellWord, socketOption } from './options';
import { insideMount, mountPlace, type MountPlace } from './paths';
import { barStreamBesideOutput, PhaseBar, PROGRESS_MIN_RULES } from './progress';

interface RuleFlags {
  readonly owner: string;
  readonly default: string;
  readonly user: string[];
  readonly group: string[];
  readonly recursive: boolean;
  readonly revocable: boolean;
  readonly auditOnly: boolean;
  readonly until?: string;
}

/**
 * "alice:rw-" → {user: "alice", access: "rw-"}; the access is after the
 * last colon. "alice:rw-@2026-12-31T18:00Z": the entry expires then;
 * without "@", at `until` (--until) when given.
 */
function aclEntry(kind: 'user' | 'group', given: string, until: string | undefined): NonNullable<RuleBody['acl']>[number] {
  const at = given.indexOf('@');
  const spec = at < 0 ? given : given.slice(0, at);
  const expires = at < 0 ? until : given.slice(at + 1);
  const colon = spec.lastIndexOf(':');
  if (colon <= 0 || colon === spec.length - 1) {
    throw invalid(`--${kind} expects ${kind.toUpperCase()}:ACCESS[@TIME], e.g. ${kind === 'user' ? 'alice:rw-' : 'staff:r--@2026-12-31T18:00Z'}; got ${JSON.stringify(given)}`);
  }
  const who = idOrName(spec.slice(0, colon), `--${kind}`);
  const access = accessArg(spec.slice(colon + 1));
  const until_ = expires === undefined ? {} : { expires };
  return kind === 'user' ? { user: who, access, ...until_ } : { group: who, access, ...until_ };
}

function ruleBody(path: string, o: RuleFlags): RuleBody {
  return {
    path,
    owner: idOrName(o.owner, '--owner'),
    defaccess: accessArg(o.default),
    recursive: o.recursive,
    revocable: o.revocable,
    auditOnly: o.auditOnly,
    acl: [...o.user.map((u) => aclEntry('user', u, o.until)), ...o.group.map((g) => aclEntry('group', g, o.until))],
  };
}

/** A rule named by id (digits) or by path (inside the mount, or under the mountpoint). */
function ruleRef(given: string, place: MountPlace | null): { id: number } | { path: string } {
  if (/^\d+$/.test(given)) return { id: Number(given) };
  const ref = insideMount(given, place);
  if (ref.startsWith('/')) return { path: ref };
  throw invalid(`${JSON.stringify(ref)} is neither a rule id nor an absolute path inside the mount (like /docs/a.txt)`);
}

/** An entry's expiry as shown: "@TIME", and "(expired)" once past. */
function untilText(e: RuleView['acl'][number]): string {
  return e.expires === undefined ? '' : `@${e.expires}${e.expired === true ? '(expired)' : ''}`;
}

function aclText(rule: RuleView): string {
  return rule.acl.map((e) => `${'user' in e ? `user:${e.user}` : `group:${e.group}`}:${e.access}${untilText(e)}`).join(' ');
}

/**
 * One line per rule: id, defaccess, recursive and revocable flags, owner,
 * path, acl, and last "audit-only" for such a rule (at the end, so the
 * columns of every other line stay where they were).
 */
function ruleLine(rule: RuleView): string {
  const acl = aclText(rule);
  return `${String(rule.id).padStart(6)}  ${rule.defaccess}  ${rule.recursive ? 'rec' : '   '} ${rule.revocable ? 'rev' : '   '}  owner ${String(rule.owner).padEnd(6)}  ${rule.path}${acl === '' ? '' : `  ${acl}`}${rule.auditOnly ? '  audit-only' : ''}\n`;
}

function ruleDetails(rule: RuleView): string {
  const lines = [
    `rule ${rule.id}: ${rule.path}`,
    `  owner      ${rule.owner}`,
    `  default    ${rule.defaccess}`,
    `  recursive  ${rule.recursive ? 'yes' : 'no'}`,
    `  revocable  ${rule.revocable ? 'yes' : 'no'}`,
    `  audit-only ${rule.auditOnly ? 'yes' : 'no'}`,
  ];
  if (rule.acl.length === 0) lines.push('  acl        (none)');
  rule.acl.forEach((e, i) =>
    lines.push(
      `  ${i === 0 ? 'acl       ' : '          '} ${'user' in e ? `user ${e.user}` : `group ${e.group}`} ${e.access}${
        e.expires === undefined ? '' : e.expired === true ? ` expired ${e.expires} (grants nothing)` : ` until ${e.expires}`
      }`,
    ),
  );
  lines.push(
    rule.dev === null
      ? '  bound to   no file yet (governs by path; binds when the file is seen)'
      : `  bound to   dev ${rule.dev} ino ${rule.ino}${rule.birth ? ` (born ${rule.birth})` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

export function addRuleCommands(program: Command, { io, withApi }: CliContext): void {
  const rule = program.command('rule').description('create, replace, remove, show and list rules');

  const ruleFlags = (cmd: Command): Command =>
    cmd
      .argument('<path>', 'path inside the mount, e.g. /docs/a.txt (or under the mountpoint)')
      .requiredOption('--owner <user>', 'user (name or uid) that always gets rwx')
      .requiredOption('--default <access>', 'access for callers no entry names: rwx-style (r-x) or 0-7')
      .option('--user <user:access>', 'access for one user, e.g. alice:rw- (repeatable)', collect, [])
      .option('--group <group:access>', 'access for a group, e.g. staff:r-- (repeatable)', collect, [])
      .option('--until <time>', 'the --user and --group entries without their own @TIME expire then (RFC 3339, e.g. 2026-12-31T18:00Z): they grant nothing after it')
      .option('--recursive', 'for a directory: also govern everything below that has no closer rule', false)
      .option('--revocable', 'never serve its files by passthrough, so a revoke also stops reads of handles already open', false)
      .option('--audit-only', 'do not enforce its denials: let them through and record them in the audit log as "would deny"', false)
      .addOption(socketOption())
      .addOption(dbOption())
      .addOption(jsonOption());

  ruleFlags(rule.command('add').description('create a rule (fails with exit 4 if PATH already has one)')).action(
    async (given: string, o: RuleFlags & TargetOptions & { json: boolean }) => {
      // Checked before the API is reached (with --db, before a database is created).
      const body = ruleBody(given, o);
      const created = await withApi(o, true, async (api) => api.createRule({ ...body, path: insideMount(given, await mountPlace(api)) }));
      io.stdout(o.json ? json(created) : `created rule ${created.id}: ${created.path}\n`);
    },
  );

  ruleFlags(rule.command('set').description('replace the whole rule for PATH, or create it')).action(
    async (given: string, o: RuleFlags & TargetOptions & { json: boolean }) => {
      const body = ruleBody(given, o);
      const r = await withApi(o, true, async (api) => {
        const path = insideMount(given, await mountPlace(api));
        return api.setRuleByPath(path, { ...body, path });
      });
      io.stdout(o.json ? json(r.rule) : `${r.created ? 'created' : 'replaced'} rule ${r.rule.id}: ${r.rule.path}\n`);
    },
  );

  rule
    .command('rm')
    .description('remove a rule')
    .argument('<rule>', 'rule id, or path inside the mount (or under the mountpoint)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (ref: string, o: TargetOptions & { json: boolean }) => {
      // Without a daemon there is no mountpoint: a bad reference is refused before a database is created.
      if (o.db !== undefined) ruleRef(ref, null);
      const removed = await withApi(o, true, async (api) => {
        const which = ruleRef(ref, /^\d+$/.test(ref) ? null : await mountPlace(api));
        return 'id' in which ? api.deleteRule(which.id) : api.deleteRuleByPath(which.path);
      });
      io.stdout(o.json ? json(removed) : `removed rule ${removed.id}: ${removed.path}\n`);
    });

  rule
    .command('show')
    .description('show one rule')
    .argument('<rule>', 'rule id, or path inside the mount (or under the mountpoint)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (ref: string, o: TargetOptions & { json: boolean }) => {
      const found = await withApi(o, false, async (api) => {
        const which = ruleRef(ref, /^\d+$/.test(ref) ? null : await mountPlace(api));
        return 'id' in which ? api.getRule(which.id) : api.findByPath(which.path);
      });
      io.stdout(o.json ? json(found) : ruleDetails(found));
    });

  rule
    .command('ls')
    .description('list rules in path order: every rule at or below PREFIX (all pages), or the first N with --limit')
    .argument('[prefix]', 'only this path and what lies below it', '/')
    .option('--limit <n>', 'print at most N rules')
    .option('--cursor <cursor>', 'start after this cursor (nextCursor of an earlier --json listing)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (given: string, o: TargetOptions & { json: boolean; limit?: string; cursor?: string }) => {
      const max = o.limit === undefined ? Infinity : parseLimit(o.limit);
      await withApi(o, false, async (api) => {
        const prefix = given === '/' ? given : insideMount(given, await mountPlace(api));
        // A bar over many rules, to a file or a pipe: the rule count bounds
        // what is listed (exactly it for "/", from the start).
        const stream = barStreamBesideOutput(io);
        const bound = stream === null ? 0 : Math.min(max, (await api.status()).rules);
        const bar = new PhaseBar(bound >= PROGRESS_MIN_RULES ? stream : null);
        const exact = prefix === '/' && o.cursor === undefined;
        let cursor = o.cursor;
        let printed = 0;
        let next: string | null = null;
        try {
          if (o.json) io.stdout('{"rules":[');
          for (;;) {
            const page = await api.listRules({ prefix, cursor, limit: Math.min(MAX_LIST_LIMIT, max - printed) });
            let out = '';
            for (const r of page.rules) {
              out += o.json ? `${printed === 0 ? '\n' : ',\n'}${JSON.stringify(r)}` : ruleLine(r);
              printed++;
            }
            io.stdout(out);
            next = page.nextCursor;
            const done = next === null || printed >= max;
            const total = done ? printed : Math.max(bound, printed);
            bar.update({ label: 'listing', done: printed, total, shown: `${printed}${exact || done ? `/${total}` : ''} rules` });
            if (done || next === null) break;
            cursor = next;
          }
          if (o.json) io.stdout(`${printed > 0 ? '\n' : ''}],"nextCursor":${JSON.stringify(next)}}\n`);
        } finally {
          bar.stop();
        }
        if (!o.json && next !== null) io.hint?.(`aclfs: more rules follow: add --cursor ${shellWord(next)} for the next page\n`);
      });
    });
}
