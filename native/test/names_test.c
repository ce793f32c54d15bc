// names.c: strict UTF-8, the types the mount shows, mount paths.
#include <string.h>
#include <sys/stat.h>

#include "../aclfs.h"
#include "check.h"

static int valid (const char *s) {
  return aclfs_utf8_valid(s, strlen(s));
}

int main (void) {
  CHECK(valid(""));
  CHECK(valid("plain ascii"));
  CHECK(valid("caf\xc3\xa9"));                    // é
  CHECK(valid("\xe2\x82\xac"));                   // €
  CHECK(valid("\xf0\x9f\x98\x80"));               // U+1F600
  CHECK(valid("\xf4\x8f\xbf\xbf"));               // U+10FFFF
  CHECK(!valid("a\xff"));                         // not UTF-8 at all
  CHECK(!valid("\xc0\xaf"));                      // overlong '/'
  CHECK(!valid("\xc1\xbf"));                      // overlong
  CHECK(!valid("\xe0\x80\xaf"));                  // overlong, 3 bytes
  CHECK(!valid("\xf0\x80\x80\xaf"));              // overlong, 4 bytes
  CHECK(!valid("\xed\xa0\x80"));                  // surrogate U+D800
  CHECK(!valid("\xed\xbf\xbf"));                  // surrogate U+DFFF
  CHECK(!valid("\xf4\x90\x80\x80"));              // above U+10FFFF
  CHECK(!valid("\xf5\x80\x80\x80"));              // lead byte past 0xF4
  CHECK(!valid("\xc3"));                          // truncated
  CHECK(!valid("\xe2\x82"));                      // truncated
  CHECK(!valid("\xe2\x28\xa1"));                  // bad continuation
  CHECK(!valid("\x80"));                          // lone continuation
  CHECK(aclfs_utf8_valid("ab\0c", 4));            // a NUL is a valid code point; callers stop at it
  CHECK(aclfs_text_valid("caf\xc3\xa9"));
  CHECK(!aclfs_text_valid("a\xef\xbf"));

  CHECK(aclfs_type_shown(S_IFREG | 0644));
  CHECK(aclfs_type_shown(S_IFDIR | 0755));
  CHECK(aclfs_type_shown(S_IFLNK | 0777));
  CHECK(!aclfs_type_shown(S_IFIFO | 0644));
  CHECK(!aclfs_type_shown(S_IFSOCK | 0644));
  CHECK(!aclfs_type_shown(S_IFCHR | 0644));
  CHECK(!aclfs_type_shown(S_IFBLK | 0644));

  CHECK(strcmp(aclfs_rel("/"), ".") == 0);
  CHECK(strcmp(aclfs_rel("/a"), "a") == 0);
  CHECK(strcmp(aclfs_rel("/a/b"), "a/b") == 0);
  CHECK(strcmp(aclfs_rel("a/b"), "a/b") == 0);

  CHECK(aclfs_is_dot("."));
  CHECK(aclfs_is_dot(".."));
  CHECK(!aclfs_is_dot("..."));
  CHECK(!aclfs_is_dot(".a"));
  CHECK(!aclfs_is_dot(""));
  return check_summary("names");
}
