// aclfs: the backing tree, relative to its root descriptor.
//
// Every syscall the filter makes on the backing tree names its file relative
// to the root directory's descriptor (the *at calls), never as root + path:
// the mount serves exactly the paths the directory serves, up to PATH_MAX
// below its root, whatever the length of SRC's own path (and the root may be
// a descriptor opened before an in-place mount covered it). Paths are mount
// paths ("/" or "/a/b"). No symlink is ever followed, not even one on the
// way: the kernel resolved every symlink of a mount path in the mount
// itself, so a symlink met in the backing tree was swapped in behind the
// mount, and following it could lead the daemon, as root, out of the tree
// (ELOOP instead). Opens resolve the whole path with openat2's
// RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH; other calls open the parent
// directory that way and act on the last component.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aclfs.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
struct aclfs_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
#define ACLFS_RESOLVE_NO_MAGICLINKS 0x02
#define ACLFS_RESOLVE_NO_SYMLINKS 0x04
#define ACLFS_RESOLVE_BENEATH 0x08

// openat() of `rel` below dirfd (close-on-exec) that follows no symlink on
// the way, the last component included, and never leaves dirfd's tree: a
// descriptor, or -1 with errno set (ELOOP for a symlink met).
int aclfs_open_beneath (int dirfd, const char *rel, int flags, mode_t mode) {
  struct aclfs_open_how how = {
    (uint64_t) (flags | O_CLOEXEC),
    (flags & O_CREAT) ? (uint64_t) mode : 0,
    ACLFS_RESOLVE_NO_SYMLINKS | ACLFS_RESOLVE_NO_MAGICLINKS | ACLFS_RESOLVE_BENEATH,
  };
  return (int) syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

// For __attribute__((cleanup)).
void aclfs_close_fd (int *fd) {
  if (*fd >= 0) close(*fd);
}

// The parent directory of mount path `path` below dirfd, opened O_PATH by
// aclfs_open_beneath; *name is set to the last component ("." for the
// root), `parent` (PATH_MAX bytes) holds the parent's relative path. The
// descriptor, or -errno (-EINVAL for a path ending in "/").
int aclfs_parent_beneath (int dirfd, const char *path, char *parent, const char **name) {
  const char *rel = aclfs_rel(path);
  const char *slash = strrchr(rel, '/');
  if (slash == NULL) {
    strcpy(parent, ".");
    *name = rel;
  } else {
    size_t len = (size_t) (slash - rel);
    memcpy(parent, rel, len);
    parent[len] = '\0';
    *name = slash + 1;
  }
  if (**name == '\0') return -EINVAL;
  int fd = aclfs_open_beneath(dirfd, parent, O_PATH | O_DIRECTORY, 0);
  return fd < 0 ? -errno : fd;
}

// Whether directory entry `name` of directory `dirfd` is listed: a valid
// name of a shown type (DT_UNKNOWN: asked of the file).
int aclfs_entry_shown (int dirfd, const char *name, unsigned char type) {
  if (!aclfs_text_valid(name)) return 0;
  if (type == DT_UNKNOWN) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
    return aclfs_type_shown(st.st_mode);
  }
  return type == DT_REG || type == DT_DIR || type == DT_LNK;
}

// An O_PATH descriptor of `path` in dirfd (never a symlink) and its /proc
// path in `proc`, for calls that have no *at form on this kernel; the
// descriptor, or -errno.
int aclfs_proc_path (int dirfd, const char *path, char *proc, size_t size) {
  int fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISLNK(st.st_mode)) {
    close(fd);
    return -EOPNOTSUPP;
  }
  snprintf(proc, size, "/proc/self/fd/%d", fd);
  return fd;
}

// chmod of `name` in dirfd itself, never through a symlink (fchmodat2 with
// AT_SYMLINK_NOFOLLOW, Linux 6.6; before it, through an O_PATH descriptor
// of the file). 0, or -errno.
int aclfs_chmod_nofollow (int dirfd, const char *name, mode_t mode) {
  if (syscall(SYS_fchmodat2, dirfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  if (errno != ENOSYS) return -errno;
  char proc[64];
  int fd = aclfs_proc_path(dirfd, name, proc, sizeof(proc));
  if (fd < 0) return fd;
  int rc = chmod(proc, mode) != 0 ? -errno : 0;
  close(fd);
  return rc;
}
