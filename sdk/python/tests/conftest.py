"""Fixtures for the SDK tests: a private redis-server on a free loopback
port (one per session, flushed before each test) and rtq-worker processes
with the demo handlers, each stopped by its PID at the end.

RTQ_BIN_DIR names rtq's build directory and RTQ_LIBRARY its librtq.so
(sdk/python/run-tests.sh sets both).
"""

import os
import shutil
import subprocess
import sys

import pytest

BIN_DIR = os.environ.get("RTQ_BIN_DIR", "")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "tests", "harness"))

import rtq_servers  # noqa: E402
from rtq_servers import redis_server, stop, wait_for  # noqa: E402,F401 (wait_for: for the tests)


def bin_path(rel):
    return rtq_servers.bin_path(BIN_DIR, rel, "set RTQ_BIN_DIR to a build of rtq (run-tests.sh does)")


@pytest.fixture(scope="session")
def server():
    with redis_server("rtq-sdk-") as srv:
        yield srv


@pytest.fixture
def url(server):
    subprocess.run([shutil.which("redis-cli"), "-p", str(server["port"]), "FLUSHALL"],
                   check=True, stdout=subprocess.DEVNULL)
    return server["url"]


@pytest.fixture
def worker(url, server):
    """Starts rtq-worker with the demo handlers; stopped at the end."""
    procs = []

    def start(*flags):
        log = open(os.path.join(server["dir"], f"worker-{len(procs)}.log"), "w")
        p = subprocess.Popen([bin_path("worker/rtq-worker"), "--redis", url, "--demo-handlers",
                              *flags], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        procs.append(p)
        return p

    yield start
    for p in procs:
        stop(p, 20)
