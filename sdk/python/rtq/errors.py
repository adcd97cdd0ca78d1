"""rtq's exceptions. They carry the C library's code, so they need no
library to exist: handler processes and rtq.testing use them without
librtq."""


class Error(Exception):
    """A failed call: .code is the symbolic RTQ_E* name, .rc the negative
    number, .message the detail (a Redis error word for word, or which
    argument was bad)."""

    def __init__(self, rc, message, code):
        self.rc = rc
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class NotFound(Error):
    """RTQ_ENOTFOUND: no such task (never existed, or expired)."""


class Timeout(Error):
    """RTQ_ETIMEDOUT: the wait ran out of time; the task goes on."""


class StateError(Error):
    """RTQ_ESTATE: the task's state does not allow the call."""


class Unverified(Error):
    """RTQ_EUNVERIFIED: the task's end does not carry a valid signature of
    a key allowed for its status (completed: a worker key of
    result_keys_file; failed, cancelled, timeout: that or a producer key of
    task_keys_file): it may be forged, and is never reported as such."""


BY_CODE = {"RTQ_ENOTFOUND": NotFound, "RTQ_ETIMEDOUT": Timeout, "RTQ_ESTATE": StateError,
           "RTQ_EUNVERIFIED": Unverified}
