"""The handler-process runner: python3 -m rtq.run MODULE [MODULE ...]

Imports the modules (which register handlers with @rtq.handler), then
speaks the exec protocol of docs/EXEC.md on stdin and stdout: one task at
a time, progress and log frames while it runs, one result or error frame
when it ends. A reader thread takes cancel frames while the handler runs,
so task.cancelled and task.sleep() see them at once. Whatever the handler
prints goes to stderr, never into the protocol stream.
"""

import importlib
import io
import json
import os
import sys
import threading
import traceback

from .handler import Task, TaskError
from .handler import handlers as registered_handlers

PROTOCOL = 1
MAX_LINE = 32 << 20


class Runner:
    def __init__(self, rd, wr):
        self.rd = rd                  # binary, line-oriented
        self.wr = wr                  # binary
        self.wlock = threading.Lock()
        self.tasks = []               # frames received, waiting to run
        self.cv = threading.Condition()
        self.current = None           # (id, cancel event) of the running task
        self.early_cancels = set()    # ids cancelled before they started
        self.eof = False

    def send(self, obj):
        line = json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"
        with self.wlock:
            self.wr.write(line.encode("utf-8", "replace"))
            self.wr.flush()

    def read_loop(self):
        """Reader thread: queues tasks, applies cancels at once."""
        while True:
            line = self.rd.readline(MAX_LINE + 1)
            if not line:
                break
            if len(line) > MAX_LINE:
                print("rtq.run: a line from the worker exceeds 32 MiB; stopping", file=sys.stderr)
                break
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                print(f"rtq.run: not JSON from the worker: {line[:80]!r}", file=sys.stderr)
                continue
            if not isinstance(msg, dict):
                continue
            kind = msg.get("type")
            with self.cv:
                if kind == "cancel":
                    cur = self.current
                    if cur is not None and cur[0] == msg.get("id"):
                        cur[1].set()
                    elif any(t.get("id") == msg.get("id") for t in self.tasks):
                        self.early_cancels.add(msg.get("id"))
                elif kind in ("task", "shutdown"):
                    self.tasks.append(msg)
                    self.cv.notify()
        with self.cv:
            self.eof = True
            self.cv.notify()

    def next_frame(self):
        with self.cv:
            while not self.tasks and not self.eof:
                self.cv.wait()
            return self.tasks.pop(0) if self.tasks else None

    def run_task(self, msg):
        tid = msg.get("id", "")
        fn = registered_handlers().get(msg.get("name"))
        if fn is None:
            self.send({"type": "error", "id": tid, "code": "UNKNOWN_TASK",
                       "message": f"no handler for {msg.get('name')!r} in this process"})
            return
        event = threading.Event()
        with self.cv:
            self.current = (tid, event)
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
        try:
            result = fn(task)
            frame = {"type": "result", "id": tid, "result": result}
            try:
                self.send(frame)
            except (TypeError, ValueError) as e:
                self.send({"type": "error", "id": tid, "code": "RESULT_NOT_JSON",
                           "message": f"the handler's result is not JSON: {e}"})
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
            with self.cv:
                self.current = None

    def serve(self):
        names = sorted(registered_handlers())
        self.send({"type": "ready", "v": PROTOCOL, "handlers": names,
                   "runner": f"python {sys.version.split()[0]}"})
        reader = threading.Thread(target=self.read_loop, daemon=True)
        reader.start()
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
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    rd = os.fdopen(os.dup(0), "rb")
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
