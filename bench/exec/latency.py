#!/usr/bin/python3
"""latency.py - enqueue->start latency of a Python handler and of a C handler.

  /usr/bin/python3 bench/exec/latency.py BUILD_DIR [--tasks 1000] [--gap-ms 1] [--runs 3]
                                                   [--pool 4] [--concurrency 16]

Starts a private redis-server (loopback, free port, no persistence) and one
idle worker serving both kinds of handler:
  rtq-worker --demo-handlers --exec 'bench.noop=/usr/bin/python3 -m rtq.run latency_handlers'
             --exec-pool POOL --concurrency N
After a warm-up that starts the pool, each run creates TASKS tasks of each
kind one by one with the Python binding (create_task), alternating
rtq.noop (C) and bench.noop (Python) with GAP-MS between two creates, then
waits for all of them. A task's latency is started_at - created_at from its
hash: both are stamped by Redis's clock, in whole milliseconds, so these
figures are quantised to 1 ms. started_at is stamped when a worker slot
claims the task, before the task reaches a handler process, so for the
Python handler the script also measures, in microseconds, from just before
create_task() is called to the time.time() the handler returns as its
result on entry (bench/exec/latency_handlers.py; the same host clock).
Prints p50/p99 per run and their medians.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402

PY_STAMP = "bench.noop=/usr/bin/python3 -m rtq.run latency_handlers"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=1000, help="tasks of each kind per run")
    ap.add_argument("--gap-ms", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    rtq = benchenv.binding(build)
    env = benchenv.Env()
    try:
        flags = env.start_worker(build, ["--concurrency", str(a.concurrency), "--exec-pool", str(a.pool),
                                         "--demo-handlers", "--exec", PY_STAMP])
        print("worker: %s" % flags, file=sys.stderr)
        c = rtq.Client(env.url)
        warm = c.create_tasks([("bench.noop", {}, {})] * (2 * a.pool) + [("rtq.noop", {}, {})] * 4)
        for tid in warm:
            assert c.wait_for_task(tid, timeout=30)["status"] == "completed"
        kinds = ("rtq.noop", "bench.noop")
        per = {k: {"p50": [], "p99": []} for k in kinds}
        entry = {"p50": [], "p99": []}
        for run in range(a.runs):
            time.sleep(0.5)  # the worker back in its blocking pop
            ids = {k: [] for k in kinds}
            t_enq = {}
            deadline = time.time() + 60
            for i in range(a.tasks):
                for k in kinds:
                    t0 = time.time()
                    ids[k].append(c.create_task(k, {"i": i}))
                    t_enq[ids[k][-1]] = t0
                    time.sleep(a.gap_ms / 1000.0)
                if time.time() > deadline:
                    raise SystemExit("latency.py: creating took over 60 s")
            for k in kinds:
                lat, us = [], []
                for tid in ids[k]:
                    t = c.wait_for_task(tid, timeout=60)
                    assert t["status"] == "completed", t
                    lat.append(benchenv.ms(t["started_at"]) - benchenv.ms(t["created_at"]))
                    if k == "bench.noop":
                        us.append((t["result"]["entered"] - t_enq[tid]) * 1e6)
                if us:
                    us.sort()
                    entry["p50"].append(benchenv.quantile(us, 0.50))
                    entry["p99"].append(benchenv.quantile(us, 0.99))
                    print("run %d %s: create_task() -> handler entered: p50 %.0f us, p99 %.0f us"
                          % (run + 1, k, entry["p50"][-1], entry["p99"][-1]), file=sys.stderr)
                lat.sort()
                per[k]["p50"].append(benchenv.quantile(lat, 0.50))
                per[k]["p99"].append(benchenv.quantile(lat, 0.99))
                print("run %d %s: p50 %d ms, p99 %d ms, max %d ms (load %s)"
                      % (run + 1, k, per[k]["p50"][-1], per[k]["p99"][-1], lat[-1], benchenv.load()),
                      file=sys.stderr)
        for k, what in (("bench.noop", "Python handler (--exec, pool %d)" % a.pool),
                        ("rtq.noop", "C handler (--demo-handlers rtq.noop)")):
            print("enqueue->start (started_at - created_at), %s, %d tasks, creates alternating kinds %.1f ms apart: median p50 %s ms, median p99 %s ms "
                  "(runs p50 %s; p99 %s)"
                  % (what, a.tasks, a.gap_ms, statistics.median(per[k]["p50"]), statistics.median(per[k]["p99"]),
                     ", ".join(map(str, per[k]["p50"])), ", ".join(map(str, per[k]["p99"]))))
        print("create_task() called -> Python handler entered, %d tasks: median p50 %.0f us, median p99 %.0f us "
              "(runs p50 %s; p99 %s)"
              % (a.tasks, statistics.median(entry["p50"]), statistics.median(entry["p99"]),
                 ", ".join("%.0f" % v for v in entry["p50"]), ", ".join("%.0f" % v for v in entry["p99"])))
        print("load average at the end: %s" % benchenv.load())
    finally:
        env.stop()


if __name__ == "__main__":
    main()
