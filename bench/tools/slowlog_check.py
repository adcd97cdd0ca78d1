#!/usr/bin/python3
"""slowlog_check.py - which Redis calls of rtq run longer than 1 ms?
(bench/slowlog.sh runs it.)

On a private redis-server with slowlog-log-slower-than 1000 (1 ms):

  1. an rtq-bench run (its default phases, or those given) against it;
  2. N finished tasks written into a fresh namespace (fill_history.py;
     the SLOWLOG is reset after the filling), then rtq-broker sweeping
     over them twice: with a cap above N (nothing to trim: a cleanup round
     walks the history and the status indexes), then with the default cap
     of 10,000 (the history cap deletes N - 10,000 tasks).

After each part it prints every SLOWLOG entry (duration, command, first
key) and a summary per command. Exits 0 whatever it finds.

usage: slowlog_check.py BUILD_DIR [N [RTQ_BENCH_ARGS...]]   (N = 1000000)
"""
import os
import signal
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "exec"))
import benchenv  # noqa: E402
import fill_history  # noqa: E402
import slowlog  # noqa: E402
from resp import Redis  # noqa: E402

NS = "sl"
CAP = 10000


def report(r, title):
    entries = r("SLOWLOG", "GET", "-1") or []
    entries.reverse()
    print("\n== %s: %d SLOWLOG entries over 1 ms ==" % (title, len(entries)))
    groups = {}
    for e in entries:
        l = slowlog.label(e[3])
        print("%8d us  %s" % (e[2], l))
        groups.setdefault(slowlog.group(e[3]), []).append(e[2])
    if groups:
        print("-- per command: count, max (us)")
        for l, v in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            print("%6d %8d  %s" % (len(v), max(v), l))
    r("SLOWLOG", "RESET")


def broker_until(build, env, cap, done, timeout, level="INFO"):
    log = open(os.path.join(env.work, "broker.log"), "a")
    p = subprocess.Popen([os.path.join(build, "broker", "rtq-broker"), "--redis", env.url,
                          "--namespace", NS, "--max-task-history", str(cap),
                          "--sweep-interval", "100ms", "--log-level", level],
                         stdout=log, stderr=log)
    t0 = time.time()
    try:
        while not done() and time.time() - t0 < timeout:
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    return time.time() - t0


def main():
    build = benchenv.build_dir(__doc__)
    if build is None:
        return 2
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    bench_args = sys.argv[3:]
    env = benchenv.Env()
    try:
        r = Redis(env.port)
        r("CONFIG", "SET", "slowlog-max-len", "100000")
        r("CONFIG", "SET", "slowlog-log-slower-than", "1000")
        print("redis on port %d, load %s" % (env.port, benchenv.load()))

        cmd = [os.path.join(build, "bench", "rtq-bench"), "--redis", env.url, "--quiet"] + bench_args
        print("$ " + " ".join(cmd))
        subprocess.run(cmd, check=False)
        report(r, "rtq-bench " + " ".join(bench_args))

        t0 = time.time()
        fill_history.fill(r, NS, n)
        print("\nfilled %d finished tasks in %.1f s; used_memory %s" %
              (n, time.time() - t0, r.info("memory")["used_memory"]))
        r("SLOWLOG", "RESET")
        stats = NS + ":stats"

        def rounds_done():
            v = r("HGET", stats, "broker|sweeps")
            return v is not None and int(v) >= 2 and b"cleanup round done" in \
                open(os.path.join(env.work, "broker.log"), "rb").read()
        secs = broker_until(build, env, n + CAP, rounds_done, 600, "DEBUG")
        print("broker, cap %d (cleanup round over %d): %.1f s, load %s"
              % (n + CAP, n, secs, benchenv.load()))
        report(r, "broker sweeps, a cleanup round over %d finished tasks" % n)

        secs = broker_until(build, env, CAP, lambda: r("ZCARD", NS + ":history") <= CAP, 600)
        print("broker, cap %d: history %d after %.1f s, load %s"
              % (CAP, r("ZCARD", NS + ":history"), secs, benchenv.load()))
        report(r, "broker sweeps, the history cap over %d finished tasks" % n)
    finally:
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
