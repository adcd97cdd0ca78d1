#!/usr/bin/python3
"""producer_cost.py - user-space instructions per create_task call of the
three producers of producer.py, counted by valgrind's callgrind: a figure
a busy machine does not move, unlike rates and CPU times.

  /usr/bin/python3 bench/exec/producer_cost.py BUILD_DIR [--sdk DIR] [--kinds python,json,tree]

Each producer runs its producer.py loop (the Python one: py_rate itself)
under callgrind twice, for 1,000 and for 3,000 tasks, against one private
redis-server; the difference of the two totals over 2,000 is the cost of
one call, start-up and teardown cancelled out. It counts the process's
own instructions (the interpreter, cffi, librtq, hiredis, libc), not the
kernel's, and includes the iterations of librtq's reply spin, which vary
a little from run to run (a few hundred instructions). --sdk measures
another sdk/python tree (an older checkout's). Needs valgrind.
"""
import argparse
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import benchenv  # noqa: E402

# rtq comes from PYTHONPATH (--sdk), librtq.so from RTQ_LIBRARY (BUILD_DIR).
PY_LOOP = "import sys; sys.path.insert(0, %r); import producer, rtq; producer.py_rate(rtq, %r, %r, %d)"


def collected(cmd, env, work):
    out = os.path.join(work, "callgrind.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or m is None:
        raise SystemExit("producer_cost.py: %s failed:\n%s" % (" ".join(cmd), p.stderr[-2000:]))
    os.unlink(out)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--sdk", default=os.path.join(benchenv.root, "sdk", "python"))
    ap.add_argument("--kinds", default="python,json,tree")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    env = dict(os.environ, RTQ_LIBRARY=os.path.join(build, "client", "librtq.so"),
               PYTHONPATH=os.path.abspath(a.sdk))
    red = benchenv.Env()
    try:
        for kind in a.kinds.split(","):
            counts = []
            for n in (1000, 3000):
                ns = "cost-%s-%d" % (kind, n)
                if kind == "python":
                    cmd = ["/usr/bin/python3", "-c", PY_LOOP % (here, red.url, ns, n)]
                else:
                    cmd = [os.path.join(build, "bench", "rtq-c-producer"), red.url, ns, str(n), kind]
                counts.append(collected(cmd, env, red.work))
            print("%-6s %6.0f instructions per call" % (kind, (counts[1] - counts[0]) / 2000.0), flush=True)
    finally:
        red.stop()


if __name__ == "__main__":
    main()
