#!/bin/sh
# fuzz.sh [seconds] - builds the libFuzzer targets with clang, ASan and
# UBSan in build-fuzz/ and runs fuzz_envelope for a bounded time (default
# 60 s) on a scratch copy of the seed corpus, so the committed seeds stay
# as they are. Exits non-zero on any crash, sanitizer report, leak,
# timeout or oversized allocation; the reproducer is left in
# build-fuzz/fuzz-artifacts/.
#
#   scripts/fuzz.sh          # 60 s
#   scripts/fuzz.sh 600      # 10 min
#   build-fuzz/tests/fuzz/fuzz_envelope build-fuzz/fuzz-artifacts/crash-...  # replay
set -eu

secs=${1:-60}
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
run=$root/tests/fuzz/corpus-run
artifacts=$build/fuzz-artifacts/

CC=clang cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
  -DRTQ_FUZZ=ON -DRTQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_envelope -j "$(nproc 2>/dev/null || echo 2)"

rm -rf "$run"
mkdir -p "$run" "$artifacts"
cp "$root"/tests/fuzz/corpus/* "$run"/

# -malloc_limit_mb turns any single allocation above 64 MiB into a
# finding: inputs are at most -max_len bytes, so a decoder that honours its
# limits never asks for that much.
exec "$build/tests/fuzz/fuzz_envelope" \
  -max_total_time="$secs" -timeout=10 -max_len=8192 \
  -rss_limit_mb=2048 -malloc_limit_mb=64 \
  -print_final_stats=1 -artifact_prefix="$artifacts" \
  "$run"
