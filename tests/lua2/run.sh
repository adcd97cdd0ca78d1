#!/bin/sh
# run.sh - the protocol v2 script tests (tests/lua2): every step of
# common/lua2 against a private redis-server, and the fuzz of every script
# (a failing call writes nothing, every message is JSON, the work of a call
# is bounded). No build is needed: the tests read the scripts from the tree.
# Installs what is missing through scripts/install-deps.sh --interop (as
# root), then runs pytest with Debian's Python.
#
#   tests/lua2/run.sh              the tests
#   tests/lua2/run.sh -- ARGS      pass ARGS on to pytest (e.g. -- -k fuzz)
#
# RTQ_FUZZ_CALLS and RTQ_FUZZ_SEED change the fuzz (3000 calls, seed 7).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/install-deps.sh" --interop

# Debian's python3-* modules are installed for /usr/bin/python3, which may
# not be the python3 first on PATH. No pytest cache, no bytecode files.
export PYTHONDONTWRITEBYTECODE=1
rc=0
(cd "$root/tests/lua2" && /usr/bin/python3 -m pytest -p no:cacheprovider -q -ra "$@") || rc=$?
if [ "$rc" = 5 ]; then
  echo "run.sh: pytest collected no tests" >&2
  exit 1
fi
exit $rc
