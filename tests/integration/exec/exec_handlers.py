"""Handlers test_worker_exec runs under rtq-worker --exec (python3 -m rtq.run)."""

import os
import subprocess
import sys
import threading
import time

import rtq


@rtq.handler("py.add")
def add(task):
    task.progress(40, "adding")
    return {"sum": task.args["a"] + task.args["b"], "pid": os.getpid()}


@rtq.handler("py.echo")
def echo(task):
    # The value back, with its length as Python counts it ("a\x00b" is 3).
    return {"value": task.args["value"], "len": len(task.args["value"])}


@rtq.handler("py.wait")
def wait(task):
    # Reports its pid, then waits for a cancel (or for the test to kill it).
    task.progress(10, "pid=%d" % os.getpid())
    while not task.cancelled:
        task.sleep(0.01)
    seen = time.time()
    if task.args.get("mark"):
        with open(task.args["mark"], "w") as f:
            f.write("%.6f" % seen)
    return {"cancelled_at": seen}


@rtq.handler("py.stubborn")
def stubborn(task):
    # Ignores cancel and leaves a grandchild behind in its process group.
    child = subprocess.Popen(["sleep", "1000"])
    task.progress(10, "grandchild=%d" % child.pid)
    while True:
        time.sleep(0.05)


@rtq.handler("py.env")
def env(task):
    return {"redis_url": os.environ.get("RTQ_REDIS_URL"), "marker": os.environ.get("RTQ_EXEC_TEST_MARKER")}


@rtq.handler("py.boom")
def boom(task):
    print("about to fail", file=sys.stderr, flush=True)
    raise ValueError("bad value %s" % task.args.get("v"))


@rtq.handler("py.idle_chatter")
def idle_chatter(task):
    # Once the task has ended (the process is idle), writes args["kib"]
    # KiB to stderr, then creates args["mark"]: the mark appears only if
    # someone reads stderr while the process is idle.
    def later():
        time.sleep(0.2)
        line = "idle chatter " + "x" * 1000 + "\n"
        for _ in range(task.args["kib"]):
            sys.stderr.write(line)
        sys.stderr.flush()
        with open(task.args["mark"], "w") as f:
            f.write("done")

    threading.Thread(target=later, daemon=True).start()
    return {"pid": os.getpid()}


@rtq.handler("py.idle_exit")
def idle_exit(task):
    # Exits with status 7 a moment after the task ended, while idle.
    def later():
        time.sleep(0.2)
        os._exit(7)

    threading.Thread(target=later, daemon=True).start()
    return {"pid": os.getpid()}
