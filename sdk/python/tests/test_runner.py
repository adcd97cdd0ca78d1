"""python3 -m rtq.run, driven over its pipes exactly as docs/EXEC.md says
the worker drives it: ready, tasks, progress, log, cancel, result, error,
shutdown; and the handler's own output kept out of the stream."""

import json
import os
import select
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)


class Proc:
    def __init__(self, *modules):
        env = dict(os.environ, PYTHONPATH=f"{SDK}:{HERE}", RTQ_LIBRARY="/nonexistent")
        self.p = subprocess.Popen([sys.executable, "-m", "rtq.run", *modules], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""

    def send(self, obj):
        self.p.stdin.write((json.dumps(obj) + "\n").encode())
        self.p.stdin.flush()

    def recv(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no frame within {timeout} s; stderr: {self.stderr()}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(f"runner closed stdout; stderr: {self.stderr()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, kind, timeout=10):
        """Frames up to and including the first of type kind."""
        frames = []
        while True:
            f = self.recv(timeout)
            frames.append(f)
            if f["type"] == kind:
                return frames

    def stderr(self):
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read().decode(errors="replace")

    def close(self):
        """Shuts the runner down; returns what it wrote to stderr."""
        if self.p.poll() is None:
            self.send({"type": "shutdown"})
            assert self.p.wait(timeout=10) == 0
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stdout.close()
        self.p.stderr.close()
        self.p.stdin.close()
        return err


@pytest.fixture
def runner():
    procs = []

    def start(*modules):
        pr = Proc(*modules)
        procs.append(pr)
        return pr

    yield start
    for pr in procs:
        if pr.p.poll() is None:
            pr.p.kill()
            pr.p.wait(timeout=10)


def task(tid, name, args=None):
    return {"type": "task", "v": 1, "id": tid, "name": name, "queue": "default", "attempt": 1,
            "timeout_ms": 10000, "deadline_ms": 0, "args": args or {}}


def test_ready_lists_handlers_and_runs_tasks_in_order(runner):
    r = runner("sample_handlers")
    ready = r.recv()
    assert ready["type"] == "ready" and ready["v"] == 1
    assert {"sample.add", "sample.fail", "sample.slow", "sample.noisy"} <= set(ready["handlers"])
    r.send(task("t1", "sample.add", {"a": 2, "b": 3}))
    r.send(task("t2", "sample.add", {"a": 10, "b": -1}))
    f1 = r.until("result")
    assert [f["type"] for f in f1] == ["progress", "result"]
    assert f1[0] == {"type": "progress", "id": "t1", "percent": 50.0, "message": "adding"}
    assert f1[-1] == {"type": "result", "id": "t1", "result": {"sum": 5}}
    assert r.until("result")[-1]["result"] == {"sum": 9}
    r.close()


def test_exceptions_become_errors_with_traceback(runner):
    r = runner("sample_handlers")
    r.recv()
    r.send(task("t1", "sample.fail", {"how": "exception"}))
    err = r.until("error")[-1]
    assert err["id"] == "t1" and err["code"] == "ZeroDivisionError"
    assert "division by zero" in err["message"]
    assert "Traceback" in err["traceback"] and "sample_handlers.py" in err["traceback"]
    r.send(task("t2", "sample.fail", {"how": "taskerror"}))
    err = r.until("error")[-1]
    assert (err["code"], err["message"], err["details"]) == ("E_QUOTA", "over quota", {"used": 11})
    r.send(task("t3", "no.such.handler"))
    err = r.until("error")[-1]
    assert err["code"] == "UNKNOWN_TASK"
    for i, how in enumerate(("notjson", "circular", "nan")):
        r.send(task("t4.%d" % i, "sample.fail", {"how": how}))
        err = r.until("error")[-1]
        assert (err["id"], err["code"]) == ("t4.%d" % i, "RESULT_NOT_JSON"), err
    # The process is still serving.
    r.send(task("t5", "sample.add", {"a": 1, "b": 1}))
    assert r.until("result")[-1]["result"] == {"sum": 2}
    r.close()


def test_results_and_frames_keep_their_values(runner):
    """Any JSON value comes back as the result, unchanged; a task line with
    blanks around its object or non-ASCII text in it is read as well."""
    r = runner("sample_handlers")
    r.recv()
    values = [None, "caf\u00e9 \u2603", "a\"quote\\and\nnewline", [1, None, True, 0.25], 2**62, -7,
              {"nested": {"k": [{}]}, "\u00fc": "\u2603"}, {}, [], False]
    for i, v in enumerate(values):
        r.send(task("v%d" % i, "sample.echo", {"value": v}))
        f = r.until("result")[-1]
        assert (f["id"], f["result"]) == ("v%d" % i, v)
    frame = json.dumps(task("blank", "sample.echo", {"value": "\u2603"}), ensure_ascii=False)
    r.p.stdin.write(("  " + frame + " \t\n").encode())
    r.p.stdin.flush()
    assert r.until("result")[-1] == {"type": "result", "id": "blank", "result": "\u2603"}
    r.close()


def test_cancel_reaches_a_sleeping_handler_at_once(runner):
    r = runner("sample_handlers")
    r.recv()
    r.send(task("t1", "sample.slow", {"seconds": 30}))
    first = r.recv()
    assert first["type"] == "progress"
    t0 = time.monotonic()
    r.send({"type": "cancel", "id": "t1", "reason": "cancelled"})
    end = r.until("result")[-1]
    took = time.monotonic() - t0
    assert end["result"] == {"stopped": True}
    assert took < 2, took
    # A cancel for a task that is not running is ignored.
    r.send({"type": "cancel", "id": "t1", "reason": "cancelled"})
    r.send(task("t2", "sample.add", {"a": 1, "b": 2}))
    assert r.until("result")[-1]["result"] == {"sum": 3}
    r.close()


def test_handler_output_stays_out_of_the_stream(runner):
    r = runner("sample_handlers")
    r.recv()
    r.send(task("t1", "sample.noisy"))
    frames = r.until("result")
    assert [f["type"] for f in frames] == ["log", "result"]
    assert frames[0] == {"type": "log", "id": "t1", "level": "warning", "message": "careful"}
    err = r.close()
    assert "print to stdout" in err and "os.write to fd 1" in err and "child echo" in err


def test_end_of_file_ends_the_runner(runner):
    r = runner("sample_handlers")
    r.recv()
    r.p.stdin.close()
    assert r.p.wait(timeout=10) == 0
