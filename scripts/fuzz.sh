#!/bin/sh
# fuzz.sh [seconds] [target...] - builds the libFuzzer targets with clang,
# ASan and UBSan in build-fuzz/ and runs each for a bounded time (default
# 60 s each) on a scratch copy of its seed corpus, so the committed seeds
# stay as they are. Exits non-zero on any crash, sanitizer report, leak,
# timeout or oversized allocation; the reproducer is left in
# build-fuzz/fuzz-artifacts/<target>/.
#
# Targets (tests/fuzz/<target>.c; seeds in tests/fuzz/corpus-<target>/
# where present, written by tests/fuzz/make_corpus.py for the first two):
#   fuzz_args      task args: the worker's check, unpack/pack, args <-> JSON
#   fuzz_replies   the scripts' replies (take/claim entries, ...) as RESP
#   fuzz_parsers   Redis URL and duration parsers
#   fuzz_frame     the child -> worker pipe frame reader
#   fuzz_task      task hash -> rtq_task -> JSON
#   fuzz_dead      dead-letter record -> rtq_dead_letter -> JSON
#   fuzz_events    an events message -> the events a subscription makes
#                  of it -> watch's reader; a waiter message -> wait's
#
#   scripts/fuzz.sh                   # every target, 60 s each
#   scripts/fuzz.sh 20                # every target, 20 s each
#   scripts/fuzz.sh 600 fuzz_frame    # one target, 10 min
#   build-fuzz/tests/fuzz/fuzz_args build-fuzz/fuzz-artifacts/fuzz_args/crash-...  # replay
set -eu

secs=${1:-60}
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [seconds] [target...]" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && shift
targets=${*:-fuzz_args fuzz_replies fuzz_parsers fuzz_frame fuzz_task fuzz_dead fuzz_events}

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz

CC=clang cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
  -DRTQ_FUZZ=ON -DRTQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" --target $targets -j "$(nproc 2>/dev/null || echo 2)"

for t in $targets; do
  run=$build/corpus-run/$t
  artifacts=$build/fuzz-artifacts/$t/
  seeds=$root/tests/fuzz/corpus-$t
  rm -rf "$run"
  mkdir -p "$run" "$artifacts"
  if [ -d "$seeds" ]; then cp "$seeds"/* "$run"/; fi
  echo "fuzz.sh: $t for ${secs}s"
  # -malloc_limit_mb turns any single allocation above 64 MiB into a
  # finding: inputs are at most -max_len bytes, so a reader that honours
  # its limits never asks for that much.
  "$build/tests/fuzz/$t" \
    -max_total_time="$secs" -timeout=10 -max_len=8192 \
    -rss_limit_mb=2048 -malloc_limit_mb=64 \
    -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$run"
done
