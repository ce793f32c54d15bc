// The shared tables under the threads that use them in the daemon: "JS"
// threads publish allows, vouch for handles and ask who opened them, while
// "worker" threads look allows up, open, serve and release handles, and
// decide keep-cache, start and end (the pool of thread locals), and another
// "process" advances the epoch. Run under
// ThreadSanitizer by run.sh, which fails on any data race it reports; the
// checks below hold with or without it.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../aclfs.h"
#include "check.h"

#define ROUNDS 20000
#define PATHS 64
#define WORKERS 4
#define FDS_PER_WORKER 16

static _Atomic uint32_t epoch_word = 1;
static _Atomic int failures = 0;

static void path_of (int i, char *out, size_t size) {
  snprintf(out, size, "/dir/file-%d", i);
}

static void *publisher (void *arg) {
  uint32_t uid = (uint32_t) (uintptr_t) arg;
  char path[64];
  for (int r = 0; r < ROUNDS; r++) {
    int i = r % PATHS;
    path_of(i, path, sizeof(path));
    aclfs_file_id_t f = { S_IFREG, 1, 1000 + (uint64_t) i, 0, 0 };
    aclfs_allow_publish(uid, uid, ACLFS_R, path, strlen(path), &f, atomic_load(&epoch_word), 0);
  }
  return NULL;
}

static void *looker (void *arg) {
  uint32_t uid = (uint32_t) (uintptr_t) arg;
  char path[64];
  for (int r = 0; r < ROUNDS; r++) {
    int i = (r * 7) % PATHS;
    path_of(i, path, sizeof(path));
    aclfs_file_id_t f;
    uint32_t epoch, flags;
    if (aclfs_allow_lookup(uid, uid, ACLFS_R, S_IFREG, path, strlen(path), &f, &epoch, &flags) && f.ino != 1000 + (uint64_t) i) {
      atomic_fetch_add(&failures, 1);   // an entry of another key, or a torn one
    }
  }
  return NULL;
}

// A worker: opens in C (claim, fill the slot), serves, releases.
static void *worker (void *arg) {
  int first = (int) (uintptr_t) arg * FDS_PER_WORKER + 100;
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t fd = (uint64_t) (first + r % FDS_PER_WORKER);
    uint32_t uid = 2000 + (uint32_t) (fd % 3);
    if (aclfs_quota_claim(uid) < 0) continue;
    aclfs_opener_t opener = { uid, uid, 7, ACLFS_R };
    aclfs_handle_fast_opened(fd, &opener, atomic_load(&epoch_word));
    aclfs_handle_current(fd, ACLFS_R);
    aclfs_handle_current(fd, ACLFS_W);
    aclfs_handle_forget(fd);
  }
  return NULL;
}

// JS: vouches for and asks about the workers' handles while they run.
static void *js (void *arg) {
  (void) arg;
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t fd = 100 + (uint64_t) (r % (WORKERS * FDS_PER_WORKER));
    aclfs_opener_t seen;
    if (aclfs_handle_fast_opener(fd, &seen) && (seen.uid < 2000 || seen.uid > 2002 || seen.pid != 7)) atomic_fetch_add(&failures, 1);
    if (r % 5 == 0) aclfs_handle_vouch(fd, ACLFS_R, atomic_load(&epoch_word), 0);
  }
  return NULL;
}

static void *cacher (void *arg) {
  int seed = (int) (uintptr_t) arg;
  char path[64];
  for (int r = 0; r < ROUNDS; r++) {
    path_of((r + seed) % PATHS, path, sizeof(path));
    struct statx sx;
    memset(&sx, 0, sizeof(sx));
    sx.stx_ino = (uint64_t) (r % 3);
    aclfs_keep_cache(path, &sx);
  }
  return NULL;
}

// A libfuse worker starting (takes a parked block or makes one) and ending
// (parks its block): the pool of thread locals.
static int pool_owner;
static void *starter (void *arg) {
  static int blocks[2][64];
  int *mine = blocks[(uintptr_t) arg];
  for (int r = 0; r < ROUNDS; r++) {
    void *block = aclfs_locals_take(&pool_owner);
    if (block == NULL) block = &mine[r % 64];
    aclfs_locals_park(block, &pool_owner);
  }
  return NULL;
}

static void *committer (void *arg) {
  (void) arg;
  for (int r = 0; r < ROUNDS / 10; r++) atomic_fetch_add(&epoch_word, 1);
  return NULL;
}

int main (void) {
  CHECK(aclfs_handles_init() == 0);
  CHECK(aclfs_keep_cache_init() == 0);
  CHECK(aclfs_fast_path_enable((uint32_t *) &epoch_word) == 0);
  aclfs_quota_set_limits(1000, 0);

  pthread_t threads[32];
  int n = 0;
  for (uintptr_t u = 1; u <= 2; u++) pthread_create(&threads[n++], NULL, publisher, (void *) u);
  for (uintptr_t u = 1; u <= 2; u++) pthread_create(&threads[n++], NULL, looker, (void *) u);
  for (uintptr_t w = 0; w < WORKERS; w++) pthread_create(&threads[n++], NULL, worker, (void *) w);
  pthread_create(&threads[n++], NULL, js, NULL);
  for (uintptr_t c = 0; c < 2; c++) pthread_create(&threads[n++], NULL, cacher, (void *) c);
  pthread_create(&threads[n++], NULL, committer, NULL);
  for (uintptr_t s = 0; s < 2; s++) pthread_create(&threads[n++], NULL, starter, (void *) s);
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);

  CHECK(atomic_load(&failures) == 0);
  // Every claim was given back.
  for (uint32_t uid = 2000; uid <= 2002; uid++) CHECK(aclfs_quota_count(uid) == 0);
  // Each block made was parked at the end, never one twice.
  uint32_t created, idle;
  aclfs_locals_stats(&created, &idle);
  CHECK(created >= 1 && created <= 2 && idle == created);
  return check_summary("threads");
}
