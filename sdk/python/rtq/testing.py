"""Running handlers without Redis, for tests (docs/EXEC.md section 7).

    from rtq.testing import run
    out = run(send_email, {"to": ["ann@example.com"]})
    assert out.status == "completed" and out.result == {"sent": 1}
    assert out.progress[-1] == (100.0, "done")

EagerClient has the producer API of rtq.Client but runs the registered
handler inline at create_task, so code that enqueues work can be tested
end to end in one process, as Celery's task_always_eager allows.
"""

import itertools
import json
import threading
import time
import traceback

from .handler import Task, TaskError
from .handler import handlers as registered_handlers
from .errors import NotFound, StateError

_ids = itertools.count(1)


class Outcome:
    """What a handler did: status ("completed", "failed" or "cancelled"),
    result, error (a dict like the task's "error") and progress, a list
    of (percent, message) in the order reported."""

    def __init__(self):
        self.status = None
        self.result = None
        self.error = None
        self.progress = []
        self.logs = []


def run(fn, args=None, name=None, cancel_after=None, task_id=None):
    """Runs fn(task) in the calling thread with args (a dict, which must be
    JSON, as it would be on the wire) and returns an Outcome.
    cancel_after=N cancels the task at its Nth progress report."""
    args = json.loads(json.dumps(args or {}))
    out = Outcome()
    cancel = threading.Event()

    def report(percent, message):
        out.progress.append((percent, message))
        if cancel_after is not None and len(out.progress) >= cancel_after:
            cancel.set()

    fields = {"id": task_id or f"eager-{next(_ids)}", "name": name or getattr(fn, "__name__", ""),
              "queue": "default", "attempt": 1, "args": args}
    task = Task(fields, report, lambda level, msg: out.logs.append((level, msg)), cancel)
    try:
        result = fn(task)
        json.dumps(result)  # a result must be JSON, as on the wire
        out.status = "cancelled" if cancel.is_set() else "completed"
        out.result = None if cancel.is_set() else result
    except TaskError as e:
        out.status = "failed"
        out.error = {"code": str(e.code), "message": e.message, "details": e.details,
                     "traceback": traceback.format_exc()}
    except Exception as e:  # noqa: BLE001 - the task's error, as the runner reports it
        out.status = "failed"
        out.error = {"code": type(e).__name__, "message": str(e), "details": None,
                     "traceback": traceback.format_exc()}
    return out


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)


class EagerClient:
    """rtq.Client's producer calls, run in process: create_task runs the
    handler registered for the name at once. Tasks are kept in memory as
    the dicts rtq.Client returns."""

    def __init__(self, handlers=None):
        self.handlers = handlers
        self.tasks = {}

    def create_task(self, name, args=None, queue="default", id=None, **options):
        return self.create_task_ex(name, args, queue=queue, id=id, **options)[0]

    def create_task_ex(self, name, args=None, queue="default", id=None, **options):
        if id is not None and id in self.tasks:
            return id, False
        handlers = self.handlers if self.handlers is not None else registered_handlers()
        fn = handlers.get(name)
        tid = id or f"eager-{next(_ids)}"
        now = time.time()
        if fn is None:
            out = Outcome()
            out.status = "failed"
            out.error = {"code": "UNKNOWN_TASK", "message": f"no handler registered for {name!r}",
                         "details": None, "traceback": None}
        else:
            out = run(fn, args, name=name, task_id=tid)
        self.tasks[tid] = {
            "id": tid, "name": name, "queue": queue, "status": out.status,
            "progress": out.progress[-1][0] if out.progress else (100 if out.status == "completed" else 0),
            "progress_message": out.progress[-1][1] if out.progress else None,
            "created_at": _iso(now), "started_at": _iso(now), "completed_at": _iso(time.time()),
            "attempts": 1, "max_retries": options.get("max_retries", 0), "worker": "eager",
            "args": json.loads(json.dumps(args or {})), "result": out.result, "error": out.error,
        }
        return tid, True

    def get_task(self, task_id):
        if task_id not in self.tasks:
            raise NotFound(-3, f"no task {task_id}", "RTQ_ENOTFOUND")
        return dict(self.tasks[task_id])

    def wait_for_task(self, task_id, timeout=None):
        return self.get_task(task_id)

    def cancel_task(self, task_id):
        self.get_task(task_id)
        raise StateError(-4, f"task {task_id} has ended (eager tasks end at creation)", "RTQ_ESTATE")

    def list_tasks(self, status=None, queue=None, name=None, limit=0, offset=0):
        wanted = {status} if isinstance(status, str) else set(status or [])
        out = [t for t in reversed(list(self.tasks.values()))
               if (not wanted or t["status"] in wanted) and (queue is None or t["queue"] == queue)
               and (name is None or t["name"] == name)]
        return [dict(t) for t in out[offset:offset + (limit or 100)]]
