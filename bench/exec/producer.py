#!/usr/bin/python3
"""producer.py - create_task rate of the Python binding, awaited, one by
one, against the C client's measured the same way.

  /usr/bin/python3 bench/exec/producer.py BUILD_DIR [--tasks 20000] [--runs 3]

The C figure is rtq-bench's single-enqueue phase (BUILD_DIR/bench/rtq-bench
--only single -n TASKS --json): rtq_create_task() in a loop, each call
awaited, args {"i": i, "data": 64 x's}, against its own private Redis with
no worker. The Python figure does the same through sdk/python's
rtq.Client.create_task() (librtq.so of BUILD_DIR underneath) against a
private redis-server (loopback, free port, no persistence, no worker),
a fresh namespace per run. The two alternate run by run. Prints the median
rate of each and the Python rate as a share of the C rate, and the client
CPU time per call of each (rtq-bench's client_cpu_us_per_task; the Python
process's time.process_time()), which a busy machine disturbs less than
the rates; it includes the library's reply spin (docs/CLIENT.md).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402


def c_rate(build, n):
    out = subprocess.run([os.path.join(build, "bench", "rtq-bench"), "--only", "single", "-n", str(n), "--json",
                          "--quiet", "--timeout", "60"], check=True, stdout=subprocess.PIPE, timeout=120).stdout
    res = json.loads(out)["enqueue_single"]
    return res["tasks_per_s"], res["client_cpu_us_per_task"]


def py_rate(rtq, url, ns, n):
    c = rtq.Client(url, namespace=ns)
    data = "x" * 64
    try:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + 60
        for i in range(n):
            c.create_task("rtq.noop", {"i": i, "data": data})
            if i % 1000 == 0 and time.perf_counter() > deadline:
                raise SystemExit("producer.py: enqueue took over 60 s")
        return n / (time.perf_counter() - t0), (time.process_time() - cpu0) * 1e6 / n
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    rtq = benchenv.binding(build)
    env = benchenv.Env()
    try:
        rates = {"C": [], "Python": []}
        cpu = {"C": [], "Python": []}
        for run in range(a.runs):
            for k, f in (("C", lambda: c_rate(build, a.tasks)),
                         ("Python", lambda: py_rate(rtq, env.url, "bench%d" % run, a.tasks))):
                r, u = f()
                rates[k].append(r)
                cpu[k].append(u)
                print("run %d %s: %.0f tasks/s, %.1f us CPU/call (load %s)" % (run + 1, k, r, u, benchenv.load()),
                      file=sys.stderr)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("create_task one by one, awaited, %d tasks:" % a.tasks)
        for k, what in (("C", "C client (rtq-bench --only single)"), ("Python", "Python binding (rtq.Client)")):
            print("  %s: median %.0f tasks/s = %.1f us/call (runs %s); client CPU %.1f us/call (runs %s)"
                  % (what, med[k], 1e6 / med[k], ", ".join("%.0f" % r for r in rates[k]),
                     statistics.median(cpu[k]), ", ".join("%.1f" % u for u in cpu[k])))
        print("  Python / C: %.0f%%" % (100.0 * med["Python"] / med["C"]))
        print("load average at the end: %s" % benchenv.load())
    finally:
        env.stop()


if __name__ == "__main__":
    main()
