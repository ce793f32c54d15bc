// progress.c: requests begun and ended are counted; the oldest request in
// flight is the one its slot began longest ago; an idle loop has none.
#include <stdint.h>
#include <time.h>

#include "../aclfs.h"
#include "check.h"

static void sleep_ms (long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
  nanosleep(&ts, NULL);
}

int main (void) {
  uint64_t started, finished, oldest;
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(started == 0 && finished == 0 && oldest == 0);

  // A request begun and ended leaves nothing in flight.
  aclfs_progress_begin(0);
  aclfs_progress_end(0);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(started == 1 && finished == 1 && oldest == 0);

  // One request stuck in slot 3 while others come and go in slot 0: its age
  // grows, whatever the others do.
  aclfs_progress_begin(3);
  sleep_ms(60);
  for (int i = 0; i < 10; i++) {
    aclfs_progress_begin(0);
    aclfs_progress_end(0);
  }
  aclfs_progress_begin(7);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(started == 13 && finished == 11);
  // The coarse clock may be a tick (a few ms) behind.
  CHECK(oldest >= 40u * 1000000u);
  CHECK(oldest < 10u * 1000000000u);

  // Once it ends, only the recent one is left.
  aclfs_progress_end(3);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(oldest < 40u * 1000000u);
  aclfs_progress_end(7);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(started == 13 && finished == 13 && oldest == 0);

  // A slot out of range is counted but not timed (never written past the table).
  aclfs_progress_begin(ACLFS_PROGRESS_SLOTS);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(started == 14 && oldest == 0);
  aclfs_progress_end(ACLFS_PROGRESS_SLOTS);
  aclfs_progress_read(&started, &finished, &oldest);
  CHECK(finished == 14);

  return check_summary("progress");
}
