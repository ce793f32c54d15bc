// aclfs access: who gets which bits on a path, or, with --uid, what one user
// can reach at and below a path; both from the rules alone (the kernel's
// Unix-permission check comes on top unless the mount runs --rules-only).
import type { Command } from 'commander';
import { invalid } from '../../errors';
import type { AccessResponse, GrantSourceView, IdOrName, ReachResponse } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { dbOption, idOrName, json, jsonOption, socketOption } from './options';
import { insideMount, mountPlace } from './paths';

const MATCH_WORDS: Record<AccessResponse['match'], string> = {
  inode: 'by inode',
  path: 'by path',
  ancestor: 'by recursive ancestor',
  default: '',
};

function accessText(r: AccessResponse): string {
  const head =
    r.rule === null
      ? `${r.path}: no rule, the default policy (${r.defaultPolicy}) for everyone`
      : `${r.path}: rule ${r.rule.id} (${r.rule.path}, ${MATCH_WORDS[r.match]})${r.rule.auditOnly ? ', audit-only: what it denies is let through' : ''}`;
  const rows = r.entries.map((e) => {
    switch (e.kind) {
      case 'owner':
        return `  ${e.access}  owner uid ${e.uid}`;
      case 'user':
        return `  ${e.access}  user uid ${e.uid}`;
      case 'group':
        return `  ${e.access}  group gid ${e.gid}`;
      case 'other':
        return r.rule === null ? `  ${e.access}  everyone` : `  ${e.access}  everyone else`;
    }
  });
  if (r.entries.filter((e) => e.kind === 'group').length > 1) rows.push('  (a member of several of these groups gets the union of their bits)');
  return `${[head, ...rows].join('\n')}\n`;
}

function sourceText(source: GrantSourceView): string {
  switch (source.kind) {
    case 'owner':
      return 'as owner';
    case 'user':
      return 'user entry';
    case 'groups':
      return `group${source.gids.length === 1 ? '' : 's'} ${source.gids.join(',')}`;
    case 'defaccess':
      return 'defaccess';
    case 'default-policy':
      return `default policy ${source.policy}`;
  }
}

function reachText(r: ReachResponse): string {
  const groups = r.caller.groups.length === 0 ? 'none' : r.caller.groups.join(',');
  const lines = [`uid ${r.caller.uid} gid ${r.caller.gid} groups ${groups}, at and below ${r.prefix}:`];
  const inherited = r.inherited.rule === null ? 'no rule' : `rule ${r.inherited.rule.id} (${r.inherited.rule.path})`;
  lines.push(`  ${r.inherited.access}  ${r.prefix} and below, where no rule below says otherwise: ${inherited}, ${sourceText(r.inherited.source)}`);
  for (const a of r.areas) {
    lines.push(`  ${a.access}  ${a.path}${a.scope === 'tree' ? ' and below' : ''}: rule ${a.rule}, ${sourceText(a.source)}`);
  }
  return `${lines.join('\n')}\n`;
}

interface AccessOptions extends TargetOptions {
  readonly uid?: string;
  readonly gid?: string;
  readonly groups?: string;
  readonly path?: string;
  readonly json: boolean;
}

export function addAccessCommand(program: Command, { io, withApi }: CliContext): void {
  program
    .command('access')
    .description('who gets which bits on PATH; with --uid, what that user can reach at and below PATH (or --path), from the rules')
    .argument('[path]', 'path inside the mount (/docs/a.txt), or under the mountpoint')
    .option('--uid <user>', 'list what this user (name or uid) can reach instead')
    .option('--gid <group>', "with --uid: primary group (default: the user's, from /etc/passwd)")
    .option('--groups <list>', "with --uid: supplementary groups, comma-separated; '' for none (default: the user's, from /etc/group)")
    .option('--path <prefix>', 'with --uid: where to look (default /)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (path: string | undefined, o: AccessOptions) => {
      if (o.uid === undefined) {
        if (path === undefined) throw invalid('give a PATH, or --uid USER to list what a user can reach');
        if (o.gid !== undefined || o.groups !== undefined || o.path !== undefined) throw invalid('--gid, --groups and --path go with --uid');
        const result = await withApi(o, false, async (api) => api.access(insideMount(path, await mountPlace(api))));
        io.stdout(o.json ? json(result) : accessText(result));
        return;
      }
      if (path !== undefined && o.path !== undefined) throw invalid('give the place once: PATH or --path');
      const given = path ?? o.path ?? '/';
      const caller: { uid: IdOrName; gid?: IdOrName; groups?: IdOrName[] } = {
        uid: idOrName(o.uid, '--uid'),
        ...(o.gid === undefined ? {} : { gid: idOrName(o.gid, '--gid') }),
        ...(o.groups === undefined
          ? {}
          : { groups: o.groups.split(',').filter((g) => g.trim() !== '').map((g) => idOrName(g.trim(), '--groups')) }),
      };
      const result = await withApi(o, false, async (api) => {
        const prefix = insideMount(given, await mountPlace(api));
        // Every page: the listing is read whole, then printed.
        let page = await api.reach({ ...caller, prefix });
        const areas = [...page.areas];
        while (page.next !== null) {
          page = await api.reach({ ...caller, prefix, cursor: page.next });
          areas.push(...page.areas);
        }
        return { ...page, areas, next: null };
      });
      io.stdout(o.json ? json(result) : reachText(result));
    });
}
