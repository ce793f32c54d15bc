// layout.c: the stat layout of aclfs.h, filled from statx and read back.
// With --print, prints the layout as JSON (test/unit/native.test.ts compares it
// with src/native/layout.ts).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../aclfs.h"
#include "check.h"

static void print_layout (void) {
  printf("{\"INTS\":%d", ACLFS_STAT_INTS);
#define PRINT_FIELD(name, offset, words) printf(",\"%s\":[%d,%d]", #name, offset, words);
  ACLFS_STAT_LAYOUT(PRINT_FIELD)
#undef PRINT_FIELD
  printf("}\n");
}

int main (int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--print") == 0) {
    print_layout();
    return 0;
  }

  // The fields tile the array: each starts where the one before ends.
  int next = 0;
#define TILE(name, offset, words) CHECK(offset == next); next = offset + words;
  ACLFS_STAT_LAYOUT(TILE)
#undef TILE
  CHECK(next == ACLFS_STAT_INTS);

  struct statx sx;
  memset(&sx, 0, sizeof(sx));
  sx.stx_mask = STATX_BASIC_STATS | STATX_BTIME;
  sx.stx_mode = S_IFREG | 0640;
  sx.stx_uid = 1001;
  sx.stx_gid = 2002;
  sx.stx_size = 0x123456789aULL;
  sx.stx_dev_major = 259;
  sx.stx_dev_minor = 7;
  sx.stx_nlink = 3;
  sx.stx_ino = 0xfedcba9876ULL;
  sx.stx_rdev_major = 0;
  sx.stx_rdev_minor = 0;
  sx.stx_blksize = 4096;
  sx.stx_blocks = 0x100000001ULL;
  sx.stx_atime.tv_sec = 1700000000; sx.stx_atime.tv_nsec = 1;
  sx.stx_mtime.tv_sec = -5; sx.stx_mtime.tv_nsec = 999999999;
  sx.stx_ctime.tv_sec = 0x1ffffffffLL; sx.stx_ctime.tv_nsec = 500;
  sx.stx_btime.tv_sec = 1600000000; sx.stx_btime.tv_nsec = 42;

  uint32_t ints[ACLFS_STAT_INTS];
  memset(ints, 0xff, sizeof(ints));
  aclfs_statx_to_ints(&sx, ints);
  CHECK(ints[ACLFS_STAT_MODE] == (S_IFREG | 0640));
  CHECK(ints[ACLFS_STAT_UID] == 1001);
  CHECK(ints[ACLFS_STAT_GID] == 2002);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_SIZE) == 0x123456789aULL);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_DEV) == makedev(259, 7));
  CHECK(ints[ACLFS_STAT_NLINK] == 3);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_INO) == 0xfedcba9876ULL);
  CHECK(ints[ACLFS_STAT_BLKSIZE] == 4096);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_BLOCKS) == 0x100000001ULL);
  CHECK((int64_t) aclfs_get_u64(ints, ACLFS_STAT_MTIME) == -5);
  CHECK(ints[ACLFS_STAT_MTIME + 2] == 999999999);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_CTIME) == 0x1ffffffffULL);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_BIRTHTIME) == 1600000000);
  CHECK(ints[ACLFS_STAT_BIRTHTIME + 2] == 42);

  struct stat st;
  memset(&st, 0, sizeof(st));
  aclfs_ints_to_stat(ints, &st);
  CHECK(st.st_mode == (S_IFREG | 0640));
  CHECK(st.st_uid == 1001 && st.st_gid == 2002);
  CHECK((uint64_t) st.st_size == 0x123456789aULL);
  CHECK(st.st_dev == makedev(259, 7));
  CHECK(st.st_ino == 0xfedcba9876ULL);
  CHECK(st.st_nlink == 3);
  CHECK(st.st_atim.tv_sec == 1700000000 && st.st_atim.tv_nsec == 1);
  CHECK(st.st_mtim.tv_sec == -5 && st.st_mtim.tv_nsec == 999999999);
  CHECK(st.st_ctim.tv_sec == 0x1ffffffffLL && st.st_ctim.tv_nsec == 500);

  struct stat direct;
  aclfs_statx_to_stat(&sx, &direct);
  CHECK(direct.st_ino == st.st_ino && direct.st_dev == st.st_dev && direct.st_size == st.st_size);
  CHECK(direct.st_mtim.tv_sec == st.st_mtim.tv_sec && direct.st_mtim.tv_nsec == st.st_mtim.tv_nsec);

  // No birth time: 0.0.
  sx.stx_mask = STATX_BASIC_STATS;
  aclfs_statx_to_ints(&sx, ints);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_BIRTHTIME) == 0 && ints[ACLFS_STAT_BIRTHTIME + 2] == 0);

  // A real file, through statx.
  char path[] = "/tmp/aclfs-layout-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, "hello", 5) == 5);
  struct statx real;
  CHECK(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &real) == 0);
  aclfs_statx_to_ints(&real, ints);
  struct stat plain;
  CHECK(fstat(fd, &plain) == 0);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_INO) == plain.st_ino);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_DEV) == plain.st_dev);
  CHECK(aclfs_get_u64(ints, ACLFS_STAT_SIZE) == 5);
  CHECK(ints[ACLFS_STAT_MTIME + 2] == (uint32_t) plain.st_mtim.tv_nsec);
  aclfs_file_id_t id;
  aclfs_file_id_from_ints(ints, &id);
  CHECK(id.type == S_IFREG && id.ino == plain.st_ino && id.dev == plain.st_dev);
  CHECK(aclfs_file_id_matches(&real, &id));
  close(fd);
  unlink(path);
  return check_summary("layout");
}
