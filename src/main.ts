// The one place that wires the three areas together: the rules (store,
// engine, cache), the filesystem edge (filter, mount) and the admin side
// (CLI). Nothing else imports across those lines.
import { readFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import pino, { type Logger } from 'pino';
import { runCli, type CliBackend, type MountCommand } from './admin/cli';
import { AclfsError } from './errors';
import { CallerResolver } from './fs/callers';
import { Filter } from './fs/filter';
import { assertPatchedBinding, checkLayout, Mount, unmountPath } from './fs/mount';
import { bindPendingRules } from './rules/binder';
import { DecisionCache } from './rules/cache';
import { PolicyEngine } from './rules/engine';
import { parseRuleFileText, serializeRuleFile } from './rules/ruleFile';
import { RuleStore } from './rules/store';

/** How often the daemon looks for rules committed by other processes. */
const BIND_POLL_MS = 250;
/** How often the daemon checks that its mount still exists. */
const MOUNT_CHECK_MS = 1000;

function makeLogger(level: string): Logger {
  // Logs go to stderr so stdout stays clean for data (export, --json).
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** dev:ino of a path under the source, or null when it does not exist. */
function identityUnder(source: string): (rulePath: string) => { dev: number; ino: number } | null {
  return (rulePath) => {
    try {
      const st = fs.lstatSync(rulePath === '/' ? source : source + rulePath);
      return { dev: st.dev, ino: st.ino };
    } catch {
      return null;
    }
  };
}

async function serve(cmd: MountCommand): Promise<void> {
  assertPatchedBinding();
  const log = makeLogger(cmd.logLevel);
  const layout = checkLayout(cmd.source, cmd.mountpoint);
  const store = RuleStore.open(cmd.db);
  const timers: NodeJS.Timeout[] = [];
  try {
    const engine = new PolicyEngine(store, new DecisionCache(), cmd.defaultPolicy);
    const identity = identityUnder(layout.source);

    // Bind every path rule whose file exists now, then keep binding rules as
    // they are committed (by this daemon or by `aclfs import --db` elsewhere).
    const bound = bindPendingRules(store, identity);
    let seenGeneration = store.generation();
    timers.push(
      setInterval(() => {
        try {
          const generation = store.generation();
          if (generation === seenGeneration) return;
          const n = bindPendingRules(store, identity);
          if (n > 0) log.info({ bound: n }, 'bound rules to files');
          seenGeneration = store.generation();
        } catch (err) {
          log.error({ err: String(err) }, 'binding rules failed');
        }
      }, BIND_POLL_MS),
    );

    const filter = new Filter({ source: layout.source, gatekeeper: engine, callers: new CallerResolver(), log });
    const mount = await Mount.start({ mountpoint: layout.mountpoint, ops: filter.ops, defaultPermissions: true });
    log.info(
      { source: layout.source, mountpoint: layout.mountpoint, db: cmd.db, default: cmd.defaultPolicy, bound, generation: store.generation() },
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
          if (!mount.isMounted()) {
            log.warn('mount was removed from outside');
            resolve();
          }
        }, MOUNT_CHECK_MS),
      );
    });
    timers.forEach(clearInterval);
    await mount.stop();
    log.info('unmounted');
  } finally {
    timers.forEach(clearInterval);
    store.close();
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

function withStore<T>(db: string, fn: (store: RuleStore) => T): T {
  const store = RuleStore.open(db);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

const backend: CliBackend = {
  mount: serve,
  unmount: unmountPath,
  importFile: async (db, text, replace) => {
    const rules = parseRuleFileText(text);
    return withStore(db, (store) => {
      const result = store.importRules(rules, { replace });
      return { ...result, generation: store.generation() };
    });
  },
  exportRules: async (db) => withStore(db, (store) => serializeRuleFile(store.exportRules())),
};

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, backend, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: readInput,
  });
  process.exitCode = code;
}
