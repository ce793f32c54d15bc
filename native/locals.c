// aclfs: the pool fuse-native's thread locals return to when their thread
// ends.
//
// fuse-native gives each libfuse worker thread a "thread locals" block (a JS
// buffer and a uv_async handle, made on the JS thread). Upstream made one
// for every new thread and never freed it, so with libfuse starting and
// ending workers all the time RSS and the loop's handle list grew without
// bound. Here a block is parked when its thread ends (the pthread key's
// destructor in fuse-native.c) and the next new worker of the same mount
// takes it over. The block is opaque: fuse-native.c says which mount
// (`owner`) it belongs to.
#include <pthread.h>
#include <stdlib.h>

#include "aclfs.h"

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
