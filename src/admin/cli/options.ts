// Option and argument parsing shared by the command groups: the options
// that pick where a request goes, and the words (ids or names, accesses,
// counts, sizes) a command line holds. Values the daemon checks (names,
// access strings, paths) are passed on as written; these only turn the
// text of an argument into the type the protocol carries.
import { Option } from 'commander';
import { invalid } from '../../errors';
import type { IdOrName } from '../protocol';
import { DEFAULT_SOCKET } from './context';

export const socketOption = (): Option => new Option('--socket <path>', `admin socket of the running daemon (default ${DEFAULT_SOCKET})`);
export const dbOption = (): Option => new Option('--db <path>', 'work on this rule database directly instead (no daemon needed)');
export const jsonOption = (): Option => new Option('--json', 'print JSON').default(false);
// Accepted only to say clearly why it cannot work (exit 6, as with no daemon).
export const daemonOnlyDbOption = (): Option => new Option('--db <path>', 'not accepted: the daemon keeps this, not the database').hideHelp();

/** "1000" → 1000, "alice" → "alice" (the daemon resolves names). */
export function idOrName(text: string, what: string): IdOrName {
  if (text === '') throw invalid(`${what} must not be empty`);
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** "r-x" stays a string for the daemon to check; "5" → 5. */
export function accessArg(text: string): string | number {
  return /^\d$/.test(text) ? Number(text) : text;
}

/** Commander's collector of a repeatable option. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** --after SEQ: a non-negative integer. */
export function parseSeq(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw invalid(`--after must be a non-negative integer (a seq), got ${JSON.stringify(text)}`);
  return Number(text);
}

export function parseLimit(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw invalid(`--limit must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** "256M", "1GiB", "1048576" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*(?:([kmg])(?:i?b)?)?$/i.exec(text.trim());
  if (m === null) throw invalid(`${JSON.stringify(text)} is not a size like 1048576, 64M or 1G`);
  const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(`${JSON.stringify(text)} is not a usable size`);
  return n;
}

/** A byte count as parseSize reads it back: "64K", "1M", "1000". */
export function sizeText(bytes: number): string {
  for (const [unit, scale] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "100ms", "90s", "15m", "2h", "30d", "1w" → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d{1,12})(ms|s|m|h|d|w)$/.exec(text.trim());
  const n = m === null ? NaN : Number(m[1]) * DURATION_UNITS[m[2]!]!;
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(`${what} must be a duration like 90s, 15m, 2h or 30d, got ${JSON.stringify(text)}`);
  return n;
}

/** "1 rule", "2 rules", "1 process": a count with its noun in the right number. */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** `text` as one shell word (single-quoted where it must be). */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A value as the --json output prints it: indented, with a trailing newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
