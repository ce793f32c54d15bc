// aclfs: the stat layout (see aclfs.h) filled from statx(2) and read back.
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "aclfs.h"

uint64_t aclfs_get_u64 (const uint32_t *ints, int at) {
  return (uint64_t) ints[at] | ((uint64_t) ints[at + 1] << 32);
}

static void put_u64 (uint32_t *ints, int at, uint64_t v) {
  ints[at] = (uint32_t) (v & 0xffffffffu);
  ints[at + 1] = (uint32_t) (v >> 32);
}

static void put_time (uint32_t *ints, int at, int64_t sec, uint32_t nsec) {
  put_u64(ints, at, (uint64_t) sec);
  ints[at + 2] = nsec;
}

static void get_time (const uint32_t *ints, int at, struct timespec *ts) {
  ts->tv_sec = (time_t) (int64_t) aclfs_get_u64(ints, at);
  ts->tv_nsec = ints[at + 2];
}

uint64_t aclfs_statx_dev (const struct statx *sx) {
  return makedev(sx->stx_dev_major, sx->stx_dev_minor);
}

void aclfs_statx_to_ints (const struct statx *sx, uint32_t *ints) {
  memset(ints, 0, ACLFS_STAT_INTS * sizeof(uint32_t));
  ints[ACLFS_STAT_MODE] = sx->stx_mode;
  ints[ACLFS_STAT_UID] = sx->stx_uid;
  ints[ACLFS_STAT_GID] = sx->stx_gid;
  put_u64(ints, ACLFS_STAT_SIZE, sx->stx_size);
  put_u64(ints, ACLFS_STAT_DEV, aclfs_statx_dev(sx));
  ints[ACLFS_STAT_NLINK] = sx->stx_nlink;
  put_u64(ints, ACLFS_STAT_INO, sx->stx_ino);
  put_u64(ints, ACLFS_STAT_RDEV, makedev(sx->stx_rdev_major, sx->stx_rdev_minor));
  ints[ACLFS_STAT_BLKSIZE] = sx->stx_blksize;
  put_u64(ints, ACLFS_STAT_BLOCKS, sx->stx_blocks);
  put_time(ints, ACLFS_STAT_ATIME, sx->stx_atime.tv_sec, sx->stx_atime.tv_nsec);
  put_time(ints, ACLFS_STAT_MTIME, sx->stx_mtime.tv_sec, sx->stx_mtime.tv_nsec);
  put_time(ints, ACLFS_STAT_CTIME, sx->stx_ctime.tv_sec, sx->stx_ctime.tv_nsec);
  if (sx->stx_mask & STATX_BTIME) put_time(ints, ACLFS_STAT_BIRTHTIME, sx->stx_btime.tv_sec, sx->stx_btime.tv_nsec);
}

// A stat array from JS (an op's answer) as the struct libfuse hands the
// kernel.
void aclfs_ints_to_stat (const uint32_t *ints, struct stat *st) {
  st->st_mode = ints[ACLFS_STAT_MODE];
  st->st_uid = ints[ACLFS_STAT_UID];
  st->st_gid = ints[ACLFS_STAT_GID];
  st->st_size = (off_t) aclfs_get_u64(ints, ACLFS_STAT_SIZE);
  st->st_dev = aclfs_get_u64(ints, ACLFS_STAT_DEV);
  st->st_nlink = ints[ACLFS_STAT_NLINK];
  st->st_ino = aclfs_get_u64(ints, ACLFS_STAT_INO);
  st->st_rdev = aclfs_get_u64(ints, ACLFS_STAT_RDEV);
  st->st_blksize = ints[ACLFS_STAT_BLKSIZE];
  st->st_blocks = (blkcnt_t) aclfs_get_u64(ints, ACLFS_STAT_BLOCKS);
  get_time(ints, ACLFS_STAT_ATIME, &st->st_atim);
  get_time(ints, ACLFS_STAT_MTIME, &st->st_mtim);
  get_time(ints, ACLFS_STAT_CTIME, &st->st_ctim);
}

void aclfs_statx_to_stat (const struct statx *sx, struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_mode = sx->stx_mode;
  st->st_uid = sx->stx_uid;
  st->st_gid = sx->stx_gid;
  st->st_size = (off_t) sx->stx_size;
  st->st_dev = aclfs_statx_dev(sx);
  st->st_nlink = sx->stx_nlink;
  st->st_ino = sx->stx_ino;
  st->st_rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
  st->st_blksize = sx->stx_blksize;
  st->st_blocks = (blkcnt_t) sx->stx_blocks;
  st->st_atim.tv_sec = sx->stx_atime.tv_sec;
  st->st_atim.tv_nsec = sx->stx_atime.tv_nsec;
  st->st_mtim.tv_sec = sx->stx_mtime.tv_sec;
  st->st_mtim.tv_nsec = sx->stx_mtime.tv_nsec;
  st->st_ctim.tv_sec = sx->stx_ctime.tv_sec;
  st->st_ctim.tv_nsec = sx->stx_ctime.tv_nsec;
}
