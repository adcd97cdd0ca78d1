"""rtq.Client against a real redis-server and a real rtq-worker."""

import asyncio
import collections
import threading
import time

import pytest

import rtq
from conftest import wait_for


def test_create_and_wait_for_a_completed_task(url, worker):
    worker()
    with rtq.Client(url) as c:
        tid = c.create_task("rtq.echo", {"name": "world", "n": [1, 2.5, None, True]})
        t = c.wait_for_task(tid, timeout=20)
        assert t["id"] == tid
        assert t["status"] == "completed"
        assert t["name"] == "rtq.echo"
        assert t["result"] == {"name": "world", "n": [1, 2.5, None, True]}
        assert t["attempts"] == 1
        assert c.get_task(tid)["status"] == "completed"


def test_failure_carries_code_and_message(url, worker):
    worker()
    with rtq.Client(url) as c:
        tid = c.create_task("rtq.fail", {"code": "E_DISK", "message": "disk full"})
        t = c.wait_for_task(tid, timeout=20)
        assert t["status"] == "failed"
        assert t["error"]["code"] == "E_DISK"
        assert t["error"]["message"] == "disk full"
        # A failed task runs again under its id.
        c.retry_task(tid)
        assert c.wait_for_task(tid, timeout=20)["status"] == "failed"


def test_errors_are_exceptions_with_the_library_code(url):
    with rtq.Client(url) as c:
        with pytest.raises(rtq.NotFound) as e:
            c.get_task("01NOSUCHTASK")
        assert e.value.code == "RTQ_ENOTFOUND"
        assert "01NOSUCHTASK" in e.value.message
        with pytest.raises(rtq.Error) as e:
            c.create_task("bad name with spaces")
        assert e.value.code == "RTQ_EINVAL"
        with pytest.raises(rtq.Error) as e:
            c.create_task("job", {"x": 1}, timeout=400 * 86400)
        assert e.value.code == "RTQ_ERANGE"
        with pytest.raises(TypeError):
            c.create_task("job", ["not", "a", "dict"])
        with pytest.raises(ValueError):
            c.create_task("job", {}, delay=-1)
        tid = c.create_task("job", {})
        with pytest.raises(rtq.StateError):
            c.retry_task(tid)
        with pytest.raises(rtq.Timeout):
            c.wait_for_task(tid, timeout=0.2)
    with pytest.raises(rtq.Error) as e:
        rtq.Client("redis://127.0.0.1:1/0", connect_timeout=0.5)
    assert e.value.code == "RTQ_ECONN"
    with pytest.raises(rtq.Error) as e:
        rtq.Client("http://nope")
    assert e.value.code == "RTQ_EINVAL"


def test_reply_spin_reaches_the_library(url):
    """reply_spin_us goes to librtq's option of that name: the library
    refuses values outside -1..1000; -1 (never spin) and the longest spin
    both work."""
    for bad in (-2, 1001, 10**12):
        with pytest.raises(rtq.Error) as e:
            rtq.Client(url, reply_spin_us=bad)
        assert e.value.code == "RTQ_EINVAL" and "spin" in e.value.message
    with pytest.raises(TypeError):
        rtq.Client(url, reply_spin_us="60")
    for ok in (-1, 0, 1000):
        with rtq.Client(url, reply_spin_us=ok) as c:
            tid = c.create_task("job", {"spin": ok})
            assert c.get_task(tid)["args"] == {"spin": ok}


def test_url_from_a_file(url, tmp_path):
    """url_file: the URL, password included, read from a file by librtq;
    a missing file raises RTQ_EINVAL naming it."""
    f = tmp_path / "redis.url"
    f.write_text(url.replace("redis://", "redis://default:Py5ecret@", 1) + "\n")
    f.chmod(0o600)
    with rtq.Client(url_file=str(f)) as c:
        assert c.create_task("job", {})
    missing = str(tmp_path / "nope.url")
    with pytest.raises(rtq.Error) as e:
        rtq.Client(url_file=missing)
    assert e.value.code == "RTQ_EINVAL"
    assert missing in str(e.value)
    assert "Py5ecret" not in str(e.value)


def test_idempotent_id_and_options(url):
    with rtq.Client(url) as c:
        tid, created = c.create_task_ex("job", {"a": 1}, id="order-42", queue="billing",
                                        delay=60, max_retries=3, timeout=5)
        assert (tid, created) == ("order-42", True)
        tid2, created2 = c.create_task_ex("job", {"a": 2}, id="order-42", queue="billing")
        assert (tid2, created2) == ("order-42", False)
        t = c.get_task("order-42")
        assert t["queue"] == "billing"
        assert t["args"] == {"a": 1}
        assert t["max_retries"] == 3
        assert t["timeout_ms"] == 5000
        assert t["run_at"] is not None
        # An id is idempotent within its queue (docs/CLIENT.md): the same id
        # on another queue is another task.
        assert c.create_task_ex("job", {"a": 3}, id="order-42", queue="other") == ("order-42", True)


def test_create_task_args_round_trip_and_bad_input(url):
    with rtq.Client(url) as c:
        args = {"s": "caf\u00e9 \u2603", "n": -7, "big": 2**62, "f": 0.25, "l": [True, None, {"k": []}],
                "nested": {"a": {"b": 1}}}
        tid = c.create_task("job", args)
        assert c.get_task(tid)["args"] == args
        # A task made without args has none: they read as null, as in C.
        assert c.get_task(c.create_task("job"))["args"] is None
        before = len(c.list_tasks(limit=1000))
        with pytest.raises(TypeError):
            c.create_task("job", [1, 2])
        with pytest.raises(TypeError):
            c.create_task("job", {"x": object()})
        with pytest.raises(ValueError):
            c.create_task("job", {"x": float("nan")})
        with pytest.raises(TypeError):
            c.create_task(b"job", {})
        with pytest.raises(rtq.Error) as e:
            c.create_task("bad name", {})
        assert e.value.code == "RTQ_EINVAL" and "task name" in str(e.value)
        with pytest.raises(rtq.Error) as e:
            c.create_task("job", {"i": 2**64})
        assert e.value.code == "RTQ_EJSON"
        assert len(c.list_tasks(limit=1000)) == before


def test_create_task_refuses_args_that_are_not_json(url):
    loop = {}
    loop["self"] = loop
    with rtq.Client(url) as c:
        before = len(c.list_tasks(limit=1000))
        for bad, exc in ((loop, ValueError), ({"x": [float("inf")]}, ValueError), ({"x": {1j}}, TypeError),
                         ("{}", TypeError)):
            with pytest.raises(exc):
                c.create_task("job", bad)
            with pytest.raises(exc):
                c.create_task_ex("job", bad, queue="q1")
        assert len(c.list_tasks(limit=1000)) == before
        tid, created = c.create_task_ex("job", {"ok": True}, queue="q1")
        assert created and c.get_task(tid)["args"] == {"ok": True}


def test_batch_list_and_cancel(url):
    with rtq.Client(url) as c:
        out = c.create_tasks([("job", {"i": i}, {"queue": "q1"}) for i in range(50)]
                             + [{"name": "bad name", "args": {}}])
        ids, bad = out[:50], out[50]
        assert all(isinstance(i, str) for i in ids)
        assert isinstance(bad, rtq.Error) and bad.code == "RTQ_EINVAL"
        listed = c.list_tasks(status="pending", queue="q1", limit=100)
        assert sorted(t["id"] for t in listed) == sorted(ids)
        assert c.list_tasks(status=["completed", "failed"]) == []
        assert len(c.list_tasks(queue="q1", limit=10, offset=45)) == 5
        pages, after = [], None
        while True:
            page = c.list_tasks(queue="q1", limit=20, after=after)
            if not page:
                break
            pages.append([t["id"] for t in page])
            after = page[-1]["id"]
        assert [len(p) for p in pages] == [20, 20, 10]
        assert sorted(sum(pages, [])) == sorted(ids)
        assert c.cancel_task(ids[0]) == "cancelled"
        assert c.get_task(ids[0])["status"] == "cancelled"
        with pytest.raises(rtq.StateError):
            c.cancel_task(ids[0])
        with pytest.raises(ValueError):
            c.list_tasks(status="done")


def test_cancel_a_running_task(url, worker):
    worker()
    with rtq.Client(url) as c:
        tid = c.create_task("rtq.sleep", {"seconds": 30})
        wait_for(lambda: c.get_task(tid)["status"] == "running", 20, "the task to start")
        assert c.cancel_task(tid) == "requested"
        assert c.wait_for_task(tid, timeout=20)["status"] == "cancelled"


def test_wait_releases_the_gil(url, worker):
    """While one thread waits, others run Python; asyncio.to_thread works."""
    with rtq.Client(url) as c:
        tid = c.create_task("rtq.sleep", {"seconds": 1})
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        th = threading.Thread(target=spin)
        th.start()
        try:
            before = counter[0]
            with pytest.raises(rtq.Timeout):
                c.wait_for_task(tid, timeout=0.5)
            # The spinning thread advanced while the main thread was in C.
            assert counter[0] - before > 1000
        finally:
            stop.set()
            th.join()
        worker()

        async def main():
            return await asyncio.gather(asyncio.to_thread(c.wait_for_task, tid, 20),
                                        asyncio.sleep(0.01, "other work"))

        t, other = asyncio.run(main())
        assert t["status"] == "completed" and other == "other work"


def test_shared_client_across_threads(url):
    """Threads creating through one client at once: create_task's shared
    free list of id buffers never hands one buffer to two calls in flight,
    so every id returned is the id of the task made with those args."""
    with rtq.Client(url) as c:
        made, errors = [], []

        def produce(k):
            try:
                for i in range(100):
                    made.append((c.create_task("job", {"k": k, "i": i}), k, i))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert len({tid for tid, _, _ in made}) == 800
        for tid, k, i in made:
            t = c.get_task(tid)
            assert (t["status"], t["args"]) == ("pending", {"k": k, "i": i})


# What a stored task says, less what differs between two creates.
_SAME = ("name", "queue", "args", "status", "attempts", "max_retries", "timeout_ms", "run_at", "error",
         "result")


def test_create_task_fast_path_stores_what_the_general_path_does(url):
    """create_task with a str name, a plain dict and no options takes a
    shorter path than with options (or a dict subclass); both store the
    same task, and create_task_ex agrees."""
    args = {"s": "caf\u00e9", "n": [1, 2.5, None, True], "d": {"x": {}}}
    with rtq.Client(url, default_queue="jobs") as c:
        fast = c.get_task(c.create_task("job", args))
        assert fast["queue"] == "jobs" and fast["args"] == args
        for other in (c.create_task("job", args, queue="jobs"),
                      c.create_task("job", args, delay=None, timeout=None, max_retries=0),
                      c.create_task("job", collections.OrderedDict(args)),
                      c.create_task_ex("job", args)[0]):
            t = c.get_task(other)
            assert {k: t.get(k) for k in _SAME} == {k: fast.get(k) for k in _SAME}
        # Ids from a long caller-chosen id and from the library do not
        # bleed into each other through reused buffers.
        long_id = "order-" + "7" * 100
        assert c.create_task("job", args, id=long_id) == long_id
        ids = [c.create_task("job", {"i": i}) for i in range(20)]
        assert len(set(ids)) == 20 and all(len(i) < len(long_id) for i in ids)
        assert [c.get_task(i)["args"] for i in ids] == [{"i": i} for i in range(20)]


def test_create_task_errors_are_the_same_on_both_paths(url):
    """Each bad input raises the same exception, with the same RTQ_E*
    code, with and without options; nothing is stored."""
    loop = {}
    loop["self"] = loop
    with rtq.Client(url) as c:
        before = len(c.list_tasks(limit=1000))
        for name, args, exc, code in (("bad name", {}, rtq.Error, "RTQ_EINVAL"),
                                      ("x" * 200, {}, rtq.Error, "RTQ_EINVAL"),
                                      ("job", {"i": 2**64}, rtq.Error, "RTQ_EJSON"),
                                      ("job", {"x": float("nan")}, ValueError, None),
                                      ("job", {"x": object()}, TypeError, None),
                                      ("job", loop, ValueError, None),
                                      ("job", [1], TypeError, None),
                                      ("jo\x00b", {}, ValueError, None),
                                      ("jo\x00b", {"i": [1]}, ValueError, None),
                                      (b"job", {}, TypeError, None),
                                      (None, {}, TypeError, None)):
            for options in ({}, {"queue": "default"}):
                with pytest.raises(exc) as e:
                    c.create_task(name, args, **options)
                if code is not None:
                    assert e.value.code == code, (name, options)
                    assert e.type is rtq.errors.BY_CODE.get(code, rtq.Error)
        # A NUL would end the C string: "order-1\0x" would name order-1.
        assert c.create_task("job", {}, id="order-1") == "order-1"
        for call in (lambda: c.create_task("job", {}, id="order-1\x00x"),
                     lambda: c.create_task_ex("job", {}, id="order-1\x00x"),
                     lambda: c.create_task("job", {}, queue="default\x00x"),
                     lambda: c.get_task("order-1\x00x"), lambda: c.cancel_task("order-1\x00x"),
                     lambda: c.wait_for_task("order-1\x00x", timeout=0),
                     lambda: c.retry_task("order-1\x00x")):
            with pytest.raises(ValueError, match="NUL"):
                call()
        assert len(c.list_tasks(limit=1000)) == before + 1
    with pytest.raises(ValueError, match="closed"):
        c.create_task("job", {})


def _key_file(path, kid, byte):
    path.write_text(f"{kid}:{byte * 32}\n")
    path.chmod(0o600)
    return str(path)


def test_signed_tasks_and_unverified_outcomes(url, worker, tmp_path):
    """Protocol 2 signing through the binding: a signed task runs under a
    worker holding the producers' key, its outcome verifies under the
    worker's key, and under another key it raises Unverified."""
    producer = _key_file(tmp_path / "producer.keys", "p1", "11")
    workers = _key_file(tmp_path / "worker.keys", "w1", "22")
    stranger = _key_file(tmp_path / "stranger.keys", "w1", "33")
    worker("--signing-key-file", workers, "--task-keys", producer)
    with rtq.Client(url, signing_key_file=producer, result_keys_file=workers) as c:
        tid = c.create_task("rtq.echo", {"n": 1})
        assert c.wait_for_task(tid, timeout=20)["status"] == "completed"
    with rtq.Client(url, result_keys_file=stranger) as c:
        with pytest.raises(rtq.Unverified) as e:
            c.get_task(tid)
        assert e.value.code == "RTQ_EUNVERIFIED"
    with pytest.raises(rtq.Error) as e:
        rtq.Client(url, signing_key_file=str(tmp_path / "missing.keys"))
    assert "missing.keys" in e.value.message
