#!/bin/sh
# install-deps.sh [--ci] [--valgrind] [--python] [--node] [--interop]
#                 [--containers] [--web] - installs the Debian (bookworm) packages
# rtq needs to build and test, and only those that are missing: when
# everything is present it changes nothing and runs no apt-get at all.
#
#   --ci        also the CI extras: clang + libclang-rt-14-dev (libFuzzer),
#               valgrind, docker-compose (for `docker-compose config`),
#               gnuplot-nox (bench plots), and the --interop set
#   --valgrind  also valgrind (for scripts/test.sh --valgrind)
#   --python    also Debian's python3, python3-cffi, python3-pytest and
#               python3-venv, pip and setuptools (the Python SDK, sdk/python),
#               and python3-dev (its optional C accelerator, rtq/_speedups.c)
#   --node      also nodejs (the Node handler runner, sdk/node)
#   --interop   also python3-redis, python3-msgpack, python3-pytest (for
#               tests/interop/run.sh, run with /usr/bin/python3)
#   --containers  also podman (with runc, netavark, aardvark-dns, iptables),
#               docker-compose and debootstrap (for tests/containers/run.sh)
#   --web       also what web/tests/run.sh needs: chromium (the browser
#               test), prometheus (promtool and a real scrape), curl, and
#               Node.js with npm where no `node`/`npm` is on PATH already
#
# Run as root. As another user it only reports what is missing (exit 1).
# Package scripts are kept from starting services while it installs, so the
# distribution's redis-server is not started on 6379, nor redis-sentinel on
# 26379 (the tests never use them either way: each test starts its own
# servers and sentinels on private ports).
set -eu

base="build-essential cmake pkg-config libhiredis-dev libev-dev libmsgpack-dev libcmocka-dev libjansson-dev libmicrohttpd-dev libcrypt-dev libssl-dev redis-server redis-sentinel tzdata"
interop="python3-redis python3-msgpack python3-pytest"
extra=""
for arg in "$@"; do
  case $arg in
    --ci) extra="$extra clang libclang-rt-14-dev valgrind docker-compose gnuplot-nox $interop" ;;
    --valgrind) extra="$extra valgrind" ;;
    --node) extra="$extra nodejs" ;;
    --python) extra="$extra python3 python3-cffi python3-pytest python3-venv python3-pip python3-setuptools python3-dev" ;;
    --interop) extra="$extra $interop" ;;
    --containers) extra="$extra podman runc netavark aardvark-dns iptables docker-compose debootstrap python3-yaml" ;;
    --web)
      extra="$extra chromium prometheus curl"
      # A Node.js from elsewhere (e.g. NodeSource) conflicts with Debian's
      # npm package: only install Debian's when there is none.
      command -v node >/dev/null 2>&1 || extra="$extra nodejs"
      command -v npm >/dev/null 2>&1 || extra="$extra npm"
      ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps.sh: not a Debian system; install the equivalents of: $base$extra" >&2
  exit 1
fi

missing=""
for p in $base $extra; do
  case " $missing " in *" $p "*) continue ;; esac
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: missing packages:$missing" >&2
  echo "install-deps.sh: run as root, or: sudo apt-get install$missing" >&2
  exit 1
fi

echo "install-deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d and
# deb-systemd-invoke then skip starting services from maintainer scripts.
# An existing policy is left alone.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { [ "$own_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is wanted
apt-get install -y -q --no-install-recommends $missing
