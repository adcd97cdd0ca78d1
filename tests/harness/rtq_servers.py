"""rtq_servers - what rtq's Python test suites share (tests/interop,
sdk/python/tests), as tests/harness/*.c is for the C tests: a private
redis-server on a free loopback port, waiting for a condition with a
deadline, and stopping a process by its PID.

A conftest puts this folder on sys.path and imports it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest


def bin_path(bin_dir, rel, hint):
    """The executable bin_dir/rel; fails the test, with hint, when missing."""
    p = os.path.join(bin_dir, rel)
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: {hint}")
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


def stop(proc, grace):
    """SIGTERM, then SIGKILL after grace s; by PID, this process only."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


def ping(port):
    """True when a Redis answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(prefix, extra=()):
    """A redis-server on a free loopback port, in a temp dir named with
    prefix, without persistence, with the extra arguments given; yields {"url", "port", "dir"} and stops it
    (and removes the dir) on exit."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix=prefix)
    proc = None
    try:
        for _ in range(5):  # another process may take the port first
            port = _free_port()
            with open(os.path.join(tmp, "redis.log"), "w") as log:
                proc = subprocess.Popen(
                    [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
                     "--appendonly", "no", "--maxmemory-policy", "noeviction", *extra],
                    stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not ping(port):
                time.sleep(0.02)
            if ping(port):
                break
            stop(proc, 5)
            proc = None
        if proc is None:
            pytest.fail("could not start redis-server on a free loopback port")
        yield {"url": f"redis://127.0.0.1:{port}/0", "port": port, "dir": tmp}
    finally:
        if proc is not None:
            stop(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)
