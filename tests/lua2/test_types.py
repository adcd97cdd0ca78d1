"""A key of the wrong type refuses the call and nothing is written.

create, take, claim and finish type-check only the keys they may write
after their first write; a key that is only read, or whose first use is
the call's first write, fails that read or write before anything else is
written. Each case puts a string where the script expects another type
and compares DEBUG DIGEST (every key, value and expiry) before and after.
"""

import pytest
import redis

from test_steps import W, ids


def refused(r, call):
    before = r.execute_command("DEBUG", "DIGEST")
    with pytest.raises(redis.ResponseError):
        call()
    assert r.execute_command("DEBUG", "DIGEST") == before


def spoil(r, key):
    r.delete(key)
    r.set(key, "not what the script expects")


@pytest.mark.parametrize("suffix,delayed", [("q", False), ("stats", False), ("delayed", True),
                                            ("stats", True)])
@pytest.mark.parametrize("fresh", [False, True])
def test_types_create_refused(r, q, suffix, delayed, fresh):
    spoil(r, q.k(suffix))
    extra = {"delay_ms": 60000} if delayed else {}
    big = b"\x81\xa1d\xda\x01\x2c" + b"x" * 300  # over 256 bytes: a side hash too
    refused(r, lambda: q.create([{"id": i, "args": big, **extra} for i in ids(3)], fresh=fresh))


@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize("delayed", [False, True])
def test_types_create_task_key_of_another_type_is_invalid(r, q, fresh, delayed):
    # A task key of another type: that task is not created and nothing is
    # written for it (its key, side key, queue entry, count, event); the
    # call's other tasks are. Looked up or fresh, the same outcome.
    spoil(r, q.t("T0001"))
    extra = {"delay_ms": 60000} if delayed else {}
    big = b"\x81\xa1d\xda\x01\x2c" + b"x" * 300  # a side hash too
    out = q.create([{"id": i, "args": big, **extra} for i in ids(3)], fresh=fresh)
    assert out[1:] == [1, b"invalid", 1]
    assert r.get(q.t("T0001")) == b"not what the script expects"
    assert not r.exists(q.k("x:T0001"))
    held = r.zrange(q.k("delayed"), 0, -1) if delayed else r.lrange(q.k("q"), 0, -1)
    assert sorted(held) == [b"T0000", b"T0002"]
    assert r.hget(q.k("stats"), "enqueued") == b"2"
    assert r.hget(q.k("x:T0002"), "x") == big


@pytest.mark.parametrize("suffix,limit", [("q", {}), ("p:" + W, {}), ("limit", None),
                                          ("bucket", {"rate": "100"}), ("slots", {"conc": "5"})])
def test_types_take_and_claim_refused(r, q, suffix, limit):
    q.create([{"id": i} for i in ids(4)])
    if limit:
        r.hset(q.k("limit"), mapping=limit)
    # claim's ids are moved into the processing list first, as BLMOVE does
    r.lmove(q.k("q"), q.k("p:" + W), "RIGHT", "LEFT")
    spoil(r, q.k(suffix))
    refused(r, lambda: q.take(W, n=3))
    if suffix != "p:" + W:
        refused(r, lambda: q.claim(W, ["T0000"]))


@pytest.mark.parametrize("suffix,final,retries", [("p:" + W, "completed", 0), ("stats", "completed", 0),
                                                  ("done:completed", "completed", 0), ("rt", "completed", 0),
                                                  ("slots", "completed", 0), ("delayed", "failed", 1),
                                                  ("done:failed", "failed", 0)])
def test_types_finish_refused(r, q, suffix, final, retries):
    q.create([{"id": i, "max_retries": retries} for i in ids(3)])
    r.hset(q.k("limit"), "conc", "10")
    got = q.take(W, n=3)
    assert [e[0] for e in got] == [b"ok"] * 3
    spoil(r, q.k(suffix))
    out = [(i, 1, final, b"", {}) for i in ids(3)]
    refused(r, lambda: q.finish(W, out, hist_pairs=(("le_1", 3), ("count", 3))))


def test_types_finish_writes_without_slots(r, q):
    """No slots set (no concurrency limit): nothing to give back, and the
    finish still ends every task."""
    q.create([{"id": i} for i in ids(2)])
    q.take(W, n=2)
    assert not r.exists(q.k("slots"))
    assert q.finish(W, [(i, 1, "completed", b"", {}) for i in ids(2)]) == [[b"ok", b"completed"]] * 2
    assert not r.exists(q.k("slots"))
    assert [r.hget(q.t(i), "s") for i in ids(2)] == [b"completed"] * 2
