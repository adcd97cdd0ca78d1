"""The v2 steps, one behaviour per test, against a real redis-server."""

import json
import time

import msgpack
import pytest
import redis

from v2 import Queue

W = "w-host-1-abc"


class Sub:
    """A raw subscriber: SSUBSCRIBE to shard channels, SUBSCRIBE to plain
    ones; collects every message."""

    def __init__(self, r, shard=(), plain=()):
        self.c = redis.Connection(port=r.connection_pool.connection_kwargs["port"])
        self.c.connect()
        self.n = 0
        if shard:
            self.c.send_command("SSUBSCRIBE", *shard)
            self.n += len(shard)
        if plain:
            self.c.send_command("SUBSCRIBE", *plain)
            self.n += len(plain)
        for _ in range(self.n):
            self.c.read_response()
        self.got = []

    def drain(self, timeout=0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.c.can_read(timeout=0.02):
                m = self.c.read_response()
                self.got.append((m[1].decode(), m[2]))
        return self.got

    def close(self):
        self.c.disconnect()


def ids(n, p="T"):
    return ["%s%04d" % (p, i) for i in range(n)]


def test_create_take_finish_happy_path(r, q):
    sub = Sub(r, shard=[q.ev])
    out = q.create([{"id": i, "name": "email.send", "args": b"\x81\xa1a\x01"} for i in ids(3)])
    assert out == [int(r.hget(q.t("T0000"), "c")), 1, 1, 1]
    assert {r.hget(q.t(i), "c") for i in ids(3)} == {str(out[0]).encode()}
    assert r.llen(q.k("q")) == 3
    got = q.take(W, n=10)
    assert [e[0] for e in got] == [b"ok"] * 3
    assert [e[1].decode() for e in got] == ids(3)  # oldest first
    assert got[0][2] == b"email.send" and got[0][3] == 1 and got[0][6] == b"\x81\xa1a\x01"
    assert r.llen(q.k("p:" + W)) == 3 and r.llen(q.k("q")) == 0
    t = q.task("T0000")
    assert t["s"] == b"running" and t["w"] == W.encode() and t["a"] == b"1"
    out = q.finish(W, [(i, 1, "completed", b"\xc3", {}) for i in ids(3)])
    assert out == [[b"ok", b"completed"]] * 3
    assert r.llen(q.k("p:" + W)) == 0
    assert r.lrange(q.done("completed"), 0, -1) == [b"T0002", b"T0001", b"T0000"]
    t = q.task("T0000")
    assert t["s"] == b"completed" and t["r"] == b"\xc3" and "x" not in t and "dl" not in t
    assert 0 < r.pttl(q.t("T0000")) <= 86400 * 1000
    assert r.hgetall(q.k("stats")) == {b"enqueued": b"3", b"completed": b"3"}
    msgs = [json.loads(m) for _, m in sub.drain()]
    assert [m.get("s") for m in msgs] == ["pending", "running", None]
    assert [e["s"] for e in msgs[2]["t"]] == ["completed"] * 3
    assert r.object("encoding", q.t("T0000")) == b"listpack"
    sub.close()


def test_create_is_idempotent_and_all_or_nothing(r, q):
    q.create([{"id": "A"}])
    assert q.create([{"id": "A"}, {"id": "B"}])[1:] == [b"pending", 1]
    assert r.llen(q.k("q")) == 2
    before = r.llen(q.k("q"))
    with pytest.raises(redis.ResponseError):
        q.create([{"id": "C"}, {"id": "D", "delay_ms": "abc"}])
    assert not r.exists(q.t("C")) and r.llen(q.k("q")) == before


def test_create_3_values_per_task_writes_what_10_without_options_write(r, q):
    # A call whose tasks give no option may send 3 values per task: its
    # tasks are written as a call of 10 values, every option '0', writes them.
    big = msgpack.packb({"blob": "x" * 300})
    mid = msgpack.packb({"blob": "x" * 150})
    small = b"\x81\xa1a\x01"
    tasks = [{"name": "n.a", "args": big}, {"name": "n.b", "args": small}, {"name": "n.a", "args": b""},
             {"name": "n.c", "args": mid}]
    argv3 = [q.ev, q.k("t:"), q.k("x:"), "3", "0"]
    argv10 = [q.ev, q.k("t:"), q.k("x:"), "10", "0"]
    for i, t in enumerate(tasks):
        argv3 += ["S%d" % i, t["name"], t["args"]]
        argv10 += ["L%d" % i, t["name"], t["args"], "0", "0", "0", "0", "0", "0", ""]
    keys = [q.k("q"), q.k("delayed"), q.k("stats")]
    out3, out10 = q.s.call("create", keys, argv3), q.s.call("create", keys, argv10)
    assert out3[1:] == out10[1:] == [1, 1, 1, 1]
    for i in range(len(tasks)):
        s, l = q.task("S%d" % i), q.task("L%d" % i)
        assert s.pop("c") == str(out3[0]).encode() and l.pop("c") == str(out10[0]).encode()
        assert s == l
        assert r.hgetall(q.k("x:S%d" % i)) == r.hgetall(q.k("x:L%d" % i))
        assert r.object("encoding", q.t("S%d" % i)) == b"listpack"
    assert r.lrange(q.k("q"), 0, -1) == [b"L3", b"L2", b"L1", b"L0", b"S3", b"S2", b"S1", b"S0"]
    assert q.s.call("create", keys, argv3)[1:] == [b"pending"] * 4


def test_create_fresh_ids_are_not_looked_up(r, q):
    sub = Sub(r, shard=[q.ev])
    big = msgpack.packb({"blob": "x" * 300})  # the side hash
    mid = msgpack.packb({"blob": "x" * 150})  # chunks in the task hash
    tasks = [{"id": "F1", "args": big}, {"id": "F2", "args": b"\x81\xa1a\x01"}, {"id": "F3"},
             {"id": "F4", "args": mid}]
    r.config_resetstat()
    out = q.create(tasks, fresh=True)
    assert out[1:] == [1, 1, 1, 1]
    assert "cmdstat_hget" not in r.info("commandstats")
    assert r.lrange(q.k("q"), 0, -1) == [b"F4", b"F3", b"F2", b"F1"]
    assert q.task("F1")["x"] == big and q.task("F2")["x"] == b"\x81\xa1a\x01" and "x" not in q.task("F3")
    h = r.hgetall(q.t("F4"))
    assert h[b"x"] + h[b"x2"] + h[b"x3"] == mid and b"xs" not in h
    assert r.hget(q.k("stats"), "enqueued") == b"4"
    msgs = [json.loads(m) for _, m in sub.drain()]
    assert [[e["id"] for e in m["t"]] for m in msgs] == [["F1", "F2", "F3", "F4"]]
    sub.close()
    # The same tasks looked up: already there, nothing enqueued.
    assert q.create(tasks)[1:] == [b"pending"] * 4 and r.llen(q.k("q")) == 4


def test_create_fresh_id_given_twice_is_refused(r, q):
    q.create([{"id": "OLD"}])
    before = r.execute_command("DEBUG", "DIGEST")
    with pytest.raises(redis.ResponseError, match="a fresh id is given twice"):
        q.create([{"id": "F1"}, {"id": "F2"}, {"id": "F1"}], fresh=True)
    assert r.execute_command("DEBUG", "DIGEST") == before
    with pytest.raises(redis.ResponseError, match="fresh ids must be 0 or 1"):
        q.s.call("create", [q.k("q"), q.k("delayed"), q.k("stats")],
                 [q.ev, q.k("t:"), q.k("x:"), "3", "yes", "F1", "job", ""])
    assert r.execute_command("DEBUG", "DIGEST") == before


def test_create_fresh_id_writes_over_a_hash_that_is_there(r, q):
    # Only a producer could have put it there, and a producer may write any
    # task hash: a fresh id is not looked up, so its task is written.
    r.hset(q.t("F1"), mapping={"s": "completed", "zz": "1"})
    assert q.create([{"id": "F1", "name": "n.b"}], fresh=True)[1:] == [1]
    t = q.task("F1")
    assert t["s"] == b"pending" and t["n"] == b"n.b" and r.lrange(q.k("q"), 0, -1) == [b"F1"]


def test_create_delayed_and_big_args_in_side_hash(r, q):
    big = msgpack.packb({"blob": "x" * 300})  # over 256 bytes: the side hash
    q.create([{"id": "D", "delay_ms": 60000}, {"id": "B", "args": big}])
    assert r.zscore(q.k("delayed"), "D") is not None and r.llen(q.k("q")) == 1
    assert r.object("encoding", q.t("B")) == b"listpack"
    assert r.hget(q.k("x:B"), "x") == big
    got = q.take(W)
    assert got[0][1] == b"B" and got[0][6] == big
    q.finish(W, [("B", 1, "completed", b"", {})])
    assert r.hget(q.k("x:B"), "x") is None


def test_args_of_65_to_256_bytes_stay_in_the_task_hash_in_chunks(r, q):
    """Args longer than 64 bytes and up to 256 stay in the task hash, cut
    into 64-byte chunks x, x2, x3, x4: no side hash, the hash stays
    listpack-encoded, take returns them whole, and a completed task drops
    every chunk. 257 bytes go to the side hash."""
    sizes = (65, 128, 129, 200, 256, 257)
    blobs = {}
    for n in sizes:
        b = msgpack.packb({"b": "y" * 64})
        blobs["S%d" % n] = (b + b"z" * n)[:n]
    q.create([{"id": k, "args": v} for k, v in blobs.items()])
    for k, v in blobs.items():
        h = r.hgetall(q.t(k))
        assert r.object("encoding", q.t(k)) == b"listpack"
        if len(v) > 256:
            assert b"x2" not in h and h[b"xs"] == b"1" and r.hget(q.k("x:" + k), "x") == v
            continue
        assert not r.exists(q.k("x:" + k)) and b"xs" not in h
        chunks = [h.get(f) for f in (b"x", b"x2", b"x3", b"x4")]
        want = [v[i:i + 64] or None for i in range(0, 256, 64)]
        assert chunks == want
    got = {e[1].decode(): e[6] for e in q.take(W, n=len(blobs))}
    assert got == blobs
    q.finish(W, [(k, 1, "completed", b"", {}) for k in blobs])
    for k in blobs:
        h = r.hgetall(q.t(k))
        assert h[b"s"] == b"completed" and not {b"x", b"x2", b"x3", b"x4"} & set(h)
        assert r.hget(q.k("x:" + k), "x") is None


@pytest.mark.parametrize("fields,want", [
    ({"x2": b"B" * 10}, b"B" * 10),                      # x2 without x: joined from ''
    ({"x": b"A" * 64, "x3": b"C"}, b"A" * 64),           # x3 without x2: x alone
    ({"x": b"A", "x2": b"B" * 100, "x4": b"D"}, b"A" + b"B" * 100 + b"D"),  # long chunk, gap
])
def test_take_joins_hostile_chunk_layouts_by_the_rule(r, q, fields, want):
    """Chunks a writer laid out by hand are joined by the documented rule
    (x2 present: x, x2, x3, x4 as present, in order; else x), the same rule
    the C reader applies; nothing fails."""
    q.create([{"id": "H"}])
    r.hset(q.t("H"), mapping=fields)
    got = q.take(W)
    assert got[0][0] == b"ok" and got[0][6] == want


def test_failed_task_keeps_its_args_chunks_for_a_retry(r, q):
    """A failed task keeps its chunked args; retried, it is taken with the
    same args."""
    args = msgpack.packb({"t": "w" * 150})
    q.create([{"id": "F", "args": args, "max_retries": 0}])
    assert q.take(W)[0][6] == args
    q.finish(W, [("F", 1, "failed", b"", {"ec": "E", "em": "boom"})])
    assert r.hget(q.t("F"), "s") == b"failed" and r.hget(q.t("F"), "x2") is not None
    assert q.retry("F", "failed") == [b"ok"]
    got = q.take(W)
    assert got[0][1] == b"F" and got[0][6] == args


def test_take_drops_cancelled_and_reports_missing_and_bad(r, q):
    q.create([{"id": "A"}, {"id": "B"}])
    assert q.cancel("A") == [b"cancelled"]
    r.lpush(q.k("q"), "nohash", "bad id\n")
    got = q.take(W)
    assert got[0] == [b"skip", b"A", b"cancelled"]
    assert got[1][0] == b"ok" and got[1][1] == b"B"
    assert got[2] == [b"missing", b"nohash"]
    assert got[3][0] == b"bad"
    # skip removed A from the processing list; missing and bad stay for deadletter
    assert set(r.lrange(q.k("p:" + W), 0, -1)) == {b"B", b"nohash", b"bad id\n"}


def test_take_leaves_both_lists_as_lmoves_would(r, q):
    # One RPOP and one LPUSH per call: the processing list gets the ids
    # claimed in LMOVE order, a skipped one not at all, and the ids popped
    # but not reached (the reply budget) go back to the queue as they were.
    q.create([{"id": i, "args": b"\x92" + b"\x01" * 40} for i in ids(8)])
    q.cancel("T0001")
    before = r.lrange(q.k("q"), 0, -1)
    got = q.take(W, n=8, budget=100)
    assert [e[0] for e in got] == [b"ok", b"skip", b"ok", b"ok"]  # 3 x 41 bytes reach 100
    assert r.lrange(q.k("p:" + W), 0, -1) == [b"T0003", b"T0002", b"T0000"]
    assert r.lrange(q.k("q"), 0, -1) == before[:-4]
    assert [e[1] for e in q.take(W, n=8)] == [i.encode() for i in ids(8)[4:]]
    assert r.llen(q.k("q")) == 0 and r.llen(q.k("p:" + W)) == 7


def test_take_pops_no_more_than_the_limits_allow(r, q):
    q.create([{"id": i} for i in ids(6)])
    r.hset(q.k("limit"), "conc", "2")
    before = r.lrange(q.k("q"), 0, -1)
    got = q.take(W, n=6)
    assert [e[0] for e in got] == [b"ok", b"ok", b"limited"]
    assert r.lrange(q.k("q"), 0, -1) == before[:-2]
    got = q.take(W, n=6)
    assert got[0][0] == b"limited" and r.lrange(q.k("q"), 0, -1) == before[:-2]


def test_take_refuses_wedging_values(r, q):
    for i, a in enumerate(["-1", "4294967295", "1e308", "nan", "0x10"]):
        q.create([{"id": "A%d" % i}])
        r.hset(q.t("A%d" % i), "a", a)
    got = q.take(W)
    assert [e[0] for e in got] == [b"bad"] * 5
    assert all(r.hget(q.t("A%d" % i), "s") == b"pending" for i in range(5))


def test_take_reports_an_unknown_status_as_bad(r, q):
    # A status none of rtq's would otherwise be skipped and its task
    # stranded: reported, left in the processing list for deadletter.
    q.create([{"id": "U"}])
    r.hset(q.t("U"), "s", "weird")
    got = q.take(W)
    assert got == [[b"bad", b"U", b"the task hash does not validate"]]
    assert r.lrange(q.k("p:" + W), 0, -1) == [b"U"]
    assert r.hget(q.t("U"), "s") == b"weird"


def running(q, r, n=1, p="T", **opts):
    q.create([dict(id=i, **opts) for i in ids(n, p)])
    return q.take(W, n=n)


def test_finish_is_fenced(r, q):
    running(q, r)
    assert q.finish("w-other", [("T0000", 1, "completed", b"", {})]) == [[b"stale", b"running"]]
    assert q.finish(W, [("T0000", 2, "completed", b"", {})]) == [[b"stale", b"running"]]
    assert q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E", "em": "boom"})]) == [[b"ok", b"failed"]]
    assert q.finish(W, [("T0000", 1, "completed", b"", {})]) == [[b"stale", b"failed"]]
    t = q.task("T0000")
    assert t["s"] == b"failed" and t["ec"] == b"E" and t["em"] == b"boom"
    assert r.lrange(q.done("failed"), 0, -1) == [b"T0000"]


def test_a_stale_call_keeps_the_entry_of_a_run_under_another_attempt(r, q):
    """An attempt rewritten under a run (or a redelivery this worker id
    claimed again) makes finish, requeue and handback stale, but the
    entry stays, so the backstop still ends the run at its deadline
    instead of leaving it running for good."""
    running(q, r, n=3)
    p = q.k("p:" + W)
    for i in ids(3):
        r.hset(q.t(i), "a", "nan")
    assert q.finish(W, [("T0000", 1, "completed", b"", {})]) == [[b"stale", b"running"]]
    assert q.requeue("T0001", W, 1) == [b"stale", b"running"]
    assert q.handback("T0002", W, 1)[0] == b"dropped"
    assert sorted(r.lrange(p, 0, -1)) == [b"T0000", b"T0001", b"T0002"]
    for i in ids(3):
        assert q.task(i)["s"] == b"running"
        r.hset(q.t(i), "dl", int(time.time() * 1000) - 1000)
    assert sorted(q.backstop(W, grace=0)[1]) == [b"T0000", b"T0001", b"T0002"]
    assert r.lrange(p, 0, -1) == []
    for i in ids(3):
        assert q.task(i)["s"] == b"timeout"
    # another worker's run, or an ended task: the entry still goes
    running(q, r, p="U")
    r.lpush(q.k("p:w-other"), "U0000")
    assert q.finish("w-other", [("U0000", 1, "completed", b"", {})]) == [[b"stale", b"running"]]
    assert r.lrange(q.k("p:w-other"), 0, -1) == []


def test_finish_retries_with_backoff(r, q):
    running(q, r, max_retries=2, backoff_ms=500)
    out = q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E", "j": "100"})])
    assert out[0][0] == b"retry"
    now = int(r.time()[0]) * 1000
    assert 500 + 100 - 50 <= out[0][1] - now <= 600 + 1000
    assert r.zscore(q.k("delayed"), "T0000") == out[0][1]
    assert q.task("T0000")["s"] == b"pending" and r.llen(q.k("p:" + W)) == 0
    assert r.hget(q.k("stats"), "retried") == b"1"


def test_finish_forces_stop_codes(r, q):
    running(q, r, n=2)
    q.finish(W, [("T0000", 1, "cancelled", b"", {"ec": "MINE"}), ("T0001", 1, "timeout", b"", {"em": "slow"})])
    a, b = q.task("T0000"), q.task("T0001")
    assert a["ec"] == b"CANCELLED" and a["em"] == b"cancelled while running"
    assert b["ec"] == b"TIMEOUT" and b["em"] == b"slow"


def test_finish_big_values_keep_the_hash_small(r, q):
    running(q, r)
    tb = "Traceback\n" + "  line\n" * 100
    q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E", "et": tb, "em": "short"})])
    assert r.object("encoding", q.t("T0000")) == b"listpack"
    t = q.task("T0000")
    assert t["et"] == tb.encode() and t["em"] == b"short"
    assert 0 < r.pttl(q.k("x:T0000")) <= 86400 * 1000


def test_history_cap_deletes_old_tasks_in_finish(r, q):
    q.cap = 5
    running(q, r, n=8)
    q.finish(W, [(i, 1, "completed", b"", {}) for i in ids(8)])
    assert r.llen(q.done("completed")) == 5
    assert [i for i in ids(8) if r.exists(q.t(i))] == ids(8)[3:]


def test_history_off_keeps_tasks_60s_and_out_of_lists(r, q):
    q.hist = "0"
    running(q, r)
    q.finish(W, [("T0000", 1, "completed", b"", {})])
    assert r.llen(q.done("completed")) == 0
    assert 0 < r.pttl(q.t("T0000")) <= 60000


def test_finish_validates_everything_first(r, q):
    running(q, r, n=2)
    bad = [("T0000", 1, "completed", b"", {}), ("T0001", 1, "completed", b"", {"p": "1e308"})]
    with pytest.raises(redis.ResponseError):
        q.finish(W, bad)
    assert q.task("T0000")["s"] == b"running" and r.llen(q.k("p:" + W)) == 2


def test_runtime_histogram_pairs(r, q):
    running(q, r)
    q.finish(W, [("T0000", 1, "completed", b"", {})], hist_pairs=[("le_0.1", 1), ("sum_ms", 42)])
    assert r.hgetall(q.k("rt")) == {b"le_0.1": b"1", b"sum_ms": b"42"}


def test_wait_registers_and_only_waited_tasks_publish(r, q):
    running(q, r, n=2)
    sub = Sub(r, shard=[q.k("w:T0000"), q.k("w:T0001")])
    assert q.wait("T0000") == b"running"
    assert q.wait("nope") is None and not r.exists(q.t("nope"))
    q.finish(W, [("T0000", 1, "completed", b"", {}), ("T0001", 1, "completed", b"", {})])
    got = sub.drain()
    assert [c for c, _ in got] == [q.k("w:T0000")]
    assert json.loads(got[0][1])["s"] == "completed"
    assert q.wait("T0001") == b"completed"
    sub.close()


def test_progress_is_fenced_and_published(r, q):
    running(q, r)
    sub = Sub(r, shard=[q.ev])
    assert q.progress("T0000", W, 1, 40, "half\u00e9") == 1
    assert q.progress("T0000", "w-x", 1, 50) == 0
    t = q.task("T0000")
    assert t["p"] == b"40" and t["pm"] == "half\u00e9".encode()
    m = json.loads(sub.drain()[0][1])
    assert m["t"][0]["p"] == 40
    with pytest.raises(redis.ResponseError):
        q.progress("T0000", W, 1, 101)
    sub.close()


def test_cancel_running_sets_flag_and_tells_workers(r, q):
    running(q, r)
    sub = Sub(r, plain=["{rtq}:cancel"])
    assert q.cancel("T0000") == [b"requested"]
    assert r.hget(q.t("T0000"), "cr") is not None
    assert sub.drain() == [("{rtq}:cancel", b"T0000")]
    assert q.cancel("nope") == [b"notfound"]
    q.finish(W, [("T0000", 1, "cancelled", b"", {})])
    assert q.cancel("T0000") == [b"state", b"cancelled"]
    sub.close()


def test_cancel_delayed_task_leaves_the_delayed_set(r, q):
    q.create([{"id": "D", "delay_ms": 60000}])
    q.cancel("D")
    assert r.zcard(q.k("delayed")) == 0 and r.lrange(q.done("cancelled"), 0, -1) == [b"D"]


def test_retry_failed_task(r, q):
    running(q, r)
    q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E"})])
    with pytest.raises(redis.ResponseError):
        q.retry("T0000", "completed")
    assert q.retry("T0000", "failed") == [b"ok"]
    t = q.task("T0000")
    assert t["s"] == b"pending" and "ec" not in t and r.ttl(q.t("T0000")) == -1
    assert r.llen(q.done("failed")) == 0 and r.lrange(q.k("q"), 0, -1) == [b"T0000"]
    assert q.take(W)[0][3] == 1


def test_requeue_puts_task_first_in_line(r, q):
    q.create([{"id": i} for i in ids(3)])
    got = q.take(W, n=1)
    assert q.requeue("T0000", W, 1) == [b"requeued"]
    assert r.lindex(q.k("q"), -1) == b"T0000"
    assert q.take(W, n=1)[0][3] == 1  # attempt not counted
    assert q.requeue("T0000", "w-x", 1) == [b"stale", b"running"]


def test_handback_counts_and_exhausts(r, q):
    running(q, r)
    out = q.handback("T0000", W, 1, delay=0, most=1)
    assert out[0] == b"handed_back" and out[1] == 1
    assert q.promote()[0] == 1
    q.take(W)
    assert q.handback("T0000", W, 1, most=1) == [b"exhausted", 1]
    assert q.handback("nope", W, 1) == [b"missing"]


def test_deadletter_from_processing_and_delayed(r, q):
    running(q, r)
    r.lpush(q.k("p:" + W), "bad id\x00")
    assert q.deadletter("T0000", "BAD_SIGNATURE", "no signature", W) == [b"ok", 1]
    assert q.task("T0000")["s"] == b"failed" and q.task("T0000")["ec"] == b"BAD_SIGNATURE"
    assert q.deadletter("T0000", "BAD_SIGNATURE", "again", W) == [b"gone", 0]
    assert q.deadletter("bad id\x00", "BAD_ID", "x", W) == [b"ok", 0]
    r.zadd(q.k("delayed"), {b"\xffjunk": 1})
    assert q.promote()[1] == [b"\xffjunk"]
    assert q.deadletter(b"\xffjunk", "BAD_ID", "x", "broker-1", source=q.k("delayed")) == [b"ok", 0]
    recs = [msgpack.unpackb(x, raw=False) for x in r.lrange(q.k("dead"), 0, -1)]
    assert [d["code"] for d in recs] == ["BAD_ID", "BAD_ID", "BAD_SIGNATURE"]
    assert recs[0]["payload"] == b"\xffjunk" and recs[0]["queue"] == "default"
    assert r.hget(q.k("stats"), "dead") == b"3"


def test_deadletter_and_recover_take_an_entry_over_1_mib(r, q):
    # A junk entry of any size must leave the list: refused, it would stay
    # in the worker's processing list (or the dead worker's) for good.
    big = b"\x00" + b"x" * (3 * 1024 * 1024)
    r.lpush(q.k("p:" + W), big)
    assert q.deadletter(big, "BAD_ID", "not an id", W) == [b"ok", 0]
    assert r.llen(q.k("p:" + W)) == 0
    rec = msgpack.unpackb(r.lindex(q.k("dead"), 0), raw=False)
    assert rec["size"] == len(big) and len(rec["payload"]) == 4096
    r.lpush(q.k("p:w-dead"), big)
    out = q.recover("w-dead", [big])
    assert r.llen(q.k("p:w-dead")) == 0 and r.llen(q.k("dead")) == 2, out


def test_deadletter_leaves_a_task_running_elsewhere(r, q):
    running(q, r)
    r.lpush(q.k("p:w-other"), "T0000")
    assert q.deadletter("T0000", "X", "dup", "w-other") == [b"ok", 0]
    assert q.task("T0000")["s"] == b"running"


def test_recover_every_branch(r, q):
    dead = "w-dead"
    q.create([{"id": i} for i in ["R", "C", "L", "T", "P", "Q"]])
    for _ in range(4):
        q.take(dead, n=1)
    r.hset(q.t("C"), "cr", "1")
    r.hset(q.t("L"), "a", "3")
    r.hset(q.t("T"), "dl", "1")
    # P: moved by BLMOVE and never claimed; Q: pending in the delayed set
    r.lmove(q.k("q"), q.k("p:" + dead), "RIGHT", "LEFT")
    r.lrem(q.k("q"), 1, "Q"); r.zadd(q.k("delayed"), {"Q": 1}); r.lpush(q.k("p:" + dead), "Q")
    r.lpush(q.k("p:" + dead), "ghost", "bad id")
    entries = r.lrange(q.k("p:" + dead), 0, -1)
    out = dict(zip([e.decode() for e in entries], q.recover(dead, entries, most=3)))
    assert out["R"] == [b"requeued", 1] and out["C"][0] == b"cancelled"
    assert out["L"][0] == b"failed" and out["T"][0] == b"timeout"
    assert out["P"] == [b"requeued", 0] and out["Q"] == [b"dropped", b"pending"]
    assert out["ghost"] == [b"dead", b"NO_TASK_RECORD"] and out["bad id"] == [b"dead", b"BAD_ID"]
    assert q.task("L")["ec"] == b"WORKER_LOST" and q.task("T")["ec"] == b"TIMEOUT"
    assert r.llen(q.k("p:" + dead)) == 0 and set(r.lrange(q.k("q"), 0, -1)) == {b"R", b"P"}
    assert q.recover(dead, [b"R"]) == [[b"gone"]]


def test_backstop_times_out_overdue_runs_of_its_worker_only(r, q):
    running(q, r, n=4)
    q.create([{"id": "M"}])
    r.lmove(q.k("q"), q.k("p:" + W), "RIGHT", "LEFT")  # moved, not claimed yet
    r.lpush(q.k("p:" + W), "bad id")
    r.hset(q.t("T0000"), "dl", "1")  # overdue
    r.hset(q.t("T0001"), "dl", "1")
    r.hset(q.t("T0001"), "w", "w-other")  # overdue, but another worker's run
    r.zadd(q.k("slots"), {"T0000": 1})
    before = r.lrange(q.k("p:" + W), 0, -1)
    assert q.backstop(W, grace=0, offset=0, n=2) == [2, []]  # "bad id", M
    read, ended = q.backstop(W, grace=0, offset=2, n=100)
    assert read == 4 and ended == [b"T0000"]
    t = q.task("T0000")
    assert t["s"] == b"timeout" and t["ec"] == b"TIMEOUT" and "dl" not in t
    assert r.ttl(q.t("T0000")) > 0 and r.zscore(q.k("slots"), "T0000") is None
    assert r.lrange(q.done("timeout"), 0, -1) == [b"T0000"]
    assert r.hget(q.k("stats"), "timeout") == b"1"
    assert r.lrange(q.k("p:" + W), 0, -1) == [e for e in before if e != b"T0000"]
    for i in ("T0001", "T0002", "T0003"):
        assert q.task(i)["s"] == b"running"
    assert q.task("M")["s"] == b"pending"
    # within the grace nothing ends; a late finish of the ended run is stale
    r.hset(q.t("T0003"), "dl", int(time.time() * 1000) - 1000)
    assert q.backstop(W, grace=60000)[1] == []
    assert q.finish(W, [("T0000", 1, "completed", b"", {})])[0][0] == b"stale"


@pytest.mark.parametrize("dl", ["nan", "inf", "-inf", "", "soon", "-1", "0", "12.5", "1e12", " 1",
                                "0x10", "99999999999999999", "253402300800000", None])
def test_backstop_ends_a_run_whose_deadline_is_not_a_time(r, q, dl):
    """A run whose stored deadline does not validate (rewritten, or gone)
    counts as overdue: it ends timeout once, with every trace of an end,
    and a late finish of the run is stale; a run with a good deadline in
    the future is left alone."""
    running(q, r, n=2)
    if dl is None:
        r.hdel(q.t("T0000"), "dl")
    else:
        r.hset(q.t("T0000"), "dl", dl)
    r.zadd(q.k("slots"), {"T0000": 1})
    sub = Sub(r, shard=[q.k("w:T0000")])
    r.hset(q.t("T0000"), "wt", "1")
    read, ended = q.backstop(W, grace=3600000)
    assert read == 2 and ended == [b"T0000"]
    t = q.task("T0000")
    assert t["s"] == b"timeout" and t["ec"] == b"TIMEOUT" and "dl" not in t
    assert t["em"] == b"exceeded its timeout; its worker did not stop it"
    assert r.ttl(q.t("T0000")) > 0 and r.zscore(q.k("slots"), "T0000") is None
    assert r.lrange(q.done("timeout"), 0, -1) == [b"T0000"]
    assert r.hget(q.k("stats"), "timeout") == b"1"
    assert r.lrange(q.k("p:" + W), 0, -1) == [b"T0001"]
    assert [json.loads(m)["s"] for _, m in sub.drain()] == ["timeout"]
    sub.close()
    assert q.task("T0001")["s"] == b"running"
    assert q.finish(W, [("T0000", 1, "completed", b"", {})])[0][0] == b"stale"
    assert q.task("T0000")["s"] == b"timeout"
    # the next call finds nothing more to end
    assert q.backstop(W, grace=3600000) == [1, []]


def test_promote_moves_due_ids_in_bounded_steps(r, q):
    q.create([{"id": i, "run_at_ms": 1} for i in ids(3)])  # run_at in the past: ready
    assert r.llen(q.k("q")) == 3
    r.zadd(q.k("delayed"), {i: 1 for i in ids(250, "D")})
    assert q.promote(100)[0] == 100 and q.promote(100)[0] == 100
    moved, badl, nxt = q.promote(100)
    assert moved == 50 and badl == [] and nxt == -1


def test_prune_stops_at_a_live_task(r, q):
    running(q, r, n=3)
    q.finish(W, [(i, 1, "completed", b"", {}) for i in ids(3)])
    r.delete(q.t("T0000"), q.t("T0001"))
    assert q.prune("completed") == 2 and r.lrange(q.done("completed"), 0, -1) == [b"T0002"]


def test_heartbeat_and_lease(r, q):
    s = q.s
    now = s.call("heartbeat", ["{rtq}:worker:w1", "{rtq}:workers"], ["w1", "5000", "host", "h", "pid", "7"])
    assert r.zscore("{rtq}:workers", "w1") == now and r.hget("{rtq}:worker:w1", "pid") == b"7"
    with pytest.raises(redis.ResponseError):
        s.call("heartbeat", ["{rtq}:worker:w1", "{other}:workers"], ["w1", "5000"])
    assert s.call("lease", ["{rtq}:lease"], ["b1", "5000", "acquire"]) == 1
    assert s.call("lease", ["{rtq}:lease"], ["b2", "5000", "acquire"]) == 0
    assert s.call("lease", ["{rtq}:lease"], ["b2", "5000", "release"]) == 0
    assert s.call("lease", ["{rtq}:lease"], ["b1", "5000", "release"]) == 1


def test_prefixes_cannot_reach_another_queue(r, q):
    other = Queue(r, "rtq", "other", q.s)
    other.create([{"id": "V"}])
    with pytest.raises(redis.ResponseError):
        q.s.call("take", [q.k("q"), q.k("p:" + W)], [W, "1000", q.ev, other.k("t:"), q.k("x:"), "1", "100"])
    with pytest.raises(redis.ResponseError):
        q.s.call("take", [q.k("q"), other.k("p:" + W)], [W, "1000", q.ev, q.k("t:"), q.k("x:"), "1", "100"])


def test_events_channel_must_be_under_the_queue_tag(r, q):
    # On a cluster an SPUBLISH to a shard channel of another slot fails at
    # the SPUBLISH, after the script's writes: every script refuses such a
    # channel before it writes anything.
    other = Queue(r, "rtq", "other", q.s)
    q.create([{"id": "E1"}])
    before = r.execute_command("DEBUG", "DIGEST")
    calls = [
        ("create", [q.k("q"), q.k("delayed"), q.k("stats")],
         [other.ev, q.k("t:"), q.k("x:"), "3", "1", "E2", "job", ""]),
        ("take", [q.k("q"), q.k("p:" + W)] + q.gate(), [W, "1000", other.ev, q.k("t:"), q.k("x:"), "1", "100"]),
        ("claim", [q.k("q"), q.k("p:" + W)] + q.gate(), [W, "1000", "{rtq}:ev", q.k("t:"), q.k("x:"), "E1"]),
        ("cancel", [q.t("E1"), q.k("delayed"), q.k("stats"), q.done("cancelled")],
         ["E1", "86400", "1", "100", "plain", q.k("w:"), "{rtq}:cancel", q.k("t:"), q.k("x:")]),
        ("purge", [q.k("q"), q.k("delayed"), q.k("stats"), q.done("cancelled"), q.k("dead")],
         ["100", "86400", "1", "100", other.ev, q.k("t:"), q.k("x:"), q.k("w:"), q.name]),
    ]
    for name, keys, argv in calls:
        with pytest.raises(redis.ResponseError, match="events channel"):
            q.s.call(name, keys, argv)
    assert r.execute_command("DEBUG", "DIGEST") == before


# ---- signing (PROTOCOL.md section 9) ----

SIG = "k1:" + "ab" * 32


def test_claim_returns_the_stored_values_a_signature_covers(r, q):
    q.create([{"id": "S", "timeout_ms": 5000, "backoff_ms": 7, "sig": SIG},
              {"id": "U"}])
    got = q.take(W)
    assert got[0][7:] == [SIG.encode(), b"5000", b"", b"", b"7"]
    assert got[1][7:] == [b"", b"", b"", b"", b""]


def test_finish_stores_rs_with_a_terminal_outcome_only(r, q):
    running(q, r, n=3, max_retries=1)
    out = q.finish(W, [("T0000", 1, "completed", b"\xa2ok", {"rs": SIG}),
                       ("T0001", 1, "failed", b"", {"ec": "E", "em": "boom", "rs": SIG})])
    assert out == [[b"ok", b"completed"], [b"retry", out[1][1]]]
    assert r.hget(q.t("T0000"), "rs") == SIG.encode()
    assert r.hget(q.t("T0001"), "rs") is None  # a retry is no outcome yet
    with pytest.raises(redis.ResponseError):
        q.finish(W, [("T0002", 1, "completed", b"", {"rs": "not a signature"})])
    assert r.hget(q.t("T0002"), "s") == b"running"


def test_signed_failure_holds_only_the_error_fields_it_sent(r, q):
    running(q, r, max_retries=1)
    long_et = "x" * 300
    q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E1", "em": "first", "et": long_et})])
    r.zrem(q.k("delayed"), "T0000")
    r.hset(q.t("T0000"), "s", "pending")
    r.lpush(q.k("q"), "T0000")
    assert q.take(W)[0][3] == 2
    q.finish(W, [("T0000", 2, "failed", b"", {"ec": "E2", "em": "second", "rs": SIG})])
    t = q.task("T0000")
    assert t["ec"] == b"E2" and t["em"] == b"second" and "et" not in t
    assert t["rs"] == SIG.encode()


def test_short_error_after_a_long_one_is_not_shadowed(r, q):
    # Attempt 1 fails with a long message (side hash) and retries; attempt
    # 2 fails with a short one (task hash): readers must see the short one.
    running(q, r, max_retries=1)
    long_em = "m" * 300
    assert q.finish(W, [("T0000", 1, "failed", b"", {"ec": "E1", "em": long_em})])[0][0] == b"retry"
    assert r.hget(q.k("x:T0000"), "em") == long_em.encode()
    r.zrem(q.k("delayed"), "T0000")
    r.hset(q.t("T0000"), "s", "pending")
    r.lpush(q.k("q"), "T0000")
    assert q.take(W)[0][3] == 2
    assert q.finish(W, [("T0000", 2, "failed", b"", {"ec": "E2", "em": "short"})]) == [[b"ok", b"failed"]]
    assert r.hget(q.k("x:T0000"), "em") is None
    t = q.task("T0000")
    assert t["ec"] == b"E2" and t["em"] == b"short"


@pytest.mark.parametrize("size", [10, 64, 150, 256])
def test_a_retry_after_a_long_error_keeps_the_args(r, q, size):
    """Attempt 1 fails with a long message, which makes a side hash (xs);
    the retry is taken with the task's own args, which the side hash does
    not hold (args of up to 256 bytes stay in the task hash)."""
    args = bytes([0x81]) + msgpack.packb("a") + msgpack.packb("q" * (size - 4 - (1 if size - 4 > 31 else 0)))
    assert len(args) == size
    q.create([{"id": "R", "args": args, "max_retries": 1}])
    assert q.take(W)[0][6] == args
    assert q.finish(W, [("R", 1, "failed", b"", {"ec": "E1", "em": "m" * 300})])[0][0] == b"retry"
    assert r.hget(q.t("R"), "xs") == b"1" and r.hget(q.k("x:R"), "x") is None
    r.zrem(q.k("delayed"), "R")
    r.hset(q.t("R"), "s", "pending")
    r.lpush(q.k("q"), "R")
    got = q.take(W)
    assert got[0][1] == b"R" and got[0][3] == 2 and got[0][6] == args


def test_other_ends_drop_an_older_rs(r, q):
    running(q, r)
    r.hset(q.t("T0000"), "rs", SIG)  # as a retried task would still hold
    assert q.deadletter("T0000", "BAD_SIGNATURE", "bad signature", W) == [b"ok", 1]
    t = q.task("T0000")
    assert t["s"] == b"failed" and t["ec"] == b"BAD_SIGNATURE" and "rs" not in t


def test_end_signatures_are_stored_only_for_the_state_signed(r, q):
    # cancel of a pending task: a record for its a and b (none: never ran)
    q.create([{"id": "P1"}, {"id": "P2"}])
    assert q.cancel("P1", sigs=[("P1", "", "", "cancelled", SIG)]) == [b"cancelled"]
    assert q.task("P1")["rs"] == SIG.encode()
    # a record for another attempt is not stored: the end stays unsigned
    assert q.cancel("P2", sigs=[("P2", "1", "", "cancelled", SIG)]) == [b"cancelled"]
    assert "rs" not in q.task("P2")
    # backstop: the record of the run it ends
    q.create([{"id": "B0000", "timeout_ms": 1}, {"id": "B0001", "timeout_ms": 1}])
    q.take(W)
    b0 = r.hget(q.t("B0000"), "b").decode()
    time.sleep(0.01)
    got = q.backstop(W, sigs=[("B0000", "1", b0, "timeout", SIG), ("B0001", "1", "1", "timeout", SIG)])
    assert sorted(got[1]) == [b"B0000", b"B0001"]
    assert q.task("B0000")["rs"] == SIG.encode() and q.task("B0000")["ec"] == b"TIMEOUT"
    assert "rs" not in q.task("B0001")  # signed for another claim time
    # recover: the records of the ends it may choose; an older error is gone
    q.create([{"id": "R0"}])
    q.take("w-dead")
    r.hset(q.t("R0"), "cr", "1")
    r.hset(q.k("x:R0"), "et", "old trace " * 20)
    r.hset(q.t("R0"), "xs", "1")
    b = r.hget(q.t("R0"), "b").decode()
    assert q.recover("w-dead", ["R0"], sigs=[("R0", "1", b, "cancelled", SIG), ("R0", "1", b, "timeout", SIG)]) \
        == [[b"cancelled", 1]]
    t = q.task("R0")
    assert t["rs"] == SIG.encode() and t["em"] == b"cancelled while its worker died" and "et" not in t
    # deadletter by the worker of a task it claimed
    q.create([{"id": "D0"}])
    q.take(W)
    b = r.hget(q.t("D0"), "b").decode()
    assert q.deadletter("D0", "BAD_ARGS", "not a map", W, sigs=[("D0", "1", b, "failed", SIG)]) == [b"ok", 1]
    assert q.task("D0")["rs"] == SIG.encode()


def test_purge_stores_the_signatures_of_the_ends_it_writes(r, q):
    q.create([{"id": "P1"}, {"id": "P2", "delay_ms": 60000}, {"id": "P3"}])
    got = q.s.call("purge", [q.k("q"), q.k("delayed"), q.k("stats"), q.done("cancelled"), q.k("dead")],
                   ["100", "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"), q.name,
                    "P1", "", "", "cancelled", SIG, "P2", "", "", "cancelled", SIG, "P3", "9", "", "cancelled", SIG])
    assert got[0] == 3
    assert q.task("P1")["rs"] == SIG.encode() and q.task("P2")["rs"] == SIG.encode()
    assert "rs" not in q.task("P3")  # signed for another attempt


def test_end_signature_records_are_validated_first(r, q):
    q.create([{"id": "P1"}])
    for bad in [("P1", "x", "", "cancelled", SIG), ("P1", "", "", "completed", SIG),
                ("P1", "", "", "cancelled", "not a sig"), ("bad id!", "", "", "cancelled", SIG)]:
        with pytest.raises(redis.ResponseError):
            q.cancel("P1", sigs=[bad])
    assert q.task("P1")["s"] == b"pending"
    with pytest.raises(redis.ResponseError):
        q.s.call("cancel", [q.t("P1"), q.k("delayed"), q.k("stats"), q.done("cancelled")],
                 ["P1", "86400", "1", "100", q.ev, q.k("w:"), "{rtq}:cancel", q.k("t:"), q.k("x:"), "P1"])
    assert q.task("P1")["s"] == b"pending"
