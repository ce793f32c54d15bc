// aclfs: one message to the service manager (the sd_notify protocol of
// systemd: a datagram on the AF_UNIX socket named by $NOTIFY_SOCKET).
//
// Node has no AF_UNIX datagram sockets, and libsystemd's sd_notify would
// bring a library for these few lines. The caller (src/system/systemd.ts)
// reads the environment and passes the socket's name: a path, or an
// abstract name written with a leading '@'.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aclfs.h"

int aclfs_notify_send (const char *socket_name, const char *message) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t name_len = strlen(socket_name);
  // A path needs its NUL; an abstract name does not (its '@' becomes NUL).
  if (name_len < 2 || name_len >= sizeof(addr.sun_path)) return -EINVAL;
  if (socket_name[0] != '/' && socket_name[0] != '@') return -EAFNOSUPPORT;
  memcpy(addr.sun_path, socket_name, name_len);
  if (socket_name[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + name_len + (socket_name[0] == '/'));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  size_t len = strlen(message);
  ssize_t sent;
  do {
    sent = sendto(fd, message, len, MSG_NOSIGNAL, (const struct sockaddr *) &addr, addr_len);
  } while (sent < 0 && errno == EINTR);
  int err = sent < 0 ? -errno : ((size_t) sent == len ? 0 : -EMSGSIZE);
  close(fd);
  return err;
}
