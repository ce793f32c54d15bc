// notify.c: a message reaches a datagram socket bound at a path and at an
// abstract name ('@'); names it cannot use are refused with -errno.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../aclfs.h"
#include "check.h"

// A datagram socket bound at `name` (a path, or '@' for an abstract name).
static int bind_datagram (const char *name) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t len = strlen(name);
  memcpy(addr.sun_path, name, len);
  if (name[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *) &addr, addr_len) != 0) {
    perror("bind");
    exit(2);
  }
  return fd;
}

static int received (int fd, const char *expected) {
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
  if (n < 0) return 0;
  buf[n] = '\0';
  return strcmp(buf, expected) == 0;
}

int main (void) {
  char dir[] = "/tmp/aclfs-notify-test.XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[sizeof(dir) + 16];
  snprintf(path, sizeof(path), "%s/notify", dir);

  int fd = bind_datagram(path);
  CHECK(aclfs_notify_send(path, "READY=1\nSTATUS=serving") == 0);
  CHECK(received(fd, "READY=1\nSTATUS=serving"));
  CHECK(aclfs_notify_send(path, "WATCHDOG=1") == 0);
  CHECK(received(fd, "WATCHDOG=1"));
  close(fd);
  unlink(path);
  rmdir(dir);

  char abstract[64];
  snprintf(abstract, sizeof(abstract), "@aclfs-notify-test-%d", (int) getpid());
  fd = bind_datagram(abstract);
  CHECK(aclfs_notify_send(abstract, "STOPPING=1") == 0);
  CHECK(received(fd, "STOPPING=1"));
  close(fd);

  // Nobody listens: the error, not a crash.
  CHECK(aclfs_notify_send(path, "READY=1") == -ENOENT);
  // Not a path nor an abstract name; empty; too long for sun_path.
  CHECK(aclfs_notify_send("vsock:2:1", "READY=1") == -EAFNOSUPPORT);
  CHECK(aclfs_notify_send("", "READY=1") == -EINVAL);
  char longname[200];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[0] = '/';
  longname[sizeof(longname) - 1] = '\0';
  CHECK(aclfs_notify_send(longname, "READY=1") == -EINVAL);

  return check_summary("notify");
}
