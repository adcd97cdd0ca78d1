"""Fixtures for the protocol v2 script tests: a private redis-server (the
harness's rtq_servers) and a Queue helper that builds v2 keys and runs the
scripts of common/lua2 (each with the prelude parts it lists before it,
EVALSHA with EVAL on NOSCRIPT, as PROTOCOL.md section 5 says)."""

import os
import sys

import pytest
import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import rtq_servers  # noqa: E402

from v2 import Queue  # noqa: E402


@pytest.fixture(scope="session")
def server():
    # DEBUG DIGEST (the fuzz test's "nothing written" check) needs the
    # debug command, which only this private server allows.
    with rtq_servers.redis_server("rtq-lua2-", extra=("--enable-debug-command", "yes")) as s:
        yield s


@pytest.fixture
def r(server):
    c = redis.Redis(port=server["port"])
    c.flushall()
    c.config_set("slowlog-log-slower-than", 1000)
    c.slowlog_reset()
    yield c
    c.close()


@pytest.fixture
def q(r):
    return Queue(r, "rtq", "default")
