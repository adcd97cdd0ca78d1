"""rtq.testing: handlers run inline, without Redis or librtq."""

import sample_handlers

import rtq
from rtq.testing import EagerClient, run


def test_run_captures_result_and_progress():
    out = run(sample_handlers.add, {"a": 2, "b": 40})
    assert out.status == "completed"
    assert out.result == {"sum": 42}
    assert out.progress == [(50.0, "adding")]


def test_run_captures_errors():
    out = run(sample_handlers.fail, {"how": "exception"})
    assert out.status == "failed"
    assert out.error["code"] == "ZeroDivisionError"
    assert "Traceback" in out.error["traceback"]
    out = run(sample_handlers.fail, {"how": "taskerror"})
    assert (out.error["code"], out.error["details"]) == ("E_QUOTA", {"used": 11})
    out = run(sample_handlers.fail, {"how": "notjson"})
    assert out.status == "failed" and out.error["code"] == "TypeError"


def test_run_cancels_at_a_progress_report():
    out = run(sample_handlers.slow, {"seconds": 0.5}, cancel_after=3)
    assert out.status == "cancelled"
    assert len(out.progress) == 3


def test_args_travel_as_json():
    seen = {}

    def keep(task):
        seen.update(task.args)

    run(keep, {"t": (1, 2), "n": None})
    assert seen == {"t": [1, 2], "n": None}


def test_eager_client_runs_registered_handlers():
    c = EagerClient()
    tid = c.create_task("sample.add", {"a": 1, "b": 2})
    t = c.wait_for_task(tid)
    assert t["status"] == "completed" and t["result"] == {"sum": 3} and t["progress"] == 50.0
    bad = c.create_task("sample.fail", {"how": "exception"})
    assert c.get_task(bad)["error"]["code"] == "ZeroDivisionError"
    unknown = c.create_task("nobody.serves.this")
    assert c.get_task(unknown)["error"]["code"] == "UNKNOWN_TASK"
    assert c.create_task_ex("sample.add", {"a": 0, "b": 0}, id="fixed") == ("fixed", True)
    assert c.create_task_ex("sample.add", {"a": 5, "b": 5}, id="fixed") == ("fixed", False)
    assert [t["id"] for t in c.list_tasks(status="failed")] == [unknown, bad]
    try:
        c.get_task("nope")
        raise AssertionError("no error")
    except rtq.NotFound as e:
        assert e.code == "RTQ_ENOTFOUND"
