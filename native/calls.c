// aclfs: the calls the addon exports to JS (Fuse.native in the binding), all
// made on the JS thread.
//
// The syscalls Node's fs lacks or truncates, for the passthrough: each
// returns 0 (or a size, or a descriptor) on success and -errno on failure,
// and never throws for a syscall error (only for arguments of the wrong
// type). Paths are mount paths, relative to the root descriptor passed in
// (syscalls.c). Then the fast path's side in JS: the shared page of the
// commit epoch, publishing allows, vouching for handles, the counters.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <napi-macros.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "aclfs.h"

static int read_path (napi_env env, napi_value value, char *out, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return -EINVAL;
  if (len >= size) return -ENAMETOOLONG;
  if (napi_get_value_string_utf8(env, value, out, size, &len) != napi_ok) return -EINVAL;
  if (strlen(out) != len) return -EINVAL; // an embedded NUL would cut the path short
  return 0;
}

#define ACLFS_PATH_ARG(name, i) \
  char name[PATH_MAX]; \
  { int perr = read_path(env, argv[i], name, sizeof(name)); if (perr != 0) { NAPI_RETURN_INT32(perr) } }

#define ACLFS_NAME_ARG(name, i) \
  char name[XATTR_NAME_MAX + 1]; \
  { int perr = read_path(env, argv[i], name, sizeof(name)); if (perr != 0) { NAPI_RETURN_INT32(perr == -ENAMETOOLONG ? -ERANGE : perr) } }

#define ACLFS_STAT_OUT(name, i) \
  NAPI_ARGV_BUFFER_CAST(uint32_t *, name, i) \
  if (name##_len < ACLFS_STAT_INTS * sizeof(uint32_t)) { \
    napi_throw_range_error(env, "ERANGE", "stat array too small"); \
    return NULL; \
  }

// Mount path argument i: the descriptor of its parent directory (closed
// when the method returns) as name##_dir, its last component as name.
#define ACLFS_AT_PATH(name, i) \
  ACLFS_PATH_ARG(name##_mount, i) \
  char name##_parent[PATH_MAX]; \
  const char *name = NULL; \
  __attribute__((cleanup(aclfs_close_fd))) int name##_dir = aclfs_parent_beneath(dirfd, name##_mount, name##_parent, &name); \
  if (name##_dir < 0) { NAPI_RETURN_INT32(name##_dir) }

// Mount path argument i as a path relative to dirfd, for the opens.
#define ACLFS_REL_PATH(name, i) \
  ACLFS_PATH_ARG(name##_mount, i) \
  const char *name = aclfs_rel(name##_mount);

#define ACLFS_STATX_MASK (STATX_BASIC_STATS | STATX_BTIME)

static napi_value array_of_doubles (napi_env env, const double *values, uint32_t count) {
  napi_value result;
  napi_create_array_with_length(env, count, &result);
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

// serveAttributes(rootFd): hands the backing root (a directory descriptor
// the caller keeps open for the life of the mount) to the operations of
// fastpath.c; before mounting. One mount per process.
NAPI_METHOD(serve_attributes) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  if (aclfs_serve_tree(fd) != 0) {
    napi_throw_error(env, "ENOMEM", "cannot allocate the handle tables");
    return NULL;
  }
  NAPI_RETURN_INT32(0)
}

// fstat(fd, stat): statx of a descriptor into a stat array.
NAPI_METHOD(fstat_fd) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(fd, 0)
  ACLFS_STAT_OUT(out, 1)
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, ACLFS_STATX_MASK, &sx) != 0) { NAPI_RETURN_INT32(-errno) }
  aclfs_statx_to_ints(&sx, out);
  NAPI_RETURN_INT32(0)
}

static int timespec_arg (napi_env env, napi_value sec, napi_value nsec, struct timespec *ts) {
  int64_t s = 0;
  uint32_t ns = 0;
  if (napi_get_value_int64(env, sec, &s) != napi_ok) return -EINVAL;
  if (napi_get_value_uint32(env, nsec, &ns) != napi_ok) return -EINVAL;
  ts->tv_sec = (time_t) s;
  ts->tv_nsec = ns;
  return 0;
}

// statAt(dirfd, path, stat): lstat into a stat array.
NAPI_METHOD(stat_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  ACLFS_STAT_OUT(out, 2)
  struct statx sx;
  if (statx(path_dir, path, AT_SYMLINK_NOFOLLOW, ACLFS_STATX_MASK, &sx) != 0) { NAPI_RETURN_INT32(-errno) }
  aclfs_statx_to_ints(&sx, out);
  NAPI_RETURN_INT32(0)
}

// openAt(dirfd, path, flags, mode): the descriptor (close-on-exec), or -errno.
NAPI_METHOD(open_at) {
  NAPI_ARGV(4)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_REL_PATH(path, 1)
  NAPI_ARGV_INT32(flags, 2)
  NAPI_ARGV_UINT32(mode, 3)
  int fd = aclfs_open_beneath(dirfd, path, flags | O_NOFOLLOW, (mode_t) mode);
  NAPI_RETURN_INT32(fd < 0 ? -errno : fd)
}

// mkdirAt(dirfd, path, mode)
NAPI_METHOD(mkdir_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_UINT32(mode, 2)
  NAPI_RETURN_INT32(mkdirat(path_dir, path, (mode_t) mode) != 0 ? -errno : 0)
}

// mknodAt(dirfd, path, mode, dev)
NAPI_METHOD(mknod_at) {
  NAPI_ARGV(4)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_UINT32(mode, 2)
  NAPI_ARGV_UINT32(dev, 3)
  NAPI_RETURN_INT32(mknodat(path_dir, path, (mode_t) mode, (dev_t) dev) != 0 ? -errno : 0)
}

// symlinkAt(target, dirfd, path)
NAPI_METHOD(symlink_at) {
  NAPI_ARGV(3)
  ACLFS_PATH_ARG(target, 0)
  NAPI_ARGV_INT32(dirfd, 1)
  ACLFS_AT_PATH(path, 2)
  NAPI_RETURN_INT32(symlinkat(target, path_dir, path) != 0 ? -errno : 0)
}

// linkAt(dirfd, existing, path)
NAPI_METHOD(link_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(existing, 1)
  ACLFS_AT_PATH(path, 2)
  NAPI_RETURN_INT32(linkat(existing_dir, existing, path_dir, path, 0) != 0 ? -errno : 0)
}

// unlinkAt(dirfd, path, directory): unlink, or rmdir when directory is 1.
NAPI_METHOD(unlink_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_UINT32(directory, 2)
  NAPI_RETURN_INT32(unlinkat(path_dir, path, directory ? AT_REMOVEDIR : 0) != 0 ? -errno : 0)
}

// renameAt(dirfd, from, to)
NAPI_METHOD(rename_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(from, 1)
  ACLFS_AT_PATH(to, 2)
  NAPI_RETURN_INT32(renameat(from_dir, from, to_dir, to) != 0 ? -errno : 0)
}

// chmodAt(dirfd, path, mode): of the file itself, never through a symlink.
NAPI_METHOD(chmod_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_UINT32(mode, 2)
  NAPI_RETURN_INT32(aclfs_chmod_nofollow(path_dir, path, (mode_t) mode))
}

// chownAt(dirfd, path, uid, gid): 0xffffffff leaves that id alone.
NAPI_METHOD(chown_at) {
  NAPI_ARGV(4)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_UINT32(uid, 2)
  NAPI_ARGV_UINT32(gid, 3)
  NAPI_RETURN_INT32(fchownat(path_dir, path, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW) != 0 ? -errno : 0)
}

// utimensAt(dirfd, path, atimeSec, atimeNsec, mtimeSec, mtimeNsec)
NAPI_METHOD(utimens_at) {
  NAPI_ARGV(6)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  struct timespec ts[2];
  if (timespec_arg(env, argv[2], argv[3], &ts[0]) != 0 || timespec_arg(env, argv[4], argv[5], &ts[1]) != 0) {
    NAPI_RETURN_INT32(-EINVAL)
  }
  NAPI_RETURN_INT32(utimensat(path_dir, path, ts, AT_SYMLINK_NOFOLLOW) != 0 ? -errno : 0)
}

// Extended attributes by the *xattrat calls (Linux 6.13); before them,
// through an O_PATH descriptor of the file (/proc/self/fd/N, which leads to
// the file itself; a symlink's own attributes are then out of reach).
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif
struct aclfs_xattr_args { uint64_t value; uint32_t size; uint32_t flags; };

// getxattrAt(dirfd, path, name, buf): the value's size (buf empty: asked
// for the size only), or -errno.
NAPI_METHOD(getxattr_at) {
  NAPI_ARGV(4)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  ACLFS_NAME_ARG(name, 2)
  NAPI_ARGV_BUFFER(buf, 3)
  struct aclfs_xattr_args args = { (uint64_t) (uintptr_t) (buf_len ? buf : NULL), (uint32_t) buf_len, 0 };
  long n = syscall(SYS_getxattrat, path_dir, path, AT_SYMLINK_NOFOLLOW, name, &args, sizeof(args));
  if (n >= 0) { NAPI_RETURN_INT32((int32_t) n) }
  if (errno != ENOSYS) { NAPI_RETURN_INT32(-errno) }
  char proc[64];
  int fd = aclfs_proc_path(path_dir, path, proc, sizeof(proc));
  if (fd < 0) { NAPI_RETURN_INT32(fd) }
  ssize_t got = getxattr(proc, name, buf_len ? buf : NULL, buf_len);
  int32_t rc = got < 0 ? -errno : (int32_t) got;
  close(fd);
  NAPI_RETURN_INT32(rc)
}

// setxattrAt(dirfd, path, name, value, flags)
NAPI_METHOD(setxattr_at) {
  NAPI_ARGV(5)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  ACLFS_NAME_ARG(name, 2)
  NAPI_ARGV_BUFFER(value, 3)
  NAPI_ARGV_INT32(flags, 4)
  struct aclfs_xattr_args args = { (uint64_t) (uintptr_t) value, (uint32_t) value_len, (uint32_t) flags };
  if (syscall(SYS_setxattrat, path_dir, path, AT_SYMLINK_NOFOLLOW, name, &args, sizeof(args)) == 0) { NAPI_RETURN_INT32(0) }
  if (errno != ENOSYS) { NAPI_RETURN_INT32(-errno) }
  char proc[64];
  int fd = aclfs_proc_path(path_dir, path, proc, sizeof(proc));
  if (fd < 0) { NAPI_RETURN_INT32(fd) }
  int32_t rc = setxattr(proc, name, value, value_len, flags) != 0 ? -errno : 0;
  close(fd);
  NAPI_RETURN_INT32(rc)
}

// listxattrAt(dirfd, path, buf): the list's size, or -errno.
NAPI_METHOD(listxattr_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  NAPI_ARGV_BUFFER(buf, 2)
  long n = syscall(SYS_listxattrat, path_dir, path, AT_SYMLINK_NOFOLLOW, buf_len ? buf : NULL, buf_len);
  if (n >= 0) { NAPI_RETURN_INT32((int32_t) n) }
  if (errno != ENOSYS) { NAPI_RETURN_INT32(-errno) }
  char proc[64];
  int fd = aclfs_proc_path(path_dir, path, proc, sizeof(proc));
  if (fd < 0) { NAPI_RETURN_INT32(fd) }
  ssize_t got = listxattr(proc, buf_len ? buf : NULL, buf_len);
  int32_t rc = got < 0 ? -errno : (int32_t) got;
  close(fd);
  NAPI_RETURN_INT32(rc)
}

// removexattrAt(dirfd, path, name)
NAPI_METHOD(removexattr_at) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_AT_PATH(path, 1)
  ACLFS_NAME_ARG(name, 2)
  if (syscall(SYS_removexattrat, path_dir, path, AT_SYMLINK_NOFOLLOW, name) == 0) { NAPI_RETURN_INT32(0) }
  if (errno != ENOSYS) { NAPI_RETURN_INT32(-errno) }
  char proc[64];
  int fd = aclfs_proc_path(path_dir, path, proc, sizeof(proc));
  if (fd < 0) { NAPI_RETURN_INT32(fd) }
  int32_t rc = removexattr(proc, name) != 0 ? -errno : 0;
  close(fd);
  NAPI_RETURN_INT32(rc)
}

// A listing for JS holds every name as a JS string at once: a directory
// with more entries than this is refused (ENOMEM) rather than let to
// exhaust the daemon's heap, which would end it.
#define ACLFS_LIST_MAX (4u * 1024 * 1024)

// listAt(dirfd, path): the names the mount shows in that directory (valid
// UTF-8, regular files, directories and symlinks; "." and ".." left out),
// or -errno.
NAPI_METHOD(list_at) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(dirfd, 0)
  ACLFS_REL_PATH(path, 1)
  __attribute__((cleanup(aclfs_close_fd))) int fd = aclfs_open_beneath(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
  if (fd < 0) { NAPI_RETURN_INT32(-errno) }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t count = 0;
  char dents[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, dents, sizeof(dents));
    if (n < 0) { NAPI_RETURN_INT32(-errno) }
    if (n == 0) break;
    for (long at = 0; at < n;) {
      struct aclfs_dirent64 *d = (struct aclfs_dirent64 *) (dents + at);
      at += d->d_reclen;
      if (aclfs_is_dot(d->d_name) || !aclfs_entry_shown(fd, d->d_name, d->d_type)) continue;
      if (count >= ACLFS_LIST_MAX) { NAPI_RETURN_INT32(-ENOMEM) }
      napi_value name;
      napi_create_string_utf8(env, d->d_name, NAPI_AUTO_LENGTH, &name);
      napi_set_element(env, result, count++, name);
    }
  }
  return result;
}

// setHandleLimits(perUser, total): at most this many open handles per
// non-root uid, and for all users together (0: no bound); before mounting
// (handles.c).
NAPI_METHOD(set_handle_limits) {
  NAPI_ARGV(2)
  NAPI_ARGV_UINT32(per_user, 0)
  NAPI_ARGV_UINT32(total, 1)
  aclfs_quota_set_limits(per_user, total);
  NAPI_RETURN_INT32(0)
}

// holdHandle(fd, uid): counts a handle JS opened for uid; 1 if it may be
// kept, 0 if uid holds its limit already or the descriptor has no slot
// (then JS closes it and answers EMFILE).
NAPI_METHOD(hold_handle) {
  NAPI_ARGV(2)
  NAPI_ARGV_UINT32(fd, 0)
  NAPI_ARGV_UINT32(uid, 1)
  NAPI_RETURN_INT32(aclfs_handle_hold(fd, uid))
}

// openHandles(): handles counted for all users together now (handles.c).
NAPI_METHOD(open_handles) {
  (void) info;
  NAPI_RETURN_UINT32(aclfs_quota_open())
}

static void unmap_page (napi_env env, void *data, void *hint) {
  (void) env;
  (void) hint;
  munmap(data, ACLFS_SHARED_PAGE);
}

// mapSharedPage(path): maps the first page of `path` (created 0600 and sized
// as needed) shared, as an ArrayBuffer: the commit epoch lives in its first
// 32-bit word. Every process that maps the same file sees the same memory.
NAPI_METHOD(map_shared_page) {
  NAPI_ARGV(1)
  ACLFS_PATH_ARG(path, 0)
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    napi_throw_error(env, "EIO", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_size < ACLFS_SHARED_PAGE && ftruncate(fd, ACLFS_SHARED_PAGE) != 0)) {
    int err = errno;
    close(fd);
    napi_throw_error(env, "EIO", strerror(err));
    return NULL;
  }
  void *page = mmap(NULL, ACLFS_SHARED_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (page == MAP_FAILED) {
    napi_throw_error(env, "EIO", strerror(err));
    return NULL;
  }
  napi_value result;
  if (napi_create_external_arraybuffer(env, page, ACLFS_SHARED_PAGE, unmap_page, NULL, &result) != napi_ok) {
    munmap(page, ACLFS_SHARED_PAGE);
    napi_throw_error(env, "EIO", "cannot wrap the shared page");
    return NULL;
  }
  return result;
}

// The page enableFastPath was given, kept alive for the process's life.
// JS thread only.
static napi_ref epoch_page_ref = NULL;

// enableFastPath(page): turns the fast path on, with the epoch in the first
// word of a page from mapSharedPage. Before mounting, after
// serveAttributes.
NAPI_METHOD(enable_fast_path) {
  NAPI_ARGV(1)
  void *data = NULL;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok || len < sizeof(uint32_t)) {
    napi_throw_type_error(env, "EINVAL", "expected the shared page");
    return NULL;
  }
  // The handle table comes with serveAttributes, which goes first.
  if (aclfs_handles_init() != 0 || aclfs_fast_path_enable((uint32_t *) data) != 0) {
    napi_throw_error(env, "ENOMEM", "cannot allocate the fast path tables");
    return NULL;
  }
  if (epoch_page_ref == NULL) napi_create_reference(env, argv[0], 1, &epoch_page_ref);
  NAPI_RETURN_INT32(0)
}

static int u32_arg (napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

// publishAllow(uid, gid, bits, path, stat, epoch, flags): JS decided that
// this caller may open `path` for `bits`, on the file described by `stat`
// (the stat layout), at `epoch`; `flags` (ACLFS_ALLOW_PASSTHROUGH) say how
// the open may be served. Returns 1 if stored, 0 if not replayable (path
// too long, fast path off).
NAPI_METHOD(publish_allow) {
  NAPI_ARGV(7)
  uint32_t uid, gid, bits, epoch, flags;
  if (u32_arg(env, argv[0], &uid) || u32_arg(env, argv[1], &gid) || u32_arg(env, argv[2], &bits) || u32_arg(env, argv[5], &epoch) || u32_arg(env, argv[6], &flags)) {
    napi_throw_type_error(env, "EINVAL", "bad publishAllow arguments");
    return NULL;
  }
  ACLFS_STAT_OUT(st, 4)
  char path[ACLFS_ALLOW_PATH];
  if (!aclfs_fast_path_on() || read_path(env, argv[3], path, sizeof(path)) != 0) { NAPI_RETURN_INT32(0) }
  aclfs_file_id_t file;
  aclfs_file_id_from_ints(st, &file);
  NAPI_RETURN_INT32(aclfs_allow_publish(uid, gid, bits, path, strlen(path), &file, epoch, flags))
}

// vouchHandle(fd, bits, epoch, flags): JS allowed this open handle `bits`
// at `epoch`, with the allow's `flags`; reads and writes may be served in C
// until the epoch moves.
NAPI_METHOD(vouch_handle) {
  NAPI_ARGV(4)
  uint32_t fd, bits, epoch, flags;
  if (u32_arg(env, argv[0], &fd) || u32_arg(env, argv[1], &bits) || u32_arg(env, argv[2], &epoch) || u32_arg(env, argv[3], &flags)) {
    napi_throw_type_error(env, "EINVAL", "bad vouchHandle arguments");
    return NULL;
  }
  NAPI_RETURN_INT32(aclfs_handle_vouch(fd, bits, epoch, flags))
}

// setDataPath(passthrough, minSize): before mounting, whether allowed opens
// are to be served by FUSE passthrough, and the smallest file an open for
// reading only is (passthrough.c).
NAPI_METHOD(set_data_path) {
  NAPI_ARGV(2)
  NAPI_ARGV_UINT32(passthrough, 0)
  double min_size = 0;
  if (napi_get_value_double(env, argv[1], &min_size) != napi_ok || !(min_size >= 0)) {
    napi_throw_type_error(env, "EINVAL", "bad setDataPath arguments");
    return NULL;
  }
  aclfs_passthrough_want(passthrough != 0, (uint64_t) min_size);
  NAPI_RETURN_INT32(0)
}

// probePassthrough(rootFd): after mounting, whether the kernel registers a
// backing file of the tree; 0, or -1 when it refused (passthrough is off).
NAPI_METHOD(probe_passthrough) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(root, 0)
  NAPI_RETURN_INT32(aclfs_passthrough_probe(root))
}

// dataPath(): [state, reason or null, passthrough opens, registrations]
// (state: 0 off, 1 pending, 2 on, 3 refused).
NAPI_METHOD(data_path) {
  (void) info;
  const char *why = NULL;
  int now = aclfs_passthrough_state(&why);
  uint64_t counts[2];
  aclfs_passthrough_counts(counts);
  double values[4] = { (double) now, 0, (double) counts[0], (double) counts[1] };
  napi_value result = array_of_doubles(env, values, 4);
  napi_value reason;
  if (why != NULL) napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &reason);
  else napi_get_null(env, &reason);
  napi_set_element(env, result, 1, reason);
  return result;
}

// fastOpener(fd): [uid, gid, pid, bits] of the C open that made this handle
// if JS has no record of it, else null.
NAPI_METHOD(fast_opener) {
  NAPI_ARGV(1)
  NAPI_ARGV_UINT32(fd, 0)
  aclfs_opener_t opener;
  napi_value result;
  if (!aclfs_handle_fast_opener(fd, &opener)) {
    napi_get_null(env, &result);
    return result;
  }
  double words[4] = { opener.uid, opener.gid, opener.pid, opener.bits };
  return array_of_doubles(env, words, 4);
}

// releaseMappedFile(path): drops this process's page mappings of `path`
// (madvise MADV_DONTNEED over every mapping of it in /proc/self/maps). The
// pages stay in the page cache and are mapped again on the next touch; what
// goes is their share of this process's RSS after a one-off scan of a large
// memory-mapped database (the kernel maps 16 neighbouring pages on every
// fault, so a scan of one index maps most of the file). Only for shared file
// mappings, where this never loses data. Returns the bytes unmapped.
NAPI_METHOD(release_mapped_file) {
  NAPI_ARGV(1)
  ACLFS_PATH_ARG(path, 0)
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) { NAPI_RETURN_INT32(-errno) }
  char line[PATH_MAX + 256];
  double released = 0;
  while (fgets(line, sizeof(line), maps) != NULL) {
    unsigned long start, end;
    char perms[8];
    int name_at = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &name_at) < 3 || name_at == 0) continue;
    char *name = line + name_at;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '\n') name[--len] = '\0';
    if (perms[3] != 's' || strcmp(name, path) != 0) continue;
    if (madvise((void *) start, end - start, MADV_DONTNEED) == 0) released += (double) (end - start);
  }
  fclose(maps);
  napi_value result;
  napi_create_double(env, released, &result);
  return result;
}

// fastStats(): [opens, reads, writes] served by the fast path so far, and
// directory entries listed with their attributes (READDIRPLUS).
NAPI_METHOD(fast_stats) {
  (void) info;
  uint64_t counts[4];
  aclfs_fast_counts(counts);
  double values[4] = { (double) counts[0], (double) counts[1], (double) counts[2], (double) counts[3] };
  return array_of_doubles(env, values, 4);
}

// [thread locals ever created, thread locals idle in the pool] (locals.c).
NAPI_METHOD(thread_stats) {
  (void) info;
  uint32_t created, idle;
  aclfs_locals_stats(&created, &idle);
  double values[2] = { (double) created, (double) idle };
  return array_of_doubles(env, values, 2);
}

// requestProgress(): [requests begun, requests ended, ms the oldest request
// in flight has been waiting (0: none)] (progress.c).
NAPI_METHOD(request_progress) {
  (void) info;
  uint64_t started, finished, oldest_ns;
  aclfs_progress_read(&started, &finished, &oldest_ns);
  double values[3] = { (double) started, (double) finished, (double) oldest_ns / 1e6 };
  return array_of_doubles(env, values, 3);
}

// sdNotify(socket, message): one datagram to the service manager (notify.c);
// 0 or -errno.
NAPI_METHOD(sd_notify) {
  NAPI_ARGV(2)
  char socket_name[PATH_MAX];
  int result = read_path(env, argv[0], socket_name, sizeof(socket_name));
  size_t len = 0;
  if (result == 0 && napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok) result = -EINVAL;
  char *message = result == 0 ? malloc(len + 1) : NULL;
  if (result == 0 && message == NULL) result = -ENOMEM;
  if (result == 0) {
    napi_get_value_string_utf8(env, argv[1], message, len + 1, &len);
    // An embedded NUL would cut the message short.
    result = strlen(message) == len ? aclfs_notify_send(socket_name, message) : -EINVAL;
  }
  free(message);
  NAPI_RETURN_INT32(result)
}

// peerCredentials(fd): [pid, uid, gid] of the peer of connected Unix socket
// fd as the kernel recorded them when it connected (SO_PEERCRED), or
// -errno. The admin server records who changed what with it.
NAPI_METHOD(peer_credentials) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  struct ucred cred;
  socklen_t len = sizeof(cred);
  int err = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ? -errno : (len != sizeof(cred) ? -EINVAL : 0);
  if (err != 0) { NAPI_RETURN_INT32(err) }
  double values[3] = { (double) cred.pid, (double) cred.uid, (double) cred.gid };
  return array_of_doubles(env, values, 3);
}

static void set_function (napi_env env, napi_value object, const char *name, napi_callback fn) {
  napi_value value;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value);
  napi_set_named_property(env, object, name, value);
}

static void set_uint32 (napi_env env, napi_value object, const char *name, uint32_t number) {
  napi_value value;
  napi_create_uint32(env, number, &value);
  napi_set_named_property(env, object, name, value);
}

void aclfs_export_calls (napi_env env, napi_value exports) {
  set_uint32(env, exports, "aclfs_patch_level", ACLFS_PATCH_LEVEL);
  set_uint32(env, exports, "aclfs_max_request", ACLFS_MAX_REQUEST);

  // The stat layout, { MODE: 0, ..., INTS: 27 } (offsets in uint32 words).
  napi_value layout;
  napi_create_object(env, &layout);
#define ACLFS_STAT_EXPORT(name, offset, words) set_uint32(env, layout, #name, offset);
  ACLFS_STAT_LAYOUT(ACLFS_STAT_EXPORT)
#undef ACLFS_STAT_EXPORT
  set_uint32(env, layout, "INTS", ACLFS_STAT_INTS);
  napi_set_named_property(env, exports, "aclfs_stat_layout", layout);

  napi_value calls;
  napi_create_object(env, &calls);
  set_function(env, calls, "fstat", fstat_fd);
  set_function(env, calls, "serveAttributes", serve_attributes);
  // The fast path.
  set_function(env, calls, "mapSharedPage", map_shared_page);
  set_function(env, calls, "enableFastPath", enable_fast_path);
  set_function(env, calls, "publishAllow", publish_allow);
  set_function(env, calls, "vouchHandle", vouch_handle);
  set_function(env, calls, "fastOpener", fast_opener);
  set_function(env, calls, "fastStats", fast_stats);
  // FUSE passthrough.
  set_function(env, calls, "setDataPath", set_data_path);
  set_function(env, calls, "probePassthrough", probe_passthrough);
  set_function(env, calls, "dataPath", data_path);
  set_function(env, calls, "threadStats", thread_stats);
  set_function(env, calls, "releaseMappedFile", release_mapped_file);
  // The backing tree relative to its root descriptor.
  set_function(env, calls, "statAt", stat_at);
  set_function(env, calls, "openAt", open_at);
  set_function(env, calls, "mkdirAt", mkdir_at);
  set_function(env, calls, "mknodAt", mknod_at);
  set_function(env, calls, "symlinkAt", symlink_at);
  set_function(env, calls, "linkAt", link_at);
  set_function(env, calls, "unlinkAt", unlink_at);
  set_function(env, calls, "renameAt", rename_at);
  set_function(env, calls, "chmodAt", chmod_at);
  set_function(env, calls, "chownAt", chown_at);
  set_function(env, calls, "utimensAt", utimens_at);
  set_function(env, calls, "getxattrAt", getxattr_at);
  set_function(env, calls, "setxattrAt", setxattr_at);
  set_function(env, calls, "listxattrAt", listxattr_at);
  set_function(env, calls, "removexattrAt", removexattr_at);
  set_function(env, calls, "listAt", list_at);
  // Open handles per user.
  set_function(env, calls, "setHandleLimits", set_handle_limits);
  set_function(env, calls, "holdHandle", hold_handle);
  set_function(env, calls, "openHandles", open_handles);
  // The service manager: its notification socket, and the request loop's
  // progress its watchdog is fed by.
  set_function(env, calls, "sdNotify", sd_notify);
  set_function(env, calls, "requestProgress", request_progress);
  // The admin socket's peers.
  set_function(env, calls, "peerCredentials", peer_credentials);
  napi_set_named_property(env, exports, "aclfs_native", calls);
}
