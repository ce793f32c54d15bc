// locals.c: a parked block goes only to a new worker of its own mount, and
// the counters say how many blocks were made and how many wait.
#include <pthread.h>
#include <stdint.h>

#include "../aclfs.h"
#include "check.h"

static int mount_a, mount_b;             // owners: only their addresses matter
static int block_1, block_2, block_3;    // blocks: likewise

static void stats (uint32_t *created, uint32_t *idle) {
  aclfs_locals_stats(created, idle);
}

static void *park_block_3 (void *unused) {
  (void) unused;
  aclfs_locals_park(&block_3, &mount_a);
  return NULL;
}

int main (void) {
  uint32_t created, idle;
  stats(&created, &idle);
  CHECK(created == 0 && idle == 0);

  // Nothing parked: each take is a block to make.
  CHECK(aclfs_locals_take(&mount_a) == NULL);
  CHECK(aclfs_locals_take(&mount_b) == NULL);
  stats(&created, &idle);
  CHECK(created == 2 && idle == 0);

  // A block parked for one mount is not another mount's.
  aclfs_locals_park(&block_1, &mount_a);
  stats(&created, &idle);
  CHECK(created == 2 && idle == 1);
  CHECK(aclfs_locals_take(&mount_b) == NULL);
  stats(&created, &idle);
  CHECK(created == 3 && idle == 1);
  CHECK(aclfs_locals_take(&mount_a) == &block_1);
  stats(&created, &idle);
  CHECK(created == 3 && idle == 0);

  // Several parked: each taken once, none made meanwhile.
  aclfs_locals_park(&block_1, &mount_a);
  aclfs_locals_park(&block_2, &mount_b);
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, park_block_3, NULL) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  stats(&created, &idle);
  CHECK(created == 3 && idle == 3);
  void *first = aclfs_locals_take(&mount_a);
  void *second = aclfs_locals_take(&mount_a);
  CHECK((first == &block_1 && second == &block_3) || (first == &block_3 && second == &block_1));
  CHECK(aclfs_locals_take(&mount_b) == &block_2);
  stats(&created, &idle);
  CHECK(created == 3 && idle == 0);
  CHECK(aclfs_locals_take(&mount_a) == NULL);
  stats(&created, &idle);
  CHECK(created == 4 && idle == 0);

  return check_summary("locals");
}
