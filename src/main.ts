// The one place that wires the three areas together: the rules (store,
// engine, cache), the filesystem edge (filter, mount) and the admin side
// (CLI). Nothing else imports across those lines.
import { readFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import pino, { type Logger } from 'pino';
import * as nodePath from 'node:path';
import { runCli, type CliBackend, type MountCommand } from './admin/cli';
import type { ClosableAdminApi } from './admin/protocol';
import { AdminServer } from './admin/server';
import { AdminService } from './admin/service';
import { AclfsError, invalid, notFound } from './errors';
import { AuditLog } from './fs/audit';
import { CallerResolver } from './fs/callers';
import { Filter, identityLookup, type RuleIndex } from './fs/filter';
import {
  assertPatchedBinding,
  checkLayout,
  clearStaleMount,
  isInside,
  Mount,
  fastPathStats,
  openBackingRoot,
  unmountPath,
  workerThreadStats,
} from './fs/mount';
import { ModeSwitch } from './fs/mode';
import { Binder, bindPendingRules } from './rules/binder';
import { DecisionCache } from './rules/cache';
import { PolicyEngine } from './rules/engine';
import { systemNames } from './rules/names';
import { DATA_FILE, RuleStore } from './rules/store';

/** How often the daemon looks for rules committed by other processes. */
const BIND_POLL_MS = 250;
/** How often the daemon checks that its mount still exists. */
const MOUNT_CHECK_MS = 1000;

/** The package version (package.json beside dist/). */
const VERSION = ((): string => {
  try {
    return (JSON.parse(fs.readFileSync(nodePath.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/**
 * The admin socket must lie outside the protected tree and the mount: a
 * socket under the mountpoint would be hidden by the mount and the daemon
 * would reach it through itself; one under the source would show up in the
 * protected tree. Returns the socket's absolute path.
 */
function socketOutsideMount(socket: string, layout: { source: string; mountpoint: string }): string {
  const abs = nodePath.resolve(socket);
  let dir = nodePath.dirname(abs);
  // Resolve symlinks of the part that exists (the rest is created by us).
  for (let probe = dir, rest = ''; ; ) {
    try {
      dir = nodePath.join(fs.realpathSync(probe), rest);
      break;
    } catch {
      const parent = nodePath.dirname(probe);
      if (parent === probe) break;
      rest = nodePath.join(nodePath.basename(probe), rest);
      probe = parent;
    }
  }
  for (const [what, root] of [['mountpoint', layout.mountpoint], ['source', layout.source]] as const) {
    if (isInside(dir, root)) throw invalid(`admin socket ${abs} must not be inside the ${what} ${root}`);
  }
  return abs;
}

/** --admin-group NAME|GID → gid. */
function adminGid(spec: string): number {
  const gid = systemNames.group(spec);
  if (gid === undefined) throw invalid(`--admin-group: unknown group ${JSON.stringify(spec)}`);
  return gid;
}

function makeLogger(level: string): Logger {
  // Logs go to stderr so stdout stays clean for data (export, --json).
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** The rule indexes kept in step with changes made through the mount. */
function storeIndex(store: RuleStore, log: Logger): RuleIndex {
  return {
    created: (path, file) => {
      if (store.bindWaiting(path, file)) log.info({ path }, 'bound waiting rule to new file');
    },
    renamed: (from, to) => {
      const { moved, kept } = store.movePaths(from, to);
      if (moved > 0) log.info({ from, to, moved }, 'rules moved with renamed files');
      // The new path already has a rule: the moved one stays, bound to its
      // file by inode; an administrator should look at both.
      if (kept.length > 0) log.warn({ from, to, rules: kept }, 'rules kept at their old path: new path already has a rule');
    },
    removed: (file) => {
      const id = store.unbindFile(file);
      if (id !== null) log.info({ rule: id, dev: file.dev, ino: file.ino }, 'file gone: rule released its inode');
    },
  };
}

async function serve(cmd: MountCommand): Promise<void> {
  assertPatchedBinding();
  const log = makeLogger(cmd.logLevel);
  const layout = checkLayout(cmd.source, cmd.mountpoint, cmd.inPlace);
  const gid = adminGid(cmd.adminGroup);
  const socketPath = socketOutsideMount(cmd.socket, layout);
  // Modes of new files come from the kernel with the caller's umask already
  // applied; ours must not strip more.
  process.umask(0);
  await clearStaleMount(layout.mountpoint);
  const backing = openBackingRoot(layout.source, cmd.inPlace);
  const startedAt = new Date();
  const store = RuleStore.open(cmd.db);
  const timers: NodeJS.Timeout[] = [];
  let admin: AdminServer | undefined;
  try {
    const cache = new DecisionCache();
    const engine = new PolicyEngine(store, cache, cmd.defaultPolicy);
    const identity = identityLookup(backing.root);
    const audit = new AuditLog();
    // Every start enforces (never persisted: a restart fails closed). A
    // switch advances the commit epoch (only ever compared for equality, so
    // an advance without a commit is harmless): cached decisions, allows
    // published to the fast path and handles vouched for in C all lapse, and
    // the next open, and the next read or write of an open handle that
    // reaches the daemon, is decided under the new mode.
    const mode = new ModeSwitch((now, previous) => {
      store.epoch.advance();
      log.warn({ mode: now, previous }, now === 'permissive' ? 'permissive mode: denials are let through and recorded' : 'enforce mode: denials are refused');
    });

    // The admin API, up before the mount so a second daemon on the same
    // socket is refused before it mounts anything.
    let mount: Mount | undefined;
    admin = await AdminServer.start({
      socketPath,
      gid,
      importLimitBytes: cmd.importLimitBytes,
      log,
      api: new AdminService({
        store,
        identity,
        defaultPolicy: cmd.defaultPolicy,
        audit,
        mode,
        runtime: () => ({
          version: VERSION,
          pid: process.pid,
          startedAt,
          source: layout.source,
          mountpoint: layout.mountpoint,
          mounted: mount?.isMounted() ?? false,
          socket: socketPath,
          options: {
            rulesOnly: cmd.rulesOnly,
            revoke: cmd.revoke,
            inPlace: cmd.inPlace,
            defaultPermissions: !cmd.rulesOnly,
          },
          decisions: { ...engine.counters },
          cache: cache.stats(),
          workerLocals: workerThreadStats(),
          fastPath: fastPathStats(),
        }),
      }),
    });

    // Bind every path rule whose file exists now, then keep binding rules as
    // they are committed (by this daemon or by `aclfs import --db` elsewhere).
    const bound = bindPendingRules(store, identity);
    const binder = new Binder(store, identity);
    timers.push(
      setInterval(() => {
        try {
          const n = binder.step();
          if (n > 0) log.info({ bound: n }, 'bound rules to files');
        } catch (err) {
          log.error({ err: String(err) }, 'binding rules failed');
        }
      }, BIND_POLL_MS),
    );

    const filter = new Filter({
      backingRoot: backing.root,
      gatekeeper: engine,
      index: storeIndex(store, log),
      callers: new CallerResolver(),
      log,
      rulesOnly: cmd.rulesOnly,
      audit,
      permissive: () => mode.permissive(),
    });
    mount = await Mount.start({
      mountpoint: layout.mountpoint,
      ops: filter.ops,
      defaultPermissions: !cmd.rulesOnly,
      pageCache: cmd.revoke !== 'immediate',
      overMount: cmd.inPlace,
      backingRootFd: backing.fd,
      epochPage: store.epoch.page,
    });
    log.info(
      {
        source: layout.source,
        mountpoint: layout.mountpoint,
        db: cmd.db,
        socket: cmd.socket,
        default: cmd.defaultPolicy,
        rulesOnly: cmd.rulesOnly,
        revoke: cmd.revoke,
        inPlace: cmd.inPlace,
        bound,
        generation: store.generation(),
        // null: sysfs is read-only here (a container); reads stay at 128 KiB.
        readaheadKiB: mount.readaheadKiB,
      },
      'mounted',
    );

    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        log.info({ signal }, 'unmounting');
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A FUSE daemon ends with its mount: if an administrator unmounted it
      // (aclfs unmount, fusermount -u), there is nothing left to serve.
      timers.push(
        setInterval(() => {
          if (!mount?.isMounted()) {
            log.warn('mount was removed from outside');
            resolve();
          }
        }, MOUNT_CHECK_MS),
      );
    });
    timers.forEach(clearInterval);
    // No admin changes while the mount goes away.
    await admin.close();
    await mount.stop();
    log.info('unmounted');
  } finally {
    timers.forEach(clearInterval);
    await admin?.close();
    store.close();
    backing.close();
  }
  // The binding's worker thread and handles must not keep a daemon whose
  // mount is gone alive; everything is closed, so end here.
  log.flush(() => process.exit(0));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readInput(file: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AclfsError('not_found', `${file}: no such file`);
    if (code === 'EACCES') throw new AclfsError('forbidden', `${file}: permission denied`);
    throw err;
  }
}

/** The admin API on a database directly: the CLI's --db mode. */
async function openDatabase(db: string, create: boolean): Promise<ClosableAdminApi> {
  if (!create && !fs.existsSync(nodePath.join(db, DATA_FILE))) throw notFound(`no rule database at ${db}`);
  const store = RuleStore.open(db);
  // No mount here: check decides by path only, under the daemon's default policy.
  return new AdminService({ store, identity: null, defaultPolicy: 'deny', version: VERSION, onClose: () => store.close() });
}

const backend: CliBackend = {
  version: VERSION,
  mount: serve,
  unmount: unmountPath,
  openDatabase,
};

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, backend, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: readInput,
    progress: process.stdout.isTTY && process.stderr.isTTY ? process.stderr : null,
  });
  process.exitCode = code;
}
