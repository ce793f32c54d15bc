// What every command group of the CLI shares: what it is given (the backend
// main.ts supplies, the process's streams), its exit codes, and the way a
// command reaches the admin API.
import type { AclfsError, ErrorClass } from '../../errors';
import type { ClosableAdminApi } from '../protocol';
import type { MountCommand } from './mount';
import type { PushCommand, PushReport } from './sync';

export const DEFAULT_DB = '/var/lib/aclfs';
export const DEFAULT_SOCKET = '/run/aclfs/aclfs.sock';

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
  /** `aclfs push`: makes the rules the fleet's rule set in etcd (or, dry, says what would change). */
  push?(cmd: PushCommand): Promise<PushReport>;
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Reads a file, or standard input for `-`. */
  readonly readFile: (path: string) => Promise<string>;
  /** Where a progress bar may be drawn: stderr when it is a terminal, else null. */
  readonly progress: NodeJS.WritableStream | null;
  /** stdout is a terminal (absent: not); export and rule ls draw no bar over their own output. */
  readonly stdoutIsTerminal?: boolean;
  /**
   * Writes a hint for a person (how to get the next page) to standard error;
   * absent when nobody reads it there (not a terminal), so scripts see only
   * the data.
   */
  readonly hint?: (text: string) => void;
}

/** The exit codes of every command, in one place. */
export const EXIT = {
  ok: 0,
  denied: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  forbidden: 5,
  unreachable: 6,
  /** Not built, or its dependencies not installed: said by bin/aclfs, before any of this loads. */
  notBuilt: 7,
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

/** Where a command sends its requests: --socket or --db, as given. */
export interface TargetOptions {
  readonly socket?: string;
  readonly db?: string;
}

/** What a command group is given when it adds its commands. */
export interface CliContext {
  readonly backend: CliBackend;
  readonly io: CliIo;
  /** The exit code of a command that succeeded without "ok" (check: 1 = denied). */
  readonly setExit: (code: number) => void;
  /** The API: the daemon at --socket (default), or the database at --db. */
  readonly withApi: <T>(o: TargetOptions, write: boolean, fn: (api: ClosableAdminApi) => Promise<T>) => Promise<T>;
  /** The daemon at --socket; --db is refused: what is asked lives in the daemon's memory. */
  readonly withDaemon: <T>(o: TargetOptions, what: string, fn: (api: ClosableAdminApi) => Promise<T>) => Promise<T>;
}
