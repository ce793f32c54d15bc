// aclfs: the project's native core, compiled into the fuse-native addon.
//
// This is the one header of native/: the constants shared with the binding
// and with TypeScript, the stat layout, and every function one file of
// native/ offers another (or the patched fuse-native.c). See docs/native.md
// for the map of files, the hook points in fuse-native.c and the threads.
//
// Threads. Three kinds of thread touch this code:
//  - the JS thread (Node's main thread): the N-API calls of calls.c;
//  - libfuse worker threads (requests.c's request loop): the fuse
//    operations of fastpath.c, the channel of requests.c, init.c;
//  - other processes, through the shared page holding the commit epoch.
// Every variable reachable from more than one of them says, where it is
// defined, what protects it. Lock order: none of the project's locks is
// ever taken while another of them is held (each critical section is a
// leaf: it calls neither libfuse, nor JS, nor another section), so no
// order can be violated. The request loop's lock is held around
// pthread_create only.
//
// Pieces that need neither libfuse nor Node (layout.c, names.c,
// syscalls.c, allow.c, handles.c, keepcache.c, locals.c, progress.c,
// notify.c) are compiled on their own
// by native/test/run.sh for the unit tests; libfuse's and Node's types
// appear here only as incomplete struct types.
#ifndef ACLFS_H
#define ACLFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

struct statx;
struct fuse;
struct fuse_chan;
struct fuse_session;
struct fuse_operations;
struct fuse_file_info;
struct napi_env__;
struct napi_value__;

// ---- constants shared with fuse-native.c and JS ------------------------------

// Bumped whenever the JS-visible contract of the addon changes; the project
// refuses to run on a binding that exports another value
// (REQUIRED_PATCH_LEVEL in src/fs/mount.ts).
#define ACLFS_PATCH_LEVEL 16

// The largest READ or WRITE the kernel sends (see "larger requests" in
// init.c).
#define ACLFS_MAX_REQUEST (512 * 1024)

// Size of a page mapped by mapSharedPage (the commit epoch's page).
#define ACLFS_SHARED_PAGE 4096

// Access bits, as the rules spell them (r = 4, w = 2).
#define ACLFS_R 4
#define ACLFS_W 2

// ---- the stat layout -----------------------------------------------------------
//
// A stat crosses between C and JS as a Uint32Array of ACLFS_STAT_INTS words:
// 64-bit values as two words (low, high), times as seconds (64-bit, two
// words) and nanoseconds (one word). The birth time is 0.0 when the
// filesystem reports none. src/native/layout.ts mirrors these offsets;
// test/unit/native.test.ts fails when the two disagree.
// ACLFS_STAT_LAYOUT(X) lists each field as X(NAME, offset, words).
#define ACLFS_STAT_LAYOUT(X) \
  X(MODE, 0, 1) \
  X(UID, 1, 1) \
  X(GID, 2, 1) \
  X(SIZE, 3, 2) \
  X(DEV, 5, 2) \
  X(NLINK, 7, 1) \
  X(INO, 8, 2) \
  X(RDEV, 10, 2) \
  X(BLKSIZE, 12, 1) \
  X(BLOCKS, 13, 2) \
  X(ATIME, 15, 3) \
  X(MTIME, 18, 3) \
  X(CTIME, 21, 3) \
  X(BIRTHTIME, 24, 3)

#define ACLFS_STAT_OFFSET_ENUM(name, offset, words) ACLFS_STAT_##name = offset,
enum { ACLFS_STAT_LAYOUT(ACLFS_STAT_OFFSET_ENUM) ACLFS_STAT_INTS = 27 };
#undef ACLFS_STAT_OFFSET_ENUM

// layout.c
uint64_t aclfs_get_u64 (const uint32_t *ints, int at);
void aclfs_statx_to_ints (const struct statx *sx, uint32_t *ints);
void aclfs_ints_to_stat (const uint32_t *ints, struct stat *st);
void aclfs_statx_to_stat (const struct statx *sx, struct stat *st);
uint64_t aclfs_statx_dev (const struct statx *sx);

// ---- names (names.c) --------------------------------------------------------------

int aclfs_utf8_valid (const char *text, size_t len);
int aclfs_text_valid (const char *text);
int aclfs_type_shown (mode_t mode);
const char *aclfs_rel (const char *path);
int aclfs_is_dot (const char *name);

// ---- syscalls on the backing tree (syscalls.c) ---------------------------------------

int aclfs_open_beneath (int dirfd, const char *rel, int flags, mode_t mode);
int aclfs_parent_beneath (int dirfd, const char *path, char *parent, const char **name);
int aclfs_entry_shown (int dirfd, const char *name, unsigned char type);
int aclfs_proc_path (int dirfd, const char *path, char *proc, size_t size);
int aclfs_chmod_nofollow (int dirfd, const char *name, mode_t mode);
void aclfs_close_fd (int *fd);

// One record of getdents64(2).
struct aclfs_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// ---- the commit epoch and the allow table (allow.c) ---------------------------------

// The file an allow was decided on.
typedef struct {
  uint32_t type;       // S_IFREG or S_IFDIR
  uint64_t dev;
  uint64_t ino;
  int64_t birth_sec;   // 0.0: no birth time
  uint32_t birth_nsec;
} aclfs_file_id_t;

#define ACLFS_ALLOW_SLOTS 16384            // in sets of ACLFS_ALLOW_WAYS
#define ACLFS_ALLOW_WAYS 4                 // a full set loses its oldest entry
#define ACLFS_ALLOW_PATH 224               // longer paths are never replayed

int aclfs_fast_path_enable (uint32_t *epoch_word);
int aclfs_fast_path_on (void);
uint32_t aclfs_epoch_now (void);
uint32_t aclfs_allow_hash (uint32_t uid, uint32_t gid, uint32_t bits, const char *path, size_t len);
// An allow's flags: the open may be served by FUSE passthrough.
#define ACLFS_ALLOW_PASSTHROUGH 1u

int aclfs_allow_publish (uint32_t uid, uint32_t gid, uint32_t bits, const char *path, size_t len, const aclfs_file_id_t *file, uint32_t epoch, uint32_t flags);
int aclfs_allow_lookup (uint32_t uid, uint32_t gid, uint32_t bits, uint32_t type, const char *path, size_t len, aclfs_file_id_t *file, uint32_t *epoch, uint32_t *flags);
int aclfs_file_id_matches (const struct statx *sx, const aclfs_file_id_t *file);
void aclfs_file_id_from_ints (const uint32_t *ints, aclfs_file_id_t *file);

// ---- the handle table and open handles per user (handles.c) -------------------------

#define ACLFS_HANDLE_SLOTS 65536           // descriptors at or above go to JS
#define ACLFS_QUOTA_SLOTS 4096             // distinct uids; more are refused

// Who opened a handle in C (fastOpener).
typedef struct {
  uint32_t uid;
  uint32_t gid;
  uint32_t pid;
  uint32_t bits;
} aclfs_opener_t;

int aclfs_handles_init (void);
int aclfs_handle_current (uint64_t fh, uint32_t bits);
int aclfs_handle_vouch (uint64_t fh, uint32_t bits, uint32_t epoch, uint32_t flags);
int aclfs_handle_may_passthrough (uint64_t fh);
int aclfs_handle_fast_opened (uint64_t fh, const aclfs_opener_t *opener, uint32_t epoch);
int aclfs_handle_fast_opener (uint64_t fh, aclfs_opener_t *opener);
int aclfs_handle_hold (uint64_t fh, uint32_t uid);
void aclfs_handle_forget (uint64_t fh);
void aclfs_quota_set_limits (uint32_t per_user, uint32_t total);
int aclfs_quota_claim (uint32_t uid);
void aclfs_quota_release (uint32_t uid);
uint32_t aclfs_quota_count (uint32_t uid);
uint32_t aclfs_quota_open (void);

// ---- cached data belongs to one file (keepcache.c) --------------------------------

#define ACLFS_CACHED_SLOTS 8192
#define ACLFS_CACHED_PATH 224

int aclfs_keep_cache_init (void);
int aclfs_keep_cache (const char *path, const struct statx *sx);

// ---- the fuse operations served in C (fastpath.c) ---------------------------------

// How many opens, reads and writes were served in C, and directory entries
// listed with their attributes (READDIRPLUS); relaxed atomics, read for
// status, tests and the benchmark.
void aclfs_count_listed_attribute (void);
void aclfs_fast_counts (uint64_t counts[4]);

int aclfs_serve_tree (int root_fd);
void aclfs_install_ops (struct fuse_operations *ops);

// ---- the request loop and the channel (requests.c) ----------------------------------

// The request this worker thread is answering (set as it is read).
extern __thread uint32_t aclfs_req_opcode;
extern __thread uint64_t aclfs_req_unique;
// For a LINK: the node of the existing name.
extern __thread uint64_t aclfs_req_link_source;

void aclfs_before_blocking (void);
struct fuse_chan *aclfs_chan_new (int fd);
void aclfs_loop (struct fuse *fuse);
int aclfs_write_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count);

// The subset of <linux/fuse.h> the channel reads and writes (layout fixed by
// the ABI).
#define ACLFS_FUSE_LOOKUP 1
#define ACLFS_FUSE_GETATTR 3
#define ACLFS_FUSE_SETATTR 4
#define ACLFS_FUSE_SYMLINK 6
#define ACLFS_FUSE_MKNOD 8
#define ACLFS_FUSE_MKDIR 9
#define ACLFS_FUSE_LINK 13
#define ACLFS_FUSE_INIT 26
#define ACLFS_FUSE_READDIR 28
#define ACLFS_FUSE_CREATE 35
#define ACLFS_FUSE_READDIRPLUS 44

#define ACLFS_ENTRY_OUT_SIZE 128  // fuse_entry_out with the 7.9 fuse_attr

struct aclfs_in_header { uint32_t len; uint32_t opcode; uint64_t unique; uint64_t nodeid; uint32_t uid, gid, pid, padding; };
struct aclfs_out_header { uint32_t len; int32_t error; uint64_t unique; };

// ---- INIT and READDIRPLUS (init.c) ------------------------------------------------

int aclfs_send_init_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count, int *result);
int aclfs_capture_reply (const struct iovec iov[], size_t count);
void aclfs_readdirplus (struct fuse_session *se, struct fuse_chan *ch, const char *request, size_t request_len);

// ---- FUSE passthrough (passthrough.c) ---------------------------------------------

// Whether the mount serves allowed opens by passthrough.
enum {
  ACLFS_PASSTHROUGH_OFF = 0,      // not asked for (--data daemon)
  ACLFS_PASSTHROUGH_PENDING = 1,  // asked for, not mounted yet
  ACLFS_PASSTHROUGH_ON = 2,       // the kernel accepted it
  ACLFS_PASSTHROUGH_REFUSED = 3,  // asked for, refused: served through the daemon
};

// Before mounting: whether passthrough is wanted, and the smallest file
// (bytes) an open for reading only is served by passthrough.
void aclfs_passthrough_want (int want, uint64_t min_size);
int aclfs_passthrough_state (const char **why);
void aclfs_passthrough_counts (uint64_t counts[2]);
void aclfs_passthrough_note_init (const char *request, size_t len);
void aclfs_passthrough_init_reply (int fd, uint32_t *flags, uint32_t *flags2, uint32_t *stack_depth);
int aclfs_passthrough_probe (int root);
// After an allowed open of handle fh (the file as opened: sx): the backing
// id it is served by (> 0), 0 to serve it through the daemon, or -errno
// (EBUSY: the file is open by passthrough and this open may not be).
// open_flags: the caller's, for the small-file preference.
int aclfs_passthrough_open (uint64_t fh, const struct statx *sx, int may_passthrough, int open_flags);
void aclfs_passthrough_release (uint64_t fh);
int aclfs_passthrough_send_reply (struct fuse_chan *ch, const struct iovec iov[], size_t count, int *result);

// ---- what fuse-native.c hands JS with a request (dispatch.c) ------------------------

// The caller of a request handed to JS: captured on the worker thread
// (fuse_get_context() means nothing on the JS thread), passed as the last
// ACLFS_CALLER_ARGS arguments (uid, gid, pid) of every op.
typedef struct {
  uint32_t uid;
  uint32_t gid;
  uint32_t pid;
} aclfs_caller_t;

#define ACLFS_CALLER_ARGS 3

void aclfs_caller_capture (aclfs_caller_t *caller);
void aclfs_caller_push (struct napi_env__ *env, const aclfs_caller_t *caller, struct napi_value__ **argv);

// utimens's times as four arguments: (sec, nsec) of atime, then of mtime.
void aclfs_times_push (struct napi_env__ *env, const struct timespec times[2], struct napi_value__ **argv);

// ---- the pool of fuse-native's thread locals (locals.c) -----------------------------

// Opaque blocks, each belonging to one mount (`owner`): parked when a worker
// thread ends, taken over by the next new worker of the same mount (NULL:
// none parked, and a new block is counted as made).
void aclfs_locals_park (void *locals, const void *owner);
void *aclfs_locals_take (const void *owner);
void aclfs_locals_stats (uint32_t *created, uint32_t *idle);

// ---- progress of the request loop, for the watchdog (progress.c) -------------------

// One slot per worker thread of the request loop (at most
// ACLFS_PROGRESS_SLOTS, requests.c's most workers); a worker passes its slot
// as it begins and ends each request.
#define ACLFS_PROGRESS_SLOTS 64

void aclfs_progress_begin (unsigned slot);
void aclfs_progress_end (unsigned slot);
// Requests begun and ended so far, and how long (ns) the oldest request
// still in flight has been (0: none in flight).
void aclfs_progress_read (uint64_t *started, uint64_t *finished, uint64_t *oldest_ns);

// ---- the service manager's notification socket (notify.c) -------------------------

// Sends `message` ("READY=1\nSTATUS=...") as one datagram to the socket
// `socket_name` (a path, or '@' and an abstract name); 0, or -errno.
int aclfs_notify_send (const char *socket_name, const char *message);

// ---- the addon's calls (calls.c) ---------------------------------------------------

// Adds the project's calls to the addon's exports: aclfs_patch_level,
// aclfs_max_request, aclfs_stat_layout and aclfs_native (Fuse.native).
void aclfs_export_calls (struct napi_env__ *env, struct napi_value__ *exports);

#endif
