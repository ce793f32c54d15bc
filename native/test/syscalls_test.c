// syscalls.c: opens below the root descriptor that follow no symlink and
// never leave the tree; what a listing shows.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../aclfs.h"
#include "check.h"

int main (void) {
  char root[] = "/tmp/aclfs-syscalls-XXXXXX";
  CHECK(mkdtemp(root) != NULL);
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/d", root);
  CHECK(mkdir(path, 0755) == 0);
  snprintf(path, sizeof(path), "%s/d/f", root);
  int w = open(path, O_CREAT | O_WRONLY, 0644);
  CHECK(w >= 0);
  close(w);
  snprintf(path, sizeof(path), "%s/d/link", root);
  CHECK(symlink("f", path) == 0);
  snprintf(path, sizeof(path), "%s/out", root);
  CHECK(symlink("/etc", path) == 0);
  snprintf(path, sizeof(path), "%s/d/fifo", root);
  CHECK(mkfifo(path, 0644) == 0);
  snprintf(path, sizeof(path), "%s/d/bad\xff", root);
  w = open(path, O_CREAT | O_WRONLY, 0644);
  CHECK(w >= 0);
  close(w);

  int dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(dirfd >= 0);
  int fd = aclfs_open_beneath(dirfd, "d/f", O_RDONLY, 0);
  CHECK(fd >= 0);
  CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  close(fd);
  errno = 0;
  CHECK(aclfs_open_beneath(dirfd, "d/link", O_RDONLY, 0) == -1 && errno == ELOOP);
  errno = 0;
  CHECK(aclfs_open_beneath(dirfd, "out/passwd", O_RDONLY, 0) == -1 && errno == ELOOP);
  errno = 0;
  CHECK(aclfs_open_beneath(dirfd, "../etc/passwd", O_RDONLY, 0) == -1 && errno == EXDEV);
  errno = 0;
  CHECK(aclfs_open_beneath(dirfd, "/etc/passwd", O_RDONLY, 0) == -1 && errno == EXDEV);
  fd = aclfs_open_beneath(dirfd, "d/new", O_CREAT | O_WRONLY, 0600);
  CHECK(fd >= 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600);
  close(fd);

  char parent[PATH_MAX];
  const char *name = NULL;
  fd = aclfs_parent_beneath(dirfd, "/d/f", parent, &name);
  CHECK(fd >= 0 && strcmp(parent, "d") == 0 && strcmp(name, "f") == 0);
  if (fd >= 0) close(fd);
  fd = aclfs_parent_beneath(dirfd, "/d", parent, &name);
  CHECK(fd >= 0 && strcmp(parent, ".") == 0 && strcmp(name, "d") == 0);
  if (fd >= 0) close(fd);
  fd = aclfs_parent_beneath(dirfd, "/", parent, &name);
  CHECK(fd >= 0 && strcmp(parent, ".") == 0 && strcmp(name, ".") == 0);
  if (fd >= 0) close(fd);
  CHECK(aclfs_parent_beneath(dirfd, "/d/", parent, &name) == -EINVAL);
  CHECK(aclfs_parent_beneath(dirfd, "/out/passwd", parent, &name) == -ELOOP);
  CHECK(aclfs_parent_beneath(dirfd, "/missing/x", parent, &name) == -ENOENT);

  int d = aclfs_open_beneath(dirfd, "d", O_RDONLY | O_DIRECTORY, 0);
  CHECK(d >= 0);
  CHECK(aclfs_entry_shown(d, "f", DT_REG));
  CHECK(aclfs_entry_shown(d, "f", DT_UNKNOWN));
  CHECK(aclfs_entry_shown(d, "link", DT_LNK));
  CHECK(aclfs_entry_shown(d, "link", DT_UNKNOWN));
  CHECK(!aclfs_entry_shown(d, "fifo", DT_FIFO));
  CHECK(!aclfs_entry_shown(d, "fifo", DT_UNKNOWN));
  CHECK(!aclfs_entry_shown(d, "bad\xff", DT_REG));
  CHECK(!aclfs_entry_shown(d, "gone", DT_UNKNOWN));

  // chmod of the file itself; a symlink is never followed.
  CHECK(aclfs_chmod_nofollow(d, "f", 0600) == 0);
  CHECK(fstatat(d, "f", &st, 0) == 0 && (st.st_mode & 0777) == 0600);
  CHECK(aclfs_chmod_nofollow(d, "link", 0644) != 0);
  CHECK(fstatat(d, "f", &st, 0) == 0 && (st.st_mode & 0777) == 0600);

  char proc[64];
  fd = aclfs_proc_path(d, "f", proc, sizeof(proc));
  CHECK(fd >= 0 && strncmp(proc, "/proc/self/fd/", 14) == 0);
  if (fd >= 0) close(fd);
  CHECK(aclfs_proc_path(d, "link", proc, sizeof(proc)) == -EOPNOTSUPP);
  close(d);
  close(dirfd);

  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  CHECK(system(cmd) == 0);
  return check_summary("syscalls");
}
