// The `aclfs` command line (commander). It only parses arguments, calls a
// backend and prints; main.ts supplies the backend that reaches the rules
// (a database file with --db, or the running daemon over its socket).
import { Command, CommanderError, Option } from 'commander';
import { AclfsError, asAclfsError, type ErrorClass } from '../errors';

export const DEFAULT_DB = '/var/lib/aclfs';
export const DEFAULT_SOCKET = '/run/aclfs/aclfs.sock';

export interface MountCommand {
  readonly source: string;
  readonly mountpoint: string;
  readonly db: string;
  readonly socket: string;
  readonly defaultPolicy: 'deny' | 'allow';
  /** The rules are the only authority (no kernel Unix-permission check). */
  readonly rulesOnly: boolean;
  /** 'immediate': no page cache for data, a revoke stops open files at once. */
  readonly revoke: 'page-cache' | 'immediate';
  /** Mount over SRC itself, leaving no path that bypasses the filter. */
  readonly inPlace: boolean;
  readonly logLevel: string;
}

export interface ImportSummary {
  readonly created: number;
  readonly updated: number;
  readonly generation: number;
}

/** What the CLI needs done; implemented in main.ts. */
export interface CliBackend {
  /** Serves in the foreground; resolves when unmounted after a signal. */
  mount(cmd: MountCommand): Promise<void>;
  unmount(mountpoint: string): Promise<void>;
  importFile(db: string, text: string, replace: boolean): Promise<ImportSummary>;
  /** The rule file (spec format) as JSON text. */
  exportRules(db: string): Promise<string>;
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads a file, or standard input for `-`. */
  readonly readFile: (path: string) => Promise<string>;
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
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  forbidden: EXIT.forbidden,
  unavailable: EXIT.unreachable,
  internal: EXIT.internal,
};

export function exitCodeFor(err: AclfsError): number {
  return EXIT_FOR_CLASS[err.code];
}

function buildProgram(backend: CliBackend, io: CliIo): Command {
  const program = new Command('aclfs')
    .description('FUSE filesystem that lets each open and read through only if a rule allows it')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  program
    .command('mount')
    .description('serve SRC at MNT in the foreground until SIGINT/SIGTERM, then unmount')
    .argument('<src>', 'directory to protect')
    .argument('<mnt>', 'mountpoint where the filtered view appears')
    .option('--db <path>', 'rule database', DEFAULT_DB)
    .option('--socket <path>', 'admin socket', DEFAULT_SOCKET)
    .addOption(new Option('--default <policy>', 'decision when no rule governs a file').choices(['deny', 'allow']).default('deny'))
    .option('--rules-only', 'make the rules the sole authority (Unix permissions are not consulted)', false)
    .addOption(
      new Option('--revoke <when>', 'immediate: no page cache for file data, so a revoke stops open files at their next read')
        .choices(['immediate']),
    )
    .option('--in-place', 'mount over SRC itself (give SRC as MNT too): no path is left that bypasses the filter', false)
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug']).default('info'))
    .action(
      async (
        src: string,
        mnt: string,
        opts: {
          db: string;
          socket: string;
          default: 'deny' | 'allow';
          rulesOnly: boolean;
          revoke?: 'immediate';
          inPlace: boolean;
          logLevel: string;
        },
      ) => {
        await backend.mount({
          source: src,
          mountpoint: mnt,
          db: opts.db,
          socket: opts.socket,
          defaultPolicy: opts.default,
          rulesOnly: opts.rulesOnly,
          revoke: opts.revoke ?? 'page-cache',
          inPlace: opts.inPlace,
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

  program
    .command('import')
    .description('import a rule file atomically (a file with one bad rule changes nothing)')
    .argument('<file>', 'rule file (JSON, see README); - for standard input')
    .requiredOption('--db <path>', 'rule database to write')
    .option('--replace', 'delete every existing rule first', false)
    .option('--json', 'print the summary as JSON', false)
    .action(async (file: string, opts: { db: string; replace: boolean; json: boolean }) => {
      const text = await io.readFile(file);
      const summary = await backend.importFile(opts.db, text, opts.replace);
      io.stdout(
        opts.json
          ? `${JSON.stringify(summary)}\n`
          : `imported ${summary.created + summary.updated} rules (${summary.created} created, ${summary.updated} updated), generation ${summary.generation}\n`,
      );
    });

  program
    .command('export')
    .description('print every rule as a rule file (JSON)')
    .requiredOption('--db <path>', 'rule database to read')
    .action(async (opts: { db: string }) => {
      io.stdout(await backend.exportRules(opts.db));
    });

  return program;
}

/** Runs the CLI; returns the process exit code. Never throws. */
export async function runCli(argv: readonly string[], backend: CliBackend, io: CliIo): Promise<number> {
  const program = buildProgram(backend, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; usage mistakes exit 2.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const e = asAclfsError(err);
    io.stderr(`aclfs: ${e.message}\n`);
    return exitCodeFor(e);
  }
}
