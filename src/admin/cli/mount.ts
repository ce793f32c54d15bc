// aclfs mount, aclfs unmount: serving a mount in the foreground (through
// the backend main.ts supplies) and ending one served elsewhere.
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MAX_OPEN_HANDLES } from '../../rules/validate';
import { AUDIT_LEVELS, DEFAULT_IMPORT_LIMIT_BYTES, type AuditLevel } from '../protocol';
import { DEFAULT_DB, DEFAULT_SOCKET, type CliContext } from './context';
import { parseDuration, parseSize } from './options';
import { addSyncOptions, syncArgsFrom, type SyncArgs } from './sync';

export interface MountCommand {
  readonly source: string;
  readonly mountpoint: string;
  readonly db: string;
  readonly socket: string;
  /** Group (name or gid) owning the admin socket; its members may use the API. */
  readonly adminGroup: string;
  /** Body limit of the import endpoint, in bytes. */
  readonly importLimitBytes: number;
  /** Commits of the rule set kept in its history (aclfs history, diff, rollback). */
  readonly historyLimit: number;
  readonly defaultPolicy: 'deny' | 'allow';
  /** The rules are the only authority (no kernel Unix-permission check). */
  readonly rulesOnly: boolean;
  /** 'immediate': no page cache for data, a revoke stops open files at once. */
  readonly revoke: 'page-cache' | 'immediate';
  /**
   * How allowed opens of regular files are served: 'passthrough' (FUSE
   * passthrough: the kernel reads and writes the backing file itself; a
   * revoke stops new opens, and open handles of revocable rules) or
   * 'daemon' (every read that misses the page cache reaches the daemon).
   */
  readonly data: 'passthrough' | 'daemon';
  /**
   * With data 'passthrough': files smaller than this (bytes) opened for
   * reading only are served through the daemon's kept page cache; 0: every
   * allowed open of a non-revocable rule is passthrough.
   */
  readonly passthroughMinSize: number;
  /** Mount over SRC itself, leaving no path that bypasses the filter. */
  readonly inPlace: boolean;
  /** --in-place even while processes hold places inside SRC (they keep an unfiltered view). */
  readonly force: boolean;
  /** At most this many open files and directories per non-root uid (0: no bound); null: the daemon's default. */
  readonly maxOpenPerUser: number | null;
  readonly logLevel: string;
  /** --metrics-listen: also serve GET /metrics over TCP here; null: on the admin socket only. */
  readonly metricsListen: ListenAddress | null;
  /** Which decisions the audit log records at start (the API changes it at run time). */
  readonly auditLevel: AuditLevel;
  /** The audit log's own LMDB environment; null: `audit/` inside --db. */
  readonly auditDb: string | null;
  /** The audit log keeps at most this many records, none older than auditMaxAgeMs. */
  readonly auditMaxRecords: number;
  readonly auditMaxAgeMs: number;
  /**
   * Only check that a mount could start (options, SRC, MNT, admin socket,
   * the database read without changing it), mount nothing; silent when it
   * could, else the one-line error and its exit code.
   */
  readonly check: boolean;
  /** Fleet sync: the rules follow this etcd prefix (docs/fleet.md); null without --sync. */
  readonly sync?: (SyncArgs & { readonly writable: boolean }) | null;
}

/**
 * --passthrough-min-size's default: a file this small gains nothing from
 * the backing filesystem's page cache, while registering it costs each
 * open more than reading it from the page cache the daemon keeps.
 */
export const DEFAULT_PASSTHROUGH_MIN_SIZE = 64 * 1024;

/** --history-limit's default; the store's own bound (src/store/history.ts). */
const DEFAULT_HISTORY_KEPT = 1000;

/** --history-limit: 1 up to a million commits. */
function parseHistoryLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new InvalidArgumentError('expected a whole number from 1 to 1000000');
  return n;
}

/** --max-open-per-user: 0 (no bound) up to what a daemon can hold at all. */
function parseOpenBound(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > MAX_OPEN_HANDLES) {
    throw new InvalidArgumentError(`expected a whole number from 0 to ${MAX_OPEN_HANDLES}`);
  }
  return n;
}

/** An IP address and a port to listen on. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The host --metrics-listen binds when given a port alone: the metrics are for this machine unless said otherwise. */
export const METRICS_DEFAULT_HOST = '127.0.0.1';

/**
 * --metrics-listen PORT, IPV4:PORT or [IPV6]:PORT. A port alone binds the
 * loopback. The host must be an IP address (no name to resolve: the
 * address the metrics are open to is the one written).
 */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:(?:\[([^\]]*)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(value);
  const expected = 'expected PORT, IPV4:PORT or [IPV6]:PORT (a port alone listens on 127.0.0.1)';
  if (m === null) throw new InvalidArgumentError(expected);
  const host = m[1] ?? m[2] ?? METRICS_DEFAULT_HOST;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`the port must be from 1 to 65535; ${expected}`);
  const family = isIP(host);
  if (family === 0 || (m[1] !== undefined && family !== 6) || (m[2] !== undefined && family !== 4)) {
    throw new InvalidArgumentError(`${JSON.stringify(host)} is not an IP address; ${expected}`);
  }
  return { host, port };
}

interface MountOptions {
  readonly db: string;
  readonly socket: string;
  readonly adminGroup: string;
  readonly importLimit: string;
  readonly historyLimit: number;
  readonly default: 'deny' | 'allow';
  readonly rulesOnly: boolean;
  readonly revoke?: 'immediate';
  readonly data: 'passthrough' | 'daemon';
  readonly passthroughMinSize: string;
  readonly inPlace: boolean;
  readonly force: boolean;
  readonly maxOpenPerUser?: number;
  readonly logLevel: string;
  readonly metricsListen?: ListenAddress;
  readonly audit: AuditLevel;
  readonly auditDb?: string;
  readonly auditMaxRecords: number;
  readonly auditMaxAge: string;
  readonly check: boolean;
  readonly sync?: string;
  readonly syncCa?: string;
  readonly syncCert?: string;
  readonly syncKey?: string;
  readonly syncUser?: string;
  readonly syncPasswordFile?: string;
  readonly syncWritable: boolean;
}

/** --audit-max-records: 1 up to a billion. */
function parseRecordBound(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 1_000_000_000) throw new InvalidArgumentError('expected a whole number from 1 to 1000000000');
  return n;
}

export function addMountCommands(program: Command, { backend }: CliContext): void {
  const mount = program
    .command('mount')
    .description('serve SRC at MNT in the foreground until SIGINT/SIGTERM, then unmount')
    .argument('<src>', 'directory to protect')
    .argument('<mnt>', 'mountpoint where the filtered view appears')
    .option('--db <path>', 'rule database', DEFAULT_DB)
    .option('--socket <path>', 'admin socket (its directory is created 0750)', DEFAULT_SOCKET)
    .option('--admin-group <group>', 'group (name or gid) that may use the admin socket besides root', '0')
    .option('--import-limit <size>', 'largest rule file the import endpoint accepts (e.g. 256M)', `${DEFAULT_IMPORT_LIMIT_BYTES / 1048576}M`)
    .addOption(
      new Option('--history-limit <n>', 'commits of the rule set kept in its history, for aclfs history, diff and rollback')
        .argParser(parseHistoryLimit)
        .default(DEFAULT_HISTORY_KEPT),
    )
    .addOption(new Option('--default <policy>', 'decision when no rule governs a file').choices(['deny', 'allow']).default('deny'))
    .option('--rules-only', 'make the rules the sole authority (Unix permissions are not consulted)', false)
    .addOption(
      new Option('--revoke <when>', 'immediate: no page cache for file data, so a revoke stops open files at their next read').choices([
        'immediate',
      ]),
    )
    .addOption(
      new Option(
        '--data <path>',
        'passthrough: the kernel reads and writes allowed files itself (a revoke stops new opens; revocable rules are always served by the daemon); daemon: every uncached read reaches the daemon',
      )
        .choices(['passthrough', 'daemon'])
        .default('daemon'),
    )
    .option(
      '--passthrough-min-size <size>',
      'with --data passthrough: smaller files opened read-only are read through the daemon, from the page cache it keeps (0: none)',
      `${DEFAULT_PASSTHROUGH_MIN_SIZE / 1024}K`,
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
    .addOption(
      new Option(
        '--metrics-listen <[host:]port>',
        'also serve the Prometheus metrics (GET /metrics) over plain HTTP on this TCP address; a port alone listens on 127.0.0.1 (the metrics name operations and counts: bind elsewhere only on purpose)',
      ).argParser(parseListenAddress),
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug']).default('info'))
    .addOption(
      new Option('--audit <level>', 'which decisions the audit log records: deny (denials), allow or all (allows too: every open then reaches the daemon); denials always are')
        .choices([...AUDIT_LEVELS])
        .default('deny'),
    )
    .option('--audit-db <path>', 'directory of the audit log (its own LMDB environment; default: audit/ inside --db)')
    .addOption(new Option('--audit-max-records <n>', 'the audit log keeps at most N records, oldest dropped first').argParser(parseRecordBound).default(1_000_000))
    .option('--audit-max-age <duration>', 'the audit log drops records older than this (e.g. 12h, 30d)', '30d')
    .option(
      '--check',
      'check that the mount could start (options, SRC, MNT, admin socket, the database read without changing it) and exit, mounting nothing; silent when it could',
      false,
    );
  addSyncOptions(mount, 'follow the rules of a fleet in etcd (the local database becomes their copy)', false)
    .option('--sync-writable', 'with --sync: rule writes through the admin API go to etcd (compare-and-swap) instead of being refused', false)
    .action(async (src: string, mnt: string, opts: MountOptions, command: Command) => {
      if (opts.data === 'passthrough' && opts.revoke === 'immediate') {
        // Passthrough reads never reach the daemon: the opposite of immediate.
        command.error("error: option '--data passthrough' cannot be used with option '--revoke immediate'");
      }
      const sync = syncArgsFrom(opts);
      if (sync === null) {
        const given = (['syncCa', 'syncCert', 'syncKey', 'syncUser', 'syncPasswordFile', 'syncWritable'] as const).find((k) => opts[k] !== undefined && opts[k] !== false);
        if (given !== undefined) command.error(`error: option '--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}' needs '--sync'`);
      }
      await backend.mount({
        source: src,
        mountpoint: mnt,
        db: opts.db,
        socket: opts.socket,
        adminGroup: opts.adminGroup,
        importLimitBytes: parseSize(opts.importLimit),
        historyLimit: opts.historyLimit,
        defaultPolicy: opts.default,
        rulesOnly: opts.rulesOnly,
        revoke: opts.revoke ?? 'page-cache',
        data: opts.data,
        passthroughMinSize: opts.passthroughMinSize.trim() === '0' ? 0 : parseSize(opts.passthroughMinSize),
        inPlace: opts.inPlace,
        force: opts.force,
        maxOpenPerUser: opts.maxOpenPerUser ?? null,
        logLevel: opts.logLevel,
        metricsListen: opts.metricsListen ?? null,
        auditLevel: opts.audit,
        auditDb: opts.auditDb ?? null,
        auditMaxRecords: opts.auditMaxRecords,
        auditMaxAgeMs: parseDuration(opts.auditMaxAge, '--audit-max-age'),
        check: opts.check,
        sync: sync === null ? null : { ...sync, writable: opts.syncWritable },
      });
    });

  program
    .command('unmount')
    .description('unmount an aclfs mount served by another process')
    .argument('<mnt>', 'mountpoint')
    .action(async (mnt: string) => {
      await backend.unmount(mnt);
    });
}
