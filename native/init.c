// aclfs: the INIT reply, and READDIRPLUS.
//
// Larger requests. libfuse 2 predates FUSE_MAX_PAGES (kernel 4.20), so the
// kernel caps every READ and WRITE at 32 pages (128 KiB). Our channel reads
// with buffers of ACLFS_MAX_REQUEST plus a page for headers (requests.c),
// and its INIT reply, which libfuse writes in the 7.19 layout (24 bytes),
// goes out in the 7.28 layout with FUSE_MAX_PAGES and max_pages =
// ACLFS_MAX_REQUEST / 4 KiB added. 512 KiB, not the kernel's maximum of
// 1 MiB: large reads are spliced (fastpath.c), and a reply must fit a pipe
// whole; a pipe may not exceed fs.pipe-max-size (1 MiB by default) without
// CAP_SYS_RESOURCE, which containers do not have, and a 1 MiB reply plus its
// header does not fit 1 MiB. READs that large also need the mount's
// readahead raised, which the project does through sysfs after mounting.
//
// READDIRPLUS. libfuse 2 predates READDIRPLUS (protocol 7.21), so after a
// listing the kernel has names but no dentries, and `ls -l`, `find | xargs
// stat` or a shell glob followed by stat cost one LOOKUP round trip per
// entry. The INIT reply announces READDIRPLUS for every listing (not the
// kernel's adaptive mode, READDIRPLUS_AUTO, which asks for it only for a
// directory's first chunk until lookups have happened there: `ls -l` and
// find read a whole directory before they stat), each entry costing the
// daemon one statx in C; the request loop answers it by running, on the
// same thread and through libfuse itself, the READDIR the request stands
// for and one LOOKUP per entry that fits the reply: libfuse keeps its node
// table and lookup counts exactly as if the kernel had sent them (the
// kernel counts each entry with a node id as one lookup, to be forgotten
// later), and the attribute rules of the channel (validity 0 for files with
// several links) apply to every entry. Lookups are not gated by rules, and
// the listing was allowed at its opendir: nothing is shown that a LOOKUP
// would not show.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 29
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "aclfs.h"

#define ACLFS_FUSE_MAX_PAGES (1u << 22)
#define ACLFS_FUSE_DO_READDIRPLUS (1u << 13)
// fuse_init_out from 7.40 on: major, minor, max_readahead, flags (u32),
// max_background, congestion_threshold (u16), max_write, time_gran (u32),
// max_pages, map_alignment (u16), flags2, max_stack_depth, unused[6] (u32).
// Its size has been 64 bytes since 7.23; the kernel reads the fields it
// knows whatever the minor version said.
struct aclfs_init_out {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth;
  uint32_t unused[6];
};
#define ACLFS_INIT_OUT_7_19_SIZE 24

// Sends libfuse's INIT reply with max_pages (and passthrough); 1 if it was
// sent (or failed).
int aclfs_send_init_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count, int *result) {
  if (aclfs_req_opcode != ACLFS_FUSE_INIT || count != 2 || iov[0].iov_len < sizeof(struct aclfs_out_header)) return 0;
  const struct aclfs_out_header *out = (const struct aclfs_out_header *) iov[0].iov_base;
  if (out->error != 0 || out->unique != aclfs_req_unique || iov[1].iov_len != ACLFS_INIT_OUT_7_19_SIZE) return 0;
  struct aclfs_init_out init;
  memset(&init, 0, sizeof(init));
  memcpy(&init, iov[1].iov_base, ACLFS_INIT_OUT_7_19_SIZE);
  init.flags |= ACLFS_FUSE_MAX_PAGES | ACLFS_FUSE_DO_READDIRPLUS;
  init.max_pages = ACLFS_MAX_REQUEST / 4096;
  // FUSE passthrough, when the mount asks for it (passthrough.c).
  aclfs_passthrough_init_reply(fuse_chan_fd(ch), &init.flags, &init.flags2, &init.max_stack_depth);
  struct aclfs_out_header header = *out;
  header.len = sizeof(header) + sizeof(init);
  struct iovec reply[2] = { { &header, sizeof(header) }, { &init, sizeof(init) } };
  *result = aclfs_write_reply(ch, reply, 2);
  return 1;
}

// Thread-local: a reply libfuse makes to a request this thread made up
// itself is kept here instead of going to the kernel.
static __thread struct {
  uint64_t unique;  // the made-up request; 0: nothing to capture
  char *buf;
  size_t cap;
  size_t len;
  int32_t error;
  int done;
} capture;

// Keeps the reply if it answers the made-up request; 1 if it did.
int aclfs_capture_reply (const struct iovec iov[], size_t count) {
  if (capture.unique == 0 || count < 1 || iov[0].iov_len < sizeof(struct aclfs_out_header)) return 0;
  const struct aclfs_out_header *out = (const struct aclfs_out_header *) iov[0].iov_base;
  if (out->unique != capture.unique) return 0;
  capture.error = out->error;
  capture.len = 0;
  for (size_t i = 1; i < count; i++) {
    size_t n = iov[i].iov_len;
    if (n > capture.cap - capture.len) n = capture.cap - capture.len;
    memcpy(capture.buf + capture.len, iov[i].iov_base, n);
    capture.len += n;
  }
  capture.done = 1;
  return 1;
}

// fuse_read_in (protocol 7.9 on): fh, offset, size, read_flags, lock_owner,
// flags, padding.
struct aclfs_read_in { uint64_t fh; uint64_t offset; uint32_t size, read_flags; uint64_t lock_owner; uint32_t flags, padding; };
// fuse_dirent: ino, off, namelen, type, name (padded to 8 bytes).
struct aclfs_dirent { uint64_t ino; uint64_t off; uint32_t namelen, type; char name[]; };
#define ACLFS_DIRENT_ALIGN(x) (((x) + sizeof(uint64_t) - 1) & ~(sizeof(uint64_t) - 1))

// Unique ids of made-up requests: the top bit set, never one the kernel
// uses. Any worker makes them up: an atomic counter.
static _Atomic uint64_t made_up_counter = 0;

static uint64_t made_up_unique (void) {
  return (1ULL << 63) | (atomic_fetch_add_explicit(&made_up_counter, 1, memory_order_relaxed) + 1);
}

// Has libfuse process the request in `req` (header filled in but for len
// and unique) and returns its reply's error (0: `out` holds *len bytes).
static int32_t process_made_up (struct fuse_session *se, struct fuse_chan *ch, char *req, size_t req_len, char *out, size_t cap, size_t *len) {
  struct aclfs_in_header *in = (struct aclfs_in_header *) req;
  in->len = (uint32_t) req_len;
  in->unique = made_up_unique();
  aclfs_req_opcode = in->opcode;
  aclfs_req_unique = in->unique;
  aclfs_req_link_source = 0;
  capture.unique = in->unique;
  capture.buf = out;
  capture.cap = cap;
  capture.len = 0;
  capture.error = -EIO;
  capture.done = 0;
  struct fuse_buf fbuf = { .mem = req, .size = req_len };
  fuse_session_process_buf(se, &fbuf, ch);
  capture.unique = 0;
  *len = capture.len;
  return capture.done ? capture.error : -EIO;
}

static void reply (struct fuse_chan *ch, uint64_t unique, int32_t error, const char *data, size_t len) {
  struct aclfs_out_header out = { (uint32_t) (sizeof(out) + (error == 0 ? len : 0)), error, unique };
  struct iovec iov[2] = { { &out, sizeof(out) }, { (void *) data, len } };
  aclfs_write_reply(ch, iov, error == 0 && len > 0 ? 2 : 1);
}

// Answers the READDIRPLUS in `request` (see above).
void aclfs_readdirplus (struct fuse_session *se, struct fuse_chan *ch, const char *request, size_t request_len) {
  const struct aclfs_in_header *in = (const struct aclfs_in_header *) request;
  if (request_len < sizeof(*in) + sizeof(struct aclfs_read_in)) {
    reply(ch, in->unique, -EIO, NULL, 0);
    return;
  }
  const struct aclfs_read_in *arg = (const struct aclfs_read_in *) (request + sizeof(*in));
  size_t size = arg->size;
  char *dirents = malloc(size);
  char *plus = malloc(size);
  // A LOOKUP: header, then the name and its NUL (at most NAME_MAX + 1).
  char lookup[sizeof(struct aclfs_in_header) + 256];
  char readdir[sizeof(struct aclfs_in_header) + sizeof(struct aclfs_read_in)];
  if (dirents == NULL || plus == NULL) {
    free(dirents);
    free(plus);
    reply(ch, in->unique, -ENOMEM, NULL, 0);
    return;
  }
  memcpy(readdir, request, sizeof(readdir));
  ((struct aclfs_in_header *) readdir)->opcode = ACLFS_FUSE_READDIR;
  size_t listed = 0;
  int32_t error = process_made_up(se, ch, readdir, sizeof(readdir), dirents, size, &listed);
  size_t used = 0;
  for (size_t at = 0; error == 0 && at + sizeof(struct aclfs_dirent) <= listed;) {
    const struct aclfs_dirent *d = (const struct aclfs_dirent *) (dirents + at);
    size_t dirent_size = ACLFS_DIRENT_ALIGN(sizeof(struct aclfs_dirent) + d->namelen);
    if (at + dirent_size > listed || d->namelen > 255) break;
    size_t plus_size = ACLFS_ENTRY_OUT_SIZE + dirent_size;
    // What does not fit comes with the next READDIRPLUS, from this entry's
    // offset on; it is not looked up now (its lookup would be counted).
    if (used + plus_size > size) break;
    char *entry = plus + used;
    memset(entry, 0, ACLFS_ENTRY_OUT_SIZE);
    int dot = d->name[0] == '.' && (d->namelen == 1 || (d->namelen == 2 && d->name[1] == '.'));
    if (!dot) {
      memcpy(lookup, request, sizeof(struct aclfs_in_header));
      ((struct aclfs_in_header *) lookup)->opcode = ACLFS_FUSE_LOOKUP;
      memcpy(lookup + sizeof(struct aclfs_in_header), d->name, d->namelen);
      lookup[sizeof(struct aclfs_in_header) + d->namelen] = '\0';
      size_t got = 0;
      int32_t found = process_made_up(se, ch, lookup, sizeof(struct aclfs_in_header) + d->namelen + 1, entry, ACLFS_ENTRY_OUT_SIZE, &got);
      // Gone meanwhile, or anything else: node id 0 tells the kernel this
      // entry comes without attributes; a LOOKUP will ask for it.
      if (found != 0 || got != ACLFS_ENTRY_OUT_SIZE) memset(entry, 0, ACLFS_ENTRY_OUT_SIZE);
      else aclfs_count_listed_attribute();
    }
    memcpy(entry + ACLFS_ENTRY_OUT_SIZE, d, dirent_size);
    used += plus_size;
    at += dirent_size;
  }
  reply(ch, in->unique, error, plus, used);
  free(dirents);
  free(plus);
}
