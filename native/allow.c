// aclfs: the commit epoch and the table of published allows.
//
// JS is the only place that decides. What C does is replay allows JS handed
// it, on the libfuse worker thread, with no hop to the JS thread:
//
//  - The commit epoch (src/store/epoch.ts) is a 32-bit counter in a shared
//    memory page of the database directory; every process that commits rules
//    advances it before and after each commit. Everything below is valid only
//    while the epoch is the one it was decided at.
//  - Published allows: (uid, gid, requested bits, path) -> the file identity
//    (dev, ino, birth) JS decided on, and the epoch it decided at. JS only
//    publishes allows that depend on no supplementary group. OPEN looks one
//    up, opens the backing file, and keeps the descriptor only if the opened
//    file is that very file and the epoch still is the published one, read
//    AFTER the open (fastpath.c). Anything else, or any doubt, goes to JS.
//
// The table is set-associative: a key's hash picks a set of
// ACLFS_ALLOW_WAYS entries; publishing into a full set replaces the same
// key's entry, else a free one, else the oldest of another epoch, else the
// oldest.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aclfs.h"

typedef struct {
  uint32_t used;
  uint32_t hash;
  uint32_t epoch;
  uint32_t uid;
  uint32_t gid;
  uint32_t bits;
  uint64_t stamp;      // publication order, for eviction
  uint32_t flags;      // ACLFS_ALLOW_PASSTHROUGH
  aclfs_file_id_t file;
  uint32_t path_len;
  char path[ACLFS_ALLOW_PATH];
} aclfs_allow_t;

// The entries; the pointer is written once, by the JS thread, before
// `epoch_word` is published (release), and read only after `epoch_word`
// was seen non-NULL (acquire). The entries and `stamp` are protected by
// `allows_lock` (JS publishes under the write lock, workers look up under
// the read lock).
static aclfs_allow_t *allows = NULL;
static pthread_rwlock_t allows_lock = PTHREAD_RWLOCK_INITIALIZER;
static uint64_t stamp = 0;

// The commit epoch's word in the shared page (NULL: fast path off). The
// pointer is atomic (JS sets it, workers read it); the word it points at
// is written by other processes, so it is read with an atomic load every
// time, never cached.
static _Atomic(_Atomic uint32_t *) epoch_word = NULL;

// Turns the fast path on, with the epoch in *word (a page that stays mapped
// for the life of the process). 0, or -1 when the table cannot be had.
int aclfs_fast_path_enable (uint32_t *word) {
  if (allows == NULL) allows = calloc(ACLFS_ALLOW_SLOTS, sizeof(aclfs_allow_t));
  if (allows == NULL) return -1;
  atomic_store_explicit(&epoch_word, (_Atomic uint32_t *) word, memory_order_release);
  return 0;
}

int aclfs_fast_path_on (void) {
  return atomic_load_explicit(&epoch_word, memory_order_acquire) != NULL;
}

// The epoch now (0 when the fast path is off; never compared then).
uint32_t aclfs_epoch_now (void) {
  _Atomic uint32_t *word = atomic_load_explicit(&epoch_word, memory_order_acquire);
  return word == NULL ? 0 : atomic_load_explicit(word, memory_order_seq_cst);
}

// FNV-1a over the key.
uint32_t aclfs_allow_hash (uint32_t uid, uint32_t gid, uint32_t bits, const char *path, size_t len) {
  uint32_t h = 2166136261u;
  uint32_t words[3] = { uid, gid, bits };
  const unsigned char *w = (const unsigned char *) words;
  for (size_t i = 0; i < sizeof(words); i++) { h ^= w[i]; h *= 16777619u; }
  for (size_t i = 0; i < len; i++) { h ^= (unsigned char) path[i]; h *= 16777619u; }
  return h;
}

static aclfs_allow_t *set_of (uint32_t hash) {
  return &allows[(hash & (ACLFS_ALLOW_SLOTS / ACLFS_ALLOW_WAYS - 1)) * ACLFS_ALLOW_WAYS];
}

static int same_key (const aclfs_allow_t *slot, uint32_t hash, uint32_t uid, uint32_t gid, uint32_t bits, uint32_t type, const char *path, size_t len) {
  return slot->used && slot->hash == hash && slot->uid == uid && slot->gid == gid && slot->bits == bits && slot->file.type == type &&
    slot->path_len == len && memcmp(slot->path, path, len) == 0;
}

// Which entry of a full set a new one replaces first: a free one (0), else
// one of another epoch (1), else (2) the oldest.
static int eviction_rank (const aclfs_allow_t *slot, uint32_t epoch) {
  return !slot->used ? 0 : slot->epoch != epoch ? 1 : 2;
}

// JS decided that this caller may open `path` for `bits`, on `file`, at
// `epoch`; `flags` say how the open may be served. 1 if stored, 0 if not replayable (fast path off, path too long,
// neither a regular file nor a directory).
int aclfs_allow_publish (uint32_t uid, uint32_t gid, uint32_t bits, const char *path, size_t len, const aclfs_file_id_t *file, uint32_t epoch, uint32_t flags) {
  if (!aclfs_fast_path_on() || len >= ACLFS_ALLOW_PATH) return 0;
  if (file->type != S_IFREG && file->type != S_IFDIR) return 0;
  aclfs_allow_t entry;
  memset(&entry, 0, sizeof(entry));
  entry.used = 1;
  entry.hash = aclfs_allow_hash(uid, gid, bits, path, len);
  entry.epoch = epoch;
  entry.uid = uid;
  entry.gid = gid;
  entry.bits = bits;
  entry.file = *file;
  entry.flags = flags;
  entry.path_len = (uint32_t) len;
  memcpy(entry.path, path, len);
  pthread_rwlock_wrlock(&allows_lock);
  aclfs_allow_t *set = set_of(entry.hash);
  aclfs_allow_t *victim = NULL;
  for (int way = 0; way < ACLFS_ALLOW_WAYS; way++) {
    aclfs_allow_t *slot = &set[way];
    if (same_key(slot, entry.hash, uid, gid, bits, file->type, path, len)) {
      victim = slot;
      break;
    }
    if (victim == NULL || eviction_rank(slot, epoch) < eviction_rank(victim, epoch) ||
        (eviction_rank(slot, epoch) == eviction_rank(victim, epoch) && slot->stamp < victim->stamp)) victim = slot;
  }
  entry.stamp = ++stamp;
  *victim = entry;
  pthread_rwlock_unlock(&allows_lock);
  return 1;
}

// The allow published for this key: 1 with *file, *epoch and *flags set,
// or 0.
int aclfs_allow_lookup (uint32_t uid, uint32_t gid, uint32_t bits, uint32_t type, const char *path, size_t len, aclfs_file_id_t *file, uint32_t *epoch, uint32_t *flags) {
  if (!aclfs_fast_path_on() || len >= ACLFS_ALLOW_PATH) return 0;
  uint32_t hash = aclfs_allow_hash(uid, gid, bits, path, len);
  int found = 0;
  pthread_rwlock_rdlock(&allows_lock);
  aclfs_allow_t *set = set_of(hash);
  for (int way = 0; way < ACLFS_ALLOW_WAYS && !found; way++) {
    if (same_key(&set[way], hash, uid, gid, bits, type, path, len)) {
      *file = set[way].file;
      *epoch = set[way].epoch;
      *flags = set[way].flags;
      found = 1;
    }
  }
  pthread_rwlock_unlock(&allows_lock);
  return found;
}

// Whether the file statx describes (asked with STATX_BTIME) is `file`.
int aclfs_file_id_matches (const struct statx *sx, const aclfs_file_id_t *file) {
  if ((sx->stx_mode & S_IFMT) != file->type || aclfs_statx_dev(sx) != file->dev || sx->stx_ino != file->ino) return 0;
  if (sx->stx_mask & STATX_BTIME) return sx->stx_btime.tv_sec == file->birth_sec && sx->stx_btime.tv_nsec == file->birth_nsec;
  return file->birth_sec == 0 && file->birth_nsec == 0;
}

// The identity of the file a stat array (the layout of aclfs.h) describes.
void aclfs_file_id_from_ints (const uint32_t *ints, aclfs_file_id_t *file) {
  memset(file, 0, sizeof(*file));
  file->type = ints[ACLFS_STAT_MODE] & S_IFMT;
  file->dev = aclfs_get_u64(ints, ACLFS_STAT_DEV);
  file->ino = aclfs_get_u64(ints, ACLFS_STAT_INO);
  file->birth_sec = (int64_t) aclfs_get_u64(ints, ACLFS_STAT_BIRTHTIME);
  file->birth_nsec = ints[ACLFS_STAT_BIRTHTIME + 2];
}
