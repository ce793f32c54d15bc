// aclfs: the C unit tests' one assertion macro. A test program runs every
// check, prints each failure and ends with "<name>: N checks, M failed",
// exiting 1 if any failed.
#ifndef ACLFS_CHECK_H
#define ACLFS_CHECK_H

#include <stdio.h>

static int checks_run = 0;
static int checks_failed = 0;

#define CHECK(cond) \
  do { \
    checks_run++; \
    if (!(cond)) { \
      checks_failed++; \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    } \
  } while (0)

static int check_summary (const char *name) {
  printf("%s: %d checks, %d failed\n", name, checks_run, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}

#endif
