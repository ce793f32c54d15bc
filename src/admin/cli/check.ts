// aclfs check: a dry-run decision, exit 0 when allowed and 1 when denied.
import nodePath from 'node:path';
import type { Command } from 'commander';
import { invalid } from '../../errors';
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
  const against = r.candidate === true ? 'the candidate rule set (by path; nothing applied)' : `generation ${r.generation}`;
  const lines = [r.reason, `  for uid ${r.caller.uid} gid ${r.caller.gid} groups ${groups}, ${r.path} (${file}), ${against}`];
  if (!r.allow && r.auditOnly) lines.push('  the deciding rule is audit-only: the mount lets this through and records it as "would deny"');
  if (r.steps !== undefined) {
    lines.push('explain:');
    r.steps.forEach((step, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${step.text}`));
  }
  return `${lines.join('\n')}\n`;
}

/** A candidate rule file's JSON (the daemon checks the rules themselves). */
function parseCandidate(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw invalid(`${file}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
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
    .option('--explain', 'print every step of the decision: decision cache, inode index, exact path, each ancestor, the entry or default policy that decides', false)
    .option('--rules <file>', 'decide against this candidate rule file instead of the rules in force (by path; nothing is applied)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (path: string, o: TargetOptions & { uid: string; gid?: string; groups?: string; access: string; explain: boolean; rules?: string; json: boolean }) => {
      const candidate = o.rules === undefined ? undefined : parseCandidate(await io.readFile(o.rules), o.rules);
      const request = {
        uid: idOrName(o.uid, '--uid'),
        ...(o.gid === undefined ? {} : { gid: idOrName(o.gid, '--gid') }),
        ...(o.groups === undefined
          ? {}
          : { groups: o.groups.split(',').filter((g) => g.trim() !== '').map((g) => idOrName(g.trim(), '--groups')) }),
        access: accessArg(o.access),
        ...(o.explain ? { explain: true } : {}),
        ...(candidate === undefined ? {} : { rules: candidate }),
      };
      const { result, place } = await withApi(o, false, async (api) => {
        const place = await mountPlace(api);
        return { result: await api.check({ ...request, path: insideMount(path, place) }), place };
      });
      // A path that is not there (yet) is decided by path only: a rule bound
      // to a file's inode cannot count. Said on stderr too, where a typo in
      // a pasted path is noticed even with --json.
      if (place !== null && result.file === null) {
        io.stderr(`aclfs: warning: ${nodePath.join(place.source, result.path)} does not exist in the source: decided by path only\n`);
      }
      io.stdout(o.json ? json(result) : checkText(result, place));
      setExit(result.allow ? EXIT.ok : EXIT.denied);
    });
}
