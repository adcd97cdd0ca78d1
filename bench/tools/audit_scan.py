#!/usr/bin/python3
"""audit_scan.py - how long the broker's audit of processing lists
(broker/audit2.c) takes to walk a large keyspace, and what each of its
SCAN calls costs Redis. (bench/audit_scan.sh runs it.)

On a private redis-server (no persistence), namespace "rtq":

  1. N task hashes {rtq:q<i mod 100>}:t:<i> (4 fields each), and one
     orphan: a running task whose worker has no entry in {rtq}:workers
     and no record, its id in {rtq:q7}:p:w-orphan;
  2. slowlog-log-slower-than 0 (every call is logged), SLOWLOG RESET;
  3. rtq-broker --protocol 2 --log-level DEBUG --sweep-interval SWEEP
     --heartbeat-ttl TTL, until the orphan's task is pending again and the
     audit has finished a first walk over every key;
  4. prints: the sweeps until the orphan was first seen and until it was
     recovered, the sweeps and seconds of one full walk, the number of SCAN
     calls, their median, p99 and max duration (Redis's own, from
     SLOWLOG) and how many took over 1 ms;
  5. the same walk by hand (the broker's SCAN, back to back) with COUNT
     250, as the broker sends it, and with COUNT 1000, 500 and 100, with
     the same figures for each.

The broker is stopped with SIGTERM (by its pid) and the server with it.
With REDIS_NICE=N (e.g. -10; lowering it needs root) the redis-server
runs at that nice value, so that other processes of a shared machine
preempt it less, and what SLOWLOG shows is more the calls' own work.

usage: audit_scan.py BUILD_DIR [N [SWEEP [TTL]]]   (1000000, 1s, 5s)
"""
import os
import re
import signal
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "exec"))
import benchenv  # noqa: E402
from resp import Redis  # noqa: E402

ORPHAN_TASK = "orphan-task-1"
ORPHAN_LIST = "{rtq:q7}:p:w-orphan"
BATCH = 10000


def load(r, n):
    """N task hashes, BATCH per pipelined round trip."""
    t0 = time.time()
    for first in range(0, n, BATCH):
        parts = []
        for i in range(first, min(n, first + BATCH)):
            key = b"{rtq:q%d}:t:%d" % (i % 100, i)
            args = [b"HSET", key, b"s", b"completed", b"n", b"rtq.noop", b"a", b"1", b"q", b"q%d" % (i % 100)]
            parts.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        r.sock.sendall(b"".join(parts))
        for _ in range(first, min(n, first + BATCH)):
            r._read()
    return time.time() - t0


def sweeps(r):
    v = r("HGET", "{rtq}:broker", "sweeps")
    return int(v) if v else 0


def log_has(path, needle):
    with open(path, errors="replace") as f:
        return needle in f.read()


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise SystemExit("audit_scan: timed out waiting for " + what)
        time.sleep(0.02)


def figures(d):
    d = sorted(d)
    if not d:
        return None
    return len(d), d[len(d) // 2], benchenv.quantile(d, 0.99), d[-1], sum(1 for x in d if x > 1000)


def scan_stats(r, others=False, since=None):
    """The SCAN entries of the slow log: (calls, median, p99, max, over 1
    ms); with others, also those of every other command. With since (unix
    s), prints when each SCAN over 1 ms ran, in seconds after it."""
    entries = r("SLOWLOG", "GET", "1000000")
    scans = figures([e[2] for e in entries if e[3] and e[3][0].upper() == b"SCAN"])
    if since is not None:
        slow = sorted((e[1] - since, e[2]) for e in entries if e[3] and e[3][0].upper() == b"SCAN" and e[2] > 1000)
        if slow:
            print("SCAN calls over 1 ms, (s after the broker started, us): %s" % slow)
    if not others:
        return scans
    return scans, figures([e[2] for e in entries if e[3] and e[3][0].upper() not in (b"SCAN", b"SLOWLOG")])


def report(label, st):
    print("%s: %d calls, Redis time median %d us, p99 %d us, max %d us, over 1 ms: %d" % ((label,) + st))


def walk_by_hand(r, count):
    r("SLOWLOG", "RESET")
    cursor = b"0"
    while True:
        cursor = r("SCAN", cursor, "MATCH", "{rtq:*}:p:*", "COUNT", str(count), "TYPE", "list")[0]
        if cursor == b"0":
            break
    report("  COUNT %d" % count, scan_stats(r))


def main():
    build = benchenv.build_dir(__doc__)
    if build is None:
        return 2
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    sweep = sys.argv[3] if len(sys.argv) > 3 else "1s"
    ttl = sys.argv[4] if len(sys.argv) > 4 else "5s"
    env = benchenv.Env()
    broker = None
    try:
        nice = os.environ.get("REDIS_NICE")
        if nice:
            os.setpriority(os.PRIO_PROCESS, env.redis.pid, int(nice))
        r = Redis(env.port)
        secs = load(r, n)
        r("SET", "{rtq}:version", "2")
        r("HSET", "{rtq:q7}:t:" + ORPHAN_TASK, "s", "running", "w", "w-orphan", "a", "1", "n", "rtq.noop")
        r("RPUSH", ORPHAN_LIST, ORPHAN_TASK)
        r("SADD", "{rtq}:queues", "q7")
        print("redis on port %d (nice %d): %d keys (%d task hashes loaded in %.1f s), load %s"
              % (env.port, os.getpriority(os.PRIO_PROCESS, env.redis.pid), r("DBSIZE"), n, secs, benchenv.load()))
        r("CONFIG", "SET", "slowlog-max-len", "1000000")
        r("CONFIG", "SET", "slowlog-log-slower-than", "0")
        r("SLOWLOG", "RESET")
        log = os.path.join(env.work, "broker.log")
        cmd = [os.path.join(build, "broker", "rtq-broker"), "--redis", env.url, "--protocol", "2",
               "--log-level", "DEBUG", "--sweep-interval", sweep, "--heartbeat-ttl", ttl]
        print("$ " + " ".join(cmd))
        with open(log, "a") as out:
            broker = subprocess.Popen(cmd, stdout=out, stderr=out)
        t0 = time.time()
        marks = {}
        checks = {
            "seen": lambda: log_has(log, "looking again after the heartbeat TTL"),
            "recovered": lambda: r("HGET", "{rtq:q7}:t:" + ORPHAN_TASK, "s") == b"pending",
            "walked": lambda: log_has(log, "walked every processing list"),
        }

        def all_marked():
            for name, check in checks.items():
                if name not in marks and check():
                    marks[name] = (time.time() - t0, sweeps(r))
            return len(marks) == len(checks)
        wait_for(all_marked, 3600, "the orphan's recovery and a full walk")
        (seen_s, seen_sweeps), (rec_s, rec_sweeps) = marks["seen"], marks["recovered"]
        walk_s, walk_sweeps = marks["walked"]
        broker.send_signal(signal.SIGTERM)
        broker.wait(30)
        broker = None
        scans, rest = scan_stats(r, others=True, since=int(t0))
        lists = re.findall(r"walks=1 lists=(\d+)", open(log).read())
        print("orphan first seen after %.1f s (%d sweeps), recovered after %.1f s (%d sweeps; heartbeat ttl %s)"
              % (seen_s, seen_sweeps, rec_s, rec_sweeps, ttl))
        print("first full walk over every key: %.1f s, %d sweeps of %s (%s processing lists seen)"
              % (walk_s, walk_sweeps, sweep, lists[0] if lists else "?"))
        if scans:
            report("the broker's SCAN calls", scans)
        if rest:
            report("every other call meanwhile (the broker's, this tool's)", rest)
        print("load %s" % benchenv.load())
        print("one walk by hand, SCAN ... MATCH {rtq:*}:p:* COUNT c TYPE list back to back:")
        for count in (250, 1000, 500, 100):
            walk_by_hand(r, count)
        print("load %s" % benchenv.load())
    finally:
        if broker is not None:
            broker.send_signal(signal.SIGTERM)
            broker.wait(30)
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
