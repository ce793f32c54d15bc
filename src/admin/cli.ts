// The `aclfs` command line (commander). It only parses arguments, calls the
// admin API and prints. The API is the running daemon over its socket
// (client.ts) or, with --db, the database itself through the backend main.ts
// supplies; this module imports only the protocol and the client.
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { AclfsError, asAclfsError, invalid, unavailable, type ErrorClass } from '../errors';
import { AdminClient } from './client';
import { bashCompletion } from './completion';
import { useManHelp } from './manHelp';
import type {
  AuditRecordView,
  CheckResponse,
  ClosableAdminApi,
  EnforcementMode,
  IdOrName,
  ImportProgress,
  RuleBody,
  RuleView,
  StatusResponse,
} from './protocol';
import { DEFAULT_IMPORT_LIMIT_BYTES, ENFORCEMENT_MODES, MAX_AUDIT_LIMIT, MAX_LIST_LIMIT } from './protocol';

export const DEFAULT_DB = '/var/lib/aclfs';
export const DEFAULT_SOCKET = '/run/aclfs/aclfs.sock';
/** `aclfs import` shows a progress bar (on a terminal) from this many rules. */
export const PROGRESS_MIN_RULES = 10_000;

export interface MountCommand {
  readonly source: string;
  readonly mountpoint: string;
  readonly db: string;
  readonly socket: string;
  /** Group (name or gid) owning the admin socket; its members may use the API. */
  readonly adminGroup: string;
  /** Body limit of the import endpoint, in bytes. */
  readonly importLimitBytes: number;
  readonly defaultPolicy: 'deny' | 'allow';
  /** The rules are the only authority (no kernel Unix-permission check). */
  readonly rulesOnly: boolean;
  /** 'immediate': no page cache for data, a revoke stops open files at once. */
  readonly revoke: 'page-cache' | 'immediate';
  /** Mount over SRC itself, leaving no path that bypasses the filter. */
  readonly inPlace: boolean;
  /** --in-place even while processes hold places inside SRC (they keep an unfiltered view). */
  readonly force: boolean;
  /** At most this many open files and directories per non-root uid (0: no bound); null: the daemon's default. */
  readonly maxOpenPerUser: number | null;
  readonly logLevel: string;
}

/** The most open handles a daemon can hold (its binding's handle table). */
const MAX_OPEN_HANDLES = 65_536;

function parseOpenBound(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > MAX_OPEN_HANDLES) {
    throw new InvalidArgumentError(`expected a whole number from 0 to ${MAX_OPEN_HANDLES}`);
  }
  return n;
}

/** What the CLI needs from outside the admin area; implemented in main.ts. */
export interface CliBackend {
  readonly version: string;
  /** Serves in the foreground; resolves when unmounted after a signal. */
  mount(cmd: MountCommand): Promise<void>;
  unmount(mountpoint: string): Promise<void>;
  /**
   * The admin API on a rule database directly (no daemon). `create`: make
   * the database if it does not exist (writes); else a missing one is
   * not_found (reads).
   */
  openDatabase(db: string, create: boolean): Promise<ClosableAdminApi>;
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads a file, or standard input for `-`. */
  readonly readFile: (path: string) => Promise<string>;
  /** Where a progress bar may be drawn: only when stdout and this stream are terminals. */
  readonly progress: NodeJS.WritableStream | null;
}

/** Exit codes of the spec, in one place. */
export const EXIT = {
  ok: 0,
  denied: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  forbidden: 5,
  unreachable: 6,
  internal: 8,
} as const;

const EXIT_FOR_CLASS: Record<ErrorClass, number> = {
  invalid: EXIT.usage,
  too_large: EXIT.usage,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  forbidden: EXIT.forbidden,
  unavailable: EXIT.unreachable,
  // A route without the method: the CLI and the daemon disagree on the protocol.
  method_not_allowed: EXIT.internal,
  internal: EXIT.internal,
};

export function exitCodeFor(err: AclfsError): number {
  return EXIT_FOR_CLASS[err.code];
}

// ---- argument parsing ---------------------------------------------------------

interface TargetOptions {
  readonly socket?: string;
  readonly db?: string;
}

/** "1000" → 1000, "alice" → "alice" (the daemon resolves names). */
function idOrName(text: string, what: string): IdOrName {
  if (text === '') throw invalid(`${what} must not be empty`);
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** "r-x" stays a string for the daemon to check; "5" → 5. */
function accessArg(text: string): string | number {
  return /^\d$/.test(text) ? Number(text) : text;
}

/** "alice:rw-" → {user: "alice", access: "rw-"}; the access is after the last colon. */
function aclEntry(kind: 'user' | 'group', spec: string): NonNullable<RuleBody['acl']>[number] {
  const colon = spec.lastIndexOf(':');
  if (colon <= 0 || colon === spec.length - 1) {
    throw invalid(`--${kind} expects ${kind.toUpperCase()}:ACCESS, e.g. ${kind === 'user' ? 'alice:rw-' : 'staff:r--'}; got ${JSON.stringify(spec)}`);
  }
  const who = idOrName(spec.slice(0, colon), `--${kind}`);
  const access = accessArg(spec.slice(colon + 1));
  return kind === 'user' ? { user: who, access } : { group: who, access };
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface RuleFlags {
  readonly owner: string;
  readonly default: string;
  readonly user: string[];
  readonly group: string[];
  readonly recursive: boolean;
}

function ruleBody(path: string, o: RuleFlags): RuleBody {
  return {
    path,
    owner: idOrName(o.owner, '--owner'),
    defaccess: accessArg(o.default),
    recursive: o.recursive,
    acl: [...o.user.map((u) => aclEntry('user', u)), ...o.group.map((g) => aclEntry('group', g))],
  };
}

/** A rule named by id (digits) or by absolute path. */
function ruleRef(ref: string): { id: number } | { path: string } {
  if (/^\d+$/.test(ref)) return { id: Number(ref) };
  if (ref.startsWith('/')) return { path: ref };
  throw invalid(`${JSON.stringify(ref)} is neither a rule id nor an absolute path inside the mount (like /docs/a.txt)`);
}

/** --after SEQ: a non-negative integer. */
function parseSeq(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw invalid(`--after must be a non-negative integer (a seq), got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLimit(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw invalid(`--limit must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** "256M", "1GiB", "1048576" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*(?:([kmg])(?:i?b)?)?$/i.exec(text.trim());
  if (m === null) throw invalid(`${JSON.stringify(text)} is not a size like 1048576, 64M or 1G`);
  const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(`${JSON.stringify(text)} is not a usable size`);
  return n;
}

// ---- output -------------------------------------------------------------------

function aclText(rule: RuleView): string {
  return rule.acl.map((e) => ('user' in e ? `user:${e.user}:${e.access}` : `group:${e.group}:${e.access}`)).join(' ');
}

/** One line per rule: id, defaccess, recursive flag, owner, path, acl. */
function ruleLine(rule: RuleView): string {
  const acl = aclText(rule);
  return `${String(rule.id).padStart(6)}  ${rule.defaccess}  ${rule.recursive ? 'rec' : '   '}  owner ${String(rule.owner).padEnd(6)}  ${rule.path}${acl === '' ? '' : `  ${acl}`}\n`;
}

function ruleDetails(rule: RuleView): string {
  const lines = [
    `rule ${rule.id}: ${rule.path}`,
    `  owner      ${rule.owner}`,
    `  default    ${rule.defaccess}`,
    `  recursive  ${rule.recursive ? 'yes' : 'no'}`,
  ];
  if (rule.acl.length === 0) lines.push('  acl        (none)');
  rule.acl.forEach((e, i) => lines.push(`  ${i === 0 ? 'acl       ' : '          '} ${'user' in e ? `user ${e.user}` : `group ${e.group}`} ${e.access}`));
  lines.push(
    rule.dev === null
      ? '  bound to   no file yet (governs by path; binds when the file is seen)'
      : `  bound to   dev ${rule.dev} ino ${rule.ino}${rule.birth ? ` (born ${rule.birth})` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', `${s % 60}s`].filter(Boolean);
  return parts.join('');
}

function statusText(st: StatusResponse): string {
  const opts = Object.entries(st.options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  const lines = [
    `aclfs ${st.version}, pid ${st.pid}, up ${formatDuration(st.uptimeSeconds)} (since ${st.startedAt})`,
    `source       ${st.source ?? '-'}`,
    `mountpoint   ${st.mountpoint ?? '-'}${st.mountpoint !== null && !st.mounted ? ' (not mounted)' : ''}`,
    `database     ${st.db}`,
    `socket       ${st.socket ?? '-'}`,
    `policy       default ${st.defaultPolicy}${opts === '' ? '' : `; ${opts}`}`,
    ...(st.mode === null ? [] : [`mode         ${st.mode}${st.mode === 'permissive' ? ' (denials are let through and recorded)' : ''}`]),
    `generation   ${st.generation}`,
    `rules        ${st.rules}`,
    `decisions    ${st.decisions.allowed} allowed, ${st.decisions.denied} denied, ${st.decisions.errors} errors`,
  ];
  if (st.cache !== null) {
    const c = st.cache;
    lines.push(`cache        ${(c.hitRate * 100).toFixed(1)}% hits (${c.hits} hits, ${c.misses} misses), ${c.size}/${c.maxSize} entries`);
  }
  if (st.fastPath !== null) {
    lines.push(`fast path    ${st.fastPath.opens} opens, ${st.fastPath.reads} reads, ${st.fastPath.writes} writes replayed in C`);
    lines.push(`listings     ${st.fastPath.listedAttributes} entries listed with their attributes`);
  }
  if (st.workerLocals !== null) {
    lines.push(`workers      ${st.workerLocals.created} thread slots made, ${st.workerLocals.idle} idle`);
  }
  return `${lines.join('\n')}\n`;
}

function checkText(r: CheckResponse): string {
  const groups = r.caller.groups.length === 0 ? 'none' : r.caller.groups.join(',');
  const file = r.file === null ? 'by path only' : `file dev ${r.file.dev} ino ${r.file.ino}`;
  return `${r.reason}\n  for uid ${r.caller.uid} gid ${r.caller.gid} groups ${groups}, ${r.path} (${file}), generation ${r.generation}\n`;
}

/**
 * One line per audit record: seq, time, enforced (refused) or permissive
 * (let through), who, what, where and why.
 */
function auditLine(r: AuditRecordView): string {
  return `${String(r.seq).padStart(6)}  ${r.time}  ${r.enforced ? 'enforced  ' : 'permissive'}  uid ${r.uid} gid ${r.gid} pid ${r.pid}  ${r.op} ${r.access}  ${r.path}  ${r.reason}\n`;
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** cli-progress bar on `stream`; null-object when there is no terminal. */
class ImportBar {
  private bar: SingleBar | null = null;
  private phase: ImportProgress['phase'] | null = null;

  constructor(private readonly stream: NodeJS.WritableStream | null) {}

  update(p: ImportProgress): void {
    if (this.stream === null) return;
    if (this.bar === null || this.phase !== p.phase) {
      this.bar?.stop();
      this.phase = p.phase;
      const label = p.phase === 'upload' ? 'uploading ' : 'validating';
      const unit = p.phase === 'upload' ? 'MiB' : 'rules';
      this.bar = new SingleBar(
        {
          stream: this.stream,
          format: `${label} |{bar}| {percentage}% | {shown} ${unit}{note}`,
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        Presets.shades_classic,
      );
      this.bar.start(p.total, p.done, { shown: this.shown(p), note: '' });
    }
    // Once everything is sent, the daemon validates and commits before it answers.
    const note = p.phase === 'upload' && p.done === p.total ? ' | sent; the daemon is validating and committing' : '';
    this.bar.update(p.done, { shown: this.shown(p), note });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }

  private shown(p: ImportProgress): string {
    if (p.phase === 'upload') return `${(p.done / 1048576).toFixed(1)}/${(p.total / 1048576).toFixed(1)}`;
    return `${p.done}/${p.total}`;
  }
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

// ---- the program --------------------------------------------------------------

function buildProgram(backend: CliBackend, io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('aclfs')
    .description('FUSE filesystem that lets each open and read through only if a rule allows it')
    .version(backend.version)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Usage errors are one line too, with a pointer to the help.
      outputError: (text, write) => write(`aclfs: ${text.replace(/^error: /, '').trimEnd()} (see aclfs help)\n`),
    });

  /** The API: the daemon at --socket (default), or the database at --db. */
  async function withApi<T>(o: TargetOptions, write: boolean, fn: (api: ClosableAdminApi) => Promise<T>): Promise<T> {
    if (o.socket !== undefined && o.db !== undefined) throw invalid('give --socket or --db, not both');
    const api = o.db !== undefined ? await backend.openDatabase(o.db, write) : new AdminClient(o.socket ?? DEFAULT_SOCKET);
    try {
      return await fn(api);
    } finally {
      await api.close();
    }
  }

  const socketOption = (): Option => new Option('--socket <path>', `admin socket of the running daemon (default ${DEFAULT_SOCKET})`);
  const dbOption = (): Option => new Option('--db <path>', 'work on this rule database directly instead (no daemon needed)');
  const jsonOption = (): Option => new Option('--json', 'print JSON').default(false);

  program
    .command('mount')
    .description('serve SRC at MNT in the foreground until SIGINT/SIGTERM, then unmount')
    .argument('<src>', 'directory to protect')
    .argument('<mnt>', 'mountpoint where the filtered view appears')
    .option('--db <path>', 'rule database', DEFAULT_DB)
    .option('--socket <path>', 'admin socket (its directory is created 0750)', DEFAULT_SOCKET)
    .option('--admin-group <group>', 'group (name or gid) that may use the admin socket besides root', '0')
    .option('--import-limit <size>', 'largest rule file the import endpoint accepts (e.g. 256M)', `${DEFAULT_IMPORT_LIMIT_BYTES / 1048576}M`)
    .addOption(new Option('--default <policy>', 'decision when no rule governs a file').choices(['deny', 'allow']).default('deny'))
    .option('--rules-only', 'make the rules the sole authority (Unix permissions are not consulted)', false)
    .addOption(
      new Option('--revoke <when>', 'immediate: no page cache for file data, so a revoke stops open files at their next read').choices([
        'immediate',
      ]),
    )
    .option('--in-place', 'mount over SRC itself (give SRC as MNT too): no path is left that bypasses the filter', false)
    .option(
      '--force',
      'with --in-place: mount even while processes have their working directory, root or open files inside SRC (they keep seeing it unfiltered)',
      false,
    )
    .addOption(
      new Option(
        '--max-open-per-user <n>',
        'open files and directories one non-root user may hold through the mount at once (0: no bound; default: a quarter of what the daemon can hold)',
      ).argParser(parseOpenBound),
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug']).default('info'))
    .action(
      async (
        src: string,
        mnt: string,
        opts: {
          db: string;
          socket: string;
          adminGroup: string;
          importLimit: string;
          default: 'deny' | 'allow';
          rulesOnly: boolean;
          revoke?: 'immediate';
          inPlace: boolean;
          force: boolean;
          maxOpenPerUser?: number;
          logLevel: string;
        },
      ) => {
        await backend.mount({
          source: src,
          mountpoint: mnt,
          db: opts.db,
          socket: opts.socket,
          adminGroup: opts.adminGroup,
          importLimitBytes: parseSize(opts.importLimit),
          defaultPolicy: opts.default,
          rulesOnly: opts.rulesOnly,
          revoke: opts.revoke ?? 'page-cache',
          inPlace: opts.inPlace,
          force: opts.force,
          maxOpenPerUser: opts.maxOpenPerUser ?? null,
          logLevel: opts.logLevel,
        });
      },
    );

  program
    .command('unmount')
    .description('unmount an aclfs mount served by another process')
    .argument('<mnt>', 'mountpoint')
    .action(async (mnt: string) => {
      await backend.unmount(mnt);
    });

  // ---- rule add|set|rm|show|ls ----

  const rule = program.command('rule').description('create, replace, remove, show and list rules');

  const ruleFlags = (cmd: Command): Command =>
    cmd
      .argument('<path>', 'absolute path inside the mount, e.g. /docs/a.txt')
      .requiredOption('--owner <user>', 'user (name or uid) that always gets rwx')
      .requiredOption('--default <access>', 'access for callers no entry names: rwx-style (r-x) or 0-7')
      .option('--user <user:access>', 'access for one user, e.g. alice:rw- (repeatable)', collect, [])
      .option('--group <group:access>', 'access for a group, e.g. staff:r-- (repeatable)', collect, [])
      .option('--recursive', 'for a directory: also govern everything below that has no closer rule', false)
      .addOption(socketOption())
      .addOption(dbOption())
      .addOption(jsonOption());

  ruleFlags(rule.command('add').description('create a rule (fails with exit 4 if PATH already has one)')).action(
    async (path: string, o: RuleFlags & TargetOptions & { json: boolean }) => {
      const body = ruleBody(path, o);
      const created = await withApi(o, true, (api) => api.createRule(body));
      io.stdout(o.json ? json(created) : `created rule ${created.id}: ${created.path}\n`);
    },
  );

  ruleFlags(rule.command('set').description('replace the whole rule for PATH, or create it')).action(
    async (path: string, o: RuleFlags & TargetOptions & { json: boolean }) => {
      const body = ruleBody(path, o);
      const r = await withApi(o, true, (api) => api.setRuleByPath(path, body));
      io.stdout(o.json ? json(r.rule) : `${r.created ? 'created' : 'replaced'} rule ${r.rule.id}: ${r.rule.path}\n`);
    },
  );

  rule
    .command('rm')
    .description('remove a rule')
    .argument('<rule>', 'rule id or absolute path')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (ref: string, o: TargetOptions & { json: boolean }) => {
      const which = ruleRef(ref);
      const removed = await withApi(o, true, (api) => ('id' in which ? api.deleteRule(which.id) : api.deleteRuleByPath(which.path)));
      io.stdout(o.json ? json(removed) : `removed rule ${removed.id}: ${removed.path}\n`);
    });

  rule
    .command('show')
    .description('show one rule')
    .argument('<rule>', 'rule id or absolute path')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (ref: string, o: TargetOptions & { json: boolean }) => {
      const which = ruleRef(ref);
      const found = await withApi(o, false, (api) => ('id' in which ? api.getRule(which.id) : api.findByPath(which.path)));
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
    .action(async (prefix: string, o: TargetOptions & { json: boolean; limit?: string; cursor?: string }) => {
      const max = o.limit === undefined ? Infinity : parseLimit(o.limit);
      await withApi(o, false, async (api) => {
        let cursor = o.cursor;
        let printed = 0;
        let next: string | null = null;
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
          if (next === null || printed >= max) break;
          cursor = next;
        }
        if (o.json) io.stdout(`${printed > 0 ? '\n' : ''}],"nextCursor":${JSON.stringify(next)}}\n`);
      });
    });

  // ---- import / export ----

  program
    .command('import')
    .description('import a rule file atomically (a file with one bad rule changes nothing); rules are matched by path')
    .argument('<file>', 'rule file (JSON, see README); - for standard input')
    .option('--replace', 'delete every existing rule first', false)
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(jsonOption())
    .action(async (file: string, o: TargetOptions & { replace: boolean; json: boolean }) => {
      const text = await io.readFile(file);
      const bar = new ImportBar(io.progress !== null && countRules(text) >= PROGRESS_MIN_RULES ? io.progress : null);
      let summary;
      try {
        summary = await withApi(o, true, (api) => api.importRules(text, { replace: o.replace, onProgress: (p) => bar.update(p) }));
      } finally {
        bar.stop();
      }
      io.stdout(
        o.json
          ? json(summary)
          : `imported ${summary.created + summary.updated} rules (${summary.created} created, ${summary.updated} updated), ${summary.rules} in total, generation ${summary.generation}\n`,
      );
    });

  program
    .command('export')
    .description('print every rule as a rule file (JSON, the import format)')
    .addOption(socketOption())
    .addOption(dbOption())
    .addOption(new Option('--json', 'print JSON (the rule file is JSON already)').default(false))
    .action(async (o: TargetOptions) => {
      io.stdout(await withApi(o, false, (api) => api.exportRules()));
    });

  // ---- check / status ----

  program
    .command('check')
    .description('dry-run decision: would this caller get ACCESS to PATH? exit 0 allow, 1 deny')
    .argument('<path>', 'absolute path inside the mount')
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
        path,
        access: accessArg(o.access),
      };
      const result = await withApi(o, false, (api) => api.check(request));
      io.stdout(o.json ? json(result) : checkText(result));
      setExit(result.allow ? EXIT.ok : EXIT.denied);
    });

  program
    .command('status')
    .description('what the daemon serves: mount, database, generation, rule count, decisions, cache, uptime, version')
    .addOption(socketOption())
    .addOption(jsonOption())
    .action(async (o: { socket?: string; json: boolean }) => {
      const st = await withApi(o, false, (api) => api.status());
      io.stdout(o.json ? json(st) : statusText(st));
    });

  // ---- audit / mode: a running daemon's own state, never in the database ----

  /** The daemon at --socket; --db is refused: what is asked lives in the daemon's memory. */
  async function withDaemon<T>(o: TargetOptions, what: string, fn: (api: ClosableAdminApi) => Promise<T>): Promise<T> {
    if (o.db !== undefined) throw unavailable(`${what} belongs to a running aclfs daemon, not to the database: give --socket (not --db)`);
    return withApi(o, false, fn);
  }

  // Accepted only to say clearly why it cannot work (exit 6, as with no daemon).
  const daemonOnlyDbOption = (): Option => new Option('--db <path>', 'not accepted: the daemon keeps this, not the database').hideHelp();

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

  program
    .command('mode')
    .description("show the daemon's mode, or set it: enforce refuses what the rules deny, permissive lets it through and records it")
    .addArgument(new Argument('[mode]', 'the mode to switch to').choices([...ENFORCEMENT_MODES]))
    .addOption(socketOption())
    .addOption(daemonOnlyDbOption())
    .addOption(jsonOption())
    .action(async (mode: EnforcementMode | undefined, o: TargetOptions & { json: boolean }) => {
      const result = await withDaemon(o, 'the enforce/permissive mode', (api) => (mode === undefined ? api.getMode() : api.setMode(mode)));
      io.stdout(o.json ? json(result) : `${result.mode}\n`);
    });

  // ---- completion, man-style help ----

  program
    .command('completion')
    .description('print a bash completion script for aclfs, generated from this program')
    .addArgument(new Argument('<shell>', 'the shell to complete for').choices(['bash']))
    .action(() => {
      io.stdout(bashCompletion(program));
    });

  useManHelp(program);
  return program;
}

/** The program (for tools and tests that walk its commands); nothing is run. */
export function cliProgram(backend: CliBackend, io: CliIo): Command {
  return buildProgram(backend, io, () => undefined);
}

/** Runs the CLI; returns the process exit code. Never throws. */
export async function runCli(argv: readonly string[], backend: CliBackend, io: CliIo): Promise<number> {
  let exit: number = EXIT.ok;
  const program = buildProgram(backend, io, (code) => (exit = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exit;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; usage mistakes exit 2.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const e = asAclfsError(err);
    io.stderr(`aclfs: ${e.message.split('\n')[0]}\n`);
    return exitCodeFor(e);
  }
}
