#!/usr/bin/python3
"""runner_alone.py - the Python runner's own cost per task, with no worker,
Redis or other process competing: the floor of what a task through
`python3 -m rtq.run` costs.

  /usr/bin/python3 bench/exec/runner_alone.py [--tasks 20000] [--runs 3]

Starts `/usr/bin/python3 -m rtq.run noop_handlers` (sdk/python and
bench/exec on PYTHONPATH) and plays the worker's side over its pipes in
lockstep: a task frame, then wait for its result frame, TASKS times. Prints
per run the rate and the runner's CPU time per task (user + system of the
process, from its start-up through the last task; start-up and imports
are about 25 ms, under 2 us a task at 20,000 tasks); the medians last.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))

FRAME = (b'{"type":"task","v":1,"id":"%026d","name":"bench.noop","queue":"default","attempt":1,'
         b'"timeout_ms":300000,"deadline_ms":1999999999999,"args":{}}\n')


def one_run(n):
    env = dict(os.environ, PYTHONPATH=os.path.join(root, "sdk", "python") + ":" + here)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(["/usr/bin/python3", "-m", "rtq.run", "noop_handlers"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=env, bufsize=0)
    wfd, rfd = p.stdin.fileno(), p.stdout.fileno()
    buf = b""

    def line():
        nonlocal buf
        deadline = time.monotonic() + 10
        while b"\n" not in buf:
            chunk = os.read(rfd, 65536)
            if not chunk or time.monotonic() > deadline:
                raise SystemExit("runner_alone.py: the runner stopped answering")
            buf += chunk
        out, _, buf = buf.partition(b"\n")
        return out

    line()  # ready
    t0 = time.perf_counter()
    for i in range(n):
        os.write(wfd, FRAME % i)
        if b'"result"' not in line():
            raise SystemExit("runner_alone.py: a task did not complete")
    rate = n / (time.perf_counter() - t0)
    p.stdin.close()
    p.wait(10)
    p.stdout.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rate, cpu * 1e6 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    rates, cpus = [], []
    for _ in range(a.runs):
        r, c = one_run(a.tasks)
        rates.append(r)
        cpus.append(c)
        print("run: %.0f tasks/s, runner CPU %.1f us/task (load %.2f)" % (r, c, os.getloadavg()[0]), file=sys.stderr)
    print("python3 -m rtq.run alone, lockstep, %d no-op tasks: median %.0f tasks/s, runner CPU %.1f us/task "
          "(runs %s; CPU %s)" % (a.tasks, statistics.median(rates), statistics.median(cpus),
                                 ", ".join("%.0f" % r for r in rates), ", ".join("%.1f" % c for c in cpus)))


if __name__ == "__main__":
    main()
