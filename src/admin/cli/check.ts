// aclfs check: a dry-run decision, exit 0 when allowed and 1 when denied.
import nodePath from 'node:path';
import type { Command } from 'commander';
import type { CheckResponse } from '../protocol';
import { EXIT, type CliContext, type TargetOptions } from './context';
import { accessArg, dbOption, idOrName, json, jsonOption, socketOption } from './options';
import { insideMount, mountPlace, type MountPlace } from './paths';

function checkText(r: CheckResponse, place: MountPlace | null): string {
  const groups = r.caller.groups.length === 0 ? 'none' : r.caller.groups.join(',');
  // Without the file, a rule bound to an inode cannot count: say why.
  const file =
    r.file !== null
      ? `file dev ${r.file.dev} ino ${r.file.ino}`
      : place === null
        ? 'by path only: no mount to look the file up in'
        : `no such file in the source ${nodePath.join(place.source, r.path)}: decided by path only`;
  return `${r.reason}\n  for uid ${r.caller.uid} gid ${r.caller.gid} groups ${groups}, ${r.path} (${file}), generation ${r.generation}\n`;
}

export function addCheckCommand(program: Command, { io, withApi, setExit }: CliContext): void {
  program
    .command('check')
    .description('dry-run decision: would this caller get ACCESS to PATH? exit 0 allow, 1 deny')
    .argument('<path>', 'path inside the mount (/docs/a.txt), or under the mountpoint')
    .requiredOption('--uid <user>', 'user (name or uid)')
    .option('--gid <group>', "primary group (default: the user's, from /etc/passwd)")
    .option('--groups <list>', "supplementary groups, comma-separated; '' for none (default: the user's, from /etc/group)")
    .requiredOption('--access <access>', 'requested access: r, w, x, rw, rwx, ... (or r-x style)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (path: string, o: TargetOptions & { uid: string; gid?: string; groups?: string; access: string; json: boolean }) => {
      const request = {
        uid: idOrName(o.uid, '--uid'),
        ...(o.gid === undefined ? {} : { gid: idOrName(o.gid, '--gid') }),
        ...(o.groups === undefined
          ? {}
          : { groups: o.groups.split(',').filter((g) => g.trim() !== '').map((g) => idOrName(g.trim(), '--groups')) }),
        access: accessArg(o.access),
      };
      const { result, place } = await withApi(o, false, async (api) => {
        const place = await mountPlace(api);
        return { result: await api.check({ ...request, path: insideMount(path, place) }), place };
      });
      io.stdout(o.json ? json(result) : checkText(result, place));
      setExit(result.allow ? EXIT.ok : EXIT.denied);
    });
}
