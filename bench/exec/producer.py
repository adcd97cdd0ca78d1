#!/usr/bin/python3
"""producer.py - create_task rate of the Python binding, awaited, one by
one, against a C program doing the same through the same library.

  /usr/bin/python3 bench/exec/producer.py BUILD_DIR [--tasks 20000] [--runs 3]

Three producers create TASKS tasks each, one awaited call at a time, with
args {"i": i, "data": 64 x's} built for every task inside the timed loop,
against one private redis-server (loopback, free port, no persistence, no
worker), each run in a fresh namespace, all with librtq.so of BUILD_DIR and
the client's default options:

  Python  rtq.Client.create_task(name, args) in a loop (sdk/python): json's
          C encoder makes the JSON text, rtq_create_task_json takes it;
  C json  BUILD_DIR/bench/rtq-c-producer ... json (bench/exec/c_producer.c):
          snprintf makes the JSON text, rtq_create_task_json takes it, the
          same entry point: the comparison the Python / C ratio is of;
  C tree  rtq-c-producer ... tree: an rtq_args tree built, rtq_create_task,
          the tree freed, as a C producer using the args API does.

The three alternate run by run (their order rotates). Prints the median
rate of each, the Python rate as a share of each C rate, and each client's
CPU time per call (the process's time.process_time(); getrusage in C),
which a busy machine disturbs less than the rates; it includes the
library's reply spin (docs/CLIENT.md).
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

KINDS = ("Python", "C json", "C tree")
WHAT = {"Python": "Python binding (rtq.Client.create_task)",
        "C json": "C, rtq_create_task_json (rtq-c-producer json)",
        "C tree": "C, rtq_args + rtq_create_task (rtq-c-producer tree)"}


def c_rate(build, url, ns, n, mode):
    out = subprocess.run([os.path.join(build, "bench", "rtq-c-producer"), url, ns, str(n), mode],
                         check=True, stdout=subprocess.PIPE, timeout=120).stdout
    res = json.loads(out)
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


def compare(rtq, build, runs, n):
    """{kind: [rate per run]}, {kind: [CPU us per call per run]}, on a
    private Redis; progress on stderr."""
    env = benchenv.Env()
    try:
        rates = {k: [] for k in KINDS}
        cpu = {k: [] for k in KINDS}
        for run in range(runs):
            for j in range(len(KINDS)):
                k = KINDS[(run + j) % len(KINDS)]
                ns = "%s%d" % (k.replace(" ", ""), run)
                if k == "Python":
                    r, u = py_rate(rtq, env.url, ns, n)
                else:
                    r, u = c_rate(build, env.url, ns, n, k.split()[1])
                rates[k].append(r)
                cpu[k].append(u)
                print("create run %d %s: %.0f tasks/s, %.1f us CPU/call (load %s)"
                      % (run + 1, k, r, u, benchenv.load()), file=sys.stderr)
        return rates, cpu
    finally:
        env.stop()


def report(rates, cpu, n):
    """Prints the medians and the ratios of compare()'s figures."""
    runs = len(rates["Python"])
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("create_task one by one, awaited, %d tasks, median of %d:" % (n, runs))
    for k in KINDS:
        print("  %s: %.0f tasks/s = %.1f us/call (runs %s); client CPU %.1f us/call (runs %s)"
              % (WHAT[k], med[k], 1e6 / med[k], ", ".join("%.0f" % r for r in rates[k]),
                 statistics.median(cpu[k]), ", ".join("%.1f" % u for u in cpu[k])))
    for k in ("C json", "C tree"):
        print("  Python / %s: %.0f%% (per run: %s)" % (
            k, 100.0 * med["Python"] / med[k],
            ", ".join("%.0f%%" % (100.0 * p / c) for p, c in zip(rates["Python"], rates[k]))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    rtq = benchenv.binding(build)
    rates, cpu = compare(rtq, build, a.runs, a.tasks)
    report(rates, cpu, a.tasks)
    print("load average at the end: %s" % benchenv.load())


if __name__ == "__main__":
    main()
