// aclfs: the handle table, and open handles per user.
//
// Handles. A FUSE file handle is the backing descriptor itself; its slot in
// this table (indexed by the descriptor number) says what C may do with it
// without asking JS: the bits its open was allowed and the commit epoch of
// that allow (READ and WRITE are served in C while the epoch has not moved;
// once it has, they go to JS, which re-decides and, if still allowed, vouches
// for the handle again with the new epoch), whether C opened it (JS has no
// record of it then), and for whom it is counted below.
//
// A slot's life follows its descriptor number: the opener (a worker in
// fastpath.c, or the JS thread) fills it before the kernel learns the
// handle; the JS thread re-vouches it while requests on it run on workers;
// the worker answering RELEASE (the last request the kernel sends for it)
// clears it before closing the descriptor, so the next open given the same
// number starts clean. Those writers and the readers (workers serving READ
// and WRITE, the JS thread asking fastOpener) can overlap, so every field
// is atomic; the epoch and bits are one word (`grant`), so a reader never
// combines one vouch's epoch with another's bits.
//
// Open handles per user. Every open handle is a descriptor of the daemon's.
// So that no user can starve the others of descriptors, each non-root uid
// may hold at most `limit` handles at once (0: no bound), and so that the
// daemon keeps descriptors for its own work (the database, the admin
// socket), all users together at most `total` (0: no bound); an open past
// either fails EMFILE. Counted where a handle is made (JS's open and
// opendir, through aclfs_handle_hold; the fast path's) and where it goes
// (release, releasedir: aclfs_handle_forget). Handles whose descriptor has
// no slot (at or above ACLFS_HANDLE_SLOTS) are refused: nothing could count
// them.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "aclfs.h"

typedef struct {
  _Atomic uint64_t grant;        // epoch << 32 | bits; bits 0: no handle JS or C vouched for
  _Atomic uint32_t fast_opened;  // opened in C; JS has no record of it yet (release: opener_* are set)
  _Atomic uint32_t opener_uid;
  _Atomic uint32_t opener_gid;
  _Atomic uint32_t opener_pid;
  _Atomic uint64_t counted;      // 1 << 32 | uid: counted against uid's handles; 0: not counted
  _Atomic uint32_t flags;        // as JS vouched: ACLFS_ALLOW_PASSTHROUGH
} aclfs_handle_t;

// The slots; the pointer is set once, by the JS thread before mounting,
// and never changes after (atomic so that every reader sees it whole).
static _Atomic(aclfs_handle_t *) handles = NULL;

// The per-uid counters (an open-addressed table; uids are never removed)
// and every field below, under quota_lock.
typedef struct {
  uint32_t used;
  uint32_t uid;
  uint32_t count;
} aclfs_quota_t;

static pthread_mutex_t quota_lock = PTHREAD_MUTEX_INITIALIZER;
static aclfs_quota_t quota[ACLFS_QUOTA_SLOTS];
static uint32_t quota_limit = 0;
static uint32_t quota_total = 0;
static uint32_t quota_open = 0;

#define COUNTED (1ull << 32)

int aclfs_handles_init (void) {
  if (atomic_load(&handles) != NULL) return 0;
  aclfs_handle_t *table = calloc(ACLFS_HANDLE_SLOTS, sizeof(aclfs_handle_t));
  if (table == NULL) return -1;
  atomic_store(&handles, table);
  return 0;
}

static aclfs_handle_t *slot_of (uint64_t fh) {
  aclfs_handle_t *table = atomic_load_explicit(&handles, memory_order_acquire);
  return (table != NULL && fh < ACLFS_HANDLE_SLOTS) ? &table[fh] : NULL;
}

static uint64_t grant_of (uint32_t bits, uint32_t epoch) {
  return (uint64_t) epoch << 32 | bits;
}

// Whether a handle may be used in C for `bits`: vouched for them at the
// epoch that is current now.
int aclfs_handle_current (uint64_t fh, uint32_t bits) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL || !aclfs_fast_path_on()) return 0;
  uint64_t grant = atomic_load_explicit(&h->grant, memory_order_acquire);
  uint32_t granted = (uint32_t) grant;
  return granted != 0 && (granted & bits) == bits && (uint32_t) (grant >> 32) == aclfs_epoch_now();
}

// JS allowed this handle `bits` at `epoch`, with the allow's `flags` (and
// has a record of it now). 1, or 0 when the descriptor has no slot.
int aclfs_handle_vouch (uint64_t fh, uint32_t bits, uint32_t epoch, uint32_t flags) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL) return 0;
  atomic_store_explicit(&h->fast_opened, 0, memory_order_relaxed);
  atomic_store_explicit(&h->flags, flags, memory_order_relaxed);
  atomic_store_explicit(&h->grant, grant_of(bits, epoch), memory_order_release);
  return 1;
}

// Whether JS allowed this handle's open to be served by passthrough. Read
// by the worker answering the open, after JS's open returned (which orders
// JS's vouch before it).
int aclfs_handle_may_passthrough (uint64_t fh) {
  aclfs_handle_t *h = slot_of(fh);
  return h != NULL && (atomic_load_explicit(&h->flags, memory_order_relaxed) & ACLFS_ALLOW_PASSTHROUGH) != 0;
}

// C opened this handle for `opener` on an allow of `epoch`, counted for
// opener->uid (aclfs_quota_claim went first). 1, or 0 when the descriptor
// has no slot (the caller closes it and releases the claim).
int aclfs_handle_fast_opened (uint64_t fh, const aclfs_opener_t *opener, uint32_t epoch) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL) return 0;
  atomic_store_explicit(&h->counted, COUNTED | opener->uid, memory_order_relaxed);
  atomic_store_explicit(&h->opener_uid, opener->uid, memory_order_relaxed);
  atomic_store_explicit(&h->opener_gid, opener->gid, memory_order_relaxed);
  atomic_store_explicit(&h->opener_pid, opener->pid, memory_order_relaxed);
  atomic_store_explicit(&h->grant, grant_of(opener->bits, epoch), memory_order_relaxed);
  atomic_store_explicit(&h->fast_opened, 1, memory_order_release);
  return 1;
}

// Who opened this handle in C, if JS has no record of it: 1 with *opener
// set, else 0.
int aclfs_handle_fast_opener (uint64_t fh, aclfs_opener_t *opener) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL || !atomic_load_explicit(&h->fast_opened, memory_order_acquire)) return 0;
  opener->uid = atomic_load_explicit(&h->opener_uid, memory_order_relaxed);
  opener->gid = atomic_load_explicit(&h->opener_gid, memory_order_relaxed);
  opener->pid = atomic_load_explicit(&h->opener_pid, memory_order_relaxed);
  opener->bits = (uint32_t) atomic_load_explicit(&h->grant, memory_order_relaxed);
  return 1;
}

// Counts a handle JS opened for uid: 1 if it may be kept, 0 if uid holds
// its limit already or the descriptor has no slot.
int aclfs_handle_hold (uint64_t fh, uint32_t uid) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL || aclfs_quota_claim(uid) < 0) return 0;
  atomic_store_explicit(&h->counted, COUNTED | uid, memory_order_relaxed);
  return 1;
}

// A released handle: its slot cleared (and its count given back) before the
// caller closes the descriptor.
void aclfs_handle_forget (uint64_t fh) {
  aclfs_handle_t *h = slot_of(fh);
  if (h == NULL) return;
  atomic_store_explicit(&h->grant, 0, memory_order_relaxed);
  atomic_store_explicit(&h->fast_opened, 0, memory_order_relaxed);
  atomic_store_explicit(&h->flags, 0, memory_order_relaxed);
  uint64_t counted = atomic_exchange_explicit(&h->counted, 0, memory_order_acq_rel);
  if (counted & COUNTED) aclfs_quota_release((uint32_t) counted);
}

// The uid's counter (made on first use), or NULL when the table is full.
// With quota_lock held.
static aclfs_quota_t *quota_of (uint32_t uid) {
  uint32_t start = (uid * 2654435761u) % ACLFS_QUOTA_SLOTS;
  for (uint32_t i = 0; i < ACLFS_QUOTA_SLOTS; i++) {
    aclfs_quota_t *q = &quota[(start + i) % ACLFS_QUOTA_SLOTS];
    if (q->used && q->uid == uid) return q;
    if (!q->used) {
      q->used = 1;
      q->uid = uid;
      q->count = 0;
      return q;
    }
  }
  return NULL;
}

// Whether uid's handles are bounded one by one (root's never are). With
// quota_lock held.
static int per_uid (uint32_t uid) {
  return uid != 0 && quota_limit != 0;
}

// At most `per_user` open handles per non-root uid and `total` for all users
// together (0: no bound).
void aclfs_quota_set_limits (uint32_t per_user, uint32_t total) {
  pthread_mutex_lock(&quota_lock);
  quota_limit = per_user;
  quota_total = total;
  pthread_mutex_unlock(&quota_lock);
}

// 1: the handle is counted for uid; -1: uid holds its limit already, all
// users together hold theirs, or the uid table is full: refuse.
int aclfs_quota_claim (uint32_t uid) {
  pthread_mutex_lock(&quota_lock);
  int claimed = -1;
  if (quota_total == 0 || quota_open < quota_total) {
    if (!per_uid(uid)) {
      claimed = 1;
    } else {
      aclfs_quota_t *q = quota_of(uid);
      if (q != NULL && q->count < quota_limit) {
        q->count++;
        claimed = 1;
      }
    }
    if (claimed == 1) quota_open++;
  }
  pthread_mutex_unlock(&quota_lock);
  return claimed;
}

void aclfs_quota_release (uint32_t uid) {
  pthread_mutex_lock(&quota_lock);
  if (quota_open > 0) quota_open--;
  aclfs_quota_t *q = per_uid(uid) ? quota_of(uid) : NULL;
  if (q != NULL && q->count > 0) q->count--;
  pthread_mutex_unlock(&quota_lock);
}

// Handles counted for uid now (tests).
uint32_t aclfs_quota_count (uint32_t uid) {
  pthread_mutex_lock(&quota_lock);
  uint32_t count = 0;
  if (per_uid(uid)) {
    aclfs_quota_t *q = quota_of(uid);
    count = q != NULL ? q->count : 0;
  } else {
    count = quota_open;
  }
  pthread_mutex_unlock(&quota_lock);
  return count;
}

// Handles counted for all users together now (the daemon's metrics).
uint32_t aclfs_quota_open (void) {
  pthread_mutex_lock(&quota_lock);
  uint32_t held = quota_open;
  pthread_mutex_unlock(&quota_lock);
  return held;
}
