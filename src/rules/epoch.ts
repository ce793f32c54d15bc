// The commit epoch: a counter every process that commits rules advances, and
// that the FUSE binding's native code can read without LMDB or JS. It is the
// size of the file `epoch` in the database directory, grown by one byte with
// an O_APPEND write (atomic across processes) once before a transaction that
// changes rules commits and once after it has committed. So:
//   - a reader that saw epoch E and later sees E again knows no commit
//     started in between (the "before" byte would have moved it);
//   - once a writer has returned, every decision taken on the snapshot
//     before its commit carries an older epoch (the "after" byte moved it).
// The native decision cache (src/fs/fastPath.ts) replays an allow only while
// the epoch is the one the allow was decided at: never a stale allow.
// Two bytes per committing transaction; the daemon starts the file afresh
// when it is large and nothing has been decided yet (resetIfLarge).

import fs from 'node:fs';
import nodePath from 'node:path';

export const EPOCH_FILE = 'epoch';
/** Beyond this the daemon truncates the file at start (about 4M commits). */
const RESET_BYTES = 8 * 1024 * 1024;
const ONE_BYTE = Buffer.from([0x2e]);

export class CommitEpoch {
  private constructor(
    readonly path: string,
    readonly fd: number,
  ) {}

  /** Opens (creating, mode 0600) the epoch file of database directory `dir`. */
  static open(dir: string): CommitEpoch {
    const path = nodePath.join(dir, EPOCH_FILE);
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
    return new CommitEpoch(path, fd);
  }

  /** Advances the epoch by one. */
  advance(): void {
    fs.writeSync(this.fd, ONE_BYTE);
  }

  value(): number {
    return fs.fstatSync(this.fd).size;
  }

  /**
   * Starts the count again from 0 when the file has grown large. Only for
   * the daemon at start, before anything was decided or published: a value
   * seen before the reset could otherwise come round again.
   */
  resetIfLarge(): void {
    if (this.value() > RESET_BYTES) fs.ftruncateSync(this.fd, 0);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
