#!/usr/bin/python3
"""overhead.py - per-task cost of a Python handler process (--exec) against a
C handler, same worker, same flags.

  /usr/bin/python3 bench/exec/overhead.py BUILD_DIR [--tasks 5000] [--runs 3]
                                                    [--pool 4] [--concurrency 16]

Starts a private redis-server (loopback, free port, no persistence) and one
worker serving both:
  rtq-worker --demo-handlers --exec 'bench.noop=/usr/bin/python3 -m rtq.run noop_handlers'
             --exec-pool POOL --concurrency N
warms both up, then per run drains TASKS rtq.noop tasks (C) and then TASKS
bench.noop tasks (Python), the kinds alternating run by run so both see the
same machine. A drain enqueues the tasks with create_tasks (chunks of 1000)
and its rate is TASKS divided by the time from the first create_tasks call
to the last task's completed_at (as bench/exec/drain.py). Prints the median
rate of each kind and the difference of their medians in microseconds per
task. With each rate it prints the CPU time per task of the worker, of
its handler processes, of redis-server and of the bench (this script:
enqueue and the final reads), medians over the runs: on a 2-core machine
2 s of CPU per second is all there is, so their sum bounds the rate.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402


def drain(c, name, n, env, cpu):
    s0 = benchenv.cpu_snapshot(env)
    t0 = time.time()
    ids = []
    for k in range(0, n, 1000):
        ids += c.create_tasks([(name, {}, {})] * min(1000, n - k))
    c.wait_for_task(ids[-1], timeout=120)
    s1 = benchenv.cpu_snapshot(env)  # before the reads below, which are not the drain's
    for k in s1:
        cpu.setdefault(k, []).append((s1[k] - s0[k]) * 1e6 / n)
    end = 0
    for tid in ids:
        t = c.wait_for_task(tid, timeout=120)
        assert t["status"] == "completed", t
        end = max(end, benchenv.ms(t["completed_at"]))
    return n / (end / 1000.0 - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    rtq = benchenv.binding(build)
    env = benchenv.Env()
    try:
        flags = env.start_worker(build, ["--concurrency", str(a.concurrency), "--exec-pool", str(a.pool),
                                         "--demo-handlers", "--exec", benchenv.PY_NOOP])
        print("worker: %s" % flags, file=sys.stderr)
        c = rtq.Client(env.url)
        for tid in c.create_tasks([("bench.noop", {}, {})] * (2 * a.pool) + [("rtq.noop", {}, {})] * 4):
            assert c.wait_for_task(tid, timeout=30)["status"] == "completed"
        rates = {"rtq.noop": [], "bench.noop": []}
        cpu = {"rtq.noop": {}, "bench.noop": {}}
        for run in range(a.runs):
            order = ("rtq.noop", "bench.noop") if run % 2 == 0 else ("bench.noop", "rtq.noop")
            for k in order:
                rates[k].append(drain(c, k, a.tasks, env, cpu[k]))
                print("run %d %s: %.0f tasks/s (load %s)" % (run + 1, k, rates[k][-1], benchenv.load()),
                      file=sys.stderr)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("drain of %d no-op tasks, --concurrency %d --exec-pool %d:" % (a.tasks, a.concurrency, a.pool))
        print("  C handler (--demo-handlers rtq.noop): median %.0f tasks/s = %.1f us/task (runs %s)"
              % (med["rtq.noop"], 1e6 / med["rtq.noop"], ", ".join("%.0f" % r for r in rates["rtq.noop"])))
        print("  Python handler (--exec, pool %d): median %.0f tasks/s = %.1f us/task (runs %s)"
              % (a.pool, med["bench.noop"], 1e6 / med["bench.noop"],
                 ", ".join("%.0f" % r for r in rates["bench.noop"])))
        print("  overhead of --exec: %+.1f us/task" % (1e6 / med["bench.noop"] - 1e6 / med["rtq.noop"]))
        for k, what in (("rtq.noop", "C handler"), ("bench.noop", "Python handler")):
            parts = {p: statistics.median(v) for p, v in cpu[k].items()}
            total = sum(parts.values())
            print("  CPU per task, %s: %s; total %.0f us = at most %.0f tasks/s on 2 cores"
                  % (what, ", ".join("%s %.0f us" % (p, v) for p, v in parts.items()), total, 2e6 / total))
        print("load average at the end: %s" % benchenv.load())
    finally:
        env.stop()


if __name__ == "__main__":
    main()
