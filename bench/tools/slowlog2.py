#!/usr/bin/python3
"""slowlog2.py - which Redis calls of rtq's protocol 2 run longer than a
threshold? (bench/slowlog2.sh runs it.)

On a private redis-server with slowlog-log-slower-than US (default 500):

  1. an rtq-bench run under --protocol 2 (its default phases, or the
     RTQ_BENCH_ARGS given; no broker);
  2. a drain with the broker running: one rtq-broker and WORKERS
     rtq-worker processes (rtq.noop, 50 thread slots each) in namespace
     "sl", N tasks enqueued in chunks of 1,000 through the Python binding,
     then drained;
  3. a broker sweep over a history of N finished tasks whose task hashes
     have expired (the ids alone, in {sl:default}:done:completed: the worst
     case of the prune round, which pops every id), with
     --cleanup-interval 1 until the list is empty.

After each part it prints every script that has an entry: its calls over
the threshold, their median and their max (scripts are named by the SHA1
of the body the build embeds for common/lua2/<name>.lua, with the prelude
parts it lists before it), and every other command's count and max. Exits 0 whatever it finds.

With REDIS_NICE=N (e.g. -10; lowering it needs root) the redis-server
runs at that nice value, so that the other processes of the run, and of
a shared machine, preempt it less: what is left over the threshold is
then more the calls' own work.

usage: slowlog2.py BUILD_DIR [N [US [WORKERS [RTQ_BENCH_ARGS...]]]]
       (200000, 500, 4)
"""
import glob
import hashlib
import os
import signal
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "exec"))
sys.path.insert(0, os.path.join(root, "tests", "lua2"))
import benchenv  # noqa: E402
import lua2_body  # noqa: E402
from resp import Redis  # noqa: E402

NS = "sl"
CHUNK = 1000
DONE_KEY = "{%s:default}:done:completed" % NS

# ids of finished tasks, without their hashes: what a done list holds once
# the tasks' TTL ran out
FILL = r"""
local key, first, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local ids = {}
for i = first, first + n - 1 do ids[#ids + 1] = string.format('fill%08d', i) end
redis.call('LPUSH', key, unpack(ids))
return n
"""


def script_names():
    """SHA1 -> name for every script of common/lua2."""
    names = {}
    for f in glob.glob(os.path.join(root, "common", "lua2", "*.lua")):
        name = os.path.basename(f)[:-4]
        if name == "_prelude":
            continue
        names[hashlib.sha1(lua2_body.assemble(name)).hexdigest()] = "v2 " + name
    return names


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def report(r, title, names, us):
    entries = r("SLOWLOG", "GET", "-1") or []
    print("\n== %s: %d SLOWLOG entries of %d us or more ==" % (title, len(entries), us))
    groups = {}
    for e in entries:
        argv = e[3]
        cmd = text(argv[0]).lower()
        if cmd == "evalsha" and len(argv) > 1:
            label = "script " + names.get(text(argv[1]), text(argv[1])[:12])
        else:
            label = "command " + cmd
        groups.setdefault(label, []).append(e[2])
    for label, v in sorted(groups.items(), key=lambda kv: -max(kv[1])):
        v.sort()
        print("  %-28s %6d calls   median %6d us   max %6d us   over 1 ms: %d"
              % (label, len(v), v[len(v) // 2], v[-1], sum(1 for x in v if x > 1000)))
    r("SLOWLOG", "RESET")


def spawn(env, procs, argv, name):
    log = open(os.path.join(env.work, name + ".log"), "a")
    p = subprocess.Popen(argv, stdout=log, stderr=log)
    procs.append(p)
    return p


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    del procs[:]


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise SystemExit("slowlog2: timed out waiting for " + what)
        time.sleep(0.1)


def broker(build, env, procs, extra=()):
    return spawn(env, procs, [os.path.join(build, "broker", "rtq-broker"), "--redis", env.url,
                              "--namespace", NS, "--protocol", "2", "--log-level", "INFO"]
                 + list(extra), "broker")


def drain(build, env, procs, r, n, workers):
    os.environ["RTQ_PROTOCOL"] = "2"
    rtq = benchenv.binding(build)
    broker(build, env, procs)
    for i in range(workers):
        spawn(env, procs, [os.path.join(build, "worker", "rtq-worker"), "--redis", env.url,
                           "--namespace", NS, "--protocol", "2", "--concurrency", "50",
                           "--isolation", "thread", "--demo-handlers",
                           "--log-level", "WARNING"], "worker%d" % i)
    client = rtq.Client(env.url, namespace=NS)
    t0 = time.time()
    done = 0
    while done < n:
        m = min(CHUNK, n - done)
        out = client.create_tasks([("rtq.noop", None, {})] * m)
        if any(not isinstance(x, str) for x in out):
            raise SystemExit("slowlog2: enqueue failed")
        done += m

    def completed():
        v = r("HGET", "{%s:default}:stats" % NS, "completed")
        return int(v) if v else 0
    wait_for(lambda: completed() >= n, 3600, "the drain")
    secs = time.time() - t0
    client.close()
    stop_all(procs)
    return secs


def main():
    build = benchenv.build_dir(__doc__)
    if build is None:
        return 2
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    us = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    bench_args = sys.argv[5:]
    names = script_names()
    env = benchenv.Env()
    procs = []
    try:
        nice = os.environ.get("REDIS_NICE")
        if nice:
            os.setpriority(os.PRIO_PROCESS, env.redis.pid, int(nice))
        r = Redis(env.port)
        r("CONFIG", "SET", "slowlog-max-len", "100000")
        r("CONFIG", "SET", "slowlog-log-slower-than", str(us))
        print("redis on port %d (nice %s), threshold %d us, load %s"
              % (env.port, os.getpriority(os.PRIO_PROCESS, env.redis.pid), us, benchenv.load()))

        cmd = [os.path.join(build, "bench", "rtq-bench"), "--redis", env.url, "--protocol", "2",
               "--quiet"] + bench_args
        print("$ " + " ".join(cmd))
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
        report(r, "rtq-bench --protocol 2 %s(no broker)" % "".join(a + " " for a in bench_args), names, us)

        secs = drain(build, env, procs, r, n, workers)
        print("\nenqueued and drained %d tasks with the broker and %d workers in %.1f s, load %s"
              % (n, workers, secs, benchenv.load()))
        report(r, "a drain of %d tasks, broker running" % n, names, us)

        r("DEL", DONE_KEY)
        t0 = time.time()
        for first in range(0, n, 2000):
            r("EVAL", FILL, "1", DONE_KEY, first, min(2000, n - first))
        print("\nfilled %s with %d ids of expired tasks in %.1f s"
              % (DONE_KEY, r("LLEN", DONE_KEY), time.time() - t0))
        r("SLOWLOG", "RESET")
        t0 = time.time()
        broker(build, env, procs, ["--cleanup-interval", "1", "--sweep-interval", "100ms"])
        wait_for(lambda: r("LLEN", DONE_KEY) == 0, 1800, "the prune rounds")
        print("broker pruned %d ids in %.1f s, load %s" % (n, time.time() - t0, benchenv.load()))
        stop_all(procs)
        report(r, "broker sweeps: prune rounds over %d expired ids" % n, names, us)
    finally:
        stop_all(procs)
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
