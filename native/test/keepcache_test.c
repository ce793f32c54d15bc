// keepcache.c: only the very same, unchanged file keeps a path's cache.
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>

#include "../aclfs.h"
#include "check.h"

static struct statx file (uint64_t ino, uint64_t size, int64_t mtime) {
  struct statx sx;
  memset(&sx, 0, sizeof(sx));
  sx.stx_mask = STATX_BASIC_STATS | STATX_BTIME;
  sx.stx_mode = S_IFREG | 0644;
  sx.stx_ino = ino;
  sx.stx_size = size;
  sx.stx_mtime.tv_sec = mtime;
  sx.stx_btime.tv_sec = 1000;
  return sx;
}

int main (void) {
  struct statx a = file(1, 10, 100);
  CHECK(aclfs_keep_cache("/f", &a) == 0);   // no table yet
  CHECK(aclfs_keep_cache_init() == 0);
  CHECK(aclfs_keep_cache("/f", &a) == 0);   // first open: nothing to keep
  CHECK(aclfs_keep_cache("/f", &a) == 1);   // the same file, unchanged
  CHECK(aclfs_keep_cache("/f", &a) == 1);
  struct statx written = file(1, 11, 100);
  CHECK(aclfs_keep_cache("/f", &written) == 0);   // size changed
  CHECK(aclfs_keep_cache("/f", &written) == 1);
  struct statx touched = file(1, 11, 101);
  CHECK(aclfs_keep_cache("/f", &touched) == 0);   // mtime changed
  touched.stx_mtime.tv_nsec = 1;
  CHECK(aclfs_keep_cache("/f", &touched) == 0);   // mtime nanoseconds changed
  // Another file swapped in with the same size and mtime.
  struct statx swapped = touched;
  swapped.stx_ino = 2;
  CHECK(aclfs_keep_cache("/f", &swapped) == 0);
  struct statx reborn = swapped;
  reborn.stx_btime.tv_nsec = 9;                   // same inode number, another file
  CHECK(aclfs_keep_cache("/f", &reborn) == 0);
  reborn.stx_dev_minor = 3;
  CHECK(aclfs_keep_cache("/f", &reborn) == 0);
  // Paths are remembered apart.
  CHECK(aclfs_keep_cache("/g", &reborn) == 0);
  CHECK(aclfs_keep_cache("/f", &reborn) == 1);
  CHECK(aclfs_keep_cache("/g", &reborn) == 1);
  // Too long to remember: never kept.
  char longpath[ACLFS_CACHED_PATH + 1];
  memset(longpath, 'x', sizeof(longpath));
  longpath[0] = '/';
  longpath[ACLFS_CACHED_PATH] = '\0';
  CHECK(aclfs_keep_cache(longpath, &a) == 0);
  CHECK(aclfs_keep_cache(longpath, &a) == 0);
  return check_summary("keepcache");
}
