"""Conformance of docs/PROTOCOL.md: a Python producer and worker
(rtqproto2.py, written from that document alone) against rtq's C worker,
broker and CLI run with --protocol 2, on a private redis-server.
"""

import json
import os
import signal
import subprocess
import threading

import msgpack
import pytest
import redis

from conftest import bin_path, wait_for
import rtqproto2 as P

P2 = ("--protocol", "2")


@pytest.fixture(autouse=True)
def fresh(redis_url):
    """Every test starts on an empty Redis (the session shares one server)."""
    redis.Redis.from_url(redis_url).flushall()


@pytest.fixture
def rtq2(rtq):
    """The rtq CLI speaking protocol 2, with --json."""

    def run(*args, timeout=60):
        return rtq(*P2, "--json", *args, timeout=timeout)

    return run


def status(rtq2, tid, *queue):
    p = rtq2("status", tid, *queue)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def status_is(rtq2, tid, want):
    return status(rtq2, tid)["status"] == want


def enqueue(rtq2, *args):
    p = rtq2("enqueue", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["id"]


@pytest.fixture
def producer(redis_url):
    return P.Producer(redis_url)


@pytest.fixture
def pyworker(redis_url):
    """An in-process Python worker; started by the test, closed here."""
    made = []

    def make(queues, handlers, cls=P.Worker, **kw):
        w = cls(redis_url, queues, handlers, heartbeat_interval=0.5, heartbeat_ttl_ms=3000, **kw)
        w.start()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # reported by the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


# ---- section 1: ids and their slot ------------------------------------------


def test_ids_carry_their_queue_slot(redis_url, producer, rtq2):
    assert P.crc16(b"123456789") == 0x31C3  # the XMODEM check value
    assert P.queue_slot("rtq", "pyw") == P.crc16(b"rtq:pyw") % 16384
    ids = P.IdMaker()
    a = ids.new("rtq", "pyw", 1700000000000)
    b = ids.new("rtq", "pyw", 1700000000000)
    c = ids.new("rtq", "pyw", 1700000000001)
    assert len(a) == 26 and a < b < c and P.valid_name(a)
    assert P.id_slot(a) == P.id_slot(c) == P.queue_slot("rtq", "pyw")

    # rtq's own ids carry the same slot.
    cid = enqueue(rtq2, "rtq.echo", "{}", "--queue", "pyw")
    assert P.id_slot(cid) == P.queue_slot("rtq", "pyw")
    assert producer.queue_of(cid) == "pyw"

    # An id this producer made maps to its queue among several: the CLI
    # finds it without --queue, and so does the producer.
    made = {q: producer.create("py.echo", {"q": q}, queue=q)[0] for q in ("ia", "ib", "ic")}
    for q, tid in made.items():
        assert P.id_slot(tid) == P.queue_slot("rtq", q)
        t = status(rtq2, tid)
        assert t["queue"] == q and t["args"] == {"q": q} and t["status"] == "pending"
        assert producer.queue_of(tid) == q

    # A name as id is unique per queue: two queues, two tasks.
    assert producer.create("py.echo", {"n": 1}, queue="ia", tid="order-17") == ("order-17", True)
    assert producer.create("py.echo", {"n": 2}, queue="ib", tid="order-17") == ("order-17", True)
    assert status(rtq2, "order-17", "--queue", "ib")["args"] == {"n": 2}
    assert producer.task("ia", "order-17")["x"] == {"n": 1}


def test_namespace_mark(redis_url, rtq):
    """Section 10: the Python side marks the namespace the C side checks,
    and both refuse one that holds protocol 1's data."""
    r = redis.Redis.from_url(redis_url)
    r.hset("rtq:stats", "x", 1)  # protocol 1 data, no mark
    with pytest.raises(P.ProtocolError, match="protocol-1 data"):
        P.Producer(redis_url)
    p = rtq("stats")
    assert p.returncode == 4 and "protocol-1 data" in p.stderr, p.stderr
    assert r.exists("{rtq}:version") == 0
    r.flushall()
    P.Producer(redis_url)
    assert r.get("{rtq}:version") == b"2"
    assert rtq("stats").returncode == 0
    assert rtq(*P2, "stats").returncode == 0
    r.set("{rtq}:version", "3")
    with pytest.raises(P.ProtocolError, match="marked protocol 3"):
        P.Worker(redis_url, ["q"], {})


# ---- Python producer -> C worker --------------------------------------------


def test_python_producer_batch_c_worker_completes(redis_url, procs, producer, rtq2):
    procs.c_worker(*P2, "--queue", "pyq")
    procs.broker(*P2, "--sweep-interval", "200ms")
    args = {"n": 42, "word": "h\u00e9llo", "list": [1, 2.5, None, True], "map": {"k": "v"}}
    mid_args = {"text": "x" * 150}  # 65..256 bytes: chunks in the task hash
    long_args = {"text": "x" * 300}  # above 256 bytes: the side hash
    got = producer.create_batch("pyq", [P.Task("rtq.echo", args), P.Task("rtq.echo", long_args),
                                        P.Task("rtq.echo", {"late": True}, delay_ms=300),
                                        P.Task("rtq.echo", mid_args)])
    assert [g[1] for g in got] == [True, True, True, True]
    tid, tid_long, tid_late, tid_mid = (g[0] for g in got)
    assert producer.task("pyq", tid_mid)["x"] == mid_args
    r = redis.Redis.from_url(redis_url)
    assert r.get("{rtq}:version") == b"2" and r.sismember("{rtq}:queues", "pyq")
    # Created again: the existing task, nothing enqueued (section 1).
    assert producer.create_batch("pyq", [P.Task("rtq.echo", args, tid=tid)])[0][1] is False

    for t_id, want in ((tid, args), (tid_long, long_args), (tid_late, {"late": True}), (tid_mid, mid_args)):
        wait_for(lambda: status_is(rtq2, t_id, "completed"), 20, f"the C worker to complete {t_id}")
        t = status(rtq2, t_id)
        assert t["queue"] == "pyq" and t["name"] == "rtq.echo" and t["result"] == want
        assert t["attempts"] == 1 and t["error"] is None
        assert producer.task("pyq", t_id)["r"] == want
    assert status(rtq2, tid_late)["run_at"] is not None
    assert r.hget("{rtq:pyq}:stats", "enqueued") == b"4"
    assert r.hget("{rtq:pyq}:stats", "completed") == b"4"
    # A completed task drops its args (section 3).
    assert "x" not in producer.task("pyq", tid)


def test_python_producer_waits_and_cancels_a_running_c_task(procs, producer, rtq2):
    procs.c_worker(*P2, "--queue", "pyc")
    tid, _ = producer.create("rtq.sleep", {"seconds": 30, "steps": 300}, queue="pyc")
    wait_for(lambda: status_is(rtq2, tid, "running"), 20, "the C worker to start it")
    th, out = in_thread(lambda: producer.wait("pyc", tid, 20))
    assert producer.cancel("pyc", tid) == "requested"
    th.join(timeout=25)
    t = out.get("value")
    assert t is not None and t["s"] == "cancelled" and t["ec"] == "CANCELLED", out
    assert producer.cancel("pyc", tid) == "state:cancelled"
    assert producer.cancel("pyc", "NOSUCHTASK") == "notfound"


# ---- rtq CLI -> Python worker ------------------------------------------------


def test_cli_enqueue_python_worker_completes(redis_url, pyworker, rtq2):
    seen = {}

    def add(ctx, args):
        seen["attempt"] = ctx.attempt
        ctx.progress(50, "halfway")
        seen["mid"] = status(rtq2, ctx.id)
        return {"sum": args["a"] + args["b"]}

    tid = enqueue(rtq2, "py.add", '{"a": 2, "b": 3}', "--queue", "pyw")
    waiter = subprocess.Popen([bin_path("client/rtq"), "--redis", redis_url, *P2, "--json",
                               "wait", tid, "--timeout", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        w = pyworker(["pyw"], {"py.add": add})
        p = rtq2("workers")  # the heartbeat's record, as rtq reads it
        assert p.returncode == 0, p.stderr
        assert w.id in p.stdout and "pyw:1" in p.stdout
        got = w.poll_once(timeout=5)
        assert got[0] == "finished" and got[2] == ["ok", "completed"]
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    t = json.loads(out)
    assert t["status"] == "completed" and t["result"] == {"sum": 5}
    assert t["worker"] == w.id and t["attempts"] == 1 and t["progress"] == 50
    assert seen["attempt"] == 1
    assert seen["mid"]["status"] == "running" and seen["mid"]["progress"] == 50
    assert seen["mid"]["progress_message"] == "halfway"
    r = redis.Redis.from_url(redis_url)
    assert r.hget("{rtq:pyw}:stats", "completed") == b"1"
    assert r.hget("{rtq:pyw}:rt", "count") == b"1"
    assert r.llen(f"{{rtq:pyw}}:p:{w.id}") == 0


def test_python_worker_events_seen_by_watch(redis_url, pyworker, rtq2):
    release = threading.Event()

    def slow(ctx, args):
        ctx.progress(50, "half way there")
        release.wait(10)
        return {"ok": True}

    r = redis.Redis.from_url(redis_url)
    ev = P.ShardSub(r, "{rtq:pyv}:ev")
    tid = enqueue(rtq2, "py.slow", "{}", "--queue", "pyv")
    watch = subprocess.Popen([bin_path("client/rtq"), "--redis", redis_url, *P2, "--json", "watch",
                              tid, "--timeout", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(x) for x in watch.stdout),
                              daemon=True)
    reader.start()
    try:
        w = pyworker(["pyv"], {"py.slow": slow})
        th, out = in_thread(lambda: w.poll_once(timeout=5))
        # The handler holds at 50 % until the watch has shown it.
        wait_for(lambda: any(x["id"] == tid and x["status"] == "running" and x["progress"] == 50
                             and x["message"] == "half way there" for x in list(lines)), 10,
                 "rtq watch to show the progress")
        release.set()
        th.join(timeout=10)
        assert out["value"][2] == ["ok", "completed"], out
        assert watch.wait(timeout=20) == 0, watch.stderr.read()
        reader.join(timeout=5)
    finally:
        release.set()
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        msgs = []
        while True:
            m = ev.get(0.5)
            if m is None:
                break
            msgs.append(json.loads(m))
        ev.close()
    assert lines[-1]["id"] == tid and lines[-1]["status"] == "completed" and lines[-1]["done"]
    # Section 7: the Python worker's step calls, as the channel carries them.
    mine = [m for m in msgs if any(t["id"] == tid for t in m["t"])]
    # create's, then take's (with the worker), progress's, finish's.
    assert [m.get("s") for m in mine[:2]] == ["pending", "running"], mine
    assert mine[1]["w"] == w.id and mine[1]["t"][0]["a"] == 1, mine
    assert any(t.get("p") == 50 and t.get("pm") == "half way there" for m in mine for t in m["t"])
    assert any(t.get("s") == "completed" for m in mine for t in m["t"])
    assert all(isinstance(m["at"], int) for m in mine)


def test_python_worker_failure_retries_then_fails(procs, pyworker, rtq2):
    procs.broker(*P2, "--sweep-interval", "200ms")

    def bad(ctx, args):
        raise P.HandlerError("E_PY", f"attempt {ctx.attempt} refused", {"field": "a"})

    def crash(ctx, args):
        return {"x": 1 / len(args)}  # args is {}: a plain exception, HANDLER_ERROR

    tid = enqueue(rtq2, "py.bad", "{}", "--queue", "pyf", "--retries", "1")
    tid2 = enqueue(rtq2, "py.crash", "{}", "--queue", "pyf")
    w = pyworker(["pyf"], {"py.bad": bad, "py.crash": crash})
    first = w.poll_once(timeout=5)
    assert first[1] == tid and first[2][0] == "retry"
    assert w.poll_once(timeout=5)[1] == tid2
    t = status(rtq2, tid)
    assert t["status"] == "pending" and t["retry_at"] is not None
    # 1 s backoff plus 0..499 ms of jitter; the broker promotes it.
    done = w.poll_once(timeout=10)
    assert done is not None and done[1] == tid and done[2] == ["ok", "failed"]
    p = rtq2("wait", tid, "--timeout", "5")
    assert p.returncode == 1  # ended other than completed
    t = json.loads(p.stdout)
    assert t["status"] == "failed" and t["attempts"] == 2
    assert t["error"]["code"] == "E_PY" and t["error"]["message"] == "attempt 2 refused"
    assert t["error"]["details"] == {"field": "a"}
    t2 = status(rtq2, tid2)
    assert t2["status"] == "failed" and t2["error"]["code"] == "HANDLER_ERROR"
    assert "ZeroDivisionError" in t2["error"]["traceback"]


def test_python_producer_batches_python_worker_takes_several(redis_url, producer, pyworker,
                                                            rtq2):
    r = redis.Redis.from_url(redis_url)
    # Refused before Redis: 65 tasks, a bad name, a bad queue.
    for q, tasks in (("pyb", [P.Task("py.echo", {"i": i}) for i in range(65)]),
                     ("pyb", [P.Task("bad name")]), ("bad/queue", [P.Task("py.echo")])):
        with pytest.raises(P.ProtocolError):
            producer.create_batch(q, tasks)
    assert r.llen("{rtq:pyb}:q") == 0
    got = producer.create_batch("pyb", [P.Task("py.echo", {"i": i}) for i in range(64)])
    assert len(got) == 64 and all(g[1] for g in got)
    assert r.hget("{rtq:pyb}:stats", "enqueued") == b"64"
    assert [g[0] for g in got] == sorted(g[0] for g in got)  # one producer's ids sort

    w = pyworker(["pyb"], {"py.echo": lambda ctx, args: args}, take_n=16)
    first = w.poll_once(timeout=5)
    # One take claimed 16: the other 15 run under this worker already.
    assert first[2] == ["ok", "completed"] and len(w._claimed) == 15
    assert r.llen(f"{{rtq:pyb}}:p:{w.id}") == 15
    for _ in range(63):
        assert w.poll_once(timeout=5)[2] == ["ok", "completed"]
    assert w.poll_once(timeout=0.2) is None
    assert r.hget("{rtq:pyb}:stats", "completed") == b"64"
    assert r.hget("{rtq:pyb}:rt", "count") == b"64"
    last = got[-1][0]
    assert producer.wait("pyb", last, 5)["r"] == {"i": 63}
    assert status(rtq2, last)["result"] == {"i": 63}


def test_python_worker_timeout(pyworker, rtq2):
    def block(ctx, args):
        while True:
            ctx.sleep(0.02)

    w = pyworker(["pyt"], {"py.block": block})
    tid = enqueue(rtq2, "py.block", "{}", "--queue", "pyt", "--timeout", "0.3")
    assert w.poll_once(timeout=5)[2] == ["ok", "timeout"]
    t = status(rtq2, tid)
    assert t["status"] == "timeout" and t["error"]["code"] == "TIMEOUT"  # finish wrote it


# ---- cancellation ----------------------------------------------------------------


class DeafWorker(P.Worker):
    """Hears nothing on {ns}:cancel: only `cr` can stop its handler."""

    def _listen_cancel(self):
        self._stop.wait()


@pytest.mark.parametrize("cls", [P.Worker, DeafWorker], ids=["message", "cr"])
def test_python_worker_cancellation(pyworker, rtq2, cls):
    def block(ctx, args):
        ctx.progress(5, "waiting to be cancelled")
        while True:
            ctx.sleep(0.02)

    w = pyworker(["pyx"], {"py.block": block}, cls=cls)
    # Cancelled while pending: the claim drops it and it never runs.
    early = enqueue(rtq2, "py.block", "{}", "--queue", "pyx")
    p = rtq2("cancel", early)
    assert p.returncode == 0 and json.loads(p.stdout)["outcome"] == "cancelled"
    assert w.poll_once(timeout=5) == ("skip", early)

    tid = enqueue(rtq2, "py.block", "{}", "--queue", "pyx")
    th, out = in_thread(lambda: w.poll_once(timeout=5))
    wait_for(lambda: status(rtq2, tid)["progress"] == 5, 10, "the Python worker to run it")
    p = rtq2("cancel", tid)
    assert p.returncode == 0 and json.loads(p.stdout)["outcome"] == "requested"
    th.join(timeout=10)
    assert not th.is_alive() and "error" not in out, out
    assert out["value"][2] == ["ok", "cancelled"]
    # Both times are Redis TIME: the request (cr) and the terminal write
    # (e). By the message, the usual bound (rtq's worker: 500 ms); by `cr`
    # alone, the check every second (section 5, worker step 4).
    h = w.r.hmget(w.k.task("pyx", tid), "cr", "e")
    ms = int(h[1]) - int(h[0])
    print(f"  cancel -> cancelled ({cls.__name__}): {ms} ms")
    assert 0 <= ms <= (500 if cls is P.Worker else 1500), ms
    t = status(rtq2, tid)
    assert t["status"] == "cancelled" and t["error"]["code"] == "CANCELLED"
    assert t["progress"] == 5


# ---- dead letters ------------------------------------------------------------------


def test_python_worker_dead_letters_bad_entries(redis_url, pyworker, rtq2):
    r = redis.Redis.from_url(redis_url)
    w = pyworker(["pyd"], {"py.known": lambda ctx, args: None})
    # A task hash that does not check out: an attempt of nan.
    bad = enqueue(rtq2, "py.known", "{}", "--queue", "pyd")
    r.hset(f"{{rtq:pyd}}:t:{bad}", "a", "nan")
    assert w.poll_once(timeout=5) == ("deadletter", bad, "BAD_TASK_RECORD")
    t = status(rtq2, bad)
    assert t["status"] == "failed" and t["error"]["code"] == "BAD_TASK_RECORD", t
    # An entry that is no id, and an id without a hash.
    r.lpush("{rtq:pyd}:q", b"\xc1 not an id")
    assert w.poll_once(timeout=5) == ("deadletter", "", "BAD_ID")
    r.lpush("{rtq:pyd}:q", "NOHASH")
    assert w.poll_once(timeout=5) == ("deadletter", "NOHASH", "NO_TASK_RECORD")
    # A name this worker has no handler for.
    unknown = enqueue(rtq2, "py.unknown", "{}", "--queue", "pyd")
    assert w.poll_once(timeout=5) == ("deadletter", unknown, "UNKNOWN_TASK")
    assert status(rtq2, unknown)["error"]["code"] == "UNKNOWN_TASK"

    assert r.llen(f"{{rtq:pyd}}:p:{w.id}") == 0
    recs = [msgpack.unpackb(x, raw=False) for x in r.lrange("{rtq:pyd}:dead", 0, -1)]
    assert [d["code"] for d in recs] == ["UNKNOWN_TASK", "NO_TASK_RECORD", "BAD_ID",
                                         "BAD_TASK_RECORD"]
    assert recs[2]["payload"] == b"\xc1 not an id" and recs[2]["id"] == ""
    assert recs[3]["id"] == bad and recs[3]["payload"] == bad.encode()
    assert all(d["worker"] == w.id and d["queue"] == "pyd" for d in recs)
    p = rtq2("dead", "list")
    assert p.returncode == 0, p.stderr
    assert bad in p.stdout and "BAD_TASK_RECORD" in p.stdout and "NO_TASK_RECORD" in p.stdout
    assert r.hget("{rtq:pyd}:stats", "dead") == b"4"


# ---- a Python worker process dies or stops ----------------------------------------------


def test_python_worker_killed_is_recovered_by_the_c_broker(redis_url, procs, rtq2):
    procs.broker(*P2, "--heartbeat-ttl", "2s", "--sweep-interval", "200ms")
    py = procs.py_worker2("--worker-id", "py-doomed", "--queue", "pyk", "--handler", "rtq.sleep",
                          "--heartbeat-interval", "0.3", "--heartbeat-ttl-ms", "2000")
    tid = enqueue(rtq2, "rtq.sleep", '{"seconds": 0.1, "steps": 2}', "--queue", "pyk")
    wait_for(lambda: status(rtq2, tid)["worker"] == "py-doomed", 20,
             "the Python worker to claim it")
    assert status(rtq2, tid)["status"] == "running"
    os.kill(py.pid, signal.SIGKILL)
    py.wait(timeout=10)
    # Its heartbeat goes stale; the broker puts the task back on its queue
    # and the C worker runs the second delivery.
    wait_for(lambda: status_is(rtq2, tid, "pending"), 20, "the broker to redeliver it")
    procs.c_worker(*P2, "--queue", "pyk")
    wait_for(lambda: status_is(rtq2, tid, "completed"), 20, "the C worker to complete it")
    t = status(rtq2, tid)
    assert t["attempts"] == 2 and t["worker"] != "py-doomed"
    assert t["result"]["steps"] == 2
    r = redis.Redis.from_url(redis_url)
    assert r.llen("{rtq:pyk}:p:py-doomed") == 0
    assert r.hget("{rtq:pyk}:stats", "redelivered") == b"1"


def test_python_worker_requeues_on_shutdown(redis_url, procs, rtq2):
    py = procs.py_worker2("--worker-id", "py-leaving", "--queue", "pys", "--handler", "rtq.sleep")
    tid = enqueue(rtq2, "rtq.sleep", '{"seconds": 0.1, "steps": 2}', "--queue", "pys")
    wait_for(lambda: status(rtq2, tid)["progress"] == 10, 20, "the Python worker to run it")
    assert "py-leaving" in rtq2("workers").stdout
    os.kill(py.pid, signal.SIGTERM)
    assert py.wait(timeout=10) == 0
    # Back at the front of its queue, the attempt not counted; the worker
    # record and its workers entry are gone.
    t = status(rtq2, tid)
    assert t["status"] == "pending" and t["attempts"] == 0, t
    r = redis.Redis.from_url(redis_url)
    assert r.lrange("{rtq:pys}:q", -1, -1) == [tid.encode()]
    assert r.llen("{rtq:pys}:p:py-leaving") == 0
    assert not r.exists("{rtq}:worker:py-leaving")
    assert r.zscore("{rtq}:workers", "py-leaving") is None
    procs.c_worker(*P2, "--queue", "pys")
    wait_for(lambda: status_is(rtq2, tid, "completed"), 20, "the C worker to complete it")
    assert status(rtq2, tid)["attempts"] == 1
