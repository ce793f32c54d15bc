// aclfs: what the patched fuse-native.c hands JS with a request beyond
// upstream's arguments: the caller of the request (every op's last
// arguments), and the times of a utimens at full precision.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 29
#include <fuse.h>
#include <node_api.h>

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

// ---- utimens -------------------------------------------------------------------

// On the JS thread: (sec, nsec) of both times, UTIME_NOW/UTIME_OMIT as given.
void aclfs_times_push (napi_env env, const struct timespec times[2], napi_value *argv) {
  for (int i = 0; i < 2; i++) {
    napi_create_int64(env, (int64_t) times[i].tv_sec, &argv[2 * i]);
    napi_create_uint32(env, (uint32_t) times[i].tv_nsec, &argv[2 * i + 1]);
  }
}
