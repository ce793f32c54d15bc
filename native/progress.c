// aclfs: whether the request loop makes progress, for the service manager's
// watchdog (src/system/systemd.ts).
//
// A daemon that is alive but whose requests hang (a backing filesystem that
// no longer answers: a dead NFS server, a stopped FUSE daemon below us) must
// not look healthy. Counting requests is not enough: with one request stuck
// and others flowing the counts still move. So each worker thread of the
// request loop (requests.c) owns a slot holding the monotonic time at which
// it began the request it is answering (0 while it waits for one); the
// watchdog asks for the age of the oldest request in flight. A mount with no
// requests at all is healthy: nothing is in flight.
//
// Threads: each slot is written only by the worker that owns it (at the
// start and end of each request) and read by the JS thread; the counters are
// added to by every worker. All relaxed atomics: the reader wants a recent
// value of each, never a consistent snapshot of all (a request that begins
// or ends while the slots are read is seen either way, and both are right).
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "aclfs.h"

static _Atomic uint64_t requests_started = 0;
static _Atomic uint64_t requests_finished = 0;
// Nanoseconds (CLOCK_MONOTONIC_COARSE) at which slot i's request began; 0: idle.
static _Atomic uint64_t busy_since[ACLFS_PROGRESS_SLOTS];

// The coarse clock (a tick, a few ms): a watchdog counts in seconds, and it
// costs half of the precise one on every request.
static uint64_t now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void aclfs_progress_begin (unsigned slot) {
  atomic_fetch_add_explicit(&requests_started, 1, memory_order_relaxed);
  if (slot >= ACLFS_PROGRESS_SLOTS) return;
  // Never 0, which means idle.
  uint64_t now = now_ns();
  atomic_store_explicit(&busy_since[slot], now == 0 ? 1 : now, memory_order_relaxed);
}

void aclfs_progress_end (unsigned slot) {
  if (slot < ACLFS_PROGRESS_SLOTS) atomic_store_explicit(&busy_since[slot], 0, memory_order_relaxed);
  atomic_fetch_add_explicit(&requests_finished, 1, memory_order_relaxed);
}

void aclfs_progress_read (uint64_t *started, uint64_t *finished, uint64_t *oldest_ns) {
  uint64_t now = now_ns();
  uint64_t oldest = 0;
  for (unsigned i = 0; i < ACLFS_PROGRESS_SLOTS; i++) {
    uint64_t since = atomic_load_explicit(&busy_since[i], memory_order_relaxed);
    if (since != 0 && since <= now && now - since > oldest) oldest = now - since;
  }
  *started = atomic_load_explicit(&requests_started, memory_order_relaxed);
  *finished = atomic_load_explicit(&requests_finished, memory_order_relaxed);
  *oldest_ns = oldest;
}
