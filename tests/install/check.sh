#!/bin/sh
# check.sh [build-dir] - installs a built tree into a scratch prefix and
# proves a program outside the tree can use it: headers, librtq (shared and
# static), rtq.pc through pkg-config, and the CMake package through
# find_package(rtq). Also checks that librtq exports only rtq_* symbols,
# never the internal rtq__* ones. Then it follows the README's "Install
# and run it yourself" word for word: the README's producer and handler
# (which must equal examples/readme/), built with the README's cc lines and
# its CMake project, then its broker and worker lines run against a private
# redis-server, and the producer's task must complete. The build dir
# defaults to build/.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
[ -f "$build/CMakeCache.txt" ] || { echo "check.sh: $build is not a configured build dir" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/rtq-install-check.XXXXXX")
pids=""
# Processes this script started are stopped by pid (SIGTERM, then SIGKILL).
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do
    n=0
    while kill -0 "$p" 2>/dev/null && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "check.sh: $*" >&2; exit 1; }
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

# 3. The README, word for word.
readme=$root/README.md
# The lines of one "## " section of the README.
section() { awk -v h="$1" '$0 == h { on = 1; next } on && /^## / { exit } on { print }' "$readme"; }
# The n-th fenced block of language lang on stdin.
block() {
  awk -v lang="$1" -v want="$2" '
    /^```/ { if (fence) { fence = 0; cap = 0; next }
             fence = 1; if ($0 == "```" lang && ++n == want) cap = 1; next }
    cap { print }'
}
work=$scratch/readme
mkdir -p "$work/cmake"
section "## A producer and a handler" | block c 1 >"$work/producer.c"
section "## A producer and a handler" | block c 2 >"$work/handler.c"
cmp -s "$work/producer.c" "$root/examples/readme/producer.c" ||
  fail "README's producer differs from examples/readme/producer.c"
cmp -s "$work/handler.c" "$root/examples/readme/handler.c" ||
  fail "README's handler differs from examples/readme/handler.c"

install=$(section "## Install and run it yourself")
[ -n "$install" ] || fail "README has no section \"Install and run it yourself\""
ccs=$(printf '%s\n' "$install" | grep '^cc ' || true)
[ "$(printf '%s\n' "$ccs" | grep -c .)" -eq 2 ] || fail "expected the README's two cc lines, found: $ccs"
# pkg-config finds the scratch prefix through PKG_CONFIG_PATH (set above),
# as the README says for a prefix other than /usr/local.
printf '%s\n' "$ccs" | while IFS= read -r line; do
  (cd "$work" && sh -c "$line") || fail "README line failed: $line"
done
if [ ! -x "$work/producer" ] || [ ! -f "$work/hello.so" ]; then
  fail "the README's cc lines made no producer and hello.so"
fi
echo "check.sh: README pkg-config lines ok"

printf '%s\n' "$install" | block cmake 1 >"$work/cmake/CMakeLists.txt"
cp "$work/producer.c" "$work/handler.c" "$work/cmake/"
cmk=$(printf '%s\n' "$install" | grep '^cmake -S \. -B build &&' || true)
[ -n "$cmk" ] || fail "README has no 'cmake -S . -B build && ...' line for the CMake project"
(cd "$work/cmake" && CMAKE_PREFIX_PATH=$prefix sh -c "${cmk%%#*}") >"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log" >&2; fail "README line failed: $cmk"; }
if [ ! -x "$work/cmake/build/producer" ] || [ ! -f "$work/cmake/build/hello.so" ]; then
  fail "the README's CMake project made no producer and hello.so"
fi
echo "check.sh: README find_package(rtq) project ok"

# The three commands, against a private redis-server on a unix socket (the
# README's export line names the reader's own Redis; this one replaces it).
sock=$scratch/redis.sock
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --maxmemory-policy noeviction \
  --dir "$scratch" >"$scratch/redis.log" 2>&1 &
pids="$pids $!"
n=0
until redis-cli -s "$sock" ping >/dev/null 2>&1; do
  [ "$n" -lt 100 ] || fail "redis-server did not start (see $scratch/redis.log)"
  sleep 0.1
  n=$((n + 1))
done
export RTQ_REDIS_URL="unix://$sock"
export PATH="$prefix/bin:$PATH"
runs=$(printf '%s\n' "$install" | grep -E '^rtq-(broker|worker)( .*)? &$' || true)
[ "$(printf '%s\n' "$runs" | grep -c .)" -eq 2 ] || fail "expected the README's broker and worker lines, found: $runs"
cd "$work"
for n in 1 2; do
  line=$(printf '%s\n' "$runs" | sed -n "${n}p")
  eval "${line%&} >>\"\$scratch/run.log\" 2>&1 &"
  pids="$pids $!"
done
cd "$root"
out=$(cd "$work" && LD_LIBRARY_PATH="$libdir" timeout 60 ./producer 2>&1) || {
  cat "$scratch/run.log" >&2
  fail "the README's producer failed: $out"
}
case $out in
  *" completed "*'"greeting":"hello, world"'*) ;;
  *) cat "$scratch/run.log" >&2; fail "the README's producer printed: $out" ;;
esac
echo "check.sh: README broker, worker and producer ok ($out)"
