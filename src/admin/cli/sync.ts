// Fleet sync on the command line: the --sync options that `aclfs mount` and
// `aclfs push` share, and `aclfs push` (a rule file made the fleet's rule
// set in etcd, through the backend main.ts supplies).
import { Option, type Command } from 'commander';
import { unavailable } from '../../errors';
import { parseRuleFileText } from '../../rules/ruleFile';
import type { RuleInput } from '../../rules/types';
import { SystemNameResolver } from '../../system/names';
import type { CliContext } from './context';
import { counted, json, jsonOption } from './options';

/** The --sync options as given (checked, and the files read, by src/sync). */
export interface SyncArgs {
  /** etcd://HOST:PORT[,HOST:PORT...]/PREFIX, or etcds:// for TLS. */
  readonly url: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
  readonly passwordFile?: string;
}

/** What `aclfs push` asks of the backend. */
export interface PushCommand {
  readonly sync: SyncArgs;
  /** The rule file's rules, validated, names resolved on this host. */
  readonly rules: readonly RuleInput[];
  readonly dryRun: boolean;
}

/** What a push changed (or, dry, would change): each value is a rule's JSON as stored in etcd. */
export interface PushReport {
  readonly readRevision: number;
  /** The revision of the push's transaction; null when dry or when there was nothing to change. */
  readonly revision: number | null;
  readonly added: readonly { readonly path: string; readonly value: string }[];
  readonly changed: readonly { readonly path: string; readonly value: string; readonly before: string }[];
  readonly removed: readonly { readonly path: string; readonly before: string }[];
  readonly unchanged: number;
  readonly foreign: readonly string[];
}

interface SyncOptionValues {
  readonly sync?: string;
  readonly syncCa?: string;
  readonly syncCert?: string;
  readonly syncKey?: string;
  readonly syncUser?: string;
  readonly syncPasswordFile?: string;
}

/** Adds --sync and its TLS and auth options to `command`. */
export function addSyncOptions(command: Command, what: string, required: boolean): Command {
  const url = new Option('--sync <url>', `${what}: etcd://HOST:PORT/PREFIX (several HOST:PORT separated by commas; etcds:// for TLS)`);
  if (required) url.makeOptionMandatory();
  return command
    .addOption(url)
    .addOption(new Option('--sync-ca <file>', 'CA certificate (PEM) of the etcd servers (implies TLS)'))
    .addOption(new Option('--sync-cert <file>', 'client certificate (PEM) for etcd (implies TLS; with --sync-key)'))
    .addOption(new Option('--sync-key <file>', 'private key (PEM) of --sync-cert'))
    .addOption(new Option('--sync-user <name>', 'etcd user (with --sync-password-file)'))
    .addOption(new Option('--sync-password-file <file>', 'file holding the password of --sync-user'));
}

/** The --sync options given, or null without --sync. */
export function syncArgsFrom(o: SyncOptionValues): SyncArgs | null {
  if (o.sync === undefined) return null;
  return {
    url: o.sync,
    ...(o.syncCa === undefined ? {} : { ca: o.syncCa }),
    ...(o.syncCert === undefined ? {} : { cert: o.syncCert }),
    ...(o.syncKey === undefined ? {} : { key: o.syncKey }),
    ...(o.syncUser === undefined ? {} : { user: o.syncUser }),
    ...(o.syncPasswordFile === undefined ? {} : { passwordFile: o.syncPasswordFile }),
  };
}

/** The diff of a push, one line per rule: "+ PATH VALUE", "~ PATH VALUE", "- PATH". */
function diffText(r: PushReport): string {
  return [
    ...r.added.map((a) => `+ ${a.path} ${a.value}`),
    ...r.changed.flatMap((c) => [`~ ${c.path} ${c.value}`, `    was ${c.before}`]),
    ...r.removed.map((d) => `- ${d.path}`),
    ...r.foreign.map((k) => `- key ${k} (names no rule path)`),
  ]
    .map((l) => `${l}\n`)
    .join('');
}

function summary(r: PushReport, dryRun: boolean): string {
  const counts = `${r.added.length} added, ${r.changed.length} changed, ${r.removed.length + r.foreign.length} removed, ${r.unchanged} unchanged`;
  if (dryRun) return `dry run: would push ${counts} (etcd at revision ${r.readRevision}); nothing written\n`;
  if (r.revision === null) return `nothing to push: etcd already holds these ${counted(r.unchanged, 'rule')} (revision ${r.readRevision})\n`;
  return `pushed ${counts}; etcd revision ${r.revision}\n`;
}

export function addSyncCommands(program: Command, { backend, io }: CliContext): void {
  const push = program
    .command('push')
    .description("make a rule file the fleet's rule set in etcd, in one transaction (daemons with --sync follow it)")
    .argument('<file>', 'rule file (JSON, see docs/product.md); - for standard input');
  addSyncOptions(push, 'the fleet', true)
    .option('--dry-run', 'print what would change (+ added, ~ changed, - removed) and write nothing', false)
    .addOption(jsonOption())
    .action(async (file: string, o: SyncOptionValues & { dryRun: boolean; json: boolean }) => {
      const sync = syncArgsFrom(o)!;
      // Validated here, as import validates: one bad rule and nothing is pushed.
      const rules = parseRuleFileText(await io.readFile(file), new SystemNameResolver());
      if (backend.push === undefined) throw unavailable('this aclfs was built without fleet sync');
      const report = await backend.push({ sync, rules, dryRun: o.dryRun });
      if (o.json) {
        io.stdout(json(report));
        return;
      }
      if (o.dryRun) io.stdout(diffText(report));
      io.stdout(summary(report, o.dryRun));
    });
}
