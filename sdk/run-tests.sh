#!/bin/sh
# run-tests.sh - the language SDKs' tests: sdk/python (the librtq binding
# against a real redis-server and rtq-worker; the handler runner and
# rtq.testing over pipes) and sdk/node (the handler runner over pipes).
# Installs what is missing (scripts/install-deps.sh --python --node, as
# root) and builds rtq in build/ first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/../scripts/install-deps.sh" --python --node
"$here/python/run-tests.sh" "$@"
node --test "$here/node/test/"
