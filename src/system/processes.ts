// What /proc says of a process: its program and command line, for the
// audit log (read after the decision, best effort: a process that is gone,
// or one in another pid namespace, reads as null).
import fs from 'node:fs';
import { AUDIT_CMDLINE_MAX } from '../rules/audit';

export interface ProcessFacts {
  /** readlink /proc/PID/exe. */
  readonly program: string | null;
  /** /proc/PID/cmdline, NUL separators as spaces, cut at AUDIT_CMDLINE_MAX bytes. */
  readonly cmdline: string | null;
}

/** The program and command line of `pid`; null for what cannot be read. */
export function processFacts(pid: number): ProcessFacts {
  if (!Number.isSafeInteger(pid) || pid <= 0) return { program: null, cmdline: null };
  let program: string | null;
  try {
    program = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    program = null;
  }
  return { program, cmdline: readCmdline(pid) };
}

function readCmdline(pid: number): string | null {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/cmdline`, 'r');
  } catch {
    return null;
  }
  try {
    // One byte more than kept, to know whether it was cut.
    const buf = Buffer.alloc(AUDIT_CMDLINE_MAX + 1);
    let length = 0;
    for (let n; length < buf.length && (n = fs.readSync(fd, buf, length, buf.length - length, null)) > 0; ) length += n;
    // A zombie (or a kernel thread) has an empty command line.
    if (length === 0) return null;
    let bytes = buf.subarray(0, Math.min(length, AUDIT_CMDLINE_MAX));
    if (bytes[bytes.length - 1] === 0) bytes = bytes.subarray(0, bytes.length - 1);
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) bytes[i] = 0x20;
    return bytes.toString('utf8');
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
