// aclfs: what the mount shows, by name and by type.
//
// Names cross into JS as strings and rules name paths in Unicode, so a name
// that is not valid UTF-8 would be decoded lossily there and confused with
// its look-alike ("a\xff" with "a\xef\xbf\xbd"). Such a name is refused at
// the one place every name enters the mount, the LOOKUP (libfuse answers it
// with getattr: EILSEQ, fastpath.c), so no later request can carry it, and
// listings leave it out. A symlink's contents and an xattr's name are
// checked where they cross (fastpath.c).
//
// FIFOs, sockets and device nodes are hidden the same way (ENOENT, never
// listed): the kernel opens them itself without asking the daemon, so no
// rule could decide them, and a FIFO shown through the mount would be a
// channel between its users that no rule governs.
#include <string.h>
#include <sys/stat.h>

#include "aclfs.h"

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF.
int aclfs_utf8_valid (const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *) text;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t more;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { more = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { more = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { more = 3; cp = c & 0x07; }
    else return 0;
    if (len - i <= more) return 0;
    for (size_t k = 1; k <= more; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += more + 1;
  }
  return 1;
}

int aclfs_text_valid (const char *text) {
  return aclfs_utf8_valid(text, strlen(text));
}

// Regular files, directories and symlinks; nothing the kernel would open
// without the daemon.
int aclfs_type_shown (mode_t mode) {
  return S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode);
}

// A mount path ("/", "/a/b") relative to the root descriptor ("." or "a/b").
const char *aclfs_rel (const char *path) {
  if (path[0] != '/') return path;
  return path[1] == '\0' ? "." : path + 1;
}

// "." or "..".
int aclfs_is_dot (const char *name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}
