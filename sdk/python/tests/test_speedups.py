"""rtq._speedups, create_task's C accelerator, against a real redis-server:
it stores byte for byte what the general (JSON) path stores, and hands
every input it does not recognise back to that path.

run-tests.sh builds it in place, so here it must be present, unless
RTQ_PYTHON_SPEEDUPS=0 turned it off (run-tests.sh runs test_client.py a
second time that way)."""

import collections
import os
import shutil
import subprocess

import pytest

import rtq
from rtq import client as rtq_client

OFF = os.environ.get("RTQ_PYTHON_SPEEDUPS") == "0"
on = pytest.mark.skipif(OFF, reason="RTQ_PYTHON_SPEEDUPS=0")

# Values the C path takes, each a case of its own, then all together.
FLAT = [{"i": 1, "data": "x" * 64}, {"none": None, "yes": True, "no": False},
        {"zero": 0, "neg": -1, "min": -(2**63), "max": 2**63 - 1},
        {"f": 1.5, "negzero": -0.0, "big": 1.5e300, "tiny": 5e-324, "whole": 2.0},
        {"s": "caf\u00e9 \U0001F600", "nul": "a\x00b", "empty": "", "": "empty key"},
        {"long": "y" * 300}, {"k%d" % i: i for i in range(64)}, {}]
FLAT.append({k: v for d in FLAT[:-3] for k, v in d.items()})

# Inputs the C path hands back (None): the general path decides.
NOT_FLAT = [{"n": [1]}, {"d": {}}, {"big": 2**63}, {"neg": -(2**63) - 1}, {"x": float("nan")},
            {"x": float("inf")}, {1: "int key"}, {"a\x00b": 1}, {"s": "\ud800"}, {"\udc80": 1},
            {"b": b"bytes"}, {"o": object()}, {"k%d" % i: i for i in range(65)}]


class Str(str):
    pass


class Int(int):
    pass


def _fields(server, key):
    """The task hash's fields as redis-cli --no-raw quotes them: equal
    texts are equal bytes."""
    out = subprocess.run([shutil.which("redis-cli"), "-p", str(server["port"]), "--no-raw", "HGETALL", key],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    vals = [line.split(") ", 1)[1] for line in out]
    return dict(zip(vals[0::2], vals[1::2]))


def _general(c, name, args):
    """create_task through the JSON path (the accelerator off for a call)."""
    fast, rtq_client._fast_create = rtq_client._fast_create, None
    try:
        return c.create_task(name, args)
    finally:
        rtq_client._fast_create = fast


def test_speedups_are_built_and_bound_unless_turned_off():
    if OFF:
        assert rtq_client._fast_create is None
    else:
        assert rtq_client._fast_create is not None, "rtq/_speedups.c was not built (run-tests.sh builds it)"


@on
@pytest.mark.parametrize("args", FLAT)
def test_speedups_store_the_bytes_the_json_path_stores(url, server, args):
    with rtq.Client(url, namespace="sp") as c:
        fast_id = rtq_client._fast_create(c._addr, "job", args)
        assert isinstance(fast_id, str)
        json_id = _general(c, "job", args)
        fast, slow = (_fields(server, "{sp:default}:t:" + i) for i in (fast_id, json_id))
        # c is the creation time; everything else is the same bytes.
        assert {k: v for k, v in fast.items() if k != '"c"'} == {k: v for k, v in slow.items() if k != '"c"'}
        assert set(fast) >= {'"n"', '"s"'}
        t = c.get_task(fast_id)
        assert t["status"] == "pending" and t["name"] == "job"
        assert t["args"] == (args or None)


@on
@pytest.mark.parametrize("args", NOT_FLAT + [{"s": Str("sub")}, {"i": Int(3)}])
def test_speedups_hand_back_what_they_do_not_recognise(url, args):
    with rtq.Client(url) as c:
        assert rtq_client._fast_create(c._addr, "job", args) is None
        assert rtq_client._fast_create(c._addr, Str("job"), {}) is None
        assert rtq_client._fast_create(c._addr, "jo\x00b", {}) is None
        assert rtq_client._fast_create(c._addr, "job", collections.OrderedDict(args)) is None
        assert c.list_tasks(limit=10) == []


@on
def test_speedups_return_the_library_error_and_create_task_raises_it(url):
    with rtq.Client(url) as c:
        rc = rtq_client._fast_create(c._addr, "bad name", {"i": 1})
        assert isinstance(rc, int) and rc < 0
        assert rtq_client._code(rc) == "RTQ_EINVAL"
        with pytest.raises(rtq.Error) as e:
            c.create_task("bad name", {"i": 1})
        assert e.value.code == "RTQ_EINVAL" and "name" in e.value.message
        # Over the client's args limit (1 MiB by default): refused by the
        # library on either path, with the same code.
        huge = {"s": "z" * (2 << 20)}
        codes = set()
        for create in (c.create_task, lambda n, a: _general(c, n, a)):
            with pytest.raises(rtq.Error) as e:
                create("job", huge)
            codes.add(e.value.code)
        assert len(codes) == 1
        assert c.list_tasks(limit=10) == []


@on
def test_speedups_hand_back_when_a_setter_fails(url):
    """A setter that fails (out of memory) hands the call back, so the
    general path reports it; set_int is swapped here for one that fails."""
    import ctypes
    from rtq import _speedups
    from rtq._native import ffi, lib
    fails = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64)(lambda a, k, v: -12)
    fns = [lib.rtq_args_new, lib.rtq_args_free, lib.rtq_args_set_strn, None, lib.rtq_args_set_double,
           lib.rtq_args_set_bool, lib.rtq_args_set_nil, lib.rtq_create_task, lib.rtq_create_tasks]
    addrs = [ctypes.cast(fails, ctypes.c_void_p).value if f is None else int(ffi.cast("uintptr_t", f))
             for f in fns]
    try:
        _speedups.bind(*addrs, ffi.sizeof("char[129]"), ffi.sizeof("rtq_task_spec"))
        with rtq.Client(url) as c:
            assert rtq_client._fast_create(c._addr, "job", {"i": 1}) is None
            assert rtq_client._fast_create_many(c._addr, [("job", {"s": "x"}), ("job", {"i": 1})]) is None
            assert isinstance(rtq_client._fast_create(c._addr, "job", {"s": "x"}), str)
            tid = c.create_task("job", {"i": 1})  # the general path
            assert c.get_task(tid)["args"] == {"i": 1}
            tids = c.create_tasks([("job", {"s": "y"}), ("job", {"i": 2})])
            assert [c.get_task(t)["args"] for t in tids] == [{"s": "y"}, {"i": 2}]
            assert len(c.list_tasks(limit=10)) == 4
    finally:
        assert rtq_client._bind_speedups() is not None


@on
def test_speedups_bind_checks_its_input():
    from rtq import _speedups
    from rtq._native import ffi
    spec = ffi.sizeof("rtq_task_spec")
    with pytest.raises(TypeError):
        _speedups.bind(1, 2)
    with pytest.raises(ValueError, match="NULL"):
        _speedups.bind(*([0] * 9), 129, spec)
    with pytest.raises(ValueError, match="id size"):
        _speedups.bind(*([1] * 9), 128, spec)
    with pytest.raises(ValueError, match="task spec"):
        _speedups.bind(*([1] * 9), 129, spec + 8)
    with pytest.raises(TypeError):
        _speedups.create(1, "job")
    with pytest.raises(ValueError, match="NULL"):
        _speedups.create(0, "job", {})
    with pytest.raises(TypeError):
        _speedups.create_many(1)
    with pytest.raises(ValueError, match="NULL"):
        _speedups.create_many(0, [("job", {})])


def _general_many(c, tasks):
    """create_tasks through the general path (the accelerator off for a call)."""
    fast, rtq_client._fast_create_many = rtq_client._fast_create_many, None
    try:
        return c.create_tasks(tasks)
    finally:
        rtq_client._fast_create_many = fast


@on
def test_speedups_create_many_store_the_bytes_the_general_path_stores(url, server):
    """create_tasks with every item shape the C path takes: the same tasks,
    byte for byte, as the general path's, in order."""
    items = [("job", a) for a in FLAT]
    items += [["job", FLAT[0]], ("job", FLAT[1], None), ("job", FLAT[2], {}), ("job",), ("job", None),
              {"name": "job", "args": FLAT[3]}, {"name": "job"}, ("other.name", FLAT[4])]
    with rtq.Client(url, namespace="sp") as c:
        fast_ids = rtq_client._fast_create_many(c._addr, items)
        assert fast_ids is not None and all(isinstance(i, str) for i in fast_ids)
        tupled = rtq_client._fast_create_many(c._addr, tuple(items))  # a tuple too
        assert tupled is not None and len(set(tupled) | set(fast_ids)) == 2 * len(items)
        json_ids = _general_many(c, items)
        assert len(fast_ids) == len(json_ids) == len(items)
        for f, j in zip(fast_ids, json_ids):
            fast, slow = (_fields(server, "{sp:default}:t:" + i) for i in (f, j))
            assert {k: v for k, v in fast.items() if k != '"c"'} == {k: v for k, v in slow.items() if k != '"c"'}


@on
@pytest.mark.parametrize("items", [[("job", a)] for a in NOT_FLAT] + [
    [("job", {}, {"queue": "q"})], [("job", {}, {"id": "x"})], [("job", {}, 0)], [("job", {}, {}, "more")], [()],
    [{"name": "job", "queue": "q"}], [{"name": "job", 1: 2}], [{"args": {}}], [(Str("job"), {})],
    [{"name": Str("job")}], [("jo\x00b", {})],
    [(b"job", {})], [("job", [1])], [("job", {}), "job"], []])
def test_speedups_create_many_hand_back_what_they_do_not_recognise(url, items):
    """Any item the C path does not take hands the whole call back, with
    nothing sent; a generator is never consumed."""
    with rtq.Client(url) as c:
        assert rtq_client._fast_create_many(c._addr, items) is None
        gen = (t for t in [("job", {})])
        assert rtq_client._fast_create_many(c._addr, gen) is None
        assert next(gen) == ("job", {})
        assert c.list_tasks(limit=10) == []


@on
def test_speedups_create_many_report_each_task_as_the_general_path_does(url):
    """A bad task in the middle fails alone, with the same code on both
    paths; the others are created."""
    items = [("job", {"i": 1}), ("bad name", {"i": 2}), ("job", {"i": 3}), ("x" * 200, {})]
    with rtq.Client(url) as c:
        fast = rtq_client._fast_create_many(c._addr, items)
        assert [type(x) for x in fast] == [str, int, str, int]
        got = c.create_tasks(items)
        slow = _general_many(c, items)
        for a, b in zip(got, slow):
            assert type(a) is type(b)
            if isinstance(a, rtq.Error):
                assert a.code == b.code == "RTQ_EINVAL"
        assert [c.get_task(t)["args"] for t in (got[0], got[2])] == [{"i": 1}, {"i": 3}]
        assert len(c.list_tasks(limit=20)) == 6
