#!/bin/sh
# run.sh - the fault and hostile-input suite (issue 8): builds what is
# missing, runs `ctest -L fault` and prints every test's figures.
#
#   tests/fault/run.sh                 build/ (as scripts/test.sh), then the suite
#   tests/fault/run.sh --sanitize      build-asan/ with ASan+UBSan, then the suite
#   --build-dir DIR                    use DIR instead
#   -- ARGS                            pass ARGS on to ctest (e.g. -- -R workers)
#
# Each test starts its own redis-server on a private loopback port and real
# rtq-worker / rtq-broker processes, which it stops by pid. Process logs stay
# in <build>/fault-logs/. About 2 minutes on 2 cores. Exits with ctest's status.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
sanitize=0
werror=0
[ "${CI:-}" = true ] && werror=1
build=""

while [ $# -gt 0 ]; do
  case $1 in
    --sanitize) sanitize=1 ;;
    --build-dir) [ $# -ge 2 ] || { echo "run.sh: --build-dir needs a value" >&2; exit 2; }; build=$2; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$build" ]; then
  if [ "$sanitize" = 1 ]; then build=$root/build-asan; else build=$root/build; fi
fi

"$root/scripts/install-deps.sh"

onoff() { if [ "$1" = 1 ]; then echo ON; else echo OFF; fi; }
cmake -S "$root" -B "$build" -DRTQ_WERROR="$(onoff $werror)" -DRTQ_SANITIZE="$(onoff $sanitize)" >/dev/null
cmake --build "$build" -j2

if [ "$sanitize" = 1 ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

rc=0
(cd "$build" && ctest --output-on-failure -L fault "$@") || rc=$?

# The figures: every test prints "faultN: ..." lines, which ctest keeps in
# its log whether the test passed or not.
log=$build/Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  echo
  echo "==== fault suite figures ===="
  grep -E '^fault[0-9]+[a-z]*: ' "$log" || echo "(none)"
fi
exit $rc
