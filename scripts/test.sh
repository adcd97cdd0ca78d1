#!/bin/sh
# test.sh - the test command: installs what is missing (as root), builds and
# runs the unit and integration tests. Each test program starts its own
# redis-server on a private loopback port in a temp dir; nothing touches a
# Redis on 6379. Exits with ctest's status.
#
#   scripts/test.sh               build/, then ctest -L 'unit|integration|docs'
#   scripts/test.sh --werror      also -DRTQ_WERROR=ON (the default when CI=true)
#   scripts/test.sh --sanitize    ASan+UBSan build in build-asan/, same tests
#   scripts/test.sh --valgrind    build/, then only the unit tests, each
#                                 under valgrind --leak-check=full
#   scripts/test.sh --cluster     only the Redis Cluster and Sentinel tests
#                                 (ctest -L cluster: several servers per test
#                                 program; with --sanitize, in build-asan/)
#   --build-dir DIR               use DIR instead of build/ or build-asan/
#   -- ARGS                       pass ARGS on to ctest (e.g. -- -R test_conn)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=0
valgrind=0
cluster=0
werror=0
[ "${CI:-}" = true ] && werror=1
build=""

while [ $# -gt 0 ]; do
  case $1 in
    --sanitize) sanitize=1 ;;
    --valgrind) valgrind=1 ;;
    --werror) werror=1 ;;
    --cluster) cluster=1 ;;
    --build-dir) [ $# -ge 2 ] || { echo "test.sh: --build-dir needs a value" >&2; exit 2; }; build=$2; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$sanitize" = 1 ] && [ "$valgrind" = 1 ]; then
  echo "test.sh: --sanitize and --valgrind do not mix (valgrind cannot run ASan binaries)" >&2
  exit 2
fi
if [ -z "$build" ]; then
  if [ "$sanitize" = 1 ]; then build=$root/build-asan; else build=$root/build; fi
fi

# Dependencies: install what is missing as root, otherwise only report.
deps_flags="--python --node" # the --exec tests run the Python and Node runners
[ "$valgrind" = 1 ] && deps_flags="$deps_flags --valgrind"
# shellcheck disable=SC2086
"$root/scripts/install-deps.sh" $deps_flags

onoff() { if [ "$1" = 1 ]; then echo ON; else echo OFF; fi; }
cmake -S "$root" -B "$build" -DRTQ_WERROR="$(onoff $werror)" -DRTQ_SANITIZE="$(onoff $sanitize)" >/dev/null
cmake --build "$build" -j2

if [ "$sanitize" = 1 ]; then
  # Stop at the first report, with a stack; leaks are checked at exit.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

if [ "$valgrind" = 1 ]; then
  # ctest -N -V prints "N: Test command: /path/to/binary" for each test.
  tests=$(cd "$build" && ctest -N -V -L unit | sed -n 's/^[0-9]*: Test command: //p')
  [ -n "$tests" ] || { echo "test.sh: no unit tests found in $build" >&2; exit 1; }
  failed=""
  for t in $tests; do
    log=$build/valgrind-$(basename "$t").log
    if valgrind --leak-check=full --error-exitcode=1 --quiet --log-file="$log" "$t" >"$log.out" 2>&1; then
      echo "valgrind ok:     $(basename "$t")"
    else
      echo "valgrind FAILED: $(basename "$t") (see $log, $log.out)"
      cat "$log" "$log.out"
      failed="$failed $(basename "$t")"
    fi
  done
  if [ -n "$failed" ]; then
    echo "test.sh: valgrind failures:$failed" >&2
    exit 1
  fi
  exit 0
fi

labels='unit|integration|docs'
[ "$cluster" = 1 ] && labels='cluster'
rc=0
(cd "$build" && ctest --output-on-failure -j2 -L "$labels" "$@") || rc=$?
exit $rc
