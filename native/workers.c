// aclfs: what the patched fuse-native.c keeps per libfuse worker thread and
// hands to JS: the caller of the request (every op's last arguments), the
// times of a utimens, and the pool thread locals return to when their
// thread ends.
//
// fuse-native gives each worker thread a "thread locals" block (a JS buffer
// and a uv_async handle, made on the JS thread). Upstream made one for every
// new thread and never freed it, so with libfuse starting and ending workers
// all the time RSS and the loop's handle list grew without bound. Here a
// block is parked when its thread ends (the pthread key's destructor in
// fuse-native.c) and the next new worker of the same mount takes it over.
// The block itself is opaque: fuse-native.c says which mount it belongs to.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 29
#include <fuse.h>
#include <node_api.h>
#include <pthread.h>
#include <stdlib.h>

#include "aclfs.h"

// ---- the caller --------------------------------------------------------------

// On the worker thread, where fuse_get_context() describes the request.
void aclfs_caller_capture (aclfs_caller_t *caller) {
  struct fuse_context *fc = fuse_get_context();
  caller->uid = fc->uid;
  caller->gid = fc->gid;
  caller->pid = fc->pid;
}

// On the JS thread: the last ACLFS_CALLER_ARGS arguments of every op.
void aclfs_caller_push (napi_env env, const aclfs_caller_t *caller, napi_value *argv) {
  napi_create_uint32(env, caller->uid, &argv[0]);
  napi_create_uint32(env, caller->gid, &argv[1]);
  napi_create_uint32(env, caller->pid, &argv[2]);
}

// ---- the pool of idle thread locals ----------------------------------------------

typedef struct idle_locals {
  void *locals;
  const void *owner;          // the mount (fuse-native's fuse_thread_t)
  struct idle_locals *next;
} idle_locals_t;

// The pool and both counters are under idle_lock: how many blocks were ever
// made (bounded by the most workers alive at once) and how many wait here.
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static idle_locals_t *idle = NULL;
static uint32_t locals_created = 0;
static uint32_t locals_idle = 0;

void aclfs_locals_park (void *locals, const void *owner) {
  idle_locals_t *entry = malloc(sizeof(*entry));
  if (entry == NULL) return; // the block leaks, as upstream's all did
  entry->locals = locals;
  entry->owner = owner;
  pthread_mutex_lock(&idle_lock);
  entry->next = idle;
  idle = entry;
  locals_idle++;
  pthread_mutex_unlock(&idle_lock);
}

void *aclfs_locals_take (const void *owner) {
  void *locals = NULL;
  idle_locals_t *found = NULL;
  pthread_mutex_lock(&idle_lock);
  for (idle_locals_t **link = &idle; *link != NULL; link = &(*link)->next) {
    if ((*link)->owner == owner) {
      found = *link;
      *link = found->next;
      locals_idle--;
      break;
    }
  }
  // None parked: the caller makes a new block.
  if (found == NULL) locals_created++;
  pthread_mutex_unlock(&idle_lock);
  if (found != NULL) {
    locals = found->locals;
    free(found);
  }
  return locals;
}

void aclfs_locals_stats (uint32_t *created, uint32_t *idle_now) {
  pthread_mutex_lock(&idle_lock);
  *created = locals_created;
  *idle_now = locals_idle;
  pthread_mutex_unlock(&idle_lock);
}

// ---- utimens -------------------------------------------------------------------

// On the JS thread: (sec, nsec) of both times, UTIME_NOW/UTIME_OMIT as given.
void aclfs_times_push (napi_env env, const struct timespec times[2], napi_value *argv) {
  for (int i = 0; i < 2; i++) {
    napi_create_int64(env, (int64_t) times[i].tv_sec, &argv[2 * i]);
    napi_create_uint32(env, (uint32_t) times[i].tv_nsec, &argv[2 * i + 1]);
  }
}
