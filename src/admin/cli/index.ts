// The `aclfs` command line (commander). It only parses arguments, calls the
// admin API and prints. The API is the running daemon over its socket
// (client.ts) or, with --db, the database itself through the backend main.ts
// supplies. This file builds the program from its command groups (one file
// each, in the order the help lists them) and runs it; what the groups
// share is context.ts and options.ts.
import { Argument, Command, CommanderError, type ParseOptionsResult } from 'commander';
import { asAclfsError, invalid, unavailable } from '../../errors';
import { AdminClient } from '../client';
import { bashCompletion } from '../completion';
import { useManHelp } from '../manHelp';
import type { ClosableAdminApi } from '../protocol';
import { addAuditCommand } from './audit';
import { addAccessCommand } from './access';
import { addHistoryCommands } from './history';
import { addReplayCommand } from './replay';
import { addCheckCommand } from './check';
import { DEFAULT_SOCKET, EXIT, exitCodeFor, type CliBackend, type CliContext, type CliIo, type TargetOptions } from './context';
import { addImportExportCommands } from './importExport';
import { addModeCommand } from './mode';
import { addMountCommands } from './mount';
import { addRuleCommands } from './rules';
import { addStatusCommand } from './status';
import { addSyncCommands } from './sync';

export { DEFAULT_DB, DEFAULT_SOCKET, EXIT, exitCodeFor, type CliBackend, type CliIo } from './context';
export { PROGRESS_MIN_RULES } from './importExport';
export type { MountCommand } from './mount';
export type { PushCommand, PushReport, SyncArgs } from './sync';
export { parseSize } from './options';

/** Commander's own report of an unknown option (with its "Did you mean" suggestion). */
interface ReportsUnknownOption {
  unknownOption(flag: string): never;
}

/**
 * A command that reports an unknown option before a missing required one:
 * commander checks required options first, so a misspelled `--acess r`
 * would be reported as `--access` missing. A command that runs an action
 * refuses every unknown option anyway; this only moves that refusal ahead.
 * Asking for help still wins, as it does in commander.
 */
class AclfsCommand extends Command {
  override createCommand(name?: string): Command {
    return new AclfsCommand(name);
  }

  override parseOptions(argv: string[]): ParseOptionsResult {
    const parsed = super.parseOptions(argv);
    const first = parsed.unknown[0];
    if (this.commands.length === 0 && first !== undefined && !parsed.unknown.some((arg) => arg === '--help' || arg === '-h')) {
      (this as unknown as ReportsUnknownOption).unknownOption(first);
    }
    return parsed;
  }
}

function buildProgram(backend: CliBackend, io: CliIo, setExit: (code: number) => void): Command {
  const program = new AclfsCommand('aclfs')
    .description('FUSE filesystem that lets each open and read through only if a rule allows it')
    .version(backend.version)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Usage errors are one line too (a "Did you mean" joins it), with a pointer to the help.
      outputError: (text, write) => write(`aclfs: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see aclfs help)\n`),
    });

  const withApi = async <T>(o: TargetOptions, write: boolean, fn: (api: ClosableAdminApi) => Promise<T>): Promise<T> => {
    if (o.socket !== undefined && o.db !== undefined) throw invalid('give --socket or --db, not both');
    const api = o.db !== undefined ? await backend.openDatabase(o.db, write) : new AdminClient(o.socket ?? DEFAULT_SOCKET);
    try {
      return await fn(api);
    } finally {
      await api.close();
    }
  };
  const withDaemon = async <T>(o: TargetOptions, what: string, fn: (api: ClosableAdminApi) => Promise<T>): Promise<T> => {
    if (o.db !== undefined) throw unavailable(`${what} belongs to a running aclfs daemon, not to the database: give --socket (not --db)`);
    return withApi(o, false, fn);
  };
  const context: CliContext = { backend, io, setExit, withApi, withDaemon };

  addMountCommands(program, context);
  addRuleCommands(program, context);
  addImportExportCommands(program, context);
  addSyncCommands(program, context);
  addCheckCommand(program, context);
  addAccessCommand(program, context);
  addHistoryCommands(program, context);
  addReplayCommand(program, context);
  addStatusCommand(program, context);
  addAuditCommand(program, context);
  addModeCommand(program, context);

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
