// A read of the whole database in a child process, before a command relies
// on it. A data file cut short or with foreign meta pages is caught without
// reading it (dataFile.ts); damage deep inside it (a B-tree page
// overwritten) is met only by reading, and LMDB may then abort the process
// that reads (an assertion, SIGABRT) or fault (SIGSEGV, SIGBUS). That process
// must be a child, whose end is reported as one line, never the daemon or
// the CLI itself.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AclfsError, DamagedDatabaseError, isErrorClass } from '../errors';
import { DATA_FILE } from './schema';
import type { StoreInspection } from './store';

/** What the child prints before a problem it found, so the parent can tell it from any other failure. */
const DAMAGED = 'damaged: ';

/**
 * The child's work: open the store in `dir` as the daemon and the CLI do
 * (with the native addon loaded and mapping its files, so its reads meet the
 * address space theirs would), read every record and index entry.
 */
const CHILD = `
const { RuleStore } = require(process.argv[1]);
const { native } = require(process.argv[2]);
const { DamagedDatabaseError } = require(process.argv[3]);
try {
  const store = RuleStore.open(process.argv[4], native);
  const problems = store.verifyIndexes();
  store.close();
  if (problems.length > 0) {
    process.stderr.write(${JSON.stringify(DAMAGED)} + problems.length + ' index problems, the first: ' + problems[0]);
    process.exit(3);
  }
} catch (err) {
  process.stderr.write((err instanceof DamagedDatabaseError ? ${JSON.stringify(DAMAGED)} + err.problem : String(err && err.message || err)).split('\\n')[0]);
  process.exit(3);
}
`;

/**
 * Reads the database in `dir` in a child process (nothing to read when it
 * has no data file yet); throws a DamagedDatabaseError when the child found
 * damage or was ended by a signal, an internal AclfsError when it failed
 * otherwise. Needs the compiled modules (dist/): the daemon and the CLI.
 */
export function verifyInChild(dir: string): void {
  if (!fs.existsSync(path.join(dir, DATA_FILE))) return;
  const res = spawnSync(
    process.execPath,
    ['-e', CHILD, require.resolve('./store'), require.resolve('../native/binding'), require.resolve('../errors'), dir],
    { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] },
  );
  if (res.error !== undefined) throw new AclfsError('internal', `cannot check database ${dir}: ${res.error.message}`);
  if (res.signal !== null) throw new DamagedDatabaseError(dir, `reading it ended the reading process with ${res.signal}`);
  if (res.status === 0) return;
  const said = res.stderr.split('\n').filter((line) => line.trim() !== '');
  const problem = said.find((line) => line.startsWith(DAMAGED));
  if (problem !== undefined) throw new DamagedDatabaseError(dir, problem.slice(DAMAGED.length));
  throw new AclfsError('internal', `cannot check database ${dir}: ${said.at(-1) ?? `exit status ${String(res.status)}`}`);
}

/** What the inspecting child prints before an AclfsError's class and message. */
const REFUSED = 'refused: ';

const INSPECT_CHILD = `
const { inspectStore } = require(process.argv[1]);
const { AclfsError, DamagedDatabaseError } = require(process.argv[2]);
try {
  process.stdout.write(JSON.stringify(inspectStore(process.argv[3])));
} catch (err) {
  if (err instanceof DamagedDatabaseError) process.stderr.write(${JSON.stringify(DAMAGED)} + err.problem.split('\\n')[0]);
  else if (err instanceof AclfsError) process.stderr.write(${JSON.stringify(REFUSED)} + err.code + ' ' + err.message.split('\\n')[0]);
  else process.stderr.write(String(err && err.message || err).split('\\n')[0]);
  process.exit(3);
}
`;

/**
 * inspectStore(dir) in a child process (reading damage may end the process
 * that reads): what `aclfs mount --check` asks, changing nothing. Throws
 * what inspectStore threw (a DamagedDatabaseError also when the child was
 * ended by a signal).
 */
export function inspectInChild(dir: string): StoreInspection {
  const res = spawnSync(process.execPath, ['-e', INSPECT_CHILD, require.resolve('./store'), require.resolve('../errors'), dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (res.error !== undefined) throw new AclfsError('internal', `cannot check database ${dir}: ${res.error.message}`);
  if (res.signal !== null) throw new DamagedDatabaseError(dir, `reading it ended the reading process with ${res.signal}`);
  if (res.status === 0) return JSON.parse(res.stdout) as StoreInspection;
  const said = res.stderr.split('\n').filter((line) => line.trim() !== '');
  const damaged = said.find((line) => line.startsWith(DAMAGED));
  if (damaged !== undefined) throw new DamagedDatabaseError(dir, damaged.slice(DAMAGED.length));
  const refused = said.find((line) => line.startsWith(REFUSED));
  if (refused !== undefined) {
    const [code = '', ...message] = refused.slice(REFUSED.length).split(' ');
    if (isErrorClass(code)) throw new AclfsError(code, message.join(' '));
  }
  throw new AclfsError('internal', `cannot check database ${dir}: ${said.at(-1) ?? `exit status ${String(res.status)}`}`);
}
