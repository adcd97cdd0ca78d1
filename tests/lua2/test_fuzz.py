"""Fuzz of every v2 script: thousands of calls built from a valid call
with one or two parts made hostile (wrong counts, non-numbers, huge
numbers, NaN, names with quotes, backslashes, newlines and control bytes,
keys of another hash tag). It asserts that:
  1. a call that fails wrote nothing: DEBUG DIGEST (every key, value and
     expiry time) is the same before and after;
  2. every message any call published parses as JSON;
  3. no call ran more than a bounded number of Redis commands (INFO
     commandstats), and SLOWLOG (threshold 1 ms) shows every script call
     that took longer in wall time; a busy machine can stretch one, so
     that figure is printed, and the bound on work is what is asserted.
The seed is fixed, so a failure reproduces; RTQ_FUZZ_SEED and
RTQ_FUZZ_CALLS change it."""

import json
import os
import random

import pytest
import redis

from test_steps import Sub, W
from v2 import Queue

HOSTILE = [b"", b"abc", b"-1", b"1e308", b"nan", b"inf", b"-inf", b"0x10", b"9" * 20, b"4294967295",
           b" 1", b"1.5", b'"', b"\\", b"a\nb", b"\x00", b"\x1b[2J", b"\xff\xfe", b"x" * 200,
           b'{"s":"completed"}', b"completed", b"running", b"0", b"1", b"65", b"100000000"]
CALLS = int(os.environ.get("RTQ_FUZZ_CALLS", "3000"))
SEED = int(os.environ.get("RTQ_FUZZ_SEED", "7"))


MAX_COMMANDS = 64 * 12  # the largest batch (64 tasks) times the most commands per task


PERSIST_ALL = "for _, k in ipairs(redis.call('KEYS', '*')) do redis.call('PERSIST', k) end"


def commands(r):
    """Commands Redis has run, inner script calls included."""
    return sum(v["calls"] for v in r.info("commandstats").values())


def valid_calls(q, r, rnd):
    """(script, keys, argv) of calls that would be valid now."""
    ids = [i.decode() for i in r.lrange(q.k("p:" + W), 0, 5)]
    running = [(i, (r.hget(q.t(i), "a") or b"1").decode()) for i in ids]
    some = running[0] if running else ("T1", "1")
    out = []
    tk = [q.k("q"), q.k("delayed"), q.k("stats")]
    out.append(("create", tk, [q.ev, q.k("t:"), q.k("x:"), "10", "0"] +
                ["N%d" % rnd.randrange(10 ** 6), "job", b"\x80", "0", "1", "0", "0", "0", "0", ""]))
    big = []
    for _ in range(64):
        big += ["B%d" % rnd.randrange(10 ** 12), "job", b"\x80"]
    out.append(("create", tk, [q.ev, q.k("t:"), q.k("x:"), "3", "1"] + big))
    big = []
    for _ in range(64):
        big += ["O%d" % rnd.randrange(10 ** 6), "job", b"\x80", "0", "0", "5", "0", "0", "0", ""]
    out.append(("create", tk, [q.ev, q.k("t:"), q.k("x:"), "10", "0"] + big))
    out.append(("take", [q.k("q"), q.k("p:" + W)] + q.gate(), [W, "300000", q.ev, q.k("t:"), q.k("x:"),
                                                   rnd.choice(["2", "64"]), "65536"]))
    out.append(("claim", [q.k("q"), q.k("p:" + W)] + q.gate(), [W, "300000", q.ev, q.k("t:"), q.k("x:"), some[0]]))
    out.append(("finish", q.finish_keys(W), [W, "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"),
                                             "1", "le_1", "1", some[0], some[1], "failed", b"\xc0", "2",
                                             "ec", "E", "em", "m"]))
    out.append(("progress", [q.t(some[0])], [some[0], W, some[1], "50", "half", q.ev, q.k("x:")]))
    out.append(("wait", [q.t(some[0])], []))
    out.append(("cancel", [q.t("T3"), q.k("delayed"), q.k("stats"), q.done("cancelled")],
                ["T3", "86400", "1", "100", q.ev, q.k("w:"), "{rtq}:cancel", q.k("t:"), q.k("x:")]))
    out.append(("retry", [q.t("T4"), q.k("q"), q.done("failed")], ["T4", "failed", q.ev, q.k("x:")]))
    out.append(("requeue", [q.k("q"), q.k("p:" + W), q.k("slots")], [some[0], W, some[1], q.ev, q.k("t:")]))
    out.append(("handback", [q.k("p:" + W), q.k("delayed"), q.k("slots")], [some[0], W, some[1], "10", "3", q.ev, q.k("t:")]))
    out.append(("deadletter", [q.k("dead"), q.k("p:" + W), q.k("stats"), q.done("failed"), q.k("slots")],
                [some[0], "BAD", "reason", W, "default", "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"),
                 q.k("w:")]))
    out.append(("recover", [q.k("p:w-dead"), q.k("q"), q.k("dead"), q.k("stats"), q.k("delayed"),
                            q.done("failed"), q.done("cancelled"), q.done("timeout"), q.k("slots")],
                ["w-dead", "3", "1000", "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"), "default",
                 "1", "T5"]))
    out.append(("promote", [q.k("delayed"), q.k("q")], ["10"]))
    out.append(("backstop", [q.k("p:" + W), q.k("stats"), q.done("timeout"), q.k("slots")],
                [W, "0", "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"), "0", "10"]))
    out.append(("purge", [q.k("q"), q.k("delayed"), q.k("stats"), q.done("cancelled"), q.k("dead")],
                ["3", "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"), "default"]))
    out.append(("delete", [q.done("completed")], [q.k("t:"), q.k("x:"), "5", "0"]))
    out.append(("prune", [q.done("completed")], [q.k("t:"), "10"]))
    out.append(("heartbeat", ["{rtq}:worker:" + W, "{rtq}:workers"], [W, "5000", "host", "h"]))
    out.append(("lease", ["{rtq}:lease"], ["b1", "5000", "acquire"]))
    letters = r.lrange(q.k("dead"), 0, 2)
    out.append(("dead_requeue", [q.k("dead"), q.k("q"), q.done("failed"), q.done("timeout"), q.done("cancelled")],
                [rnd.choice(letters) if letters else b"\x80", "default", q.ev, q.k("t:"), q.k("x:")]))
    return out


def mutate(rnd, keys, argv):
    keys, argv = list(keys), list(argv)
    for _ in range(rnd.choice([1, 1, 2])):
        m = rnd.randrange(6)
        if m <= 2 and argv:
            argv[rnd.randrange(len(argv))] = rnd.choice(HOSTILE)
        elif m == 3 and argv:
            del argv[rnd.randrange(len(argv)):]
        elif m == 4:
            argv += [rnd.choice(HOSTILE) for _ in range(rnd.randrange(1, 12))]
        elif keys:
            keys[rnd.randrange(len(keys))] = rnd.choice(["{other:q}:q", "plain", "{rtq}:x", "{rtq:default"])
    return keys, argv


def fresh_namespace(r, q):
    """A fresh namespace: tasks pending, running (under W and under a dead
    worker), delayed, ended."""
    r.flushall()
    q.create([{"id": "T%d" % i, "max_retries": 1} for i in range(12)])
    q.take(W, n=6)
    q.take("w-dead", n=2)
    q.create([{"id": "D1", "delay_ms": 60000}])
    q.finish(W, [("T0", 1, "completed", b"", {})])
    r.hset(q.t("T4"), mapping={"s": "failed"})
    r.hset(q.k("limit"), mapping={"rate": "1000", "conc": "50"})


def test_fuzz_every_script(r, q):
    rnd = random.Random(SEED)
    fresh_namespace(r, q)
    chans = [q.ev] + [q.k("w:%s" % i) for i in ["T%d" % i for i in range(12)]]
    sub = Sub(r, shard=chans, plain=["{rtq}:cancel"])
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # keys change only through calls
    r.config_resetstat()
    errors = written = most = 0
    tally = {}  # script -> [calls that succeeded, calls that failed]
    for n in range(CALLS):
        name, keys, argv = rnd.choice(valid_calls(q, r, rnd))
        if rnd.random() < 0.9:
            keys, argv = mutate(rnd, keys, argv)
        # No key may expire (lazily) during a call: that would change the
        # digest without a write. TTLs are dropped between calls instead.
        r.eval(PERSIST_ALL, 0)
        before, cmds = r.execute_command("DEBUG", "DIGEST"), commands(r)
        try:
            q.s.call(name, keys, argv)
            written += 1
            tally.setdefault(name, [0, 0])[0] += 1
        except redis.ResponseError as e:
            errors += 1
            tally.setdefault(name, [0, 0])[1] += 1
            assert r.execute_command("DEBUG", "DIGEST") == before, \
                "%s wrote before failing (%s): keys %r argv %r" % (name, e, keys, argv)
        ran = commands(r) - cmds - 2  # the INFO and DEBUG of this loop
        most = max(most, ran)
        assert ran <= MAX_COMMANDS, "%s ran %d commands: keys %r argv %r" % (name, ran, keys, argv)
        if n % 250 == 249:  # start again from a small namespace
            fresh_namespace(r, q)
    assert errors > CALLS // 3 and written > CALLS // 10, (errors, written)
    assert len(tally) == len(q.s.body) and all(ok and failed for ok, failed in tally.values()), tally
    msgs = sub.drain(0.5)
    assert msgs, "no message was published"
    for ch, m in msgs:
        if ch != "{rtq}:cancel":
            json.loads(m.decode("utf-8"))
    slow = [(e["duration"], e["command"][:40]) for e in r.slowlog_get(128)
            if e["command"].startswith(b"EVALSHA")]
    print("most commands in one call: %d; script calls over 1 ms wall time: %r" % (most, slow))
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    sub.close()
