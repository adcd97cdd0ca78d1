"""Producers in Python: create, read, list, cancel, wait for and retry
tasks through librtq.

    import rtq
    c = rtq.Client("redis://127.0.0.1:6379/0")
    task_id = c.create_task("send_email", {"to": "ann@example.com"}, timeout=60)
    task = c.wait_for_task(task_id, timeout=30)      # a dict, as `rtq --json status`
    print(task["status"], task["result"])

A Client may be shared by threads, as the C handle may. Calls that block
(wait_for_task above all) release the GIL while they wait, so an asyncio
application calls them through asyncio.to_thread(). Every failure raises
rtq.Error with the library's code (e.code == "RTQ_ENOTFOUND") and its
detail; NotFound, Timeout and StateError are its subclasses for the codes
a caller usually handles.
"""

import json
import os
from json import encoder as _jenc

from ._native import ffi, lib, libc
from .errors import BY_CODE, Error, NotFound, StateError, Timeout, Unverified  # noqa: F401

from . import STATUSES, TERMINAL  # noqa: F401


def _code(rc):
    return ffi.string(lib.rtq_err_name(rc)).decode()


def _fail(rc, message=None):
    """An Error for rc with message, or the library's text for rc."""
    if message is None:
        message = ffi.string(lib.rtq_strerror(rc)).decode()
    name = _code(rc)
    return BY_CODE.get(name, Error)(rc, message, name)


def _error(rc, handle):
    return _fail(rc, ffi.string(lib.rtq_client_errstr(handle)).decode("utf-8", "replace"))


def _ms(seconds, what):
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, not {seconds!r}")
    return int(round(seconds * 1000))


def _cstr(s, what="a C string"):
    """s as UTF-8 bytes for librtq. A NUL character would end the C string
    there (the name "jo\\0b" would be "jo", an id would name another
    task), so it is refused."""
    if not isinstance(s, str):
        raise TypeError(f"expected a str, not {type(s).__name__}")
    if "\0" in s:
        raise ValueError(f"{what} must not contain a NUL character: {s!r}")
    return s.encode()


class _Keep:
    """C strings and structs that must outlive one call."""

    def __init__(self):
        self.items = []

    def str(self, s):
        if s is None:
            return ffi.NULL
        p = ffi.new("char[]", _cstr(s))
        self.items.append(p)
        return p


# One encoder for every call: json.dumps with options builds a new one each
# time. Compact, since the text is only parsed again by librtq.
_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
# The per-call path of create_task goes to json's C encoder, made once here
# (JSONEncoder.encode makes one per call). It keeps no circular-reference
# markers: a circular dict ends in RecursionError, turned into the
# ValueError json.dumps raises.
if _jenc.c_make_encoder is not None:
    _c_args = _jenc.c_make_encoder(None, json.JSONEncoder().default, _jenc.encode_basestring_ascii, None,
                                   ":", ",", False, False, False)
else:  # an interpreter without json's C accelerator: the same text, slower
    def _c_args(args, _level):
        return (_dumps(args),)


def _args_json(args):
    """A dict -> its JSON text as bytes, for rtq_create_task_json."""
    if args is None:
        return ffi.NULL
    if not isinstance(args, dict):
        raise TypeError(f"args must be a dict, not {type(args).__name__}")
    try:
        return "".join(_c_args(args, 0)).encode()
    except RecursionError:
        raise ValueError("args: circular reference, or nested too deep") from None


# Output buffers, made from types looked up once: an id (RTQ_TASK_ID_SIZE),
# and create_task_ex's created flag.
_ID = ffi.typeof("char[129]")
_INT = ffi.typeof("int *")
# create_task's hot path: the library entry point and the ffi calls it
# makes, looked up once, and its free list of id buffers (a list's pop and
# append are atomic under the GIL; at most one buffer per thread in a
# create at the same time ends up here).
_create_json = lib.rtq_create_task_json
_new = ffi.new
_string = ffi.string
_NULL = ffi.NULL
_ids = []


def _bind_speedups():
    """The C accelerator (rtq/_speedups.c), bound to the librtq
    that cffi loaded; None where it was not built (no compiler or Python
    headers at install) or RTQ_PYTHON_SPEEDUPS=0 (read once, as this
    module loads) turns it off."""
    if os.environ.get("RTQ_PYTHON_SPEEDUPS", "1") == "0":
        return None
    try:
        from . import _speedups
        fns = (lib.rtq_args_new, lib.rtq_args_free, lib.rtq_args_set_strn, lib.rtq_args_set_int,
               lib.rtq_args_set_double, lib.rtq_args_set_bool, lib.rtq_args_set_nil, lib.rtq_create_task,
               lib.rtq_create_tasks)
        spec = ffi.typeof("rtq_task_spec")
        _speedups.bind(*[int(ffi.cast("uintptr_t", f)) for f in fns], ffi.sizeof(dict(spec.fields)["id"].type),
                       ffi.sizeof(spec))
    except Exception:  # not built, or built from another version: the cffi path
        return None
    return _speedups


# The C paths of create_task (a str name and a flat dict: str, int, float,
# bool and None values; no options) and create_tasks (a list or tuple of
# such tasks); None when the accelerator is not there.
_speedups = _bind_speedups()
_fast_create = _speedups.create if _speedups else None
_fast_create_many = _speedups.create_many if _speedups else None


def _args(args):
    """A dict -> an rtq_args handle (the caller frees it)."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise TypeError(f"args must be a dict, not {type(args).__name__}")
    text = _dumps(args).encode()
    out = ffi.new("rtq_args **")
    err = ffi.new("char[256]")
    rc = lib.rtq_args_from_json(text, out, err, 256)
    if rc != 0:
        raise _fail(rc, "args: " + ffi.string(err).decode("utf-8", "replace"))
    return out[0]


def _options(keep, queue=None, id=None, timeout=None, result_ttl=None, delay=None,
             run_at=None, max_retries=0, retry_backoff=None):
    o = ffi.new("rtq_task_options *")
    keep.items.append(o)
    o.queue = keep.str(queue)
    o.id = keep.str(id)
    o.timeout_ms = _ms(timeout, "timeout")
    o.result_ttl_s = int(result_ttl or 0)
    o.delay_ms = _ms(delay, "delay")
    o.run_at_ms = _ms(run_at, "run_at")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, not {max_retries!r}")
    o.max_retries = max_retries
    o.retry_backoff_ms = _ms(retry_backoff, "retry_backoff")
    return o


def _task_dict(t):
    """An rtq_task * -> the dict `rtq --json status` prints; frees t."""
    out = ffi.new("char **")
    try:
        rc = lib.rtq_task_to_json(t, out)
        if rc != 0:
            raise _fail(rc)
        try:
            return json.loads(ffi.string(out[0]).decode())
        finally:
            libc.free(out[0])
    finally:
        lib.rtq_task_free(t)


class Client:
    """A connection pool to one Redis and namespace (librtq's rtq_client).

    url defaults to RTQ_REDIS_URL, else redis://127.0.0.1:6379/0; url_file
    (or RTQ_REDIS_URL_FILE) names a file holding the URL instead, so no
    password sits in code or argv; namespace defaults to RTQ_NAMESPACE,
    else "rtq". Connects at once: a bad URL or an unreachable Redis raises
    here. signing_key_file signs every task created with a producer key,
    and with result_keys_file (the workers' keys) a task whose end carries
    no valid signature of a key allowed for its status raises Unverified
    from get_task and wait_for_task: completed needs a worker's, failed,
    cancelled and timeout a worker's or a producer's (task_keys_file, the
    producers' keys; default: signing_key_file's) (docs/SECURITY.md)."""

    def __init__(self, url=None, namespace=None, default_queue=None, pool_size=0,
                 connect_timeout=None, command_timeout=None, url_file=None,
                 signing_key_file=None, result_keys_file=None, task_keys_file=None,
                 reply_spin_us=None):
        self._c = None
        keep = _Keep()
        o = ffi.new("rtq_client_options *")
        o.signing_key_file = keep.str(signing_key_file)
        o.result_keys_file = keep.str(result_keys_file)
        o.task_keys_file = keep.str(task_keys_file)
        o.redis_url = keep.str(url)
        o.redis_url_file = keep.str(url_file)
        o.ns = keep.str(namespace)
        o.default_queue = keep.str(default_queue)
        o.pool_size = pool_size
        o.connect_timeout_ms = _ms(connect_timeout, "connect_timeout")
        o.command_timeout_ms = _ms(command_timeout, "command_timeout")
        if reply_spin_us is not None:
            if type(reply_spin_us) is not int:
                raise TypeError("reply_spin_us must be an int")
            # 0 is the library's default; -1 never spins (docs/CLIENT.md).
            o.reply_spin_us = reply_spin_us if -1 <= reply_spin_us <= 1000 else -2
        out = ffi.new("rtq_client **")
        rc = lib.rtq_client_new(o, out)
        if rc != 0:
            raise _error(rc, ffi.NULL)
        self._c = out[0]
        self._addr = int(ffi.cast("uintptr_t", self._c))

    def close(self):
        """Closes every connection. The client is unusable afterwards."""
        if self._c is not None:
            lib.rtq_client_free(self._c)
            self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if self._c is None:
            raise ValueError("the client is closed")
        return self._c

    def _create(self, name, args, options, created):
        """create_task's general path, and create_task_ex: the args go to
        librtq as JSON text, packed there straight to msgpack (no rtq_args
        tree built and freed through cffi), an options struct only when
        there are options, and created (an int * or NULL) only when the
        caller wants it."""
        c = self._c
        if c is None:
            raise ValueError("the client is closed")
        if type(name) is not str:
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        text = _args_json(args)
        if options:
            keep = _Keep()
            o = _options(keep, **options)
        else:
            o = ffi.NULL
        out = ffi.new(_ID)
        rc = _create_json(c, _cstr(name, "name"), text, o, out, created)
        if rc != 0:
            raise _error(rc, c)
        return ffi.string(out).decode()

    def create_task(self, name, args=None, **options):
        """Enqueues one task and returns its id. options: queue, id (an
        idempotent caller-chosen id), timeout, delay, run_at (epoch
        seconds), retry_backoff (seconds), result_ttl (whole seconds),
        max_retries. With id= of a task that exists in that queue, nothing
        is created and that id is returned (see create_task_ex); the same id
        on another queue is another task."""
        # The producer's hot paths. With no options, the C accelerator
        # first (it hands back None for anything but a str name and a flat
        # dict, and checks those types itself); without it, a str name and a
        # plain dict go straight to the library here, in one frame, with an
        # id buffer taken from a shared free list (cffi releases the GIL
        # during the call, so a buffer is never shared by two calls in
        # flight); anything else takes _create's checks. Every Python
        # statement here costs more than it would warm: the interpreter
        # comes back to cold caches after each round trip to Redis, and the
        # time between two awaited calls costs several times over
        # (docs/PERFORMANCE.md, "create_task's C accelerator").
        c = self._c
        if not options and _fast_create is not None and c is not None:
            tid = _fast_create(self._addr, name, args)
            if tid.__class__ is str:
                return tid
            if tid is not None:
                raise _error(tid, c)
        if options or c is None or type(args) is not dict or type(name) is not str:
            return self._create(name, args, options, _NULL)
        try:
            text = "".join(_c_args(args, 0)).encode()
        except RecursionError:
            raise ValueError("args: circular reference, or nested too deep") from None
        cname = _cstr(name, "name")
        try:
            out = _ids.pop()
        except IndexError:
            out = _new(_ID)
        rc = _create_json(c, cname, text, _NULL, out, _NULL)
        if rc:
            raise _error(rc, c)
        tid = _string(out).decode()
        _ids.append(out)
        return tid

    def create_task_ex(self, name, args=None, **options):
        """As create_task, returning (id, created): created is False when a
        task with the given id existed in that queue and was left as it
        is."""
        created = ffi.new(_INT)
        return self._create(name, args, options, created), bool(created[0])

    def create_tasks(self, tasks):
        """Enqueues many tasks in one round trip. tasks: an iterable of
        (name, args, options-dict) or dicts {"name", "args", **options}.
        Returns a list, in order, of the id or the Error of each task; one
        bad task does not stop the others."""
        c = self._handle()
        if _fast_create_many is not None:
            # A list or tuple of tasks with flat args and no options goes
            # to the library in one C call (the accelerator); None: sent
            # nothing, the general path below takes the call.
            made = _fast_create_many(self._addr, tasks)
            if made is not None:
                return [x if x.__class__ is str else _fail(x) for x in made]
        keep = _Keep()
        items = []
        for t in tasks:
            if isinstance(t, dict):
                t = dict(t)
                name, args = t.pop("name", None), t.pop("args", None)
                opts = t
            else:
                name, args, opts = (list(t) + [None, {}])[:3]
                opts = opts or {}
            items.append((name, args, opts))
        specs = ffi.new("rtq_task_spec[]", max(1, len(items)))
        handles = []
        try:
            for i, (name, args, opts) in enumerate(items):
                a = _args(args)
                handles.append(a)
                specs[i].name = keep.str(name)
                specs[i].args = a
                specs[i].opts = _options(keep, **opts)
            if items:
                lib.rtq_create_tasks(c, specs, len(items))
        finally:
            for a in handles:
                lib.rtq_args_free(a)
        out = []
        for i in range(len(items)):
            rc = specs[i].rc
            out.append(ffi.string(specs[i].id).decode() if rc == 0 else _fail(rc))
        return out

    def get_task(self, task_id):
        """The task as a dict (the shape of `rtq --json status`). Raises
        NotFound."""
        c = self._handle()
        keep = _Keep()
        out = ffi.new("rtq_task **")
        rc = lib.rtq_get_task(c, keep.str(task_id), out)
        if rc != 0:
            raise _error(rc, c)
        return _task_dict(out[0])

    def list_tasks(self, status=None, queue=None, name=None, limit=0, offset=0, after=None):
        """Tasks newest first, as dicts. status: one status or a list of
        them (None: all). At most 10,000 index entries are examined per
        call (the C library's bound). after: a task id; list what comes
        after it (for the next page, the last id of a full page)."""
        c = self._handle()
        keep = _Keep()
        f = ffi.new("rtq_task_filter *")
        if status is not None:
            for s in [status] if isinstance(status, str) else status:
                if s not in STATUSES:
                    raise ValueError(f"unknown status {s!r}; one of {', '.join(STATUSES)}")
                f.statuses |= 1 << STATUSES.index(s)
        f.queue = keep.str(queue)
        f.name = keep.str(name)
        f.limit = limit
        f.offset = offset
        f.after = keep.str(after)
        out = ffi.new("rtq_task_list **")
        rc = lib.rtq_list_tasks(c, f, out)
        if rc != 0:
            raise _error(rc, c)
        lst = out[0]
        try:
            result = []
            for i in range(lst.count):
                t = lst.tasks[i]
                js = ffi.new("char **")
                if lib.rtq_task_to_json(t, js) == 0:
                    result.append(json.loads(ffi.string(js[0]).decode()))
                    libc.free(js[0])
            return result
        finally:
            lib.rtq_task_list_free(lst)

    def cancel_task(self, task_id):
        """Cancels a pending task ("cancelled") or asks a running one to
        stop ("requested"). Raises StateError for an ended task."""
        c = self._handle()
        keep = _Keep()
        requested = ffi.new("int *")
        rc = lib.rtq_cancel_task(c, keep.str(task_id), requested)
        if rc != 0:
            raise _error(rc, c)
        return "requested" if requested[0] else "cancelled"

    def wait_for_task(self, task_id, timeout=None):
        """Blocks until the task ends and returns it as a dict; timeout in
        seconds (None: no limit). Raises Timeout when time runs out (the
        task goes on). The GIL is released while it blocks."""
        c = self._handle()
        keep = _Keep()
        ms = -1 if timeout is None else _ms(timeout, "timeout")
        out = ffi.new("rtq_task **")
        rc = lib.rtq_wait_for_task(c, keep.str(task_id), ms, out)
        if rc != 0:
            raise _error(rc, c)
        return _task_dict(out[0])

    def retry_task(self, task_id):
        """Runs again a task that ended failed, timeout or cancelled, under
        the same id. Raises StateError for any other status."""
        c = self._handle()
        keep = _Keep()
        rc = lib.rtq_retry_task(c, keep.str(task_id))
        if rc != 0:
            raise _error(rc, c)
