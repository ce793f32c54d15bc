// Access bits (r = 4, w = 2, x = 1) to and from their textual forms.
//
// Two notations exist on purpose:
// - a rule's *granted* access is always shown in the fixed 3-column `ls`
//   form ("r-x"), or given as an integer 0-7;
// - a *requested* access (CLI `--access`) is a set of letters ("r", "rw").

import { invalid } from '../errors';
import { type Access, R, W, X } from './types';

const LETTERS: readonly { readonly bit: number; readonly letter: string }[] = [
  { bit: R, letter: 'r' },
  { bit: W, letter: 'w' },
  { bit: X, letter: 'x' },
];

export function isAccess(value: unknown): value is Access {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 7;
}

/**
 * "r-x" → 5. Strict: exactly three characters, each position either its own
 * letter or '-'. Returns undefined for anything else so callers can word
 * their own error.
 */
export function parseAccessString(text: string): Access | undefined {
  if (text.length !== 3) return undefined;
  let bits = 0;
  for (let i = 0; i < 3; i++) {
    const ch = text[i];
    const slot = LETTERS[i]!;
    if (ch === slot.letter) bits |= slot.bit;
    else if (ch !== '-') return undefined;
  }
  return bits;
}

/** A "rwx"-style string or an integer 0-7, else undefined. */
export function tryParseAccess(value: unknown): Access | undefined {
  if (isAccess(value)) return value;
  if (typeof value === 'string') return parseAccessString(value);
  return undefined;
}

/** Like tryParseAccess, but throws AclfsError('invalid'). */
export function parseAccess(value: unknown): Access {
  const bits = tryParseAccess(value);
  if (bits === undefined) throw invalid(`${JSON.stringify(value)} is not an access like "r-x" or 0-7`);
  return bits;
}

/** 5 → "r-x". */
export function formatAccess(bits: Access): string {
  if (!isAccess(bits)) throw invalid(`${String(bits)} is not an access value 0-7`);
  return LETTERS.map(({ bit, letter }) => (bits & bit ? letter : '-')).join('');
}

/** 6 → "rw", 0 → "" (just the letters that are set; for messages). */
export function accessLetters(bits: Access): string {
  return LETTERS.filter(({ bit }) => bits & bit)
    .map(({ letter }) => letter)
    .join('');
}

/**
 * A requested access such as "r", "rw", "wx" or "rwx" (letters in any order,
 * each at most once), or the 3-column form "r-x". Must request at least one
 * bit: asking for nothing would always be allowed and is surely a mistake.
 */
export function parseRequested(spec: string): Access {
  const bits = spec.length === 3 && spec.includes('-') ? parseAccessString(spec) : parseLetterSet(spec);
  if (bits === undefined || bits === 0) {
    throw invalid(`${JSON.stringify(spec)} is not a requested access like "r", "rw" or "rwx"`);
  }
  return bits;
}

function parseLetterSet(spec: string): Access | undefined {
  let bits = 0;
  for (const ch of spec) {
    const slot = LETTERS.find((l) => l.letter === ch);
    if (slot === undefined || bits & slot.bit) return undefined;
    bits |= slot.bit;
  }
  return bits;
}
