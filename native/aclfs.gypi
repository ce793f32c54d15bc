# The project's C as a gyp target, included by the patched binding.gyp of
# node_modules/fuse-native (paths here are relative to native/). A static
# library the addon links; its dependents get native/ on the include path
# and Debian's libfuse2 (not the copy fuse-shared-library bundles).
{
  "targets": [{
    "target_name": "aclfs",
    "type": "static_library",
    "include_dirs": [
      "<!(node -e \"require('napi-macros')\")",
      "<!(node -e \"require('fuse-shared-library/include')\")",
      ".",
    ],
    "direct_dependent_settings": {
      "include_dirs": ["."],
    },
    "link_settings": {
      "libraries": ["-l:libfuse.so.2"],
    },
    "sources": [
      "allow.c",
      "calls.c",
      "fastpath.c",
      "handles.c",
      "init.c",
      "keepcache.c",
      "layout.c",
      "names.c",
      "passthrough.c",
      "requests.c",
      "syscalls.c",
      "dispatch.c",
      "locals.c",
      "progress.c",
      "notify.c",
    ],
    # Warnings are errors here (fuse-native.c keeps its own flags).
    "cflags": ["-g", "-O3", "-fPIC", "-std=gnu11", "-Wall", "-Wextra", "-Werror"],
  }],
}
