// allow.c: publishing and looking up allows, the epoch they hold for, and
// which entry a full set loses.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../aclfs.h"
#include "check.h"

#define SETS (ACLFS_ALLOW_SLOTS / ACLFS_ALLOW_WAYS)

static uint32_t epoch_word = 7;

static aclfs_file_id_t file_of (uint64_t ino) {
  aclfs_file_id_t f = { S_IFREG, 42, ino, 1600000000, 5 };
  return f;
}

static int publish (const char *path, uint32_t bits, uint64_t ino, uint32_t epoch) {
  aclfs_file_id_t f = file_of(ino);
  // Odd inodes are published for passthrough, so that every lookup checks
  // the flags came back with their own entry.
  return aclfs_allow_publish(1000, 1000, bits, path, strlen(path), &f, epoch, ino % 2 ? ACLFS_ALLOW_PASSTHROUGH : 0);
}

// 1 if path's allow is found (and *ino gets its file's inode).
static int lookup (const char *path, uint32_t bits, uint64_t *ino, uint32_t *epoch) {
  aclfs_file_id_t f;
  uint32_t e = 0;
  uint32_t flags = 0;
  int found = aclfs_allow_lookup(1000, 1000, bits, S_IFREG, path, strlen(path), &f, &e, &flags);
  if (found && flags != (f.ino % 2 ? ACLFS_ALLOW_PASSTHROUGH : 0)) return 0;
  if (found && ino != NULL) *ino = f.ino;
  if (found && epoch != NULL) *epoch = e;
  return found;
}

// Paths "/c<n>" whose key (uid 1000, gid 1000, bits r) falls into the same set.
static void colliding_paths (char paths[][32], int count) {
  int have = 0;
  uint32_t set = 0;
  for (int n = 0; have < count; n++) {
    char p[32];
    snprintf(p, sizeof(p), "/c%d", n);
    uint32_t s = aclfs_allow_hash(1000, 1000, ACLFS_R, p, strlen(p)) & (SETS - 1);
    if (have == 0) set = s;
    if (s == set) strcpy(paths[have++], p);
  }
}

int main (void) {
  // Off until the epoch word is handed over.
  CHECK(!aclfs_fast_path_on());
  CHECK(publish("/a", ACLFS_R, 1, 7) == 0);
  CHECK(!lookup("/a", ACLFS_R, NULL, NULL));
  CHECK(aclfs_fast_path_enable(&epoch_word) == 0);
  CHECK(aclfs_fast_path_on());
  CHECK(aclfs_epoch_now() == 7);
  epoch_word = 8;
  CHECK(aclfs_epoch_now() == 8);  // read afresh every time
  epoch_word = 7;

  // FNV-1a: stable, and every part of the key counts.
  uint32_t h = aclfs_allow_hash(1, 2, 4, "/x", 2);
  CHECK(h == aclfs_allow_hash(1, 2, 4, "/x", 2));
  CHECK(h != aclfs_allow_hash(2, 2, 4, "/x", 2));
  CHECK(h != aclfs_allow_hash(1, 3, 4, "/x", 2));
  CHECK(h != aclfs_allow_hash(1, 2, 2, "/x", 2));
  CHECK(h != aclfs_allow_hash(1, 2, 4, "/y", 2));
  CHECK(aclfs_allow_hash(0, 0, 0, "", 0) != aclfs_allow_hash(0, 0, 0, "a", 1));

  // Published allows are found by the whole key, and only by it.
  uint64_t ino = 0;
  uint32_t epoch = 0;
  CHECK(publish("/a", ACLFS_R, 11, 7) == 1);
  CHECK(lookup("/a", ACLFS_R, &ino, &epoch) && ino == 11 && epoch == 7);
  CHECK(!lookup("/a", ACLFS_W, NULL, NULL));
  CHECK(!lookup("/a", ACLFS_R | ACLFS_W, NULL, NULL));
  CHECK(!lookup("/ab", ACLFS_R, NULL, NULL));
  CHECK(!lookup("/", ACLFS_R, NULL, NULL));
  aclfs_file_id_t f;
  uint32_t e, flags;
  CHECK(!aclfs_allow_lookup(1001, 1000, ACLFS_R, S_IFREG, "/a", 2, &f, &e, &flags));
  CHECK(!aclfs_allow_lookup(1000, 1001, ACLFS_R, S_IFREG, "/a", 2, &f, &e, &flags));
  CHECK(!aclfs_allow_lookup(1000, 1000, ACLFS_R, S_IFDIR, "/a", 2, &f, &e, &flags));
  // Publishing the same key again replaces its entry.
  CHECK(publish("/a", ACLFS_R, 12, 9) == 1);
  CHECK(lookup("/a", ACLFS_R, &ino, &epoch) && ino == 12 && epoch == 9);

  // Not replayable: paths too long, types other than files and directories.
  char longpath[ACLFS_ALLOW_PATH + 8];
  memset(longpath, 'x', sizeof(longpath));
  longpath[0] = '/';
  longpath[ACLFS_ALLOW_PATH] = '\0';
  CHECK(publish(longpath, ACLFS_R, 1, 7) == 0);
  longpath[ACLFS_ALLOW_PATH - 1] = '\0';
  CHECK(publish(longpath, ACLFS_R, 1, 7) == 1);
  CHECK(lookup(longpath, ACLFS_R, NULL, NULL));
  aclfs_file_id_t fifo = { S_IFIFO, 1, 2, 0, 0 };
  CHECK(aclfs_allow_publish(1000, 1000, ACLFS_R, "/p", 2, &fifo, 7, 0) == 0);
  aclfs_file_id_t dir = { S_IFDIR, 1, 3, 0, 0 };
  CHECK(aclfs_allow_publish(1000, 1000, ACLFS_R, "/d", 2, &dir, 7, 0) == 1);
  CHECK(aclfs_allow_lookup(1000, 1000, ACLFS_R, S_IFDIR, "/d", 2, &f, &e, &flags) && f.ino == 3 && flags == 0);
  // The flags come back as published, and a new publication replaces them.
  CHECK(aclfs_allow_publish(1000, 1000, ACLFS_R, "/d", 2, &dir, 8, ACLFS_ALLOW_PASSTHROUGH) == 1);
  CHECK(aclfs_allow_lookup(1000, 1000, ACLFS_R, S_IFDIR, "/d", 2, &f, &e, &flags) && flags == ACLFS_ALLOW_PASSTHROUGH && e == 8);

  // A full set: the fifth key of a set takes the oldest entry's place.
  char paths[6][32];
  colliding_paths(paths, 6);
  for (int i = 0; i < 4; i++) CHECK(publish(paths[i], ACLFS_R, 100 + (uint64_t) i, 7) == 1);
  for (int i = 0; i < 4; i++) CHECK(lookup(paths[i], ACLFS_R, NULL, NULL));
  CHECK(publish(paths[4], ACLFS_R, 104, 7) == 1);
  CHECK(!lookup(paths[0], ACLFS_R, NULL, NULL));
  for (int i = 1; i < 5; i++) CHECK(lookup(paths[i], ACLFS_R, NULL, NULL));
  // ...unless an entry of another epoch is there: that one goes first.
  CHECK(publish(paths[2], ACLFS_R, 102, 6) == 1);   // now outdated, and the newest
  CHECK(publish(paths[5], ACLFS_R, 105, 7) == 1);
  CHECK(!lookup(paths[2], ACLFS_R, NULL, NULL));
  CHECK(lookup(paths[1], ACLFS_R, NULL, NULL));
  CHECK(lookup(paths[3], ACLFS_R, NULL, NULL));
  CHECK(lookup(paths[4], ACLFS_R, NULL, NULL));
  CHECK(lookup(paths[5], ACLFS_R, &ino, NULL) && ino == 105);

  // A file matches its identity: type, device, inode and birth time.
  struct statx sx;
  memset(&sx, 0, sizeof(sx));
  sx.stx_mask = STATX_BASIC_STATS | STATX_BTIME;
  sx.stx_mode = S_IFREG | 0600;
  sx.stx_dev_major = 0;
  sx.stx_dev_minor = 42;
  sx.stx_ino = 77;
  sx.stx_btime.tv_sec = 1600000000;
  sx.stx_btime.tv_nsec = 5;
  aclfs_file_id_t id = file_of(77);
  CHECK(aclfs_file_id_matches(&sx, &id));
  sx.stx_btime.tv_nsec = 6;
  CHECK(!aclfs_file_id_matches(&sx, &id));           // same inode number, another file
  sx.stx_btime.tv_nsec = 5;
  sx.stx_ino = 78;
  CHECK(!aclfs_file_id_matches(&sx, &id));
  sx.stx_ino = 77;
  sx.stx_mode = S_IFDIR | 0700;
  CHECK(!aclfs_file_id_matches(&sx, &id));
  sx.stx_mode = S_IFREG | 0600;
  sx.stx_mask = STATX_BASIC_STATS;                     // no birth time reported
  CHECK(!aclfs_file_id_matches(&sx, &id));
  id.birth_sec = 0;
  id.birth_nsec = 0;
  CHECK(aclfs_file_id_matches(&sx, &id));
  return check_summary("allow");
}
