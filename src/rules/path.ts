// Rule paths: absolute, inside the mount, in one canonical spelling so that
// the byPath index and the ancestor walk of decide() agree on every key.

import { invalid } from '../errors';

// Already canonical: "/" or one or more "/component" where no component is
// empty, "." or "..", and nothing contains NUL. Checked first so the common
// case (paths handed over by FUSE) costs one regex test and no allocation.
const CANONICAL = /^(?:\/|(?:\/(?!\.\.?(?:\/|$))[^/\0]+)+)$/;

/**
 * "/a//b/./c/" → "/a/b/c"; "/a/../b" → "/b"; "/" stays "/".
 * Throws AclfsError('invalid') for a non-string, a relative path, a NUL byte
 * or a ".." that would climb above the root (the mount root is the root of
 * everything a rule can name, so such a path names nothing).
 */
export function normalizePath(p: string): string {
  if (typeof p !== 'string') throw invalid(`path must be a string, got ${typeof p}`);
  if (CANONICAL.test(p)) return p;
  if (!p.startsWith('/')) throw invalid(`path ${JSON.stringify(p)} is not absolute`);
  if (p.includes('\0')) throw invalid(`path ${JSON.stringify(p)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw invalid(`path ${JSON.stringify(p)} escapes the root with ".."`);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return '/' + parts.join('/');
}

/** True when p is already in canonical form (normalizePath(p) === p). */
export function isNormalPath(p: string): boolean {
  return CANONICAL.test(p);
}

/** "/a/b" → "/a", "/a" → "/", "/" → null. Expects a canonical path. */
export function parentPath(p: string): string | null {
  if (p === '/') return null;
  const slash = p.lastIndexOf('/');
  return slash <= 0 ? '/' : p.slice(0, slash);
}

/** True when `p` is `prefix` itself or lies below it ("/docs" ⊇ "/docs/a", not "/docsx"). */
export function isAtOrBelow(p: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return p === prefix || (p.startsWith(prefix) && p.charCodeAt(prefix.length) === 0x2f);
}
