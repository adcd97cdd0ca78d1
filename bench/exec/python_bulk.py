#!/usr/bin/python3
"""python_bulk.py - the Python binding's bulk create (rtq.Client.create_tasks)
with its C accelerator and on the cffi path, alternated run by run.

  /usr/bin/python3 bench/exec/python_bulk.py BUILD_DIR [--tasks 20000] [--chunk 1000] [--runs 7]

Each run creates TASKS tasks with args {"i": i, "data": 64 x's} (built
before the clock starts, as a producer holding its batch would) in
create_tasks calls of CHUNK tasks, on one private redis-server without a
worker, in a fresh namespace. Prints each path's median rate and client
CPU per task (time.process_time()). The C client's own bulk rate is
rtq-bench's batch phase (docs/PERFORMANCE.md §9.14). Only processes this
script started are stopped.
"""
import argparse
import importlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402


def run(rtq, url, ns, n, chunk):
    c = rtq.Client(url, namespace=ns)
    data = "x" * 64
    tasks = [("rtq.noop", {"i": i, "data": data}) for i in range(n)]
    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        for k in range(0, n, chunk):
            for r in c.create_tasks(tasks[k:k + chunk]):
                if not isinstance(r, str):
                    raise SystemExit("python_bulk.py: a create failed: %s" % r)
        return n / (time.perf_counter() - t0), (time.process_time() - cpu0) * 1e6 / n
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    rtq = benchenv.binding(os.path.abspath(a.build))
    client = importlib.import_module("rtq.client")
    fast = getattr(client, "_fast_create_many", None)
    print("%s; load at the start %s" % (benchenv.accelerator(rtq), benchenv.load()))
    env = benchenv.Env()
    res = {"accelerator": [], "cffi path": []}
    try:
        for i in range(a.runs):
            for kind in ("accelerator", "cffi path") if i % 2 == 0 else ("cffi path", "accelerator"):
                client._fast_create_many = fast if kind == "accelerator" else None
                res[kind].append(run(rtq, env.url, "bulk%d%s" % (i, kind[0]), a.tasks, a.chunk))
                print("run %d %s: %.0f tasks/s, %.1f us CPU/task (load %s)"
                      % ((i + 1, kind) + res[kind][-1] + (benchenv.load(),)), file=sys.stderr)
    finally:
        client._fast_create_many = fast
        env.stop()
    print("create_tasks, %d tasks in calls of %d, median of %d runs:" % (a.tasks, a.chunk, a.runs))
    for kind, v in res.items():
        print("  %s: %.0f tasks/s (runs %s), client CPU %.1f us/task"
              % (kind, statistics.median(x[0] for x in v), ", ".join("%.0f" % x[0] for x in v),
                 statistics.median(x[1] for x in v)))
    print("load average at the end: %s" % benchenv.load())


if __name__ == "__main__":
    main()
