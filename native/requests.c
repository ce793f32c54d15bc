// aclfs: the request loop and the channel to /dev/fuse.
//
// The channel. The session reads and writes /dev/fuse through our channel
// (aclfs_chan_new; the same read/writev libfuse's kernel channel does),
// which notes the request each worker thread is answering (libfuse answers
// a request on the thread that read it) and, on the way out:
//  - sends the INIT reply in the layout that lets the kernel send larger
//    requests and READDIRPLUS (init.c);
//  - keeps the replies to the requests READDIRPLUS makes up (init.c);
//  - answers an OPEN or CREATE by passthrough where the open asked for it
//    (passthrough.c), having noted at INIT what the kernel offers;
//  - limits attribute caching to files with one name (below).
//
// Attribute caching that keeps hard links coherent. libfuse 2's high-level
// API gives every NAME its own node, so the kernel keeps one attribute cache
// per name: with attributes cached, a chmod or a write through one hard link
// would not show through another until the cache timed out. Not caching
// attributes at all costs several GETATTR round trips per open (the kernel's
// permission checks on every path component). So the mount caches
// attributes (attr_timeout), and the replies that carry attributes of a
// file with more than one link are rewritten on their way to the kernel with
// a validity of 0: such files are always asked afresh, every other file is
// cached. One case needs more: a LINK through the mount turns a file with
// one name into one with two, and the kernel (6.x) keeps the attributes it
// cached for the old name (nlink 1, old ctime). After a successful LINK
// reply, the old name's node is told to drop its cached attributes
// (FUSE_NOTIFY_INVAL_INODE).
//
// The request loop. Leader/follower instead of libfuse's fuse_loop_mt. In
// fuse_loop_mt every idle worker waits in read() on /dev/fuse and the kernel
// hands each request to the one that has waited longest, so consecutive
// requests land on different threads (cold caches, a context switch to
// another thread every time): bindfs loses a third of its speed with
// --multithreaded. Most of our requests are answered in C without blocking,
// so here exactly one thread, the reader, reads and answers requests, and
// keeps doing so. Only when it is about to wait for the JS thread
// (aclfs_before_blocking, from the binding's dispatch into JS) or for the
// disk does it hand the reader role to an idle follower (made on demand), so
// requests the C side can answer never queue behind a JS one. Each worker
// marks when it begins and ends every request in a progress slot of its own
// (progress.c): the service manager's watchdog is fed only while no request
// has been in the daemon too long.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 29
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aclfs.h"

// Thread-local: each worker's own request.
__thread uint32_t aclfs_req_opcode;
__thread uint64_t aclfs_req_unique;
__thread uint64_t aclfs_req_link_source;

struct aclfs_link_in { uint64_t oldnodeid; };
#define ACLFS_FUSE_NOTIFY_INVAL_INODE 2
struct aclfs_notify_inval_inode_out { uint64_t ino; int64_t off; int64_t len; };
// fuse_attr: ino, size, blocks, atime, mtime, ctime (u64), atimensec,
// mtimensec, ctimensec (u32), then mode and nlink.
#define ACLFS_ATTR_MODE 60
#define ACLFS_ATTR_NLINK 64
// fuse_entry_out: nodeid, generation, entry_valid, attr_valid (u64),
// entry_valid_nsec, attr_valid_nsec (u32), attr.
#define ACLFS_ENTRY_ATTR_VALID 24
#define ACLFS_ENTRY_ATTR_VALID_NSEC 36
#define ACLFS_ENTRY_ATTR 40
// fuse_attr_out: attr_valid (u64), attr_valid_nsec, dummy (u32), attr.
#define ACLFS_ATTROUT_ATTR_VALID 0
#define ACLFS_ATTROUT_ATTR_VALID_NSEC 8
#define ACLFS_ATTROUT_ATTR 16

// Zeroes the attribute validity of a reply whose attributes are those of a
// file with several names.
static void expire_if_linked (char *reply, size_t len, size_t valid_at, size_t nsec_at, size_t attr_at) {
  if (len < attr_at + ACLFS_ATTR_NLINK + sizeof(uint32_t)) return;
  uint32_t mode, nlink;
  memcpy(&mode, reply + attr_at + ACLFS_ATTR_MODE, sizeof(mode));
  memcpy(&nlink, reply + attr_at + ACLFS_ATTR_NLINK, sizeof(nlink));
  if (S_ISDIR(mode) || nlink <= 1) return;
  uint64_t zero64 = 0;
  uint32_t zero32 = 0;
  memcpy(reply + valid_at, &zero64, sizeof(zero64));
  memcpy(reply + nsec_at, &zero32, sizeof(zero32));
}

static void limit_attr_cache (const struct iovec iov[], size_t count) {
  if (count < 2 || iov[0].iov_len < sizeof(struct aclfs_out_header)) return;
  const struct aclfs_out_header *out = (const struct aclfs_out_header *) iov[0].iov_base;
  if (out->error != 0 || out->unique != aclfs_req_unique) return;
  char *reply = (char *) iov[1].iov_base;
  switch (aclfs_req_opcode) {
    case ACLFS_FUSE_LOOKUP: case ACLFS_FUSE_SYMLINK: case ACLFS_FUSE_MKNOD: case ACLFS_FUSE_MKDIR:
    case ACLFS_FUSE_LINK: case ACLFS_FUSE_CREATE:
      expire_if_linked(reply, iov[1].iov_len, ACLFS_ENTRY_ATTR_VALID, ACLFS_ENTRY_ATTR_VALID_NSEC, ACLFS_ENTRY_ATTR);
      break;
    case ACLFS_FUSE_GETATTR: case ACLFS_FUSE_SETATTR:
      expire_if_linked(reply, iov[1].iov_len, ACLFS_ATTROUT_ATTR_VALID, ACLFS_ATTROUT_ATTR_VALID_NSEC, ACLFS_ATTROUT_ATTR);
      break;
  }
}

// What libfuse's kernel channel does on receive, plus noting the request.
static int chan_receive (struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  struct fuse_session *se = fuse_chan_session(ch);
  ssize_t res;
  int err;
  do {
    res = read(fuse_chan_fd(ch), buf, size);
    err = errno;
    if (fuse_session_exited(se)) return 0;
    // ENOENT: the request was interrupted; it is safe to read the next one.
  } while (res == -1 && err == ENOENT);
  if (res == -1) {
    if (err == ENODEV) {
      // Unmounted.
      fuse_session_exit(se);
      return 0;
    }
    if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
    return -err;
  }
  if ((size_t) res < sizeof(struct aclfs_in_header)) {
    fprintf(stderr, "short read on fuse device\n");
    return -EIO;
  }
  const struct aclfs_in_header *in = (const struct aclfs_in_header *) buf;
  aclfs_req_opcode = in->opcode;
  aclfs_req_unique = in->unique;
  aclfs_req_link_source = 0;
  if (in->opcode == ACLFS_FUSE_LINK && (size_t) res >= sizeof(*in) + sizeof(struct aclfs_link_in)) {
    const struct aclfs_link_in *link = (const struct aclfs_link_in *) (buf + sizeof(*in));
    aclfs_req_link_source = link->oldnodeid;
  }
  if (in->opcode == ACLFS_FUSE_INIT) aclfs_passthrough_note_init(buf, (size_t) res);
  return (int) res;
}

// Tells the kernel to drop the cached attributes of `nodeid` (not its data).
static void expire_node_attributes (int fd, uint64_t nodeid) {
  struct aclfs_out_header out = { sizeof(out) + sizeof(struct aclfs_notify_inval_inode_out), ACLFS_FUSE_NOTIFY_INVAL_INODE, 0 };
  struct aclfs_notify_inval_inode_out arg = { nodeid, -1, 0 };
  struct iovec iov[2] = { { &out, sizeof(out) }, { &arg, sizeof(arg) } };
  // ENOENT: the kernel has already forgotten the node; nothing is cached.
  if (writev(fd, iov, 2) == -1 && errno != ENOENT) perror("fuse: expiring attributes");
}

// Writes a reply to /dev/fuse; 0, or -errno. Every reply goes through here.
int aclfs_write_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (writev(fuse_chan_fd(ch), iov, (int) count) != -1) return 0;
  int err = errno;
  // ENOENT: the request was interrupted and the reply is not wanted.
  if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
  return -err;
}

static int chan_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  int init_result;
  if (aclfs_send_init_reply(ch, iov, count, &init_result)) return init_result;
  // In place, before the passthrough rewrite copies a CREATE's entry.
  limit_attr_cache(iov, count);
  int open_result;
  if (aclfs_passthrough_send_reply(ch, iov, count, &open_result)) return open_result;
  if (aclfs_capture_reply(iov, count)) return 0;
  int written = aclfs_write_reply(ch, iov, count);
  if (written != 0) return written;
  const struct aclfs_out_header *out = (const struct aclfs_out_header *) iov[0].iov_base;
  if (aclfs_req_opcode == ACLFS_FUSE_LINK && aclfs_req_link_source != 0 && out->unique == aclfs_req_unique && out->error == 0) {
    expire_node_attributes(fuse_chan_fd(ch), aclfs_req_link_source);
  }
  return 0;
}

// The descriptor belongs to the kernel channel fuse_mount() made, which
// fuse_unmount() closes.
static void chan_destroy (struct fuse_chan *ch) {
  (void) ch;
}

static struct fuse_chan_ops chan_ops = {
  .receive = chan_receive,
  .send = chan_send,
  .destroy = chan_destroy,
};

// Our channel on the kernel channel's descriptor, with buffers for requests
// of ACLFS_MAX_REQUEST plus a page for headers (libfuse derives max_write
// from that size).
struct fuse_chan *aclfs_chan_new (int fd) {
  return fuse_chan_new(&chan_ops, fd, ACLFS_MAX_REQUEST + 4096, NULL);
}

#define ACLFS_MAX_WORKERS ACLFS_PROGRESS_SLOTS

// Every field under `lock`. The session pointer and buffer size are set
// before the first worker starts and read by workers at their start.
static struct {
  pthread_mutex_t lock;
  pthread_cond_t role;   // followers wait here for the reader role
  pthread_cond_t ended;  // the loop waits here for the last worker
  struct fuse_session *se;
  size_t bufsize;
  int reader_taken;
  int idle;
  int workers;
  unsigned next_slot;    // the progress slot (progress.c) of the next worker
} loop_state = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0 };

// Thread-local: whether this worker holds the reader role.
static __thread int is_reader = 0;

static void *worker (void *data);

// With loop_state.lock held.
static void spawn_worker (void) {
  pthread_t thread;
  pthread_attr_t attr;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Workers take no signals: they are the JS thread's to handle (as in
  // libfuse's own loop).
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  // Workers end only with the session, so at most ACLFS_MAX_WORKERS slots
  // are ever handed out per loop: each worker has its own.
  void *slot = (void *) (uintptr_t) loop_state.next_slot;
  if (pthread_create(&thread, &attr, worker, slot) == 0) {
    loop_state.workers++;
    loop_state.next_slot++;
  }
  else perror("fuse: creating a worker thread");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

// The calling worker is about to wait (for the JS thread, for the disk): if
// it is the reader, a follower takes over reading.
void aclfs_before_blocking (void) {
  if (!is_reader) return;
  is_reader = 0;
  pthread_mutex_lock(&loop_state.lock);
  loop_state.reader_taken = 0;
  if (loop_state.idle > 0) pthread_cond_signal(&loop_state.role);
  else if (loop_state.workers < ACLFS_MAX_WORKERS) spawn_worker();
  // Else every worker waits for JS; the first to get its answer reads next.
  pthread_mutex_unlock(&loop_state.lock);
}

// Waits for the reader role; 0 once the session has ended instead.
static int take_reader_role (struct fuse_session *se) {
  pthread_mutex_lock(&loop_state.lock);
  loop_state.idle++;
  while (loop_state.reader_taken && !fuse_session_exited(se)) {
    pthread_cond_wait(&loop_state.role, &loop_state.lock);
  }
  loop_state.idle--;
  int ok = !fuse_session_exited(se);
  if (ok) loop_state.reader_taken = 1;
  pthread_mutex_unlock(&loop_state.lock);
  is_reader = ok;
  return ok;
}

static void *worker (void *data) {
  unsigned slot = (unsigned) (uintptr_t) data;
  pthread_mutex_lock(&loop_state.lock);
  struct fuse_session *se = loop_state.se;
  size_t bufsize = loop_state.bufsize;
  pthread_mutex_unlock(&loop_state.lock);
  char *buf = malloc(bufsize);
  if (buf == NULL) {
    perror("fuse: allocating a request buffer");
    fuse_session_exit(se);
  }
  while (buf != NULL && !fuse_session_exited(se)) {
    if (!is_reader && !take_reader_role(se)) break;
    struct fuse_chan *ch = fuse_session_next_chan(se, NULL);
    struct fuse_buf fbuf = { .mem = buf, .size = bufsize };
    int res = fuse_session_receive_buf(se, &fbuf, &ch);
    if (res == -EINTR) continue;
    if (res <= 0) {
      if (res < 0) fuse_session_exit(se);
      break;
    }
    // libfuse answers a request before process_buf returns (every op of
    // the binding waits for its answer), so this brackets the whole request.
    aclfs_progress_begin(slot);
    if (aclfs_req_opcode == ACLFS_FUSE_READDIRPLUS) aclfs_readdirplus(se, ch, buf, (size_t) res);
    else fuse_session_process_buf(se, &fbuf, ch);
    aclfs_progress_end(slot);
  }
  free(buf);
  pthread_mutex_lock(&loop_state.lock);
  if (is_reader) loop_state.reader_taken = 0;
  is_reader = 0;
  loop_state.workers--;
  // Followers must see that the session ended; the loop, that all are gone.
  pthread_cond_broadcast(&loop_state.role);
  if (loop_state.workers == 0) pthread_cond_signal(&loop_state.ended);
  pthread_mutex_unlock(&loop_state.lock);
  return NULL;
}

// Runs the session until it ends and every worker has finished; in place of
// fuse_loop_mt, on the binding's fuse thread.
void aclfs_loop (struct fuse *fuse) {
  // The workers (created from this thread, so inheriting it) run
  // SCHED_BATCH: same CPU share, but a request that needs no answer before
  // its caller goes on (RELEASE after close, readahead) does not preempt the
  // caller; the worker takes it when the caller next waits, usually
  // together with the caller's next request. That halves the context
  // switches of an open/read/close loop on a busy CPU.
  struct sched_param batch = { 0 };
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch);
  struct fuse_session *se = fuse_get_session(fuse);
  pthread_mutex_lock(&loop_state.lock);
  loop_state.se = se;
  loop_state.bufsize = fuse_chan_bufsize(fuse_session_next_chan(se, NULL));
  loop_state.reader_taken = 0;
  loop_state.next_slot = 0;
  spawn_worker();
  while (loop_state.workers > 0) pthread_cond_wait(&loop_state.ended, &loop_state.lock);
  pthread_mutex_unlock(&loop_state.lock);
  fuse_session_reset(se);
}
