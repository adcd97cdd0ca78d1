#!/usr/bin/python3
"""producer.py - create_task rate of the Python binding, awaited, one by
one, against a C program doing the same through the same library.

  /usr/bin/python3 bench/exec/producer.py BUILD_DIR [--tasks 20000] [--runs 3]

Four producers create TASKS tasks each, one awaited call at a time, with
args {"i": i, "data": 64 x's} built for every task inside the timed loop,
against one private redis-server (loopback, free port, no persistence, no
worker), each run in a fresh namespace, all with librtq.so of BUILD_DIR and
the client's default options:

  Python  rtq.Client.create_task(name, args) in a loop (sdk/python), with
          its C accelerator (rtq/_speedups.c, built in place first): the
          dict's values go onto an rtq_args tree, rtq_create_task takes it;
  Python cffi
          the same loop with the accelerator off, as an install without a
          compiler runs it: json's C encoder makes the JSON text,
          rtq_create_task_json takes it;
  C json  BUILD_DIR/bench/rtq-c-producer ... json (bench/exec/c_producer.c):
          snprintf makes the JSON text, rtq_create_task_json takes it:
          Python cffi's entry point;
  C tree  rtq-c-producer ... tree: an rtq_args tree built, rtq_create_task,
          the tree freed, as a C producer using the args API does: the
          accelerated Python's entry point.

The four alternate run by run (their order rotates). Prints the median
rate of each, each Python rate as a share of each C rate (of the medians,
and the median of the runs' shares: a run's Python and C figures are
taken seconds apart, under much the same load), each client's CPU
time per call (the process's time.process_time(); getrusage in C; it
includes the library's reply spin, docs/CLIENT.md) and the p50 and p99 of
one call's time (args built, call made, reply read). The CPU times and the
p50s, which a busy machine disturbs less than the rates, show what each
producer's own work costs; the rates also carry every wait for a core.
"""
import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402

KINDS = ("Python", "Python cffi", "C json", "C tree")
WHAT = {"Python": "Python binding (rtq.Client.create_task)",
        "Python cffi": "Python binding without its C accelerator (the cffi path)",
        "C json": "C, rtq_create_task_json (rtq-c-producer json)",
        "C tree": "C, rtq_args + rtq_create_task (rtq-c-producer tree)"}


def c_rate(build, url, ns, n, mode, gap_us=0):
    # GAP_US only when given: an older rtq-c-producer takes no fifth argument.
    gap = [str(gap_us)] if gap_us else []
    out = subprocess.run([os.path.join(build, "bench", "rtq-c-producer"), url, ns, str(n), mode] + gap,
                         check=True, stdout=subprocess.PIPE, timeout=120).stdout
    res = json.loads(out)
    return res["tasks_per_s"], res["client_cpu_us_per_task"], res["call_us_p50"], res["call_us_p99"]


def py_rate(rtq, url, ns, n, accelerated=True):
    """py_loop's figures, with create_task's C accelerator turned off for
    the run unless accelerated (an older tree has none: both the same)."""
    client = importlib.import_module("rtq.client")
    fast = getattr(client, "_fast_create", None)
    if not accelerated:
        client._fast_create = None
    try:
        return py_loop(rtq, url, ns, n)
    finally:
        client._fast_create = fast


def py_loop(rtq, url, ns, n):
    c = rtq.Client(url, namespace=ns)
    data = "x" * 64
    now = time.perf_counter
    took = [0.0] * n
    try:
        cpu0 = time.process_time()
        t0 = now()
        deadline = t0 + 60
        for i in range(n):
            c0 = now()
            c.create_task("rtq.noop", {"i": i, "data": data})
            c1 = now()
            took[i] = c1 - c0
            if i % 1000 == 0 and c1 > deadline:
                raise SystemExit("producer.py: enqueue took over 60 s")
        rate, cpu = n / (now() - t0), (time.process_time() - cpu0) * 1e6 / n
    finally:
        c.close()
    took.sort()
    return rate, cpu, benchenv.quantile(took, 0.5) * 1e6, benchenv.quantile(took, 0.99) * 1e6


def compare(rtq, build, runs, n):
    """{kind: [(rate, CPU us per call, p50 us, p99 us) per run]}, on a
    private Redis; progress on stderr."""
    env = benchenv.Env()
    try:
        res = {k: [] for k in KINDS}
        for run in range(runs):
            for j in range(len(KINDS)):
                k = KINDS[(run + j) % len(KINDS)]
                ns = "%s%d" % (k.replace(" ", ""), run)
                if k.startswith("Python"):
                    res[k].append(py_rate(rtq, env.url, ns, n, k == "Python"))
                else:
                    res[k].append(c_rate(build, env.url, ns, n, k.split()[1]))
                print("create run %d %s: %.0f tasks/s, %.1f us CPU/call, call p50 %.1f us p99 %.1f us (load %s)"
                      % ((run + 1, k) + res[k][-1] + (benchenv.load(),)), file=sys.stderr)
        return res
    finally:
        env.stop()


def report(res, n):
    """Prints the medians and the ratios of compare()'s figures."""
    runs = len(res["Python"])
    med = {k: [statistics.median(x[j] for x in v) for j in range(4)] for k, v in res.items()}
    print("create_task one by one, awaited, %d tasks, median of %d:" % (n, runs))
    for k in KINDS:
        print("  %s: %.0f tasks/s = %.1f us/call (runs %s); client CPU %.1f us/call (runs %s); "
              "one call p50 %.1f us, p99 %.0f us"
              % ((WHAT[k], med[k][0], 1e6 / med[k][0], ", ".join("%.0f" % x[0] for x in res[k]), med[k][1],
                  ", ".join("%.1f" % x[1] for x in res[k])) + tuple(med[k][2:])))
    for py in ("Python", "Python cffi"):
        for k in ("C json", "C tree"):
            per_run = [100.0 * p[0] / c[0] for p, c in zip(res[py], res[k])]
            print("  %s / %s: rate %.0f%% (per run: %s; their median %.0f%%); at the p50 of a call"
                  " (%s p50 / %s p50) %.0f%%" % (
                      py, k, 100.0 * med[py][0] / med[k][0], ", ".join("%.0f%%" % r for r in per_run),
                      statistics.median(per_run), k, py, 100.0 * med[k][2] / med[py][2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    rtq = benchenv.binding(build)
    print(benchenv.accelerator(rtq))
    report(compare(rtq, build, a.runs, a.tasks), a.tasks)
    print("load average at the end: %s" % benchenv.load())


if __name__ == "__main__":
    main()
