#!/bin/sh
# Builds and runs the native core's unit tests (native/test/*_test.c), which
# need neither libfuse nor Node nor a mount: plainly, under AddressSanitizer
# + UndefinedBehaviorSanitizer, and the threaded test under
# ThreadSanitizer. Any failed check or sanitizer report fails the run.
#
#   native/test/run.sh [plain|asan|tsan]...   (default: all three)
#
# Builds into $ACLFS_NATIVE_TEST_OUT (default: a temporary directory).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
native=$(dirname "$here")
out=${ACLFS_NATIVE_TEST_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/aclfs-native-test.XXXXXX")}
mkdir -p "$out"
cc=${CC:-cc}
modes=${*:-plain asan tsan}

# The pieces of native/ that stand alone.
units="layout.c names.c syscalls.c allow.c handles.c keepcache.c locals.c progress.c notify.c"
cflags="-std=gnu11 -g -O1 -Wall -Wextra -Werror -pthread -I$native"

failed=0
run() { # mode test [env...]
  mode=$1
  test=$2
  shift 2
  srcs=""
  for u in $units; do srcs="$srcs $native/$u"; done
  # passthrough.c talks to the FUSE device: its test fakes the device by
  # wrapping ioctl(2) at link time.
  extra=""
  if [ "$test" = passthrough_test ]; then
    srcs="$srcs $native/passthrough.c"
    extra="-Wl,--wrap=ioctl"
  fi
  case $mode in
    plain) flags="" ;;
    asan) flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;;
    tsan) flags="-fsanitize=thread -fno-omit-frame-pointer" ;;
  esac
  bin="$out/$test.$mode"
  # shellcheck disable=SC2086
  if ! $cc $cflags $flags -o "$bin" "$here/$test.c" $srcs $extra; then
    echo "FAIL $test ($mode): does not compile"
    failed=1
    return
  fi
  if env "$@" "$bin"; then
    echo "PASS $test ($mode)"
  else
    echo "FAIL $test ($mode)"
    failed=1
  fi
}

for mode in $modes; do
  case $mode in
    plain|asan)
      for t in names layout allow handles keepcache syscalls passthrough locals progress notify threads; do
        run "$mode" "${t}_test" ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
      done
      ;;
    tsan)
      run tsan threads_test TSAN_OPTIONS=halt_on_error=1:exitcode=66
      ;;
    *)
      echo "unknown mode: $mode" >&2
      exit 2
      ;;
  esac
done
if [ -z "${ACLFS_NATIVE_TEST_OUT:-}" ]; then rm -rf "$out"; fi
exit $failed
