#!/usr/bin/python3
"""history_cap.py - does the history cap hold through a large drain, and does
Redis memory come back once it ends? (bench/history_cap.sh runs it.)

On a private redis-server (no persistence), with one rtq-broker
(--max-task-history CAP) and WORKERS rtq-worker processes (rtq.noop, 50
thread slots each):

  1. calibration: CAP tasks are enqueued and drained. Memory then is what
     a namespace holding a full history takes: CAP x bytes per finished
     task + the empty namespace (measured before, with the processes up).
  2. the drain: the workers stop, N tasks are enqueued, the workers start
     again; every POLL_MS the history size (ZCARD), used_memory and the
     completed counter are read, until all N have completed and then for
     AFTER_S seconds more.

Prints a line a second, then: the largest history seen (target: at most
2 x CAP), used_memory at the drain's end and AFTER_S later, and how that
compares with the calibrated full-history memory (target: within 20%).
Exits 1 when a target is missed.

The history is the queue's done list {hc:default}:done:completed (finish
caps it itself; the workers get --max-task-history CAP too), and the
counter is {hc:default}:stats completed.

usage: history_cap.py BUILD_DIR [N [WORKERS [CAP]]]   (1000000, 4, 10000)
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
from resp import Redis  # noqa: E402

POLL_MS = 50
AFTER_S = 10
CHUNK = 20000
NS = "hc"
# The keys this tool reads (docs/PROTOCOL.md section 2).
WORKERS_KEY = "{%s}:workers" % NS
HISTORY_KEY = "{%s:default}:done:completed" % NS
STATS_KEY, COMPLETED_FIELD = "{%s:default}:stats" % NS, "completed"
MEMORY_KEYS = (HISTORY_KEY, "{%s:default}:q" % NS)


def main():
    build = benchenv.build_dir(__doc__)
    if build is None:
        return 2
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    cap = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
    rtq = benchenv.binding(build)
    env = benchenv.Env()
    procs = []
    try:
        return run(build, rtq, env, procs, n, workers, cap)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        env.stop()


def spawn(env, procs, argv, name):
    log = open(os.path.join(env.work, name + ".log"), "a")
    p = subprocess.Popen(argv, stdout=log, stderr=log)
    procs.append(p)
    return p


def start_workers(build, env, procs, count, cap):
    return [spawn(env, procs, [os.path.join(build, "worker", "rtq-worker"), "--redis", env.url,
                               "--namespace", NS, "--concurrency", "50", "--isolation", "thread",
                               "--max-task-history", str(cap),
                               "--demo-handlers", "--log-level", "WARNING"], "worker%d" % i)
            for i in range(count)]


def stop(ps, procs):
    for p in ps:
        p.send_signal(signal.SIGTERM)
    for p in ps:
        p.wait(30)
        procs.remove(p)


def completed(r):
    v = r("HGET", STATS_KEY, COMPLETED_FIELD)
    return int(v) if v else 0


def history(r):
    return r("LLEN", HISTORY_KEY)


def used(r):
    return int(r.info("memory")["used_memory"])


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise SystemExit("history_cap: timed out waiting for " + what)
        time.sleep(0.05)


def enqueue(client, count):
    t0 = time.time()
    done = 0
    while done < count:
        m = min(CHUNK, count - done)
        out = client.create_tasks([("rtq.noop", None, {})] * m)
        bad = [x for x in out if not isinstance(x, str)]
        if bad:
            raise SystemExit("history_cap: enqueue failed: %r" % bad[0])
        done += m
    return time.time() - t0


def run(build, rtq, env, procs, n, workers, cap):
    r = Redis(env.port)
    r("CONFIG", "SET", "maxmemory-policy", "noeviction")
    spawn(env, procs, [os.path.join(build, "broker", "rtq-broker"), "--redis", env.url,
                       "--namespace", NS, "--max-task-history", str(cap), "--log-level", "INFO"],
          "broker")
    ws = start_workers(build, env, procs, workers, cap)
    wait_for(lambda: r("ZCARD", WORKERS_KEY) >= workers, 30, "the workers")
    time.sleep(1)
    mem_empty = used(r)
    client = rtq.Client(env.url, namespace=NS)

    # 1. calibration: a full history
    enqueue(client, cap)
    wait_for(lambda: completed(r) >= cap, 300, "the calibration drain")
    time.sleep(2)
    mem_full = used(r)
    per_task = (mem_full - mem_empty) / float(cap)
    print("empty namespace %d B; full history of %d: %d B (%.0f B per finished task)"
          % (mem_empty, cap, mem_full, per_task))

    # 2. the drain
    stop(ws, procs)
    secs = enqueue(client, n)
    print("enqueued %d tasks in %.1f s (%.0f/s); used_memory %d B" % (n, secs, n / secs, used(r)))
    start = time.time()
    ws = start_workers(build, env, procs, workers, cap)
    target = cap + n
    hmax, mem_peak, t_end, mem_end, last_print = 0, 0, None, None, 0
    series = []
    while True:
        now = time.time() - start
        h, m, c = history(r), used(r), completed(r)
        series.append((now, h, m, c))
        hmax, mem_peak = max(hmax, h), max(mem_peak, m)
        if t_end is None and c >= target:
            t_end, mem_end = now, m
            print("drain done: %d tasks in %.1f s (%.0f/s); history %d; used_memory %d B"
                  % (n, now, n / now, h, m))
        if now - last_print >= 1:
            last_print = now
            print("t=%6.1fs completed=%8d history=%7d used_memory=%11d" % (now, c - cap, h, m))
        if t_end is not None and now - t_end >= AFTER_S:
            break
        if now > 3600:
            raise SystemExit("history_cap: the drain took over an hour")
        time.sleep(POLL_MS / 1000.0)
    mem_after = series[-1][2]
    h_after = series[-1][1]
    back = next((t - t_end for (t, h, m, c) in series if t >= t_end and m <= 1.2 * mem_full), None)
    capped = next((t - t_end for (t, h, m, c) in series if t >= t_end and h <= cap), None)
    info = r.info("memory")
    print()
    print("history max during the drain: %d (cap %d; target <= %d): %s"
          % (hmax, cap, 2 * cap, "met" if hmax <= 2 * cap else "MISSED"))
    print("used_memory peak %d B; at the drain's end %d B; %d s later %d B (history %d)"
          % (mem_peak, mem_end, AFTER_S, mem_after, h_after))
    print("full-history memory (cap x %.0f B + empty %d B) = %d B; %d s after the end: %.2fx: %s"
          % (per_task, mem_empty, mem_full, AFTER_S, mem_after / float(mem_full),
             "met" if mem_after <= 1.2 * mem_full else "MISSED"))
    print("back within 20%% after %s s; history back at the cap after %s s"
          % ("%.1f" % back if back is not None else "-", "%.1f" % capped if capped is not None else "-"))
    print("used_memory_rss %s, mem_fragmentation_ratio %s" % (info["used_memory_rss"],
                                                           info["mem_fragmentation_ratio"]))
    for key in MEMORY_KEYS:
        print("MEMORY USAGE %s = %s B" % (key, r("MEMORY", "USAGE", key, "SAMPLES", "0")))
    client.close()
    return 0 if hmax <= 2 * cap and mem_after <= 1.2 * mem_full else 1


if __name__ == "__main__":
    sys.exit(main())
