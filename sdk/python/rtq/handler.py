"""Handlers in Python: the registry and the task object a handler gets.

    import rtq

    @rtq.handler("send_email")
    def send_email(task):
        for i, rcpt in enumerate(task.args["to"]):
            if task.cancelled:
                return None                     # the worker records why
            task.progress(100 * i / len(task.args["to"]), f"sending to {rcpt}")
            task.sleep(0.1)                     # wakes early on cancel
        return {"sent": len(task.args["to"])}

A handler returns the task's result (any JSON value) or raises: the
exception's class name becomes the error code, str(exception) the message,
and the traceback is kept. Raise rtq.TaskError(code, message, details) to
choose them. Handlers run under `rtq-worker --exec` through `python3 -m
rtq.run MODULE` (docs/EXEC.md), or inline in tests with rtq.testing.
"""

import threading

_registry = {}


class TaskError(Exception):
    """Fails the task with this code, message and details (a dict)."""

    def __init__(self, code, message="", details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def handler(name):
    """Registers the decorated function as the handler of task name."""
    if not isinstance(name, str) or not name:
        raise ValueError("a handler needs a task name")

    def register(fn):
        if name in _registry and _registry[name] is not fn:
            raise ValueError(f"two handlers for {name!r}")
        _registry[name] = fn
        return fn

    return register


def handlers():
    """The registered handlers, by name (a copy)."""
    return dict(_registry)


class Task:
    """What a handler gets: the task's fields, progress, cancellation.

    report(percent, message) and log(level, message) are the runner's
    callbacks; cancel_event (a threading.Event, or anything with its
    is_set() and wait(timeout)) is set when the task is asked to stop."""

    def __init__(self, fields, report, log=None, cancel_event=None):
        self.id = fields.get("id", "")
        self.name = fields.get("name", "")
        self.queue = fields.get("queue", "default")
        self.attempt = fields.get("attempt", 1)
        self.timeout_ms = fields.get("timeout_ms", 0)
        self.deadline_ms = fields.get("deadline_ms", 0)
        self.args = fields.get("args") or {}
        self._report = report
        self._log = log
        self._cancel = cancel_event or threading.Event()
        self.cancel_reason = None

    @property
    def cancelled(self):
        """True once the task was cancelled or timed out: return soon."""
        return self._cancel.is_set()

    def progress(self, percent, message=None):
        """Reports progress, 0..100, with an optional message."""
        p = float(percent)
        if p != p:  # NaN
            p = 0.0
        self._report(min(100.0, max(0.0, p)), None if message is None else str(message))

    def sleep(self, seconds):
        """Sleeps, waking early when the task is cancelled. Returns True
        when the full time passed, False when cancelled."""
        return not self._cancel.wait(max(0.0, float(seconds)))

    def log(self, message, level="info"):
        if self._log is not None:
            self._log(level, str(message))
