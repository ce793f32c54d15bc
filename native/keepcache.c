// aclfs: cached data belongs to one file.
//
// libfuse's auto_cache keeps a name's cached data across opens when the size
// and mtime it sees at an open are unchanged; but another file swapped in
// behind the mount (a rename in SRC) with the same size and mtime would then
// be served the first file's cached data, which its reader may be denied.
// Instead every open of a regular file compares the file it opened (dev,
// ino, birth time, size, mtime) with the one the last open of the same path
// opened: only the very same, unchanged file keeps the cache
// (FOPEN_KEEP_CACHE); anything else (another file, a path not remembered or
// too long to remember) starts from an empty cache, which the kernel
// empties at the open. The mount runs without libfuse's auto_cache.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aclfs.h"

typedef struct {
  uint32_t used;
  uint32_t path_len;
  uint64_t dev;
  uint64_t ino;
  int64_t birth_sec;
  uint32_t birth_nsec;
  uint32_t mtime_nsec;
  int64_t mtime_sec;
  uint64_t size;
  char path[ACLFS_CACHED_PATH];
} aclfs_cached_t;

// The table: the pointer is set once, by the JS thread before mounting;
// the entries are under cached_lock (one slot per path hash; a colliding
// path takes the slot over, which costs the other path its cache once).
static _Atomic(aclfs_cached_t *) cached = NULL;
static pthread_mutex_t cached_lock = PTHREAD_MUTEX_INITIALIZER;

int aclfs_keep_cache_init (void) {
  if (atomic_load(&cached) != NULL) return 0;
  aclfs_cached_t *table = calloc(ACLFS_CACHED_SLOTS, sizeof(aclfs_cached_t));
  if (table == NULL) return -1;
  atomic_store(&cached, table);
  return 0;
}

static int same_file (const aclfs_cached_t *a, const aclfs_cached_t *b) {
  return a->path_len == b->path_len && memcmp(a->path, b->path, a->path_len) == 0 && a->dev == b->dev && a->ino == b->ino &&
    a->birth_sec == b->birth_sec && a->birth_nsec == b->birth_nsec && a->size == b->size &&
    a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

// Whether an open of `path` that opened the file `sx` describes (asked with
// STATX_BTIME) may keep the path's cached data; remembers that file for the
// path's next open.
int aclfs_keep_cache (const char *path, const struct statx *sx) {
  aclfs_cached_t *table = atomic_load_explicit(&cached, memory_order_acquire);
  size_t len = strlen(path);
  if (table == NULL || len >= ACLFS_CACHED_PATH) return 0;
  aclfs_cached_t now;
  memset(&now, 0, sizeof(now));
  now.used = 1;
  now.path_len = (uint32_t) len;
  memcpy(now.path, path, len);
  now.dev = aclfs_statx_dev(sx);
  now.ino = sx->stx_ino;
  if (sx->stx_mask & STATX_BTIME) {
    now.birth_sec = sx->stx_btime.tv_sec;
    now.birth_nsec = sx->stx_btime.tv_nsec;
  }
  now.size = sx->stx_size;
  now.mtime_sec = sx->stx_mtime.tv_sec;
  now.mtime_nsec = sx->stx_mtime.tv_nsec;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) { h ^= (unsigned char) path[i]; h *= 16777619u; }
  pthread_mutex_lock(&cached_lock);
  aclfs_cached_t *slot = &table[h % ACLFS_CACHED_SLOTS];
  int keep = slot->used && same_file(slot, &now);
  *slot = now;
  pthread_mutex_unlock(&cached_lock);
  return keep;
}
