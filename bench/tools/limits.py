"""limits.py - a queue's fleet-wide rate limit with real rtq-worker
processes (protocol 2), measured over a long window (bench/limits.sh runs
it; docs/OPERATIONS.md section 8.7 has the figures):

  1. idle: the workers alone, Redis commands per second (INFO);
  2. rate: W workers on a queue limited to R/s, the starts per second
     over S seconds by the tasks' own start times (Redis TIME), after the
     first burst has gone; and the Redis commands per second meanwhile,
     with the queue sitting at its limit.

It prints one JSON object. Tasks are made with the create script itself
(tests/lua2/v2.py), the limit is set with `rtq queue limit`.

  /usr/bin/python3 bench/tools/limits.py BUILD_DIR [--workers 4]
      [--rate 50] [--seconds 20] [--slots 8]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lua2"))
import rtq_servers  # noqa: E402
from v2 import Queue  # noqa: E402

QUEUE = "bench"


def commands(r):
    return r.info("stats")["total_commands_processed"]


def cmdstats(r):
    return {k[len("cmdstat_"):]: v["calls"] for k, v in r.info("commandstats").items()}


def window(r, seconds):
    """Commands per second over a window, total and by command (the INFO
    calls of the window taken out)."""
    c0, s0, t0 = commands(r), cmdstats(r), time.monotonic()
    time.sleep(seconds)
    c1, s1, t1 = commands(r), cmdstats(r), time.monotonic()
    dt = t1 - t0
    by = {k: round((v - s0.get(k, 0)) / dt, 1) for k, v in s1.items() if v != s0.get(k, 0)}
    by["info"] = round(max(0, by.get("info", 0) * dt - 3) / dt, 1)
    return round((c1 - c0 - 3) / dt, 1), {k: v for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v > 0}


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--idle-seconds", type=int, default=5)
    a = ap.parse_args()
    worker = os.path.join(a.build, "worker", "rtq-worker")
    cli = os.path.join(a.build, "client", "rtq")
    out = {"workers": a.workers, "slots_per_worker": a.slots, "rate_limit": a.rate, "window_s": a.seconds}
    with rtq_servers.redis_server("rtq-limits-") as srv:
        url = "redis://127.0.0.1:%d/0" % srv["port"]
        env = dict(os.environ, RTQ_PROTOCOL="2", RTQ_REDIS_URL=url)
        env.pop("RTQ_NAMESPACE", None)
        r = redis.Redis(port=srv["port"])
        # The namespace marked protocol 2, the limit set, before any worker.
        subprocess.run([cli, "queue", "limit", QUEUE, "--rate", "%g/s" % a.rate], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        procs = []
        try:
            for i in range(a.workers):
                log = open(os.path.join(srv["dir"], "worker-%d.log" % i), "ab")
                procs.append(subprocess.Popen([worker, "--queue", QUEUE, "--concurrency", str(a.slots),
                                               "--demo-handlers"], env=env, stdout=log, stderr=log,
                                              stdin=subprocess.DEVNULL))
            rtq_servers.wait_for(lambda: r.zcard("{rtq}:workers") == a.workers, 20, "the workers' heartbeats")
            out["idle_commands_per_s"], out["idle_by_command"] = window(r, a.idle_seconds)
            # Enough tasks to keep the queue at its limit past the window.
            n = int(a.rate * (a.seconds + 10)) + 100
            q = Queue(r, "rtq", QUEUE)
            r.sadd("{rtq}:queues", QUEUE)
            ids = ["t%07d" % i for i in range(n)]
            for k in range(0, n, 64):
                q.create([{"id": i, "name": "rtq.noop"} for i in ids[k:k + 64]])
            rtq_servers.wait_for(lambda: q.r.hget(q.t(ids[0]), "b") is not None, 20, "the first start")
            # The bucket starts full (burst = the rate rounded up): the
            # window opens 2 s later, when it has been spent.
            time.sleep(2)
            now = r.time()
            t_open = int(now[0]) * 1000 + int(now[1]) // 1000
            out["at_limit_commands_per_s"], out["at_limit_by_command"] = window(r, a.seconds)
            t_close = t_open + a.seconds * 1000
            pipe = r.pipeline(transaction=False)
            for i in ids:
                pipe.hget(q.t(i), "b")
            starts = sorted(int(b) for b in pipe.execute() if b is not None)
            first = starts[0]
            in_window = [b for b in starts if t_open <= b < t_close]
            out["burst_starts_first_s"] = len([b for b in starts if b < first + 1000])
            out["starts_in_window"] = len(in_window)
            rate = len(in_window) / a.seconds
            out["measured_rate_per_s"] = round(rate, 2)
            out["deviation_pct"] = round(100 * (rate - a.rate) / a.rate, 2)
            out["backlog_left"] = r.llen(q.k("q"))
        finally:
            for p in procs:
                stop(p)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
