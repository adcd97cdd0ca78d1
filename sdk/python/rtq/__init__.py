"""rtq for Python.

- Producers: rtq.Client, a binding over librtq (loaded on first use, so
  handler processes and tests do not need the library).
- Handlers: @rtq.handler(name), run by `python3 -m rtq.run MODULE` under
  rtq-worker (docs/EXEC.md), or inline with rtq.testing.

See sdk/python/README.md."""

from .errors import Error, NotFound, StateError, Timeout, Unverified  # noqa: F401
from .handler import Task, TaskError, handler, handlers  # noqa: F401

STATUSES = ("pending", "running", "completed", "failed", "cancelled", "timeout")
TERMINAL = frozenset(("completed", "failed", "cancelled", "timeout"))


def __getattr__(name):
    if name == "Client":
        from .client import Client
        return Client
    raise AttributeError(f"module 'rtq' has no attribute {name!r}")
