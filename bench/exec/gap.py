#!/usr/bin/python3
"""gap.py - what a producer's own work between awaited creates costs in
rate: rtq-c-producer (json) with GAP_US microseconds of spinning before
each call, the gaps alternating run by run on one private redis-server.

  /usr/bin/python3 bench/exec/gap.py BUILD_DIR [--gaps 0,1,2,3,5] [--runs 5] [--tasks 10000]

Prints, per gap, the median rate, the median p50 of one call (the call
alone, without the spin) and how much longer a task took than at gap 0,
less the gap itself: the cost of the gap beyond its own length. On a
machine where an idle Redis answers as soon as the command arrives that
is about 0. Only processes this script started are stopped.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchenv  # noqa: E402
import producer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--gaps", default="0,1,2,3,5")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=10000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    gaps = [float(g) for g in a.gaps.split(",")]
    if 0.0 not in gaps:
        gaps.insert(0, 0.0)
    env = benchenv.Env()
    res = {g: [] for g in gaps}
    try:
        for run in range(a.runs):
            order = gaps if run % 2 == 0 else list(reversed(gaps))
            for g in order:
                res[g].append(producer.c_rate(build, env.url, "gap%d_%g" % (run, g), a.tasks, "json", g))
                print("run %d gap %g us: %.0f tasks/s, call p50 %.1f us (load %s)"
                      % (run + 1, g, res[g][-1][0], res[g][-1][2], benchenv.load()), file=sys.stderr)
    finally:
        env.stop()
    base = 1e6 / statistics.median(r[0] for r in res[0.0])
    print("rtq-c-producer json, %d awaited creates a run, median of %d runs; load at the end %s"
          % (a.tasks, a.runs, benchenv.load()))
    for g in gaps:
        rate = statistics.median(r[0] for r in res[g])
        p50 = statistics.median(r[2] for r in res[g])
        print("  gap %4g us: %6.0f tasks/s (runs %s), call p50 %5.1f us; per task %+.1f us over gap 0, "
              "of which %.1f us beyond the gap" % (g, rate, ", ".join("%.0f" % r[0] for r in res[g]), p50,
                                                  1e6 / rate - base, 1e6 / rate - base - g))


if __name__ == "__main__":
    main()
