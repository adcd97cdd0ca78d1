"""Conformance of docs/PROTOCOL.md: a Python producer and worker
(rtqproto.py, written from that document alone) against rtq's C worker,
broker and CLI, on a private redis-server.
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
import rtqproto

TERMINAL = ("completed", "failed", "cancelled", "timeout")


@pytest.fixture(autouse=True)
def protocol_1(monkeypatch):
    """Every C binary these tests start speaks protocol 1 (2 is the default)."""
    monkeypatch.setenv("RTQ_PROTOCOL", "1")


def status_json(rtq, tid):
    p = rtq("--json", "status", tid)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def enqueue(rtq, *args):
    p = rtq("--json", "enqueue", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["id"]


def status_is(rtq, tid, want):
    return status_json(rtq, tid)["status"] == want


@pytest.fixture
def producer(redis_url):
    return rtqproto.Producer(redis_url)


@pytest.fixture
def pyworker(redis_url):
    """An in-process Python worker; started by the test, closed here."""
    made = []

    def make(queues, handlers, **kw):
        w = rtqproto.Worker(redis_url, queues, handlers, heartbeat_interval=0.5,
                            heartbeat_ttl_ms=3000, **kw)
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


def test_ids_are_ulids_in_time_order():
    a = rtqproto.new_task_id(1700000000000)
    b = rtqproto.new_task_id(1700000000001)
    assert len(a) == 26 and a < b
    assert rtqproto.valid_name(a)
    assert a[0] in "01234567"


# ---- Python producer -> C worker ------------------------------------------


def test_python_producer_c_worker_completes(procs, producer, rtq):
    procs.c_worker("--queue", "pyq")
    procs.broker("--sweep-interval", "200ms")
    args = {"n": 42, "word": "h\u00e9llo", "list": [1, 2.5, None, True], "map": {"k": "v"}}
    tid, created = producer.create("rtq.echo", args, queue="pyq")
    assert created
    # The same id again creates nothing (section 1).
    assert producer.create("rtq.echo", args, queue="pyq", tid=tid) == (tid, False)
    wait_for(lambda: status_is(rtq, tid, "completed"), 20, "the C worker to complete it")
    t = status_json(rtq, tid)
    assert t["id"] == tid and t["name"] == "rtq.echo" and t["queue"] == "pyq"
    assert t["result"] == args
    assert t["attempts"] == 1 and t["error"] is None

    # A delayed task: the broker promotes it, the worker runs it, and its
    # run_at survives the claim (section 4).
    tid2, _ = producer.create("rtq.echo", {"late": True}, queue="pyq", delay_ms=300)
    assert status_json(rtq, tid2)["status"] == "pending"
    wait_for(lambda: status_is(rtq, tid2, "completed"), 20, "the delayed task to complete")
    t2 = status_json(rtq, tid2)
    assert t2["run_at"] is not None and t2["result"] == {"late": True}

    # rtq reads the args this producer wrote (a task still waiting keeps
    # them; a completed one drops them, section 4).
    tid3, _ = producer.create("rtq.echo", args, queue="pyq", delay_ms=600000)
    assert status_json(rtq, tid3)["args"] == args
    assert producer.task(tid3)["args"] == args
    assert "args" not in producer.task(tid)


def test_python_producer_cancels_a_running_c_task(procs, producer, rtq):
    procs.c_worker("--queue", "pyc")
    tid, _ = producer.create("rtq.sleep", {"seconds": 30, "steps": 300}, queue="pyc")
    wait_for(lambda: status_is(rtq, tid, "running"), 20, "the C worker to start it")
    assert producer.cancel(tid) == "requested"
    t = producer.wait(tid, 20)
    assert t is not None and t["status"] == "cancelled"
    assert t["error_code"] == "CANCELLED"


# ---- rtq CLI -> Python worker ------------------------------------------------


def test_cli_enqueue_python_worker_completes(redis_url, procs, pyworker, rtq):
    seen = {}

    def add(ctx, args):
        seen["attempt"] = ctx.attempt
        ctx.progress(50, "halfway")
        seen["mid"] = status_json(rtq, ctx.id)
        return {"sum": args["a"] + args["b"]}

    tid = enqueue(rtq, "py.add", '{"a": 2, "b": 3}', "--queue", "pyw")
    waiter = subprocess.Popen([bin_path("client/rtq"), "--redis", redis_url, "--json", "wait", tid,
                               "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        w = pyworker(["pyw"], {"py.add": add})
        # The heartbeat's record, as rtq reads it.
        p = rtq("--json", "workers")
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
    assert t["worker"] == w.id and t["attempts"] == 1
    assert seen["attempt"] == 1
    assert seen["mid"]["status"] == "running" and seen["mid"]["progress"] == 50
    assert seen["mid"]["progress_message"] == "halfway"
    assert t["progress"] == 50
    # A completed task's args are gone (section 4); the stats counted it.
    r = redis.Redis.from_url(redis_url)
    assert r.hget(f"rtq:task:{tid}", "args") is None
    assert r.hget("rtq:stats", "pyw|completed") == b"1"


def test_python_worker_failure_retries_then_fails(procs, pyworker, rtq):
    procs.broker("--sweep-interval", "200ms")

    def bad(ctx, args):
        raise rtqproto.HandlerError("E_PY", f"attempt {ctx.attempt} refused", {"field": "a"})

    def crash(ctx, args):
        return {"x": 1 / len(args)}  # args is {}: a plain exception, HANDLER_ERROR

    tid = enqueue(rtq, "py.bad", "{}", "--queue", "pyf", "--retries", "1")
    tid2 = enqueue(rtq, "py.crash", "{}", "--queue", "pyf")
    w = pyworker(["pyf"], {"py.bad": bad, "py.crash": crash})
    first = w.poll_once(timeout=5)
    assert first[1] == tid and first[2][0] == "retry"
    assert w.poll_once(timeout=5)[1] == tid2
    t = status_json(rtq, tid)
    assert t["status"] == "pending" and t["retry_at"] is not None
    # 1 s doubled 0 times, plus 0..499 ms of jitter: the broker promotes it.
    done = w.poll_once(timeout=10)
    assert done is not None and done[1] == tid and done[2] == ["ok", "failed"]

    p = rtq("--json", "wait", tid, "--timeout", "5")
    assert p.returncode == 1  # ended other than completed
    t = json.loads(p.stdout)
    assert t["status"] == "failed" and t["attempts"] == 2
    assert t["error"]["code"] == "E_PY" and t["error"]["message"] == "attempt 2 refused"
    assert t["error"]["details"] == {"field": "a"}
    assert t["retry_at"] is not None
    t2 = status_json(rtq, tid2)
    assert t2["status"] == "failed" and t2["error"]["code"] == "HANDLER_ERROR"
    assert "ZeroDivisionError" in t2["error"]["traceback"]


def test_python_worker_cancellation(procs, pyworker, rtq):
    def block(ctx, args):
        ctx.progress(5, "waiting to be cancelled")
        while True:
            ctx.sleep(0.05)

    w = pyworker(["pyx"], {"py.block": block})
    # Cancelled while pending: claim skips it and it never runs.
    early = enqueue(rtq, "py.block", "{}", "--queue", "pyx")
    assert rtq("cancel", early).returncode == 0
    assert w.poll_once(timeout=5) == ("skip", early, "cancelled")

    tid = enqueue(rtq, "py.block", "{}", "--queue", "pyx")
    th, out = in_thread(lambda: w.poll_once(timeout=5))
    wait_for(lambda: status_is(rtq, tid, "running"), 10, "the Python worker to claim it")
    p = rtq("--json", "cancel", tid)
    assert p.returncode == 0 and json.loads(p.stdout)["outcome"] == "requested"
    th.join(timeout=10)
    assert not th.is_alive() and "error" not in out, out
    assert out["value"][2] == ["ok", "cancelled"]
    t = status_json(rtq, tid)
    # The worker sent no code: finish wrote it (section 6, step 7).
    assert t["status"] == "cancelled" and t["error"]["code"] == "CANCELLED"
    assert t["progress"] == 5


def test_python_worker_timeout(pyworker, rtq):
    def block(ctx, args):
        while True:
            ctx.sleep(0.05)

    w = pyworker(["pyt"], {"py.block": block})
    tid = enqueue(rtq, "py.block", "{}", "--queue", "pyt", "--timeout", "0.3")
    got = w.poll_once(timeout=5)
    assert got[2] == ["ok", "timeout"]
    t = status_json(rtq, tid)
    assert t["status"] == "timeout" and t["error"]["code"] == "TIMEOUT"


def test_python_worker_dead_letters_what_it_cannot_run(redis_url, pyworker, rtq):
    w = pyworker(["pyd"], {"py.known": lambda ctx, args: None})
    tid = enqueue(rtq, "py.unknown", "{}", "--queue", "pyd")
    assert w.poll_once(timeout=5) == ("deadletter", tid, "UNKNOWN_TASK")
    t = status_json(rtq, tid)
    assert t["status"] == "failed" and t["error"]["code"] == "UNKNOWN_TASK"
    r = redis.Redis.from_url(redis_url)
    r.lpush("rtq:queue:pyd", b"\xc1 not msgpack")
    assert w.poll_once(timeout=5) == ("deadletter", "", "DECODE_ERROR")
    assert r.llen(f"rtq:processing:{w.id}") == 0
    recs = [msgpack.unpackb(x, raw=False) for x in r.lrange("rtq:dead", 0, -1)]
    assert [d["code"] for d in recs] == ["DECODE_ERROR", "UNKNOWN_TASK"]
    assert recs[0]["payload"] == b"\xc1 not msgpack" and recs[0]["worker"] == w.id


def test_c_dead_letters_decode_strictly(redis_url, procs):
    """Section 9: the C worker's records decode with a strict decoder,
    payload a bin holding the bytes as they were."""
    procs.c_worker("--queue", "pyb")
    r = redis.Redis.from_url(redis_url)
    junk = bytes(range(0x80, 0x100)) * 20  # not UTF-8; over 4096 bytes
    r.lpush("rtq:queue:pyb", junk)
    wait_for(lambda: r.llen("rtq:dead") == 1, 20, "the C worker to dead-letter it")
    d = msgpack.unpackb(r.lindex("rtq:dead", 0), raw=False)
    assert d["code"] == "DECODE_ERROR" and d["size"] == len(junk)
    assert isinstance(d["payload"], bytes) and d["payload"] == junk[:4096]


# ---- a Python worker dies -> the C broker redelivers --------------------------


def test_python_worker_death_is_recovered_by_the_broker(redis_url, procs, rtq):
    procs.broker("--heartbeat-ttl", "2s", "--sweep-interval", "200ms")
    py = procs.py_worker("--worker-id", "py-doomed", "--queue", "pyk", "--handler", "rtq.sleep",
                         "--heartbeat-interval", "0.3", "--heartbeat-ttl-ms", "2000")
    tid = enqueue(rtq, "rtq.sleep", '{"seconds": 0.1, "steps": 2}', "--queue", "pyk")
    wait_for(lambda: status_json(rtq, tid)["worker"] == "py-doomed", 20,
             "the Python worker to claim it")
    assert status_json(rtq, tid)["status"] == "running"
    os.kill(py.pid, signal.SIGKILL)
    py.wait(timeout=10)
    # Its heartbeat goes stale; the broker puts the task back on its queue,
    # and the C worker runs the second delivery.
    wait_for(lambda: status_is(rtq, tid, "pending"), 20, "the broker to redeliver it")
    procs.c_worker("--queue", "pyk")
    wait_for(lambda: status_is(rtq, tid, "completed"), 20, "the C worker to complete it")
    t = status_json(rtq, tid)
    assert t["attempts"] == 2 and t["worker"] != "py-doomed"
    assert t["result"]["steps"] == 2
    r = redis.Redis.from_url(redis_url)
    assert r.llen("rtq:processing:py-doomed") == 0
    assert r.hget("rtq:stats", "pyk|redelivered") == b"1"
