// The stat layout shared with the native core: a stat crosses between C and
// TypeScript as a Uint32Array of STAT_INTS words, each field at a fixed
// offset (in words). The layout is defined once, in native/aclfs.h
// (ACLFS_STAT_LAYOUT); this is its TypeScript counterpart, and
// test/native.test.ts fails when the two disagree (it compares this module
// with the compiled header and with the addon's own export).

/** Offset (in uint32 words) of each field of a stat array. */
export const STAT = {
  /** st_mode: type and permission bits (one word). */
  MODE: 0,
  UID: 1,
  GID: 2,
  /** 64-bit: low word, high word. */
  SIZE: 3,
  /** 64-bit device number. */
  DEV: 5,
  NLINK: 7,
  /** 64-bit inode number. */
  INO: 8,
  RDEV: 10,
  BLKSIZE: 12,
  /** 64-bit. */
  BLOCKS: 13,
  /** Times: seconds (64-bit, two words) then nanoseconds (one word). */
  ATIME: 15,
  MTIME: 18,
  CTIME: 21,
  /** Birth time; 0.0 when the filesystem reports none. */
  BIRTHTIME: 24,
} as const;

/** Words in a stat array. */
export const STAT_INTS = 27;

/** Words each field takes. */
export const STAT_WORDS: { readonly [K in keyof typeof STAT]: 1 | 2 | 3 } = {
  MODE: 1,
  UID: 1,
  GID: 1,
  SIZE: 2,
  DEV: 2,
  NLINK: 1,
  INO: 2,
  RDEV: 2,
  BLKSIZE: 1,
  BLOCKS: 2,
  ATIME: 3,
  MTIME: 3,
  CTIME: 3,
  BIRTHTIME: 3,
};

/** A one-word field of a stat array. */
export function statWord(st: Uint32Array, at: number): number {
  return st[at]!;
}

/** A 64-bit field of a stat array, as a number (exact below 2^53). */
export function statU64(st: Uint32Array, at: number): number {
  return st[at]! + st[at + 1]! * 0x1_0000_0000;
}
