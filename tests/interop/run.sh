#!/bin/sh
# run.sh - the protocol conformance test: a Python producer and worker
# (rtqproto2.py, written from docs/PROTOCOL.md alone) run against rtq's C
# worker, broker and CLI (test_interop2.py, every C process given
# --protocol 2). Installs what is missing through
# scripts/install-deps.sh --interop (as root), builds rtq as
# scripts/test.sh does, then runs pytest with Debian's Python.
#
#   tests/interop/run.sh               build/, then the tests
#   tests/interop/run.sh --sanitize    build-asan/ with ASan+UBSan
#   --build-dir DIR                    use DIR instead
#   -- ARGS                            pass ARGS on to pytest (e.g. -- -k cancel)
#
# The tests start their own redis-server on a free loopback port and stop
# it, and every process they start, by PID. Exits with pytest's status;
# "no tests collected" (pytest's 5) is a failure too.
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
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$build" ]; then
  if [ "$sanitize" = 1 ]; then build=$root/build-asan; else build=$root/build; fi
fi

"$root/scripts/install-deps.sh" --interop

onoff() { if [ "$1" = 1 ]; then echo ON; else echo OFF; fi; }
cmake -S "$root" -B "$build" -DRTQ_WERROR="$(onoff $werror)" -DRTQ_SANITIZE="$(onoff $sanitize)" >/dev/null
cmake --build "$build" -j2

if [ "$sanitize" = 1 ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

# Debian's python3-* modules are installed for /usr/bin/python3, which may
# not be the python3 first on PATH. No pytest cache and no bytecode files:
# the tree stays clean.
export RTQ_BIN_DIR="$build" PYTHONDONTWRITEBYTECODE=1
rc=0
(cd "$root/tests/interop" && /usr/bin/python3 -m pytest -p no:cacheprovider -q -ra "$@") || rc=$?
if [ "$rc" = 5 ]; then
  echo "run.sh: pytest collected no tests" >&2
  exit 1
fi
exit $rc
