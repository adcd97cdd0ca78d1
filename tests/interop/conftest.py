"""Fixtures for the interop tests: a private redis-server on a free
loopback port (one per session, flushed before each test), and a process
registry that starts rtq's C binaries and the Python worker processes
(rtqproto2.py) and stops every one of them by PID when the test ends.

RTQ_BIN_DIR names the build directory (tests/interop/run.sh sets it).
"""

import os
import subprocess
import sys

import pytest
import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("RTQ_BIN_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))

import rtq_servers  # noqa: E402
from rtq_servers import redis_server, stop, wait_for  # noqa: E402,F401 (wait_for: for the tests)


def bin_path(rel):
    return rtq_servers.bin_path(BIN_DIR, rel, "build rtq first (tests/interop/run.sh does)")


@pytest.fixture(scope="session")
def redis_url():
    with redis_server("rtq-interop-") as srv:
        yield srv["url"]


class Procs:
    """Processes a test started; stop_all() ends each by its PID."""

    def __init__(self, url, logdir):
        self.url = url
        self.logdir = logdir
        self.procs = []

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.logdir, f"{name}-{len(self.procs)}.log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             env=dict(os.environ, **(env or {})))
        log.close()
        p.name = name
        self.procs.append(p)
        return p

    def broker(self, *flags):
        return self.spawn("broker", [bin_path("broker/rtq-broker"), "--redis", self.url, *flags])

    def c_worker(self, *flags):
        return self.spawn("worker", [bin_path("worker/rtq-worker"), "--redis", self.url,
                                     "--demo-handlers", *flags])

    def py_worker2(self, *flags):
        """A protocol 2 worker process (rtqproto2.py)."""
        return self.spawn("pyworker2", ["/usr/bin/python3", os.path.join(ROOT, "tests", "interop",
                                                                         "rtqproto2.py"),
                                        "worker", "--redis", self.url, *flags])

    def logs(self):
        out = []
        for name in sorted(os.listdir(self.logdir)):
            with open(os.path.join(self.logdir, name)) as f:
                out.append(f"---- {name} ----\n{f.read()[-4000:]}")
        return "\n".join(out)

    def stop_all(self):
        for p in reversed(self.procs):
            stop(p, 30)


@pytest.fixture
def procs(redis_url, tmp_path, request):
    redis.Redis.from_url(redis_url).flushall()
    ps = Procs(redis_url, str(tmp_path))
    yield ps
    ps.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(ps.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def rtq(redis_url):
    """Runs the rtq CLI; returns the CompletedProcess."""

    def run(*args, timeout=60):
        return subprocess.run([bin_path("client/rtq"), "--redis", redis_url, *args],
                              capture_output=True, text=True, timeout=timeout)

    return run
