#!/bin/sh
# check.sh [build-dir] - installs a built tree into a scratch prefix and
# proves a program outside the tree can use it: headers, librtq (shared and
# static), rtq.pc through pkg-config, and the CMake package through
# find_package(rtq). Also checks that librtq exports only rtq_* symbols,
# never the internal rtq__* ones. The build dir defaults to build/.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
[ -f "$build/CMakeCache.txt" ] || { echo "check.sh: $build is not a configured build dir" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/rtq-install-check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null

libdir=$(dirname "$(find "$prefix" -name rtq.pc -path '*/pkgconfig/*' | head -n 1)")
libdir=${libdir%/pkgconfig}
for f in "$prefix/include/rtq/common.h" "$prefix/include/rtq/version.h" "$libdir/librtq.so" \
  "$libdir/librtq.a" "$libdir/pkgconfig/rtq.pc" "$libdir/cmake/rtq/rtqConfig.cmake" \
  "$libdir/cmake/rtq/rtqConfigVersion.cmake" "$libdir/cmake/rtq/rtqTargets.cmake"; do
  [ -e "$f" ] || { echo "check.sh: not installed: ${f#"$prefix"/}" >&2; exit 1; }
done

# Exported symbols: the public API only.
bad=$(nm -D --defined-only "$libdir/librtq.so" | awk '{print $3}' | grep -v -E '^(rtq_|_init$|_fini$)' || true)
internal=$(nm -D --defined-only "$libdir/librtq.so" | awk '{print $3}' | grep -E '^rtq__' || true)
if [ -n "$bad$internal" ]; then
  echo "check.sh: librtq.so exports symbols outside the public API:" >&2
  echo "$bad $internal" >&2
  exit 1
fi

# 1. pkg-config, the way a Makefile would use it.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046 # pkg-config output is a word list on purpose
cc -std=c11 -Wall -Werror -o "$scratch/consumer_pc" "$root/tests/install/consumer.c" $(pkg-config --cflags --libs rtq)
LD_LIBRARY_PATH="$libdir" "$scratch/consumer_pc" >/dev/null
echo "check.sh: pkg-config consumer ok"

# 2. find_package(rtq), shared and static.
cmake -S "$root/tests/install" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$scratch/consumer/consumer_shared" >/dev/null
"$scratch/consumer/consumer_static" >/dev/null
echo "check.sh: find_package(rtq) consumers ok (shared and static)"
