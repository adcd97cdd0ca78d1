"""v2 operations steps: fleet-wide rate and concurrency limits inside the
claim step, purging a queue and deleting ended tasks, in bounded calls."""

from test_steps import W, ids, running


def test_rate_limit_stops_take_and_says_how_long(r, q):
    q.create([{"id": i} for i in ids(10)])
    r.hset(q.k("limit"), mapping={"rate": "2", "burst": "3"})
    got = q.take(W, n=10)
    assert [e[0] for e in got] == [b"ok"] * 3 + [b"limited"]
    assert 400 <= got[-1][1] <= 500  # one token at 2/s
    assert float(r.hget(q.k("bucket"), "t")) < 1
    # an empty bucket refills with time: pretend 1 s passed
    r.hset(q.k("bucket"), "ts", int(r.hget(q.k("bucket"), "ts")) - 1000)
    got = q.take(W, n=10)
    assert [e[0] for e in got] == [b"ok", b"ok", b"limited"]


def test_concurrency_limit_counts_running_and_leases_come_back(r, q):
    q.create([{"id": i} for i in ids(5)])
    r.hset(q.k("limit"), "conc", "2")
    got = q.take(W, n=5)
    assert [e[0] for e in got] == [b"ok", b"ok", b"limited"]
    assert r.zcard(q.k("slots")) == 2
    q.finish(W, [(got[0][1].decode(), 1, "completed", b"", {})])
    assert r.zcard(q.k("slots")) == 1
    got2 = q.take(W, n=5)
    assert [e[0] for e in got2] == [b"ok", b"limited"]
    # a worker that died: recover gives its lease back
    dead = r.lrange(q.k("p:" + W), 0, -1)
    q.recover(W, dead)
    assert r.zcard(q.k("slots")) == 0
    # a lease whose deadline passed is dropped at the next claim
    r.zadd(q.k("slots"), {"ghost": 1})
    assert q.take(W, n=1)[0][0] == b"ok"
    assert r.zscore(q.k("slots"), "ghost") is None


def test_claim_hands_back_what_limits_refuse(r, q):
    q.create([{"id": "A"}, {"id": "B"}])
    r.hset(q.k("limit"), "conc", "1")
    r.lmove(q.k("q"), q.k("p:" + W), "RIGHT", "LEFT")
    r.lmove(q.k("q"), q.k("p:" + W), "RIGHT", "LEFT")
    got = q.claim(W, ["A", "B"])
    assert got[0][0] == b"ok" and got[1][:2] == [b"limited", b"B"]
    assert r.lrange(q.k("q"), 0, -1) == [b"B"] and r.lrange(q.k("p:" + W), 0, -1) == [b"A"]
    assert q.task("B")["s"] == b"pending"


def test_bad_limit_values_are_not_applied(r, q):
    q.create([{"id": i} for i in ids(3)])
    r.hset(q.k("limit"), mapping={"rate": "nan", "conc": "-1"})
    assert [e[0] for e in q.take(W, n=3)] == [b"ok"] * 3


def test_requeue_and_handback_give_the_lease_back(r, q):
    r.hset(q.k("limit"), "conc", "5")
    running(q, r, n=2)
    assert r.zcard(q.k("slots")) == 2
    q.requeue("T0000", W, 1)
    q.handback("T0001", W, 1)
    assert r.zcard(q.k("slots")) == 0


def test_purge_cancels_pending_in_bounded_steps(r, q):
    running(q, r, n=1, p="R")  # a running task is not touched
    all_ids = ids(250)
    for k in range(0, 250, 50):
        q.create([{"id": i} for i in all_ids[k:k + 50]])
    q.create([{"id": "D1", "delay_ms": 60000}])
    r.lpush(q.k("q"), "bad id")
    total, calls = [0, 0], 0
    while True:
        c, d, left = q.purge(100)
        total[0] += c
        total[1] += d
        calls += 1
        assert calls < 10
        if left == 0:
            break
    assert total == [251, 1] and calls == 3
    assert q.task("T0000")["s"] == b"cancelled" and q.task("D1")["s"] == b"cancelled"
    assert q.task("R0000")["s"] == b"running"
    assert r.hget(q.k("stats"), "cancelled") == b"251"
    assert r.llen(q.k("dead")) == 1


def test_delete_ended_tasks_by_age(r, q):
    running(q, r, n=5)
    q.finish(W, [(i, 1, "completed", b"", {}) for i in ids(5)])
    ended = [int(q.task(i)["e"]) for i in ids(5)]
    # pretend the two oldest ended long ago
    r.hset(q.t("T0000"), "e", 1000)
    r.hset(q.t("T0001"), "e", 2000)
    assert q.delete("completed", n=100, cutoff=5000) == [2, 0, 0]
    assert not r.exists(q.t("T0000")) and r.exists(q.t("T0002"))
    assert q.delete("completed", n=2) == [2, 0, 1]
    assert q.delete("completed", n=2) == [1, 0, 0]
    assert r.llen(q.done("completed")) == 0 and min(ended) > 0
