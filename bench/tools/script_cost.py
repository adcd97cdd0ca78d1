#!/usr/bin/python3
"""script_cost.py - Redis CPU of each protocol 2 script of the drain's hot
path, run in isolation on a private redis-server with the batches a drain
makes (docs/PERFORMANCE.md section 9.7).

    /usr/bin/python3 bench/tools/script_cost.py [--lua DIR]... [--n N] [--runs R]

Phases, each timed by INFO commandstats after CONFIG RESETSTAT, and by
the CPU time of Redis's main thread (INFO cpu), which includes reading
the calls and writing the replies but not the time Redis waited for a
core: on a shared machine the steadier figure:
  create1   awaited create: one task per call (rtq-bench's awaited phase)
  create64  bulk create: 64 tasks per call, their ids sent as fresh
            (not looked up) where the tree's create takes that, as
            rtq_create_tasks sends the ids it made
  take      take of 25 moves per call (the drain's mean, section 9.2),
            each call under its own worker id
  finish    finish of those 25 tasks per worker id in calls of 14 and 11,
            completed, 3 histogram pairs
  floor-*   the same commands as create64, take and finish, issued by a
            Lua script that checks nothing (bench/tools/floor2.lua): what
            the commands alone cost, the floor under the scripts
The tasks' args are rtq-bench's (76 bytes of msgpack: over the 64-byte
inline limit, so they go to the task hash in two chunks, or to the side
hash with scripts older than the chunks); with --small-args, 6 bytes,
which stay in the task hash. Per phase it prints the
Redis CPU per task, the EVALSHA time per task, the time of the commands
the scripts ran, the Lua around them (the difference) and the commands
per task; with --runs R, the median of R runs of each figure, and the
least Redis CPU of the R runs (the run the machine disturbed least).
--lua DIR runs the scripts of another tree (e.g. an older commit's
common/lua2 from `git archive`), with the call builders of that tree's
tests/lua2/v2.py when it has one (so trees whose scripts take other ARGV
compare); given more than once, the trees are run
in turn within each run, on one server, and each figure is also given
as the ratio to the first tree's.
--ab BLOCKS compares two trees more finely on a busy machine: each phase
in BLOCKS pairs of short blocks (--per tasks each), the two trees in
turn, each block's calls pipelined (see ab()).
"""

import argparse
import importlib.util
import inspect
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lua2"))

import redis  # noqa: E402
import rtq_servers  # noqa: E402
import v2  # noqa: E402

_v2_of = {}


def v2_of(lua):
    """The call builders for the scripts of tree lua: the v2.py of the
    tree's own tests/lua2 when there is one (a tree from `git archive` of
    another commit, whose scripts may take other ARGV), else this one's."""
    path = os.path.join(lua, "..", "..", "tests", "lua2", "v2.py")
    key = os.path.realpath(path)
    if key not in _v2_of:
        if not os.path.exists(path):
            _v2_of[key] = v2
        else:
            spec = importlib.util.spec_from_file_location("v2_%d" % len(_v2_of), path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            _v2_of[key] = mod
    mod = _v2_of[key]
    mod.LUA = lua
    return mod

ARGS = b"\x82\xa1i\xcd\x01\x00\xa4data\xd9\x40" + b"x" * 64  # {"i": 256, "data": 64 x's}
SMALL = b"\x81\xa1i\xcd\x01\x00"  # {"i": 256}: --small-args
WID = "w-bench-1"


def bulk(q, tasks):
    """create64's call: fresh ids when the tree's create takes them."""
    if "fresh" in inspect.signature(q.create).parameters:
        return q.create(tasks, fresh=True)
    return q.create(tasks)


def stats(r):
    out = {}
    for k, v in r.info("commandstats").items():
        out[k[len("cmdstat_"):]] = (v["calls"], v["usec"])
    return out


def cpu(r):
    """CPU time of Redis's main thread, s: unlike commandstats' wall time,
    it does not count the time the server waited for a core."""
    c = r.info("cpu")
    return c["used_cpu_user_main_thread"] + c["used_cpu_sys_main_thread"]


def measure(r, run, tasks):
    r.config_resetstat()
    c0 = cpu(r)
    run()
    c1 = cpu(r)
    s = stats(r)
    ev = s.get("evalsha", (0, 0))
    cmds = {k: v for k, v in s.items() if k not in ("evalsha", "eval", "config", "info", "script")}
    cmd_us = sum(v[1] for v in cmds.values())
    return {
        "cpu_us": (c1 - c0) * 1e6 / tasks,
        "evalsha_us": ev[1] / tasks,
        "cmds_us": cmd_us / tasks,
        "lua_us": (ev[1] - cmd_us) / tasks,
        "cmds_per_task": sum(v[0] for v in cmds.values()) / tasks,
        "calls": ev[0],
        "detail": {k: round(v[0] / tasks, 2) for k, v in sorted(cmds.items())},
    }


def one_run(r, lua, n, n1, args=ARGS):
    r.flushall()
    q = v2_of(lua).Queue(r, "bench", "default")
    q.hist, q.cap = "1", 100000
    floor = r.script_load(open(os.path.join(HERE, "floor2.lua"), "rb").read())
    res = {}

    def tasks(prefix, count):
        return [{"id": "%s%07d" % (prefix, i), "name": "rtq.noop", "args": args} for i in range(count)]

    one = tasks("a", n1)
    res["create1"] = measure(r, lambda: [q.create([t]) for t in one], n1)
    r.flushall()

    tasks64 = tasks("b", n)
    res["create64"] = measure(r, lambda: [bulk(q, tasks64[i:i + 64]) for i in range(0, n, 64)], n)

    # One worker id per take call, so that each processing list holds the
    # 25 ids of one take (a drain's worker holds its in-flight ones), and
    # finish's LREM scans what it would in a drain.
    taken = []

    def take():
        w = 0
        while True:
            wid = "w-bench-%d" % w
            got = q.take(wid, n=25)
            ok = [e for e in got if e[0] == b"ok"]
            taken.append((wid, [(e[1].decode(), int(e[3])) for e in ok]))
            w += 1
            if len(got) < 25:
                return
    res["take"] = measure(r, take, n)
    if sum(len(t[1]) for t in taken) != n:
        sys.exit("script_cost: took too few tasks")

    def finish():
        for wid, ts in taken:
            for i in range(0, len(ts), 14):
                out = [(id, a, "completed", b"", {}) for id, a in ts[i:i + 14]]
                rep = q.finish(wid, out, hist_pairs=(("le_0.005", len(out)), ("count", len(out)), ("sum_ms", 5)))
                if any(e[0] != b"ok" for e in rep):
                    sys.exit("script_cost: finish refused: %r" % rep)
    res["finish"] = measure(r, finish, n)

    # The floor: the same commands from a script that checks nothing.
    r.flushall()
    k = q.k
    fk = [k("q"), k("delayed"), k("stats"), k("p:" + WID), k("done:completed"), k("rt"), k("ev")]

    def fl(mode, *argv):
        return r.evalsha(floor, len(fk), *fk, mode, k("t:"), k("x:"), *argv)
    ids = ["f%07d" % i for i in range(n)]
    res["floor-create64"] = measure(
        r, lambda: [fl("create", *[x for id in ids[i:i + 64] for x in (id, args)]) for i in range(0, n, 64)], n)
    def floor_drain(mode):
        for w in range(0, n, 25):
            fk[3] = k("p:f%d" % w)
            if mode == "take":
                fl("take", "25")
            else:
                fl("finish", *ids[w:w + 14])
                fl("finish", *ids[w + 14:w + 25])
    res["floor-take"] = measure(r, lambda: floor_drain("take"), n)
    res["floor-finish"] = measure(r, lambda: floor_drain("finish"), n)
    return res


def ab(r, dirs, blocks, per, args):
    """Two trees alternated in short blocks (--ab): per phase, BLOCKS pairs
    of PER tasks each, the order swapped every pair, the calls of a block
    pipelined (one write, one read: Redis's CPU is then the scripts' work
    more than the reading of requests). Per phase: each tree's median µs
    of Redis CPU per task, and the median of the pairs' ratios, which a
    load that drifts over seconds does not move."""
    qs = []
    for d in dirs:
        m = v2_of(d)
        s = m.Scripts(r)
        for name, body in s.body.items():
            s.sha[name] = r.script_load(body)
        qs.append(m.Queue(r, "bench", "default", s))
    for q in qs:
        q.hist, q.cap = "1", 1000000
    us = {ph: ([], []) for ph in ("create1", "create64", "take", "finish")}

    def timed(i, ph, calls, tasks):
        p = r.pipeline(transaction=False)
        qs[i].s.r = p
        for c in calls:
            c(qs[i])
        c0 = cpu(r)
        out = p.execute()
        c1 = cpu(r)
        qs[i].s.r = r
        us[ph][i].append((c1 - c0) * 1e6 / tasks)
        return out

    for b in range(blocks):
        order = (0, 1) if b % 2 == 0 else (1, 0)
        r.flushall()
        for i in order:
            one = [{"id": "c%d-%d-%d" % (b, i, j), "name": "rtq.noop", "args": args} for j in range(per)]
            timed(i, "create1", [lambda q, t=t: q.create([t]) for t in one], per)
        r.flushall()
        for i in order:
            many = [{"id": "b%d-%d-%d" % (b, i, j), "name": "rtq.noop", "args": args}
                    for j in range(per)]
            timed(i, "create64", [lambda q, k=k: bulk(q, many[k:k + 64]) for k in range(0, per, 64)],
                  per)
        # Take: each tree takes PER of the tasks just made, 25 per call,
        # each call under its own worker id; finish: each tree finishes
        # what it took, in calls of 14 and 11.
        taken = {}
        for i in order:
            wids = ["w%d-%d-%d" % (b, i, k) for k in range(per // 25)]
            out = timed(i, "take", [lambda q, w=w: q.take(w, n=25) for w in wids], per)
            taken[i] = [(w, [(e[1].decode(), int(e[3])) for e in got if e[0] == b"ok"]) for w, got in zip(wids, out)]
            if sum(len(t) for _, t in taken[i]) != per:
                sys.exit("script_cost: took too few tasks")
        for i in order:
            calls = []
            for w, ts in taken[i]:
                for k in range(0, len(ts), 14):
                    out = [(id, a, "completed", b"", {}) for id, a in ts[k:k + 14]]
                    calls.append(lambda q, w=w, out=out: q.finish(
                        w, out, hist_pairs=(("le_0.005", len(out)), ("count", len(out)), ("sum_ms", 5))))
            for rep in timed(i, "finish", calls, per):
                if any(e[0] != b"ok" for e in rep):
                    sys.exit("script_cost: finish refused: %r" % rep)
    print("%-10s %14s %14s %8s   (µs of Redis CPU per task, medians of %d blocks of %d tasks)" % (
        "phase", "tree 1", "tree 2", "2 / 1", blocks, per))
    for ph, (a, b) in us.items():
        print("%-10s %11.2f µs %11.2f µs %8.3f" % (ph, statistics.median(a), statistics.median(b),
                                                    statistics.median(y / x for x, y in zip(a, b))))
    a = [x + y for x, y in zip(us["take"][0], us["finish"][0])]
    b = [x + y for x, y in zip(us["take"][1], us["finish"][1])]
    print("%-10s %11.2f µs %11.2f µs %8.3f" % ("take+fin", statistics.median(a), statistics.median(b),
                                                statistics.median(y / x for x, y in zip(a, b))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lua", action="append")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--n1", type=int, default=5000, help="tasks of the awaited create phase")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--detail", action="store_true", help="commands per task of each phase")
    ap.add_argument("--small-args", action="store_true",
                    help="args of 6 bytes, which stay in the task hash, instead of rtq-bench's 76")
    ap.add_argument("--ab", type=int, metavar="BLOCKS",
                    help="two --lua trees alternated in BLOCKS pairs of short pipelined blocks")
    ap.add_argument("--per", type=int, default=1000, help="tasks per --ab block (a multiple of 25)")
    o = ap.parse_args()
    dirs = o.lua or [os.path.join(ROOT, "common", "lua2")]
    if o.ab:
        if len(dirs) != 2 or o.per % 25:
            sys.exit("script_cost: --ab needs two --lua trees and --per a multiple of 25")
        with rtq_servers.redis_server("rtq-cost-") as s:
            ab(redis.Redis(port=s["port"]), dirs, o.ab, o.per, SMALL if o.small_args else ARGS)
        return
    runs = {d: [] for d in dirs}
    with rtq_servers.redis_server("rtq-cost-") as s:
        r = redis.Redis(port=s["port"])
        for _ in range(o.runs):
            for d in dirs:
                runs[d].append(one_run(r, d, o.n, o.n1, SMALL if o.small_args else ARGS))
    first = None
    for d in dirs:
        print("== %s (median of %d)" % (d, o.runs))
        print("%-15s %10s %10s %10s %10s %10s %10s %8s" % ("phase (per task)", "Redis CPU", "CPU, min", "EVALSHA",
                                                           "commands", "Lua", "cmds/task", "ratio"))
        meds = {}
        for ph in runs[d][0]:
            med = {f: statistics.median(x[ph][f] for x in runs[d])
                   for f in ("cpu_us", "evalsha_us", "cmds_us", "lua_us", "cmds_per_task")}
            med["cpu_min_us"] = min(x[ph]["cpu_us"] for x in runs[d])
            meds[ph] = med
            ratio = med["cpu_us"] / first[ph]["cpu_us"] if first else 1.0
            print("%-15s %7.2f µs %7.2f µs %7.2f µs %7.2f µs %7.2f µs %10.2f %8.2f" % (
                ph, med["cpu_us"], med["cpu_min_us"], med["evalsha_us"], med["cmds_us"], med["lua_us"],
                med["cmds_per_task"], ratio))
            if o.detail:
                print("    ", runs[d][0][ph]["detail"])
        for f, what in (("cpu_us", "Redis CPU"), ("cpu_min_us", "Redis CPU, least of the runs"),
                        ("evalsha_us", "EVALSHA")):
            drain = meds["take"][f] + meds["finish"][f]
            floor = meds["floor-take"][f] + meds["floor-finish"][f]
            print("take + finish, %s: %.2f µs per task; their floor: %.2f µs" % (what, drain, floor))
        if first is None:
            first = meds


if __name__ == "__main__":
    main()
