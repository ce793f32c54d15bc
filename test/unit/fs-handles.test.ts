// How many open handles a mount lets all users hold, from the daemon's
// descriptor limit (/proc/self/limits).
import { describe, expect, it } from 'vitest';
import { handleCapacity, MAX_OPEN_HANDLES } from '../../src/fs/mount';

const limits = (soft: string, hard: string): string =>
  `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             95361                95361                processes \nMax open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \n`;

describe('handleCapacity', () => {
  it.each([
    ['20000', '20000', 20000 - 1024],
    ['1400', '1400', 376],
    ['1048576', '1048576', MAX_OPEN_HANDLES],
    ['unlimited', 'unlimited', MAX_OPEN_HANDLES],
    ['1024', '1024', 64],
  ])('soft limit %s: %d handles', (soft, hard, expected) => {
    expect(handleCapacity(limits(soft, hard))).toBe(expected);
  });

  it('reads this process\'s own limits by default', () => {
    expect(handleCapacity()).toBeGreaterThanOrEqual(64);
  });
});
