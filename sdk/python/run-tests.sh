#!/bin/sh
# run-tests.sh - the Python SDK's tests, with Debian's python3, python3-cffi
# and python3-pytest, against rtq built in build/ (or --build-dir DIR):
# librtq.so for the binding, rtq-worker for the tasks. Installs what is
# missing through scripts/install-deps.sh --python (as root) and builds
# first. The tests start their own redis-server on a free loopback port and
# stop it, and every worker they start, by PID.
#
#   sdk/python/run-tests.sh [--build-dir DIR] [-- PYTEST_ARGS]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) [ $# -ge 2 ] || { echo "run-tests.sh: --build-dir needs a value" >&2; exit 2; }; build=$2; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run-tests.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

"$root/scripts/install-deps.sh" --python
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 --target rtq rtq-worker

export RTQ_BIN_DIR="$build" RTQ_LIBRARY="$build/client/librtq.so"

# The package installs offline from the tree, as the README says, into a
# throwaway venv, and imports from there.
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$venv"
mkdir "$venv/src" && cp -r "$here/pyproject.toml" "$here/setup.py" "$here/rtq" "$venv/src/"
rm -f "$venv"/src/rtq/*.so
"$venv/bin/pip" install -q --no-build-isolation --no-deps --no-index "$venv/src"
(cd "$venv" && "$venv/bin/python" -c 'import rtq, rtq._speedups, sys; assert rtq.__file__.startswith(sys.prefix), rtq.__file__; print("installed:", rtq.__file__, "with", rtq._speedups.__name__)')

# The tests import the tree, with create_task's C accelerator built in
# place (rtq/_speedups.c; tests/test_speedups.py fails without it).
(cd "$here" && /usr/bin/python3 setup.py -q build_ext --inplace 2>&1 | grep -v -e _BetaConfiguration -e 'warnings.warn(msg' >&2 || true)

export RTQ_INCLUDE="$root/client/include:$root/common/include:$build/include"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
rc=0
(cd "$here/tests" && /usr/bin/python3 -m pytest -p no:cacheprovider -q -ra "$@") || rc=$?
# The client's tests once more without the accelerator: the cffi path
# every install without a compiler takes.
if [ "$rc" = 0 ] && [ $# = 0 ]; then
  (cd "$here/tests" && RTQ_PYTHON_SPEEDUPS=0 /usr/bin/python3 -m pytest -p no:cacheprovider -q -ra \
    test_client.py test_speedups.py) || rc=$?
fi
if [ "$rc" = 5 ]; then
  echo "run-tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit $rc
