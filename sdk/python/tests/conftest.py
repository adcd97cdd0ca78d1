"""Fixtures for the SDK tests: a private redis-server on a free loopback
port (one per session, flushed before each test) and rtq-worker processes
with the demo handlers, each stopped by its PID at the end.

RTQ_BIN_DIR names rtq's build directory and RTQ_LIBRARY its librtq.so
(sdk/python/run-tests.sh sets both).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN_DIR = os.environ.get("RTQ_BIN_DIR", "")


def bin_path(rel):
    p = os.path.join(BIN_DIR, rel)
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: set RTQ_BIN_DIR to a build of rtq (run-tests.sh does)")
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


def _ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


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


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="rtq-sdk-")
    proc = None
    try:
        for _ in range(5):  # another process may take the port first
            port = _free_port()
            proc = subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
                 "--appendonly", "no", "--maxmemory-policy", "noeviction"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not _ping(port):
                time.sleep(0.02)
            if _ping(port):
                break
            _stop(proc, 5)
            proc = None
        if proc is None:
            pytest.fail("could not start redis-server on a free loopback port")
        yield {"url": f"redis://127.0.0.1:{port}/0", "port": port, "dir": tmp}
    finally:
        if proc is not None:
            _stop(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)


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
        _stop(p, 20)
