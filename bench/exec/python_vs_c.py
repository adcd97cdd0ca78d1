#!/usr/bin/python3
"""python_vs_c.py - the two Python figures against C, measured in the same
run: the drain through Python handler processes against the C handler,
and the Python producer's create_task against the C client's.

  /usr/bin/python3 bench/exec/python_vs_c.py BUILD_DIR [--runs 3] [--drain-tasks 5000]
                                             [--create-tasks 20000] [--pool 4] [--concurrency 50]
                                             [--sdk DIR] [--only drain|create]

A busy machine moves single rates by tens of percent, so every Python
figure is given with its C counterpart taken in the same run, the two
alternating (Python first in odd runs), and as their ratio:

  drain   one rtq-worker --demo-handlers --exec 'bench.noop=/usr/bin/python3
          -m rtq.run noop_handlers' --exec-pool POOL --concurrency N serves
          both kinds on a private redis-server; a drain enqueues TASKS no-op
          tasks of one kind (create_tasks, chunks of 1000) and its rate is
          TASKS over the time from the first create_tasks call to the last
          task's completed_at (as drain.py and overhead.py). C: rtq.noop.
  create  producer.py's comparison: rtq.Client.create_task in a loop
          against bench/exec/c_producer.c (rtq-c-producer) calling the
          same entry point, rtq_create_task_json, and rtq_create_task with
          an rtq_args tree, args {"i": i, "data": 64 x's} built per task,
          each call awaited, on one private Redis without a worker, with
          each client's CPU time per call.

Medians of the runs, the runs themselves, and the load average are printed;
there is no pass or fail. --sdk points at another sdk/python tree (an
older checkout's, to measure it against this one with the same build or
another); the default is this tree's. The worker, librtq.so and
rtq-c-producer come from BUILD_DIR. Everything runs on 127.0.0.1 and only processes this
script started are stopped.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import benchenv  # noqa: E402
import overhead  # noqa: E402
import producer  # noqa: E402


def start_worker(env, build, sdk, flags):
    """benchenv.Env.start_worker with the handler processes on sdk."""
    penv = dict(os.environ, PYTHONPATH=sdk + ":" + here)
    cmd = [os.path.join(build, "worker", "rtq-worker"), "--redis", env.url, "--log-level", "WARNING"] + flags
    log = open(os.path.join(env.work, "worker.log"), "a")
    env.worker = subprocess.Popen(cmd, env=penv, stdout=log, stderr=log)


def drains(rtq, build, sdk, a):
    env = benchenv.Env()
    try:
        start_worker(env, build, sdk, ["--concurrency", str(a.concurrency), "--exec-pool", str(a.pool),
                                       "--demo-handlers", "--exec", benchenv.PY_NOOP])
        c = rtq.Client(env.url)
        for tid in c.create_tasks([("bench.noop", {}, {})] * (2 * a.pool) + [("rtq.noop", {}, {})] * 4):
            assert c.wait_for_task(tid, timeout=30)["status"] == "completed"
        rates = {"Python": [], "C": []}
        cpu = {"Python": {}, "C": {}}
        kind = {"Python": "bench.noop", "C": "rtq.noop"}
        for run in range(a.runs):
            for k in ("Python", "C") if run % 2 == 0 else ("C", "Python"):
                rates[k].append(overhead.drain(c, kind[k], a.drain_tasks, env, cpu[k]))
                print("drain run %d %s: %.0f tasks/s (load %s)" % (run + 1, k, rates[k][-1], benchenv.load()),
                      file=sys.stderr)
        c.close()
        return rates, cpu
    finally:
        env.stop()


def runs(v, fmt="%.0f"):
    return ", ".join(fmt % x for x in v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--drain-tasks", type=int, default=5000)
    ap.add_argument("--create-tasks", type=int, default=20000)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=50,
                    help="worker slots (default 50, the worker's own default)")
    ap.add_argument("--sdk", default=os.path.join(benchenv.root, "sdk", "python"))
    ap.add_argument("--only", choices=("drain", "create"))
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    sdk = os.path.abspath(a.sdk)
    rtq = benchenv.binding(build, sdk)
    print("build %s, sdk %s (rtq from %s), load at the start %s; %s"
          % (build, sdk, os.path.dirname(rtq.__file__), benchenv.load(), benchenv.accelerator(rtq)))
    t0 = time.time()
    if a.only in (None, "drain"):
        rates, cpu = drains(rtq, build, sdk, a)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("drain of %d no-op tasks, --exec-pool %d --concurrency %d, median of %d:"
              % (a.drain_tasks, a.pool, a.concurrency, a.runs))
        for k, what in (("C", "C handler (rtq.noop)"), ("Python", "Python handlers (--exec, rtq.run)")):
            parts = {p: statistics.median(v) for p, v in cpu[k].items()}
            print("  %s: %.0f tasks/s (runs %s); CPU per task: %s, total %.0f us"
                  % (what, med[k], runs(rates[k]), ", ".join("%s %.0f us" % pv for pv in parts.items()),
                     sum(parts.values())))
        print("  Python / C: %.0f%% (per run: %s)" % (
            100.0 * med["Python"] / med["C"],
            runs([100.0 * p / c for p, c in zip(rates["Python"], rates["C"])], "%.0f%%")))
    if a.only in (None, "create"):
        producer.report(producer.compare(rtq, build, a.runs, a.create_tasks), a.create_tasks)
    print("load average at the end: %s (%.0f s)" % (benchenv.load(), time.time() - t0))


if __name__ == "__main__":
    main()
