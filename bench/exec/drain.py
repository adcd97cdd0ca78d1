#!/usr/bin/python3
"""drain.py - drain rate of no-op tasks through Python handler processes.

  /usr/bin/python3 bench/exec/drain.py BUILD_DIR [--tasks 5000] [--pool 4] [--runs 3] [--concurrency N]
                                            [--oneshot]

Starts a private redis-server (loopback, free port, no persistence) and
`rtq-worker --exec 'bench.noop=/usr/bin/python3 -m rtq.run noop_handlers'
--exec-pool POOL --concurrency N` (N defaults to POOL); warms the pool up with 2*POOL tasks,
then per run enqueues TASKS tasks (create_tasks, chunks of 1000) and waits
for all of them. The rate of a run is TASKS divided by the time from the
first create_tasks call to the last task's completed_at; the median of the
runs is printed. Uses the Python binding (sdk/python) over BUILD_DIR's
librtq.so. With --oneshot the worker runs `--exec-oneshot bench.noop=true`
instead: one process per task, the rate of spawning them.
"""
import argparse
import datetime
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=0, help="worker slots (default: the pool size)")
    ap.add_argument("--oneshot", action="store_true",
                    help="--exec-oneshot 'bench.noop=true': a /bin/true process per task instead of the pool")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["RTQ_LIBRARY"] = os.path.join(build, "client", "librtq.so")
    sys.path.insert(0, os.path.join(root, "sdk", "python"))
    import rtq

    work = tempfile.mkdtemp(prefix="rtq-exec-bench-")
    port = free_port()
    url = "redis://127.0.0.1:%d/0" % port
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(root, "sdk", "python") + ":" + here
        cmd = [os.path.join(build, "worker", "rtq-worker"), "--redis", url, "--concurrency", str(a.concurrency or a.pool),
               "--exec-pool", str(a.pool), "--log-level", "WARNING",
               "--exec", "bench.noop=/usr/bin/python3 -m rtq.run noop_handlers"]
        if a.oneshot:
            cmd[-2:] = ["--exec-oneshot", "bench.noop=true"]
        log = open(os.path.join(work, "worker.log"), "w")
        worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        c = rtq.Client(url)
        warm = c.create_tasks([("bench.noop", {}, {})] * (2 * a.pool))
        for tid in warm:
            assert c.wait_for_task(tid, timeout=30)["status"] == "completed"
        rates = []
        for _ in range(a.runs):
            t0 = time.time()
            ids = []
            for k in range(0, a.tasks, 1000):
                ids += c.create_tasks([("bench.noop", {}, {})] * min(1000, a.tasks - k))
            c.wait_for_task(ids[-1], timeout=120)
            end = 0.0
            for tid in ids:
                t = c.wait_for_task(tid, timeout=120)
                assert t["status"] == "completed", t
                end = max(end, datetime.datetime.fromisoformat(t["completed_at"].replace("Z", "+00:00")).timestamp())
            rates.append(a.tasks / (end - t0))
            print("run: %.0f tasks/s" % rates[-1], file=sys.stderr)
        how = ("one-shot `true` processes, %d slots" % (a.concurrency or a.pool) if a.oneshot
               else "%d Python handler processes, %d slots" % (a.pool, a.concurrency or a.pool))
        print("drain of %d no-op tasks through %s: median %.0f tasks/s (runs: %s)"
              % (a.tasks, how, statistics.median(rates), ", ".join("%.0f" % r for r in rates)))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    main()
