// The commit epoch: a 32-bit counter that every process committing rules
// advances, once before a transaction that changes rules commits and once
// after it has committed. It lives in the first word of the file `epoch` in
// the database directory, mapped shared (MAP_SHARED) by every process that
// opens the store, so reading it is a memory load: the decision path and the
// FUSE binding's native fast path read it on every open without a syscall.
//
// What it guarantees:
//   - a reader that saw epoch E and later sees E again knows no commit
//     started in between (the "before" advance would have moved it);
//   - once a writer has returned, every decision taken on a snapshot from
//     before its commit carries an older epoch (the "after" advance moved it).
// So a decision labelled with the epoch read BEFORE its snapshot was taken
// may be reused exactly while the epoch still reads the same: never a stale
// allow. Equality is all that is ever asked, so wrapping at 2^32 is harmless
// unless 4 billion commits happen between two looks.
//
// Node cannot map a file: the mapping comes from the native addon, handed in
// as a FileMapper (src/main.ts passes src/native/binding's calls); the
// native fast path reads the very same page (src/fs/mount.ts).

import nodePath from 'node:path';

export const EPOCH_FILE = 'epoch';

/** What the store needs of the native addon: the memory maps of its files. */
export interface FileMapper {
  /** Maps `file` (created, mode 0600, if missing) MAP_SHARED; one page. */
  mapSharedPage(file: string): ArrayBuffer;
  /** Drops this process's page mappings of `file`; returns the bytes unmapped. */
  releaseMappedFile(file: string): number;
}

export class CommitEpoch {
  private constructor(
    /** The shared page; the native fast path is handed this buffer. */
    readonly page: ArrayBuffer,
    private readonly words: Uint32Array,
  ) {}

  /** Maps (creating, mode 0600) the epoch file of database directory `dir`. */
  static open(dir: string, mapper: Pick<FileMapper, 'mapSharedPage'>): CommitEpoch {
    const page = mapper.mapSharedPage(nodePath.join(dir, EPOCH_FILE));
    return new CommitEpoch(page, new Uint32Array(page, 0, 1));
  }

  /** Advances the epoch by one, atomically across processes. */
  advance(): void {
    Atomics.add(this.words, 0, 1);
  }

  value(): number {
    return Atomics.load(this.words, 0);
  }
}
