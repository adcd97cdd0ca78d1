"""v2 dead letters: dead_requeue puts the task of a letter back on its
queue when its hash exists, validates and ended failed, timeout or
cancelled, and keeps the letter (writing nothing) in every other case."""

import json

import msgpack
import pytest

from test_steps import Sub, W, running


def letters(r, q):
    return r.lrange(q.k("dead"), 0, -1)


def test_dead_requeue_a_failed_task_goes_back_to_pending(r, q):
    running(q, r)
    r.hset(q.k("x:T0000"), "em", "x" * 100)
    r.hset(q.t("T0000"), "xs", "1")
    assert q.deadletter("T0000", "BAD_SIGNATURE", "no signature", W) == [b"ok", 1]
    assert r.lrange(q.done("failed"), 0, -1) == [b"T0000"]
    (rec,) = letters(r, q)
    sub = Sub(r, shard=[q.ev])
    assert q.dead_requeue(rec) == [b"ok", b"T0000"]
    t = q.task("T0000")
    assert t["s"] == b"pending" and t["a"] == b"0" and "ec" not in t and "e" not in t and "em" not in t
    assert r.ttl(q.t("T0000")) == -1
    assert r.lrange(q.k("q"), 0, -1) == [b"T0000"]
    assert r.llen(q.done("failed")) == 0 and letters(r, q) == []
    msgs = sub.drain()
    sub.close()
    assert len(msgs) == 1 and json.loads(msgs[0][1])["t"] == [{"id": "T0000", "s": "pending", "n": "job"}]
    # the same record again: the task is pending now; were it failed again,
    # the record is gone: nothing written either way
    assert q.dead_requeue(rec) == [b"state", b"T0000", b"pending"]
    r.hset(q.t("T0000"), "s", "failed")
    assert q.dead_requeue(rec) == [b"gone"]
    assert r.llen(q.k("q")) == 1 and r.hget(q.t("T0000"), "s") == b"failed"


def test_dead_requeue_keeps_what_it_cannot_requeue(r, q):
    # no task hash: v2 keeps only the id, there is nothing to enqueue
    r.lpush(q.k("p:" + W), "ghost")
    q.deadletter("ghost", "NO_TASK_RECORD", "no hash", W)
    # an entry that is not an id
    r.lpush(q.k("p:" + W), "bad id")
    q.deadletter("bad id", "BAD_ID", "x", W)
    recs = letters(r, q)
    assert q.dead_requeue(recs[1]) == [b"notask", b"ghost"]
    assert q.dead_requeue(recs[0]) == [b"bad", b"", b"the record has no task id"]
    # a hash that does not validate, and one of another type
    r.hset(q.t("ghost"), mapping={"s": "failed", "n": "bad name"})
    assert q.dead_requeue(recs[1])[:2] == [b"bad", b"ghost"]
    r.delete(q.t("ghost"))
    r.set(q.t("ghost"), "x")
    assert q.dead_requeue(recs[1]) == [b"bad", b"ghost", b"the task key is not a hash"]
    # a task that is not ended (a stale duplicate of a running one), or completed
    r.delete(q.t("ghost"))
    r.hset(q.t("ghost"), mapping={"s": "running", "n": "job"})
    assert q.dead_requeue(recs[1]) == [b"state", b"ghost", b"running"]
    r.hset(q.t("ghost"), "s", "completed")
    assert q.dead_requeue(recs[1]) == [b"state", b"ghost", b"completed"]
    # a record that does not decode, or names another queue
    r.lpush(q.k("dead"), b"\xc1junk", msgpack.packb({"id": "ghost", "queue": "other"}))
    assert q.dead_requeue(b"\xc1junk")[0] == b"bad"
    assert q.dead_requeue(msgpack.packb({"id": "ghost", "queue": "other"})) == [
        b"bad", b"", b"the record names another queue"]
    assert len(letters(r, q)) == 4 and r.llen(q.k("q")) == 0


@pytest.mark.parametrize("bad", [
    dict(record=b""), dict(record=b"x" * 65537), dict(queue="bad queue"),
    dict(chan="{rtq:other}:ev"), dict(tpre="{rtq:other}:t:")])
def test_dead_requeue_refuses_a_bad_call_before_writing(r, q, bad):
    running(q, r)
    q.deadletter("T0000", "X", "y", W)
    (rec,) = letters(r, q)
    argv = [bad.get("record", rec), bad.get("queue", q.name), bad.get("chan", q.ev), bad.get("tpre", q.k("t:")),
            q.k("x:")]
    keys = [q.k("dead"), q.k("q"), q.done("failed"), q.done("timeout"), q.done("cancelled")]
    with pytest.raises(Exception):
        q.s.call("dead_requeue", keys, argv)
    assert letters(r, q) == [rec] and q.task("T0000")["s"] == b"failed"
