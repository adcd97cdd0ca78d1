"""The handler-process runner: python3 -m rtq.run MODULE [MODULE ...]

Imports the modules (which register handlers with @rtq.handler), then
speaks the exec protocol of docs/EXEC.md on stdin and stdout: one task at
a time, progress and log frames while it runs, one result or error frame
when it ends. Whatever the handler prints goes to stderr, never into the
protocol stream.

The main thread reads the frames and runs the handlers, so a task costs no
hand-over between threads (it was a third of a short task's time). While a
handler runs, the main thread gives up stdin to a watcher thread, which
looks at it every WATCH_S and applies a cancel frame at once: task.cancelled
and task.sleep() see it within WATCH_S of its arrival. The watcher parks
after PARK_AFTER looks without any task, and the next task wakes it.
"""

import collections
import importlib
import io
import json
import os
import select
import sys
import threading
import time
import traceback

from .handler import Task, TaskError
from .handler import _registry as registered

from json import encoder as _jenc
from json import scanner as _jscan

PROTOCOL = 1
MAX_LINE = 32 << 20
WATCH_S = 0.02
PARK_AFTER = 50

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_encode = _encoder.encode
_quote = _jenc.encode_basestring

# The per-task path skips what json.loads and JSONEncoder.encode redo on
# every call (a short task spends as long in them as in everything else):
# a task line goes straight to the C scanner, and a result to a C encoder
# made once. Without circular-reference markers a circular result ends in
# RecursionError, which fails the task RESULT_NOT_JSON like any other
# result that is not JSON. Either falls back to the json module when the
# C parts are missing.
_scan = _jscan.c_make_scanner(json.JSONDecoder()) if _jscan.c_make_scanner else None
_value = (_jenc.c_make_encoder(None, _encoder.default, _quote, None, ":", ",", False, False, False)
          if _jenc.c_make_encoder else None)


def _loads(line):
    """One JSON line (bytes) -> its value; ValueError when it is not JSON."""
    if _scan is not None:
        try:
            text = line.decode()
            obj, end = _scan(text, 0)
            if end == len(text):
                return obj
        except (ValueError, StopIteration):
            pass
    return json.loads(line)  # the careful path: whitespace around it, or the error


def _result_line(tid, result):
    """The result frame as text, without its newline. TypeError or
    ValueError (RecursionError) when result is not JSON."""
    if type(tid) is not str or _value is None:
        return _encode({"type": "result", "id": tid, "result": result})
    body = "null" if result is None else "".join(_value(result, 0))
    return '{"type":"result","id":%s,"result":%s}' % (_quote(tid), body)


class _Cancel:
    """A task's cancel flag with the part of threading.Event a Task uses.
    The Event (a lock and a condition) is made only when a handler waits
    in task.sleep(); most tasks never do. lock is the runner's."""

    __slots__ = ("_set", "_event", "_lock")

    def __init__(self, lock):
        self._set = False
        self._event = None
        self._lock = lock

    def is_set(self):
        return self._set

    def set(self):
        with self._lock:
            self._set = True
            if self._event is not None:
                self._event.set()

    def wait(self, timeout=None):
        with self._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


class Runner:
    def __init__(self, rfd, wfd):
        self.rfd = rfd                # raw fds: the runner does its own line splitting
        self.wfd = wfd
        self.wlock = threading.Lock()
        self.flag_lock = threading.Lock() # for the tasks' _Cancel flags
        self.rlock = threading.Lock() # held by whoever may read rfd
        self.buf = b""                # read, not yet split into lines
        self.frames = collections.deque()  # task and shutdown frames, in order
        self.current = None           # (id, cancel event) of the running task
        self.early_cancels = set()    # ids cancelled before they started
        self.eof = False
        self.started = 0              # tasks started: the watcher's sign of life
        self.parked = False
        self.park_cv = threading.Condition()

    def send(self, obj):
        self.write(_encode(obj))

    def write(self, text):
        line = (text + "\n").encode("utf-8", "replace")
        with self.wlock:
            n = os.write(self.wfd, line)
            if n < len(line):  # a pipe takes a short line whole; a long one in parts
                view = memoryview(line)[n:]
                while view:
                    view = view[os.write(self.wfd, view):]

    def feed(self, data):
        """Splits what was read into frames: cancels apply at once, tasks
        and shutdown queue up. Caller holds rlock."""
        if not data:
            self.eof = True
            return
        buf = self.buf + data if self.buf else data
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        if len(self.buf) > MAX_LINE:
            print("rtq.run: a line from the worker exceeds 32 MiB; stopping", file=sys.stderr)
            self.buf = b""
            self.eof = True
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = _loads(line)
            except ValueError:
                print(f"rtq.run: not JSON from the worker: {line[:80]!r}", file=sys.stderr)
                continue
            if not isinstance(msg, dict):
                continue
            kind = msg.get("type")
            if kind == "cancel":
                cur = self.current
                tid = msg.get("id")
                if cur is not None and cur[0] == tid:
                    cur[1].set()
                elif any(t.get("id") == tid for t in self.frames):
                    self.early_cancels.add(tid)
            elif kind in ("task", "shutdown"):
                self.frames.append(msg)

    def next_frame(self):
        """The next task or shutdown frame, reading stdin as needed; None
        at end of file. Caller holds rlock."""
        while not self.frames and not self.eof:
            try:
                data = os.read(self.rfd, 65536)
            except InterruptedError:
                continue
            self.feed(data)
        return self.frames.popleft() if self.frames else None

    def watch(self):
        """Watcher thread: reads stdin while a handler runs (cancels)."""
        seen, quiet = -1, 0
        while not self.eof:
            if quiet >= PARK_AFTER:
                with self.park_cv:
                    self.parked = True
                    # The main thread sets current before it looks at parked,
                    # so one of the two always sees the other.
                    while self.parked and self.current is None and not self.eof:
                        self.park_cv.wait()
                    self.parked = False
                quiet = 0
            time.sleep(WATCH_S)
            if self.started != seen or self.current is not None:
                seen, quiet = self.started, 0
            else:
                quiet += 1
            if self.current is None or not self.rlock.acquire(blocking=False):
                continue
            try:
                while self.current is not None and not self.eof:
                    if not select.select([self.rfd], [], [], 0)[0]:
                        break
                    self.feed(os.read(self.rfd, 65536))
            finally:
                self.rlock.release()

    def run_task(self, msg):
        tid = msg.get("id", "")
        fn = registered.get(msg.get("name"))
        if fn is None:
            self.send({"type": "error", "id": tid, "code": "UNKNOWN_TASK",
                       "message": f"no handler for {msg.get('name')!r} in this process"})
            return
        event = _Cancel(self.flag_lock)
        if tid in self.early_cancels:
            self.early_cancels.discard(tid)
            event.set()

        def report(percent, message):
            frame = {"type": "progress", "id": tid, "percent": percent}
            if message is not None:
                frame["message"] = message[:1024]
            self.send(frame)

        def log(level, message):
            self.send({"type": "log", "id": tid, "level": level, "message": message})

        task = Task(msg, report, log, event)
        self.current = (tid, event)
        self.started += 1
        if self.parked:
            with self.park_cv:
                self.parked = False
                self.park_cv.notify()
        self.rlock.release()
        try:
            result = fn(task)
            try:
                line = _result_line(tid, result)
            except (TypeError, ValueError, RecursionError) as e:
                self.send({"type": "error", "id": tid, "code": "RESULT_NOT_JSON",
                           "message": f"the handler's result is not JSON: {e}"})
            else:
                self.write(line)
        except TaskError as e:
            err = {"type": "error", "id": tid, "code": str(e.code), "message": e.message,
                   "traceback": traceback.format_exc()}
            if isinstance(e.details, dict):
                err["details"] = e.details
            self.send(err)
        except Exception as e:  # noqa: BLE001 - every failure becomes the task's error
            self.send({"type": "error", "id": tid, "code": type(e).__name__, "message": str(e),
                       "traceback": traceback.format_exc()})
        finally:
            self.rlock.acquire()
            self.current = None

    def serve(self):
        names = sorted(registered)
        self.send({"type": "ready", "v": PROTOCOL, "handlers": names,
                   "runner": f"python {sys.version.split()[0]}"})
        threading.Thread(target=self.watch, daemon=True).start()
        self.rlock.acquire()
        while True:
            msg = self.next_frame()
            if msg is None or msg.get("type") == "shutdown":
                return 0
            self.run_task(msg)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    # The protocol owns the pipes: it keeps private copies of fds 0 and 1,
    # then fd 1 becomes stderr (print(), C libraries and child processes
    # write to the worker's log, never into the stream) and fd 0 /dev/null.
    sys.stdout.flush()
    out = os.dup(1)
    rd = os.dup(0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    sys.path.insert(0, os.getcwd())
    for mod in argv:
        importlib.import_module(mod)
    return Runner(rd, out).serve()


if __name__ == "__main__":
    sys.exit(main())
