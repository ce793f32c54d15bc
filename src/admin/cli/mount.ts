// aclfs mount, aclfs unmount: serving a mount in the foreground (through
// the backend main.ts supplies) and ending one served elsewhere.
import { Command, InvalidArgumentError, Option } from 'commander';
import { MAX_OPEN_HANDLES } from '../../rules/validate';
import { AUDIT_LEVELS, DEFAULT_IMPORT_LIMIT_BYTES, type AuditLevel } from '../protocol';
import { DEFAULT_DB, DEFAULT_SOCKET, type CliContext } from './context';
import { parseDuration, parseSize } from './options';

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
  /**
   * How allowed opens of regular files are served: 'passthrough' (FUSE
   * passthrough: the kernel reads and writes the backing file itself; a
   * revoke stops new opens, and open handles of revocable rules) or
   * 'daemon' (every read that misses the page cache reaches the daemon).
   */
  readonly data: 'passthrough' | 'daemon';
  /** Mount over SRC itself, leaving no path that bypasses the filter. */
  readonly inPlace: boolean;
  /** --in-place even while processes hold places inside SRC (they keep an unfiltered view). */
  readonly force: boolean;
  /** At most this many open files and directories per non-root uid (0: no bound); null: the daemon's default. */
  readonly maxOpenPerUser: number | null;
  readonly logLevel: string;
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
}

/** --max-open-per-user: 0 (no bound) up to what a daemon can hold at all. */
function parseOpenBound(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n > MAX_OPEN_HANDLES) {
    throw new InvalidArgumentError(`expected a whole number from 0 to ${MAX_OPEN_HANDLES}`);
  }
  return n;
}

interface MountOptions {
  readonly db: string;
  readonly socket: string;
  readonly adminGroup: string;
  readonly importLimit: string;
  readonly default: 'deny' | 'allow';
  readonly rulesOnly: boolean;
  readonly revoke?: 'immediate';
  readonly data: 'passthrough' | 'daemon';
  readonly inPlace: boolean;
  readonly force: boolean;
  readonly maxOpenPerUser?: number;
  readonly logLevel: string;
  readonly audit: AuditLevel;
  readonly auditDb?: string;
  readonly auditMaxRecords: number;
  readonly auditMaxAge: string;
  readonly check: boolean;
}

/** --audit-max-records: 1 up to a billion. */
function parseRecordBound(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 1_000_000_000) throw new InvalidArgumentError('expected a whole number from 1 to 1000000000');
  return n;
}

export function addMountCommands(program: Command, { backend }: CliContext): void {
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
    .addOption(
      new Option(
        '--data <path>',
        'passthrough: the kernel reads and writes allowed files itself (a revoke stops new opens; revocable rules are always served by the daemon); daemon: every uncached read reaches the daemon',
      )
        .choices(['passthrough', 'daemon'])
        .default('daemon'),
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
    .addOption(
      new Option('--audit <level>', 'which decisions the audit log records: deny, allow or all (allows: every open then reaches the daemon)')
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
    )
    .action(async (src: string, mnt: string, opts: MountOptions, command: Command) => {
      if (opts.data === 'passthrough' && opts.revoke === 'immediate') {
        // Passthrough reads never reach the daemon: the opposite of immediate.
        command.error("error: option '--data passthrough' cannot be used with option '--revoke immediate'");
      }
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
        data: opts.data,
        inPlace: opts.inPlace,
        force: opts.force,
        maxOpenPerUser: opts.maxOpenPerUser ?? null,
        logLevel: opts.logLevel,
        auditLevel: opts.audit,
        auditDb: opts.auditDb ?? null,
        auditMaxRecords: opts.auditMaxRecords,
        auditMaxAgeMs: parseDuration(opts.auditMaxAge, '--audit-max-age'),
        check: opts.check,
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
