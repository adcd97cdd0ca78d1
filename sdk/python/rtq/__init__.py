"""rtq for Python: a producer binding over librtq (rtq.Client).

See sdk/python/README.md."""

from .client import (  # noqa: F401
    STATUSES,
    TERMINAL,
    Client,
    Error,
    NotFound,
    StateError,
    Timeout,
)
