// aclfs: FUSE passthrough: after an allowed open, the kernel reads and
// writes the backing file itself, in the backing filesystem's page cache,
// without a request to the daemon.
//
// The protocol (Linux 6.9 on, <linux/fuse.h> 7.40) is newer than libfuse 2,
// so it is spoken here, where the project already writes the INIT reply:
//  - INIT: the kernel offers FUSE_PASSTHROUGH in init_in's flags2; the reply
//    accepts it (FUSE_INIT_EXT, flags2) with a stacking depth. The kernel
//    enables passthrough only with a depth of 1..2 and without writeback
//    cache (which the project never asks for).
//  - OPEN and CREATE: the backing descriptor is registered on the FUSE
//    device (FUSE_DEV_IOC_BACKING_OPEN, which needs CAP_SYS_ADMIN), and the
//    reply's fuse_open_out says FOPEN_PASSTHROUGH with the backing id. The
//    kernel opens its own backing file from the registered one with the
//    caller's open flags, so one registration serves every open of a file.
//  - The kernel keeps one backing file per FUSE inode: every open of an
//    inode that has one must be a passthrough open of that same backing
//    (else EIO), and an inode open through the daemon (in the FUSE page
//    cache) refuses passthrough opens (EIO). So the files are counted here
//    by their backing identity (dev, ino), which covers every FUSE inode of
//    a file (each hard link is one): a file open through the daemon has its
//    next opens served through the daemon too; a file open by passthrough
//    shares its registration with its next opens, and an open that must go
//    through the daemon (its rule is revocable) fails EBUSY until the
//    passthrough handles are closed.
//  - A small file opened for reading only (below the mount's minimum size,
//    64 KiB by default) is served through the daemon unless it is open by
//    passthrough already: its data is read from the FUSE page cache the
//    daemon keeps across opens (keepcache.c), which costs an open less than
//    registering a backing file does, and a small file has nothing to gain
//    from the backing filesystem's larger folios. That preference is soft:
//    such an open joins a registration that exists instead of failing
//    EBUSY.
//  - RELEASE: the registration is dropped (FUSE_DEV_IOC_BACKING_CLOSE) with
//    the file's last passthrough handle.
//
// The kernel releases an inode's io mode before it sends RELEASE, so the
// counts here are never less than the kernel's: at worst an open is served
// through the daemon, or refused EBUSY, a moment longer than necessary.
//
// Which opens may use it is decided in JS and handed over with the allow:
// never a revocable rule's, never a let-through of permissive mode or of
// an audit-only rule (see src/fs/handles.ts).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aclfs.h"

// The subset of <linux/fuse.h> 7.40 used here (Debian 12's headers predate it).
#define ACLFS_FUSE_INIT_EXT (1u << 30)
#define ACLFS_FUSE_PASSTHROUGH_FLAGS2 (1u << 5)   // FUSE_PASSTHROUGH (1 << 37), in flags2
#define ACLFS_FOPEN_DIRECT_IO (1u << 0)
#define ACLFS_FOPEN_KEEP_CACHE (1u << 1)
#define ACLFS_FOPEN_PASSTHROUGH (1u << 7)
struct aclfs_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define ACLFS_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct aclfs_backing_map)
#define ACLFS_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
struct aclfs_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
// fuse_init_in from 7.36 on: major, minor, max_readahead, flags, flags2.
struct aclfs_init_in { uint32_t major, minor, max_readahead, flags, flags2; };
#define ACLFS_FUSE_OPEN 14

// The stacking depth announced: 2, the most the kernel allows, so that a
// backing tree on a stacked filesystem (overlayfs, as in a container's own
// root) can be passed through. The price: the mount cannot itself be a
// layer of an overlayfs.
#define ACLFS_STACK_DEPTH 2

// ---- the mount's state -----------------------------------------------------------

// Written by the JS thread before mounting (wanted, simulated refusal), then
// by the worker answering INIT (offered, state, device), later only by a
// worker finding the kernel refusing registrations (state, reason): atomics;
// `reason` points at a string literal and is stored before `state`
// (release), read after it (acquire).
static _Atomic int wanted = 0;
static _Atomic uint64_t min_size = 0;
static _Atomic int state = ACLFS_PASSTHROUGH_OFF;
static _Atomic(const char *) reason = NULL;
static _Atomic int device_fd = -1;
static _Atomic uint32_t kernel_flags2 = 0;
static _Atomic int kernel_offered = 0;

// Opens served by passthrough so far, and registrations made: statistics,
// relaxed.
static _Atomic uint64_t passthrough_opens = 0;
static _Atomic uint64_t registrations = 0;

static void refuse (const char *why) {
  atomic_store_explicit(&reason, why, memory_order_relaxed);
  atomic_store_explicit(&state, ACLFS_PASSTHROUGH_REFUSED, memory_order_release);
}

void aclfs_passthrough_want (int want, uint64_t smallest) {
  atomic_store(&wanted, want != 0);
  atomic_store(&min_size, smallest);
  atomic_store(&state, want ? ACLFS_PASSTHROUGH_PENDING : ACLFS_PASSTHROUGH_OFF);
  atomic_store(&reason, NULL);
}

int aclfs_passthrough_state (const char **why) {
  int now = atomic_load_explicit(&state, memory_order_acquire);
  if (why != NULL) *why = atomic_load_explicit(&reason, memory_order_relaxed);
  return now;
}

void aclfs_passthrough_counts (uint64_t counts[2]) {
  counts[0] = atomic_load_explicit(&passthrough_opens, memory_order_relaxed);
  counts[1] = atomic_load_explicit(&registrations, memory_order_relaxed);
}

// The INIT request, as read from the device: what the kernel offers.
void aclfs_passthrough_note_init (const char *request, size_t len) {
  if (len < sizeof(struct aclfs_in_header) + sizeof(struct aclfs_init_in)) return;
  const struct aclfs_init_in *in = (const struct aclfs_init_in *) (request + sizeof(struct aclfs_in_header));
  int offered = in->major == 7 && in->minor >= 40 && (in->flags & ACLFS_FUSE_INIT_EXT) && (in->flags2 & ACLFS_FUSE_PASSTHROUGH_FLAGS2);
  atomic_store(&kernel_flags2, in->flags2);
  atomic_store(&kernel_offered, offered);
}

// The INIT reply: accepts passthrough if wanted and offered. Returns the
// flags2 and stack depth to put in the reply (0, 0: none).
void aclfs_passthrough_init_reply (int fd, uint32_t *flags, uint32_t *flags2, uint32_t *stack_depth) {
  *flags2 = 0;
  *stack_depth = 0;
  if (!atomic_load(&wanted)) return;
  const char *simulated = getenv("ACLFS_SIMULATE_NO_PASSTHROUGH");
  if (simulated != NULL && simulated[0] != '\0') {
    refuse("the kernel does not offer FUSE passthrough (simulated by ACLFS_SIMULATE_NO_PASSTHROUGH)");
    return;
  }
  if (!atomic_load(&kernel_offered)) {
    refuse("the kernel does not offer FUSE passthrough (Linux 6.9 or later with CONFIG_FUSE_PASSTHROUGH)");
    return;
  }
  *flags |= ACLFS_FUSE_INIT_EXT;
  *flags2 = ACLFS_FUSE_PASSTHROUGH_FLAGS2;
  *stack_depth = ACLFS_STACK_DEPTH;
  atomic_store(&device_fd, fd);
  atomic_store_explicit(&state, ACLFS_PASSTHROUGH_ON, memory_order_release);
}

static int passthrough_on (void) {
  return atomic_load_explicit(&state, memory_order_acquire) == ACLFS_PASSTHROUGH_ON;
}

// Registers fd with the kernel: the backing id (> 0), or -errno.
static int register_backing (int fd) {
  struct aclfs_backing_map map = { fd, 0, 0 };
  int id = ioctl(atomic_load(&device_fd), ACLFS_DEV_IOC_BACKING_OPEN, &map);
  if (id > 0) {
    atomic_fetch_add_explicit(&registrations, 1, memory_order_relaxed);
    return id;
  }
  return id < 0 ? -errno : -EIO;
}

static void unregister_backing (int32_t id) {
  uint32_t backing_id = (uint32_t) id;
  if (ioctl(atomic_load(&device_fd), ACLFS_DEV_IOC_BACKING_CLOSE, &backing_id) != 0 && errno != ENOENT) perror("aclfs: closing a backing file");
}

// After mounting: whether the kernel registers a backing file of the tree
// (an unnamed temporary file, gone when closed). A refusal for want of
// CAP_SYS_ADMIN, or for the tree's stacking depth, turns passthrough off
// for the mount. 0 when passthrough is on (or the tree cannot make a
// temporary file: the first open finds out), -1 when refused.
int aclfs_passthrough_probe (int root) {
  if (!passthrough_on()) return aclfs_passthrough_state(NULL) == ACLFS_PASSTHROUGH_REFUSED ? -1 : 0;
  int fd = openat(root, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  int id = register_backing(fd);
  close(fd);
  if (id > 0) {
    unregister_backing(id);
    return 0;
  }
  if (id == -EPERM) refuse("the kernel refused to register a backing file: the daemon lacks CAP_SYS_ADMIN");
  else if (id == -ELOOP) refuse("the backing tree is stacked too deep for passthrough (more than one stacked filesystem below it)");
  else refuse("the kernel refused to register a backing file");
  return -1;
}

// ---- open files by backing identity ------------------------------------------------

typedef struct {
  uint64_t dev;
  uint64_t ino;
  uint32_t used;
  int32_t backing_id;         // > 0 while passthrough handles are open
  uint32_t passthrough_open;  // handles served by passthrough
  uint32_t daemon_open;       // handles served through the daemon
} aclfs_backed_t;

typedef struct {
  uint64_t dev;
  uint64_t ino;
  uint32_t kind;              // 0: none, 1: passthrough, 2: daemon
} aclfs_handle_file_t;

#define KIND_PASSTHROUGH 1
#define KIND_DAEMON 2
#define ACLFS_BACKED_SLOTS (2 * ACLFS_HANDLE_SLOTS)

// The files (open addressing, linear probing, backward-shift deletion;
// never fuller than half, as every entry is some handle's) and what each
// handle counts in them, all under backed_lock: a leaf lock, held across
// the registration ioctls only. Allocated on the first open.
static pthread_mutex_t backed_lock = PTHREAD_MUTEX_INITIALIZER;
static aclfs_backed_t *backed = NULL;
static aclfs_handle_file_t *handle_files = NULL;
// Set (release) once the tables exist, which is before any handle is
// counted in them: until then a RELEASE has nothing to give back, and the
// daemon data path never takes backed_lock at all.
static _Atomic int counting = 0;

static uint32_t slot_hash (uint64_t dev, uint64_t ino) {
  uint64_t h = (ino * 0x9E3779B97F4A7C15ull) ^ (dev * 0xC2B2AE3D27D4EB4Full);
  return (uint32_t) (h >> 32) % ACLFS_BACKED_SLOTS;
}

// The file's entry, made if `make`; NULL if absent (or no memory). With
// backed_lock held.
static aclfs_backed_t *file_entry (uint64_t dev, uint64_t ino, int make) {
  if (backed == NULL) {
    if (!make) return NULL;
    backed = calloc(ACLFS_BACKED_SLOTS, sizeof(aclfs_backed_t));
    handle_files = calloc(ACLFS_HANDLE_SLOTS, sizeof(aclfs_handle_file_t));
    if (backed == NULL || handle_files == NULL) {
      free(backed);
      free(handle_files);
      backed = NULL;
      handle_files = NULL;
      return NULL;
    }
    atomic_store_explicit(&counting, 1, memory_order_release);
  }
  for (uint32_t i = slot_hash(dev, ino), n = 0; n < ACLFS_BACKED_SLOTS; i = (i + 1) % ACLFS_BACKED_SLOTS, n++) {
    aclfs_backed_t *e = &backed[i];
    if (!e->used) {
      if (!make) return NULL;
      *e = (aclfs_backed_t) { dev, ino, 1, 0, 0, 0 };
      return e;
    }
    if (e->dev == dev && e->ino == ino) return e;
  }
  return NULL;
}

// Removes an entry no handle counts any more, shifting back the entries
// after it that probed past it. With backed_lock held.
static void drop_entry (aclfs_backed_t *e) {
  uint32_t hole = (uint32_t) (e - backed);
  backed[hole].used = 0;
  for (uint32_t i = (hole + 1) % ACLFS_BACKED_SLOTS; backed[i].used; i = (i + 1) % ACLFS_BACKED_SLOTS) {
    uint32_t home = slot_hash(backed[i].dev, backed[i].ino);
    // Whether `home` lies cyclically in (hole, i]: then the entry stays.
    int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (stays) continue;
    backed[hole] = backed[i];
    backed[i].used = 0;
    hole = i;
  }
}

// The reply this worker is about to send for its OPEN or CREATE: the
// backing id to answer with (0: none). Thread-local.
static __thread struct {
  uint64_t unique;
  int32_t backing_id;
} pending;

// Whether an open allowed passthrough would rather be served through the
// daemon: a small file opened for reading only (see the top of this file).
static int prefers_daemon (const struct statx *sx, int open_flags) {
  return (open_flags & O_ACCMODE) == O_RDONLY && sx->stx_size < atomic_load_explicit(&min_size, memory_order_relaxed);
}

int aclfs_passthrough_open (uint64_t fh, const struct statx *sx, int may_passthrough, int open_flags) {
  if (!passthrough_on() || fh >= ACLFS_HANDLE_SLOTS || !S_ISREG(sx->stx_mode)) return 0;
  uint64_t dev = aclfs_statx_dev(sx);
  pthread_mutex_lock(&backed_lock);
  aclfs_backed_t *e = file_entry(dev, sx->stx_ino, 1);
  int result = 0;
  if (e == NULL) {
    result = -ENOMEM;
  } else if (may_passthrough && e->daemon_open == 0 && (e->backing_id > 0 || !prefers_daemon(sx, open_flags))) {
    if (e->backing_id == 0) {
      int id = register_backing((int) fh);
      if (id > 0) e->backing_id = id;
      else if (id == -EPERM) refuse("the kernel refused to register a backing file: the daemon lacks CAP_SYS_ADMIN");
    }
    if (e->backing_id > 0) {
      e->passthrough_open++;
      handle_files[fh] = (aclfs_handle_file_t) { dev, sx->stx_ino, KIND_PASSTHROUGH };
      pending.unique = aclfs_req_unique;
      pending.backing_id = e->backing_id;
      result = e->backing_id;
    }
  } else if (e->passthrough_open > 0) {
    // A file open by passthrough can only be opened by passthrough.
    result = -EBUSY;
  }
  if (result == 0) {
    e->daemon_open++;
    handle_files[fh] = (aclfs_handle_file_t) { dev, sx->stx_ino, KIND_DAEMON };
  }
  if (e != NULL && e->passthrough_open == 0 && e->daemon_open == 0) drop_entry(e);
  pthread_mutex_unlock(&backed_lock);
  if (result > 0) atomic_fetch_add_explicit(&passthrough_opens, 1, memory_order_relaxed);
  return result;
}

void aclfs_passthrough_release (uint64_t fh) {
  if (fh >= ACLFS_HANDLE_SLOTS || !atomic_load_explicit(&counting, memory_order_acquire)) return;
  pthread_mutex_lock(&backed_lock);
  if (handle_files != NULL && handle_files[fh].kind != 0) {
    aclfs_handle_file_t h = handle_files[fh];
    handle_files[fh].kind = 0;
    aclfs_backed_t *e = file_entry(h.dev, h.ino, 0);
    if (e != NULL) {
      if (h.kind == KIND_PASSTHROUGH && e->passthrough_open > 0) e->passthrough_open--;
      if (h.kind == KIND_DAEMON && e->daemon_open > 0) e->daemon_open--;
      if (e->passthrough_open == 0 && e->backing_id > 0) {
        unregister_backing(e->backing_id);
        e->backing_id = 0;
      }
      if (e->passthrough_open == 0 && e->daemon_open == 0) drop_entry(e);
    }
  }
  pthread_mutex_unlock(&backed_lock);
}

// Rewrites this worker's OPEN or CREATE reply to answer by passthrough; 1
// if it was sent here.
int aclfs_passthrough_send_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count, int *result) {
  if (pending.backing_id == 0) return 0;
  if (pending.unique != aclfs_req_unique) {
    pending.backing_id = 0;  // left behind by a request that was never answered
    return 0;
  }
  if (count < 1 || iov[0].iov_len < sizeof(struct aclfs_out_header)) return 0;
  const struct aclfs_out_header *out = (const struct aclfs_out_header *) iov[0].iov_base;
  if (out->unique != pending.unique) return 0;
  // The one reply to the request: whatever it is, the backing id is spent.
  int32_t backing_id = pending.backing_id;
  pending.backing_id = 0;
  if (count != 2) return 0;
  size_t len = iov[1].iov_len;
  int opening = aclfs_req_opcode == ACLFS_FUSE_OPEN && len == sizeof(struct aclfs_open_out);
  int creating = aclfs_req_opcode == ACLFS_FUSE_CREATE && len == ACLFS_ENTRY_OUT_SIZE + sizeof(struct aclfs_open_out);
  if (out->error != 0 || (!opening && !creating)) return 0;
  char arg[ACLFS_ENTRY_OUT_SIZE + sizeof(struct aclfs_open_out)];
  memcpy(arg, iov[1].iov_base, len);
  struct aclfs_open_out open_out;
  memcpy(&open_out, arg + len - sizeof(open_out), sizeof(open_out));
  // The kernel refuses passthrough with a page-cache flag (EIO).
  open_out.open_flags &= ~(ACLFS_FOPEN_KEEP_CACHE | ACLFS_FOPEN_DIRECT_IO);
  open_out.open_flags |= ACLFS_FOPEN_PASSTHROUGH;
  open_out.backing_id = backing_id;
  memcpy(arg + len - sizeof(open_out), &open_out, sizeof(open_out));
  struct iovec reply[2] = { iov[0], { arg, len } };
  *result = aclfs_write_reply(ch, reply, 2);
  return 1;
}
