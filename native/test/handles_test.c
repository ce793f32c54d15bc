// handles.c: the handle table and the per-uid quota.
#include <string.h>

#include "../aclfs.h"
#include "check.h"

static uint32_t epoch_word = 3;

int main (void) {
  // Before the table exists nothing is vouched for or counted.
  CHECK(!aclfs_handle_current(5, ACLFS_R));
  CHECK(aclfs_handle_vouch(5, ACLFS_R, 3, 0) == 0);
  CHECK(aclfs_handle_hold(5, 1000) == 0);
  CHECK(aclfs_handles_init() == 0);
  CHECK(aclfs_handles_init() == 0);   // once is enough; again is harmless

  // Without the fast path no handle is served in C.
  CHECK(aclfs_handle_vouch(5, ACLFS_R, 3, 0) == 1);
  CHECK(!aclfs_handle_current(5, ACLFS_R));
  CHECK(aclfs_fast_path_enable(&epoch_word) == 0);
  CHECK(aclfs_handle_current(5, ACLFS_R));
  CHECK(!aclfs_handle_current(5, ACLFS_W));
  CHECK(!aclfs_handle_current(5, ACLFS_R | ACLFS_W));
  CHECK(!aclfs_handle_current(6, ACLFS_R));
  // The epoch moves: nothing is current until JS vouches again.
  epoch_word = 4;
  CHECK(!aclfs_handle_current(5, ACLFS_R));
  CHECK(aclfs_handle_vouch(5, ACLFS_R | ACLFS_W, 4, 0) == 1);
  CHECK(aclfs_handle_current(5, ACLFS_R));
  CHECK(aclfs_handle_current(5, ACLFS_W));
  // The allow's flags go with the vouch, and the next vouch replaces them.
  CHECK(!aclfs_handle_may_passthrough(5));
  CHECK(aclfs_handle_vouch(5, ACLFS_R, 4, ACLFS_ALLOW_PASSTHROUGH) == 1);
  CHECK(aclfs_handle_may_passthrough(5));
  CHECK(!aclfs_handle_may_passthrough(ACLFS_HANDLE_SLOTS));
  // A vouch for no bits vouches for nothing.
  CHECK(aclfs_handle_vouch(5, 0, 4, 0) == 1);
  CHECK(!aclfs_handle_may_passthrough(5));
  CHECK(!aclfs_handle_current(5, 0));
  // Descriptors without a slot.
  CHECK(aclfs_handle_vouch(ACLFS_HANDLE_SLOTS, ACLFS_R, 4, 0) == 0);
  CHECK(!aclfs_handle_current(ACLFS_HANDLE_SLOTS, ACLFS_R));
  CHECK(!aclfs_handle_current(UINT64_MAX, ACLFS_R));

  // A handle opened in C: JS sees who opened it until it vouches itself.
  aclfs_opener_t opener = { 1000, 100, 4242, ACLFS_R };
  aclfs_opener_t seen;
  CHECK(!aclfs_handle_fast_opener(9, &seen));
  CHECK(aclfs_quota_claim(1000) == 1);
  CHECK(aclfs_handle_fast_opened(9, &opener, 4) == 1);
  CHECK(aclfs_handle_current(9, ACLFS_R));
  CHECK(aclfs_handle_fast_opener(9, &seen));
  CHECK(seen.uid == 1000 && seen.gid == 100 && seen.pid == 4242 && seen.bits == ACLFS_R);
  CHECK(aclfs_handle_vouch(9, ACLFS_R, 4, 0) == 1);
  CHECK(!aclfs_handle_fast_opener(9, &seen));
  CHECK(aclfs_handle_fast_opened(ACLFS_HANDLE_SLOTS + 1, &opener, 4) == 0);
  CHECK(aclfs_quota_count(1000) == 1);
  // Released: the slot starts clean, the count goes back.
  CHECK(aclfs_handle_vouch(9, ACLFS_R, 4, ACLFS_ALLOW_PASSTHROUGH) == 1);
  aclfs_handle_forget(9);
  CHECK(!aclfs_handle_current(9, ACLFS_R));
  CHECK(!aclfs_handle_may_passthrough(9));
  CHECK(!aclfs_handle_fast_opener(9, &seen));
  CHECK(aclfs_quota_count(1000) == 0);
  aclfs_handle_forget(9);           // a second release gives nothing back twice
  CHECK(aclfs_quota_count(1000) == 0);
  aclfs_handle_forget(ACLFS_HANDLE_SLOTS);

  // Per-uid bound: 2 handles for each non-root uid, 5 for all together.
  aclfs_quota_set_limits(2, 5);
  CHECK(aclfs_handle_hold(20, 1000) == 1);
  CHECK(aclfs_handle_hold(21, 1000) == 1);
  CHECK(aclfs_handle_hold(22, 1000) == 0);   // uid 1000 holds its 2
  CHECK(aclfs_quota_count(1000) == 2);
  CHECK(aclfs_handle_hold(22, 1001) == 1);   // another uid is not affected
  CHECK(aclfs_handle_hold(23, 0) == 1);      // root has no bound of its own...
  CHECK(aclfs_handle_hold(24, 0) == 1);
  CHECK(aclfs_handle_hold(25, 0) == 0);      // ...but counts towards the total
  CHECK(aclfs_quota_claim(1002) == -1);
  aclfs_handle_forget(20);
  CHECK(aclfs_quota_count(1000) == 1);
  CHECK(aclfs_handle_hold(20, 1000) == 1);
  CHECK(aclfs_handle_hold(ACLFS_HANDLE_SLOTS, 1003) == 0);   // no slot: refused, nothing counted
  for (int fd = 20; fd <= 24; fd++) aclfs_handle_forget((uint64_t) fd);
  CHECK(aclfs_quota_count(1000) == 0);
  CHECK(aclfs_quota_count(1001) == 0);

  // Many uids: the table of counters holds ACLFS_QUOTA_SLOTS of them.
  aclfs_quota_set_limits(1, 0);
  int claimed = 0;
  for (uint32_t uid = 5000; uid < 5000 + ACLFS_QUOTA_SLOTS + 10; uid++) claimed += aclfs_quota_claim(uid) == 1;
  CHECK(claimed == ACLFS_QUOTA_SLOTS - 2);   // uids 1000 and 1001 hold a slot each
  CHECK(aclfs_quota_claim(5000) == -1);
  aclfs_quota_release(5000);
  CHECK(aclfs_quota_claim(5000) == 1);
  // No bounds at all.
  aclfs_quota_set_limits(0, 0);
  CHECK(aclfs_quota_claim(99999) == 1);
  return check_summary("handles");
}
