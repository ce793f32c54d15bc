// aclfs: the fuse operations answered in C, on the libfuse worker thread,
// with no hop to the JS thread.
//
// Once JS has handed over the backing tree's root directory
// (aclfs_serve_tree, before mounting), aclfs_install_ops puts these in
// place of the binding's JS-dispatching operations, which it keeps (`js`)
// for everything C cannot answer itself:
//  - getattr and fgetattr are never gated, so they are answered here (and
//    getattr refuses names that must not enter the mount: names.c);
//  - open and opendir replay an allow JS published (allow.c), else go to JS;
//  - read, write and readdir of a handle vouched for at the current epoch
//    (handles.c) are served here, else go to JS, which re-decides;
//  - an allowed open is answered by FUSE passthrough where the mount and
//    the allow permit it (passthrough.c);
//  - release, releasedir, fsync and readlink need no decision;
//  - symlink, the xattr calls and create check the text that would cross
//    into JS, then go to JS.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 29
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aclfs.h"

// The backing tree's root directory and the binding's own (JS) operations:
// written by the JS thread before mounting, before the threads that read
// them exist (pthread_create orders the writes before every read), and
// never written again.
static int root_fd = -1;
static struct fuse_operations js;

// How many opens, reads and writes were served here, and directory entries
// handed to the kernel with their attributes (init.c): statistics, so
// relaxed atomics (each count exact, no order between them).
static _Atomic uint64_t fast_opens = 0;
static _Atomic uint64_t fast_reads = 0;
static _Atomic uint64_t fast_writes = 0;
static _Atomic uint64_t listed_attributes = 0;

void aclfs_count_listed_attribute (void) {
  atomic_fetch_add_explicit(&listed_attributes, 1, memory_order_relaxed);
}

void aclfs_fast_counts (uint64_t counts[4]) {
  counts[0] = atomic_load_explicit(&fast_opens, memory_order_relaxed);
  counts[1] = atomic_load_explicit(&fast_reads, memory_order_relaxed);
  counts[2] = atomic_load_explicit(&fast_writes, memory_order_relaxed);
  counts[3] = atomic_load_explicit(&listed_attributes, memory_order_relaxed);
}

// Hands the backing root (a directory descriptor the caller keeps open for
// the life of the mount) to the operations here; before mounting, once.
// 0, or -1 when the tables cannot be had.
int aclfs_serve_tree (int fd) {
  if (aclfs_handles_init() != 0 || aclfs_keep_cache_init() != 0) return -1;
  root_fd = fd;
  return 0;
}

static uint32_t bits_for_flags (int flags) {
  switch (flags & O_ACCMODE) {
    case O_RDONLY: return ACLFS_R;
    case O_WRONLY: return ACLFS_W;
    default: return ACLFS_R | ACLFS_W;
  }
}

static int aclfs_getattr (const char *path, struct stat *stat) {
  // Every LOOKUP comes here (see names.c): the last name is the one
  // entering the mount; the ones before it passed here already.
  const char *last = strrchr(path, '/');
  if (!aclfs_text_valid(last != NULL ? last + 1 : path)) return -EILSEQ;
  struct statx sx;
  if (statx(root_fd, aclfs_rel(path), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) != 0) return -errno;
  if (!aclfs_type_shown(sx.stx_mode)) return -ENOENT;
  aclfs_statx_to_stat(&sx, stat);
  return 0;
}

static int aclfs_fgetattr (const char *path, struct stat *stat, struct fuse_file_info *info) {
  // File handles are backing descriptors: fstat the descriptor itself, so
  // an unlinked-but-open file still answers.
  if (info == NULL || info->fh == 0) return aclfs_getattr(path, stat);
  struct statx sx;
  if (statx((int) info->fh, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) != 0) return -errno;
  aclfs_statx_to_stat(&sx, stat);
  return 0;
}

// Closes a released handle's descriptor, its slot cleared first.
static void close_handle (uint64_t fh) {
  aclfs_passthrough_release(fh);
  aclfs_handle_forget(fh);
  close((int) fh);
}

// How an allowed open of `path` (handle info->fh, the file as opened: sx)
// is served: by passthrough where the mount and the allow permit it
// (passthrough.c), else through the daemon, from the page cache it left
// (info->keep_cache, keepcache.c). 0, or -errno after which the caller
// closes the handle.
static int serve_open (const char *path, const struct statx *sx, int may_passthrough, struct fuse_file_info *info) {
  int backing = aclfs_passthrough_open(info->fh, sx, may_passthrough, info->flags);
  if (backing < 0) return backing;
  // A passthrough open leaves the FUSE page cache alone (the reply says so).
  info->keep_cache = backing == 0 ? aclfs_keep_cache(path, sx) : 0;
  return 0;
}

// serve_open for a handle JS opened: the file as the descriptor says; the
// allow's flags as JS vouched for the handle.
static int serve_js_open (const char *path, struct fuse_file_info *info) {
  struct statx sx;
  if (statx((int) info->fh, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0) {
    info->keep_cache = 0;
    return 0;
  }
  return serve_open(path, &sx, aclfs_handle_may_passthrough(info->fh), info);
}

// Replays a published allow: the opened descriptor, or -1 when JS must
// handle this open. `type` is S_IFREG (open) or S_IFDIR (opendir); *opened
// (unless NULL) gets the file as this open found it, *allow_flags (unless
// NULL) the allow's flags.
static int fast_open (const char *path, int flags, uint32_t type, struct statx *opened, uint32_t *allow_flags) {
  if (!aclfs_fast_path_on()) return -1;
  struct fuse_context *fc = fuse_get_context();
  uint32_t bits = type == S_IFDIR ? ACLFS_R : bits_for_flags(flags);
  aclfs_file_id_t file;
  uint32_t epoch;
  uint32_t published_flags;
  if (!aclfs_allow_lookup(fc->uid, fc->gid, bits, type, path, strlen(path), &file, &epoch, &published_flags)) return -1;
  if (epoch != aclfs_epoch_now()) return -1;

  // A uid at its limit goes to JS, which refuses the open.
  if (aclfs_quota_claim(fc->uid) < 0) return -1;
  // The flags JS opens with (openBacking in src/fs).
  int open_flags = type == S_IFDIR ? O_RDONLY | O_DIRECTORY : (flags & ~(O_TRUNC | O_CREAT | O_EXCL)) | O_NONBLOCK | O_NOCTTY;
  int fd = aclfs_open_beneath(root_fd, aclfs_rel(path), open_flags | O_NOFOLLOW, 0);
  if (fd < 0) {
    aclfs_quota_release(fc->uid);
    return -1;
  }
  struct statx sx;
  int same = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) == 0 && aclfs_file_id_matches(&sx, &file);
  aclfs_opener_t opener = { fc->uid, fc->gid, (uint32_t) fc->pid, bits };
  // The epoch is read again after the open: an allow decided before a commit
  // that has started since is not replayed.
  if (!same || epoch != aclfs_epoch_now() || !aclfs_handle_fast_opened((uint64_t) fd, &opener, epoch)) {
    close(fd);
    aclfs_quota_release(fc->uid);
    return -1;
  }
  if (opened != NULL) *opened = sx;
  if (allow_flags != NULL) *allow_flags = published_flags;
  atomic_fetch_add_explicit(&fast_opens, 1, memory_order_relaxed);
  return fd;
}

static int aclfs_open (const char *path, struct fuse_file_info *info) {
  if (!(info->flags & (O_TRUNC | O_CREAT | O_EXCL))) {
    struct statx sx;
    uint32_t allow_flags = 0;
    int fd = fast_open(path, info->flags, S_IFREG, &sx, &allow_flags);
    if (fd >= 0) {
      info->fh = (uint64_t) fd;
      int rc = serve_open(path, &sx, (allow_flags & ACLFS_ALLOW_PASSTHROUGH) != 0, info);
      if (rc != 0) close_handle(info->fh);
      return rc;
    }
  }
  if (js.open == NULL) return -ENOSYS;
  int rc = js.open(path, info);
  if (rc != 0) return rc;
  rc = serve_js_open(path, info);
  if (rc != 0) close_handle(info->fh);
  return rc;
}

static int aclfs_opendir (const char *path, struct fuse_file_info *info) {
  int fd = fast_open(path, O_RDONLY, S_IFDIR, NULL, NULL);
  if (fd >= 0) {
    info->fh = (uint64_t) fd;
    return 0;
  }
  return js.opendir != NULL ? js.opendir(path, info) : -ENOSYS;
}

// The whole directory in one go (libfuse keeps it for the READDIRs that
// follow), with inode numbers and types, so `find` needs no stat to tell
// files from directories.
static int aclfs_readdir (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info) {
  if (!aclfs_handle_current(info->fh, ACLFS_R)) {
    return js.readdir != NULL ? js.readdir(path, buf, filler, offset, info) : -ENOSYS;
  }
  int fd = (int) info->fh;
  if (lseek(fd, 0, SEEK_SET) < 0) return -errno;
  char dents[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, dents, sizeof(dents));
    if (n < 0) return -errno;
    if (n == 0) return 0;
    for (long at = 0; at < n;) {
      struct aclfs_dirent64 *d = (struct aclfs_dirent64 *) (dents + at);
      at += d->d_reclen;
      if (!aclfs_entry_shown(fd, d->d_name, d->d_type)) continue;
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = d->d_ino;
      st.st_mode = DTTOIF(d->d_type);
      if (filler(buf, d->d_name, &st, 0) != 0) return -ENOMEM;
    }
  }
}

// A directory handle needs no decision to be let go.
static int aclfs_releasedir (const char *path, struct fuse_file_info *info) {
  (void) path;
  if (info->fh != 0) close_handle(info->fh);
  return 0;
}

// Reads [offset, offset + len) of a vouched handle's backing file into buf.
static int pread_handle (int fd, char *buf, size_t len, off_t offset) {
  // From the page cache without waiting if it can; a read that must wait for
  // the disk first hands reading to another thread (requests.c), so the
  // kernel's readahead requests are served side by side.
  size_t done = 0;
  while (done < len) {
    struct iovec iov = { buf + done, len - done };
    ssize_t n = preadv2(fd, &iov, 1, offset + (off_t) done, RWF_NOWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EOPNOTSUPP)) {
      aclfs_before_blocking();
      n = pread(fd, buf + done, len - done, offset + (off_t) done);
    }
    if (n < 0) return done > 0 ? (int) done : -errno;
    if (n == 0) break;
    done += (size_t) n;
  }
  return (int) done;
}

// Large reads of a vouched handle are answered by splicing the backing file
// into /dev/fuse (libfuse's splice_write: the page-cache pages go into a
// pipe by reference and the kernel copies them once into the mount's page
// cache) instead of pread into a buffer and writev from it: one copy of the
// data less. Smaller reads are cheaper with the two plain syscalls.
#define ACLFS_SPLICE_MIN (128 * 1024)

// Whether reading [offset, offset + len) of fd may wait for the disk: not
// every page of the range is in the page cache, asked with cachestat(2)
// (Linux 6.5), which, unlike a probing read, leaves the file's readahead
// state alone (a one-byte RWF_NOWAIT read at the end of the range starts
// readahead there and makes the next sequential read look random). Where
// cachestat is missing: a RWF_NOWAIT read of the range's first byte, which
// is where the read itself starts anyway.
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
struct aclfs_cachestat_range { uint64_t off, len; };
struct aclfs_cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };
// Set once by whichever worker first finds cachestat missing; a relaxed
// atomic, as a worker that has not seen it yet only asks once more.
static _Atomic int cachestat_missing = 0;

static int read_may_block (int fd, size_t len, off_t offset) {
  if (!atomic_load_explicit(&cachestat_missing, memory_order_relaxed)) {
    struct aclfs_cachestat_range range = { (uint64_t) offset, len };
    struct aclfs_cachestat cs;
    if (syscall(SYS_cachestat, fd, &range, &cs, 0) == 0) {
      // A range running past the end of the file counts as not cached: the
      // file's last read hands over once too often, which costs nothing.
      uint64_t pages = ((uint64_t) offset + len - 1) / 4096 - (uint64_t) offset / 4096 + 1;
      return cs.nr_cache < pages;
    }
    if (errno == ENOSYS) atomic_store_explicit(&cachestat_missing, 1, memory_order_relaxed);
  }
  char byte;
  struct iovec iov = { &byte, 1 };
  ssize_t n = preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
  return n < 0 && (errno == EAGAIN || errno == EOPNOTSUPP);
}

// READ, in place of the binding's read (libfuse calls read_buf when there is
// one): a vouched handle is served here, anything else by JS.
static int aclfs_read_buf (const char *path, struct fuse_bufvec **bufp, size_t len, off_t offset, struct fuse_file_info *info) {
  struct fuse_bufvec *bv = malloc(sizeof(struct fuse_bufvec));
  if (bv == NULL) return -ENOMEM;
  *bv = (struct fuse_bufvec) FUSE_BUFVEC_INIT(len);
  int fd = (int) info->fh;
  int vouched = aclfs_handle_current(info->fh, ACLFS_R);
  if (vouched) atomic_fetch_add_explicit(&fast_reads, 1, memory_order_relaxed);
  if (vouched && len >= ACLFS_SPLICE_MIN) {
    if (read_may_block(fd, len, offset)) aclfs_before_blocking();
    bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    bv->buf[0].fd = fd;
    bv->buf[0].pos = offset;
    *bufp = bv;
    return 0;
  }
  // libfuse frees the memory with the vector once the reply is sent.
  char *mem = malloc(len > 0 ? len : 1);
  if (mem == NULL) {
    free(bv);
    return -ENOMEM;
  }
  int n = vouched ? pread_handle(fd, mem, len, offset) : js.read != NULL ? js.read(path, mem, len, offset, info) : -ENOSYS;
  if (n < 0) {
    free(mem);
    free(bv);
    return n;
  }
  bv->buf[0].mem = mem;
  bv->buf[0].size = (size_t) n;
  *bufp = bv;
  return 0;
}

static int aclfs_write (const char *path, const char *buf, size_t len, off_t offset, struct fuse_file_info *info) {
  if (!aclfs_handle_current(info->fh, ACLFS_W)) return js.write != NULL ? js.write(path, buf, len, offset, info) : -ENOSYS;
  ssize_t n = pwrite((int) info->fh, buf, len, offset);
  atomic_fetch_add_explicit(&fast_writes, 1, memory_order_relaxed);
  return n < 0 ? -errno : (int) n;
}

// fsync needs no decision (it changes no data the caller could not write).
static int aclfs_fsync (const char *path, int datasync, struct fuse_file_info *info) {
  (void) path;
  int rc = datasync ? fdatasync((int) info->fh) : fsync((int) info->fh);
  return rc == 0 ? 0 : -errno;
}

// Release of a file handle needs no decision: the handle is the backing
// descriptor, closed right here. Its slot is cleared first, so the next open
// given the same descriptor number starts clean. JS's record of the handle
// is simply left behind: the kernel sends nothing more for a released
// handle, and the next JS open that gets the same number records over it (a
// C open marks the slot fast_opened, which tells JS its record is stale).
static int aclfs_release (const char *path, struct fuse_file_info *info) {
  (void) path;
  close_handle(info->fh);
  return 0;
}

// A symlink's contents cross as a string: refused unless valid UTF-8.
static int aclfs_symlink (const char *target, const char *path) {
  if (!aclfs_text_valid(target)) return -EILSEQ;
  return js.symlink(target, path);
}

// Read in C, byte for byte (readlink is not gated).
static int aclfs_readlink (const char *path, char *buf, size_t size) {
  if (size == 0) return -EINVAL;
  char parent[PATH_MAX];
  const char *name = NULL;
  __attribute__((cleanup(aclfs_close_fd))) int dir = aclfs_parent_beneath(root_fd, path, parent, &name);
  if (dir < 0) return dir;
  ssize_t n = readlinkat(dir, name, buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

// An xattr's name crosses as a string: refused unless valid UTF-8.
static int aclfs_setxattr (const char *path, const char *name, const char *value, size_t size, int flags) {
  if (!aclfs_text_valid(name)) return -EILSEQ;
  return js.setxattr(path, name, value, size, flags);
}

static int aclfs_getxattr (const char *path, const char *name, char *value, size_t size) {
  if (!aclfs_text_valid(name)) return -EILSEQ;
  return js.getxattr(path, name, value, size);
}

static int aclfs_removexattr (const char *path, const char *name) {
  if (!aclfs_text_valid(name)) return -EILSEQ;
  return js.removexattr(path, name);
}

// A new file starts from an empty cache; it is remembered for its next open.
static int aclfs_create (const char *path, mode_t mode, struct fuse_file_info *info) {
  int rc = js.create(path, mode, info);
  if (rc != 0) return rc;
  rc = serve_js_open(path, info);
  if (rc != 0) close_handle(info->fh);
  info->keep_cache = 0;
  return rc;
}

// Called by fuse-native.c once it has filled in its JS-dispatching
// operations, before fuse_new: keeps them, and with the backing root handed
// over puts the C operations in their place.
void aclfs_install_ops (struct fuse_operations *ops) {
  js = *ops;
  ops->flag_utime_omit_ok = 1;
  if (root_fd < 0) return;
  ops->getattr = aclfs_getattr;
  ops->fgetattr = aclfs_fgetattr;
  ops->release = aclfs_release;
  ops->open = aclfs_open;
  ops->read_buf = aclfs_read_buf;
  ops->write = aclfs_write;
  ops->fsync = aclfs_fsync;
  ops->opendir = aclfs_opendir;
  ops->readdir = aclfs_readdir;
  ops->releasedir = aclfs_releasedir;
  ops->readlink = aclfs_readlink;
  if (js.symlink != NULL) ops->symlink = aclfs_symlink;
  if (js.setxattr != NULL) ops->setxattr = aclfs_setxattr;
  if (js.getxattr != NULL) ops->getxattr = aclfs_getxattr;
  if (js.removexattr != NULL) ops->removexattr = aclfs_removexattr;
  if (js.create != NULL) ops->create = aclfs_create;
}
