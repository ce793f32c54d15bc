// passthrough.c: what INIT accepts, which opens are served by passthrough,
// one registration per open file, the OPEN and CREATE replies. The FUSE
// device is faked: this test is linked with -Wl,--wrap=ioctl, so the
// registrations land in __wrap_ioctl below; the channel's reply writer and
// the request being answered are stubs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "../aclfs.h"
#include "check.h"

__thread uint32_t aclfs_req_opcode;
__thread uint64_t aclfs_req_unique;

// The fake device: backing ids handed out and closed, or a refusal.
static int next_id = 1;
static int refuse_with = 0;
static int open_ids = 0;        // registered and not yet closed
static int closed_last = 0;

int __wrap_ioctl (int fd, unsigned long request, void *arg) {
  (void) fd;
  if (refuse_with != 0) {
    errno = refuse_with;
    return -1;
  }
  if (request == _IOW(229, 1, struct { int32_t fd; uint32_t flags; uint64_t padding; })) {
    open_ids++;
    return next_id++;
  }
  if (request == _IOW(229, 2, uint32_t)) {
    open_ids--;
    closed_last = (int) *(uint32_t *) arg;
    return 0;
  }
  errno = ENOTTY;
  return -1;
}

// The reply the channel would have written.
static char written[512];
static size_t written_len = 0;

int aclfs_write_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  (void) ch;
  written_len = 0;
  for (size_t i = 0; i < count; i++) {
    memcpy(written + written_len, iov[i].iov_base, iov[i].iov_len);
    written_len += iov[i].iov_len;
  }
  return 0;
}

static struct statx file_sx (uint64_t ino, mode_t type) {
  struct statx sx;
  memset(&sx, 0, sizeof(sx));
  sx.stx_mode = type | 0644;
  sx.stx_ino = ino;
  sx.stx_dev_major = 8;
  sx.stx_dev_minor = 1;
  return sx;
}

// The mount's smallest file served by passthrough when opened for reading only.
#define MIN_SIZE 65536

static int open_sized (uint64_t fh, uint64_t ino, int may, uint64_t size, int flags) {
  struct statx sx = file_sx(ino, S_IFREG);
  sx.stx_size = size;
  return aclfs_passthrough_open(fh, &sx, may, flags);
}

// A file large enough for passthrough, opened for reading.
static int open_file (uint64_t fh, uint64_t ino, int may) {
  return open_sized(fh, ino, may, MIN_SIZE, O_RDONLY);
}

// init_in as the kernel sends it: header, then major, minor, max_readahead,
// flags, flags2.
static void kernel_init (int offers) {
  char request[sizeof(struct aclfs_in_header) + 64];
  memset(request, 0, sizeof(request));
  uint32_t *in = (uint32_t *) (request + sizeof(struct aclfs_in_header));
  in[0] = 7;
  in[1] = 45;
  in[3] = 1u << 30;                  // FUSE_INIT_EXT
  in[4] = offers ? 1u << 5 : 0;      // FUSE_PASSTHROUGH in flags2
  aclfs_passthrough_note_init(request, sizeof(request));
}

// The independent model of the open-file accounting: per file, handles by
// passthrough and through the daemon, and whether it is registered.
#define MODEL_FILES 48
#define MODEL_HANDLES 2048
static struct { int pt, dm, registered; } model[MODEL_FILES];
static struct { int kind; int file; } model_handle[MODEL_HANDLES];   // kind 0 none, 1 pt, 2 daemon

// small: a small file opened for reading only, which prefers the daemon
// unless the file is registered already.
static int model_open (int fh, int file, int may, int small) {
  if (may && model[file].dm == 0 && (model[file].registered || !small)) {
    model[file].pt++;
    model[file].registered = 1;
    model_handle[fh].kind = 1;
    model_handle[fh].file = file;
    return 1;
  }
  if (!may && model[file].pt > 0) return -EBUSY;
  model[file].dm++;
  model_handle[fh].kind = 2;
  model_handle[fh].file = file;
  return 0;
}

static void model_release (int fh) {
  int file = model_handle[fh].file;
  if (model_handle[fh].kind == 1 && --model[file].pt == 0) model[file].registered = 0;
  if (model_handle[fh].kind == 2) model[file].dm--;
  model_handle[fh].kind = 0;
}

int main (void) {
  // Not asked for: INIT is left alone and nothing is passed through.
  aclfs_passthrough_want(0, MIN_SIZE);
  kernel_init(1);
  uint32_t flags = 0, flags2 = 0, depth = 0;
  aclfs_passthrough_init_reply(77, &flags, &flags2, &depth);
  CHECK(flags == 0 && flags2 == 0 && depth == 0);
  CHECK(aclfs_passthrough_state(NULL) == ACLFS_PASSTHROUGH_OFF);
  CHECK(open_file(5, 100, 1) == 0);
  CHECK(open_ids == 0);

  // Asked for, not offered: refused, with the reason.
  aclfs_passthrough_want(1, MIN_SIZE);
  CHECK(aclfs_passthrough_state(NULL) == ACLFS_PASSTHROUGH_PENDING);
  kernel_init(0);
  aclfs_passthrough_init_reply(77, &flags, &flags2, &depth);
  const char *why = NULL;
  CHECK(aclfs_passthrough_state(&why) == ACLFS_PASSTHROUGH_REFUSED);
  CHECK(why != NULL && strstr(why, "does not offer") != NULL);
  CHECK(flags == 0 && flags2 == 0 && depth == 0);

  // Asked for and offered: accepted with the extended flags and a depth.
  aclfs_passthrough_want(1, MIN_SIZE);
  kernel_init(1);
  aclfs_passthrough_init_reply(77, &flags, &flags2, &depth);
  CHECK(flags == (1u << 30) && flags2 == (1u << 5) && depth == 2);
  CHECK(aclfs_passthrough_state(&why) == ACLFS_PASSTHROUGH_ON && why == NULL);

  // One registration per open file, shared, closed with its last handle.
  CHECK(open_file(5, 100, 1) == 1);
  CHECK(open_file(6, 100, 1) == 1);
  CHECK(open_ids == 1);
  // An open that must go through the daemon waits for them.
  CHECK(open_file(7, 100, 0) == -EBUSY);
  aclfs_passthrough_release(7);        // (its handle is closed by the caller)
  aclfs_passthrough_release(5);
  CHECK(open_ids == 1);
  aclfs_passthrough_release(6);
  CHECK(open_ids == 0 && closed_last == 1);
  aclfs_passthrough_release(6);        // released twice: nothing more happens
  CHECK(open_ids == 0);
  // A file open through the daemon is opened through the daemon again.
  CHECK(open_file(8, 101, 0) == 0);
  CHECK(open_file(9, 101, 1) == 0);
  CHECK(open_ids == 0);
  aclfs_passthrough_release(8);
  aclfs_passthrough_release(9);
  CHECK(open_file(8, 101, 1) == 2);
  aclfs_passthrough_release(8);
  CHECK(open_ids == 0);
  // Only regular files, only handles with a slot.
  struct statx dir = file_sx(102, S_IFDIR);
  CHECK(aclfs_passthrough_open(10, &dir, 1, O_RDONLY) == 0);
  CHECK(open_file(ACLFS_HANDLE_SLOTS, 103, 1) == 0);
  CHECK(open_ids == 0);

  // A small file opened for reading only goes through the daemon; opened
  // for writing, by passthrough; a small file open by passthrough already
  // is joined rather than refused.
  CHECK(open_sized(20, 120, 1, MIN_SIZE - 1, O_RDONLY) == 0);
  CHECK(open_ids == 0);
  aclfs_passthrough_release(20);
  CHECK(open_sized(21, 121, 1, 0, O_WRONLY) > 0);
  CHECK(open_sized(22, 121, 1, 0, O_RDONLY) > 0);
  CHECK(open_ids == 1);
  aclfs_passthrough_release(21);
  aclfs_passthrough_release(22);
  CHECK(open_ids == 0);

  // The reply to the OPEN that chose passthrough, and only that one.
  aclfs_req_opcode = 14;
  aclfs_req_unique = 42;
  int id = open_file(11, 104, 1);
  CHECK(id > 0);
  struct aclfs_out_header out = { sizeof(struct aclfs_out_header) + 16, 0, 42 };
  struct { uint64_t fh; uint32_t open_flags; int32_t backing_id; } open_out = { 11, 1u << 1, 0 };   // FOPEN_KEEP_CACHE
  struct iovec iov[2] = { { &out, sizeof(out) }, { &open_out, sizeof(open_out) } };
  int result = -1;
  CHECK(aclfs_passthrough_send_reply(NULL, iov, 2, &result) == 1 && result == 0);
  CHECK(written_len == sizeof(out) + sizeof(open_out));
  memcpy(&open_out, written + sizeof(out), sizeof(open_out));
  CHECK(open_out.fh == 11 && open_out.open_flags == (1u << 7) && open_out.backing_id == id);
  // Sent once: the next reply of this thread is not touched.
  CHECK(aclfs_passthrough_send_reply(NULL, iov, 2, &result) == 0);
  // A CREATE: the open_out after the entry.
  aclfs_req_opcode = ACLFS_FUSE_CREATE;
  aclfs_req_unique = 43;
  CHECK(open_file(12, 105, 1) > 0);
  char create[ACLFS_ENTRY_OUT_SIZE + 16];
  memset(create, 0x11, ACLFS_ENTRY_OUT_SIZE);
  memset(create + ACLFS_ENTRY_OUT_SIZE, 0, 16);
  out.unique = 43;
  struct iovec create_iov[2] = { { &out, sizeof(out) }, { create, sizeof(create) } };
  CHECK(aclfs_passthrough_send_reply(NULL, create_iov, 2, &result) == 1);
  CHECK(memcmp(written + sizeof(out), create, ACLFS_ENTRY_OUT_SIZE) == 0);
  memcpy(&open_out, written + sizeof(out) + ACLFS_ENTRY_OUT_SIZE, sizeof(open_out));
  CHECK(open_out.open_flags == (1u << 7) && open_out.backing_id > 0);
  // An error reply goes out as it is, and forgets the backing id.
  aclfs_req_opcode = 14;
  aclfs_req_unique = 44;
  CHECK(open_file(13, 106, 1) > 0);
  out.unique = 44;
  out.error = -EINTR;
  struct iovec error_iov[1] = { { &out, sizeof(out) } };
  CHECK(aclfs_passthrough_send_reply(NULL, error_iov, 1, &result) == 0);
  out.error = 0;
  CHECK(aclfs_passthrough_send_reply(NULL, iov, 2, &result) == 0);
  // Left behind by a request never answered: not applied to the next one.
  aclfs_req_unique = 45;
  CHECK(open_file(14, 107, 1) > 0);
  aclfs_req_unique = 46;
  out.unique = 46;
  CHECK(aclfs_passthrough_send_reply(NULL, iov, 2, &result) == 0);
  for (uint64_t fh = 11; fh <= 14; fh++) aclfs_passthrough_release(fh);
  CHECK(open_ids == 0);

  // Generated sequences of opens and releases against the model: the
  // results, and registrations exactly while passthrough handles exist.
  srand(12345);
  for (int step = 0; step < 400000; step++) {
    int fh = 16 + rand() % (MODEL_HANDLES - 16);
    if (model_handle[fh].kind != 0) {
      model_release(fh);
      aclfs_passthrough_release((uint64_t) fh);
    } else {
      int file = rand() % MODEL_FILES;
      int may = rand() % 4 != 0;
      int small = rand() % 3 == 0;
      // A small file opened for reading only, or a large one or one opened
      // for writing (either way of not being small, chosen at random).
      uint64_t size = small ? (uint64_t) (rand() % MIN_SIZE) : MIN_SIZE + (uint64_t) (rand() % 2) * (uint64_t) rand();
      int flags = small ? O_RDONLY : (rand() % 2 ? O_RDWR : O_RDONLY);
      if (!small && flags == O_RDWR) size = (uint64_t) (rand() % (2 * MIN_SIZE));
      int expected = model_open(fh, file, may, small);
      int got = open_sized((uint64_t) fh, 5000 + (uint64_t) file * 131072, may, size, flags);   // inodes that collide in the table
      if ((expected == 1) != (got > 0) || (expected <= 0 && got != expected)) {
        CHECK(!"open as the model says");
        break;
      }
    }
    int registered = 0;
    for (int f = 0; f < MODEL_FILES; f++) registered += model[f].registered;
    if (registered != open_ids) {
      CHECK(!"one registration per file open by passthrough");
      break;
    }
  }
  for (int fh = 0; fh < MODEL_HANDLES; fh++) {
    if (model_handle[fh].kind != 0) {
      model_release(fh);
      aclfs_passthrough_release((uint64_t) fh);
    }
  }
  CHECK(open_ids == 0);

  // The kernel refuses registrations for want of CAP_SYS_ADMIN: off, with
  // the reason; the open is served through the daemon.
  refuse_with = EPERM;
  CHECK(open_file(15, 108, 1) == 0);
  CHECK(aclfs_passthrough_state(&why) == ACLFS_PASSTHROUGH_REFUSED);
  CHECK(why != NULL && strstr(why, "CAP_SYS_ADMIN") != NULL);
  aclfs_passthrough_release(15);
  return check_summary("passthrough");
}
