"""Fixtures for the interop tests: a private redis-server on a free
loopback port (one per session, flushed before each test), and a process
registry that starts rtq's C binaries and the Python worker process and
stops every one of them by PID when the test ends.

RTQ_BIN_DIR names the build directory (tests/interop/run.sh sets it).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("RTQ_BIN_DIR", os.path.join(ROOT, "build"))


def bin_path(rel):
    p = os.path.join(BIN_DIR, rel)
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: build rtq first (tests/interop/run.sh does)")
    return p


def wait_for(cond, timeout, what):
    """Polls cond() until it is true; fails the test after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc, grace):
    """SIGTERM, then SIGKILL after grace s; by PID, this process only."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


@pytest.fixture(scope="session")
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="rtq-interop-")
    proc = None
    try:
        for _ in range(5):  # another process may take the port first
            port = _free_port()
            log = open(os.path.join(tmp, "redis.log"), "w")
            proc = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
                 "--appendonly", "no", "--maxmemory-policy", "noeviction"],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
            url = f"redis://127.0.0.1:{port}/0"
            r = redis.Redis.from_url(url, socket_connect_timeout=0.2)
            deadline = time.monotonic() + 10
            up = False
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    up = r.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.02)
            r.close()
            if up:
                break
            _stop(proc, 5)
            proc = None
        if proc is None:
            pytest.fail("could not start redis-server on a free loopback port")
        yield url
    finally:
        if proc is not None:
            _stop(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)


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

    def py_worker(self, *flags):
        return self.spawn("pyworker", ["/usr/bin/python3", os.path.join(ROOT, "tests", "interop",
                                                                        "rtqproto.py"),
                                       "worker", "--redis", self.url, *flags])

    def logs(self):
        out = []
        for name in sorted(os.listdir(self.logdir)):
            with open(os.path.join(self.logdir, name)) as f:
                out.append(f"---- {name} ----\n{f.read()[-4000:]}")
        return "\n".join(out)

    def stop_all(self):
        for p in reversed(self.procs):
            _stop(p, 30)


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
