import { describe, expect, it } from 'vitest';
import { AclfsError } from '../../src/errors';
import { accessLetters, formatAccess, parseAccess, parseRequested, tryParseAccess } from '../../src/rules/access';
import { isAtOrBelow, normalizePath, parentPath } from '../../src/rules/path';

describe('parseAccess / formatAccess', () => {
  it.each([
    ['---', 0],
    ['--x', 1],
    ['-w-', 2],
    ['-wx', 3],
    ['r--', 4],
    ['r-x', 5],
    ['rw-', 6],
    ['rwx', 7],
  ])('%s <-> %i', (text, bits) => {
    expect(parseAccess(text)).toBe(bits);
    expect(parseAccess(bits)).toBe(bits);
    expect(formatAccess(bits)).toBe(text);
  });

  it.each([
    ['r', 'too short'],
    ['rwxr', 'too long'],
    ['wrx', 'letters out of order'],
    ['rwz', 'unknown letter'],
    ['RWX', 'upper case'],
    ['r -', 'space'],
    ['', 'empty'],
    [8, 'number above 7'],
    [-1, 'negative'],
    [1.5, 'fraction'],
    ['5', 'numeric string'],
    [null, 'null'],
    [true, 'boolean'],
  ] as [unknown, string][])('rejects %j (%s)', (value) => {
    expect(tryParseAccess(value)).toBeUndefined();
    expect(() => parseAccess(value)).toThrow(AclfsError);
  });

  it('formatAccess rejects out-of-range values', () => {
    expect(() => formatAccess(8)).toThrow(/not an access/);
  });

  it('accessLetters lists only set bits', () => {
    expect(accessLetters(0)).toBe('');
    expect(accessLetters(5)).toBe('rx');
    expect(accessLetters(7)).toBe('rwx');
  });
});

describe('parseRequested', () => {
  it.each([
    ['r', 4],
    ['w', 2],
    ['x', 1],
    ['rw', 6],
    ['wr', 6],
    ['rx', 5],
    ['wx', 3],
    ['rwx', 7],
    ['xwr', 7],
    ['r-x', 5],
    ['rw-', 6],
  ])('%s -> %i', (spec, bits) => {
    expect(parseRequested(spec)).toBe(bits);
  });

  it.each(['', 'rr', 'q', 'read', '---', 'r--x', 'R'])('rejects %j', (spec) => {
    expect(() => parseRequested(spec)).toThrow(/not a requested access/);
  });
});

describe('normalizePath', () => {
  it.each([
    ['/', '/'],
    ['//', '/'],
    ['/.', '/'],
    ['/a', '/a'],
    ['/a/', '/a'],
    ['/a//b', '/a/b'],
    ['/a/./b/.', '/a/b'],
    ['/a/b/..', '/a'],
    ['/a/../b', '/b'],
    ['/a/b/../../c', '/c'],
    ['/a/..', '/'],
    ['/...', '/...'],
    ['/a/..b/.c', '/a/..b/.c'],
    ['/docs/a.txt', '/docs/a.txt'],
    ['/ä/ö', '/ä/ö'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizePath(input)).toBe(expected);
  });

  it.each([
    ['', /not absolute/],
    ['a/b', /not absolute/],
    ['./a', /not absolute/],
    ['/..', /escapes the root/],
    ['/a/../..', /escapes the root/],
    ['/../etc/passwd', /escapes the root/],
    ['/a\0b', /NUL/],
  ])('rejects %j', (input, message) => {
    expect(() => normalizePath(input)).toThrow(message);
    try {
      normalizePath(input);
    } catch (err) {
      expect((err as AclfsError).code).toBe('invalid');
    }
  });

  it('rejects non-strings', () => {
    expect(() => normalizePath(42 as unknown as string)).toThrow(/must be a string/);
  });

  it('parentPath walks up to the root', () => {
    expect(parentPath('/a/b/c')).toBe('/a/b');
    expect(parentPath('/a')).toBe('/');
    expect(parentPath('/')).toBeNull();
  });

  it('isAtOrBelow respects component boundaries', () => {
    expect(isAtOrBelow('/docs', '/docs')).toBe(true);
    expect(isAtOrBelow('/docs/a', '/docs')).toBe(true);
    expect(isAtOrBelow('/docsx', '/docs')).toBe(false);
    expect(isAtOrBelow('/doc', '/docs')).toBe(false);
    expect(isAtOrBelow('/anything', '/')).toBe(true);
  });
});
