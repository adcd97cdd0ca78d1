"""Hostile counts and numbers, one by one: a create of more tasks than a
call may hold, a TTL or other number of create and finish that is not a
whole number in range, and a number read back from a task hash that does
not check out. A refused call writes nothing (DEBUG DIGEST: every key,
value and expiry time); a stored value that does not check out never
gives a task a nonsense deadline or lifetime."""

import time

import pytest
import redis

from test_steps import W

HOSTILE = ["1e308", "nan", "inf", "-1", "1.5", "abc"]
# The commands a step writes with; a refused call must run none of them.
WRITES = ("hset", "hdel", "lpush", "rpush", "lrem", "lmove", "rpop", "zadd", "zrem", "hincrby",
          "del", "pexpireat", "spublish", "publish")


def digest(r):
    return r.execute_command("DEBUG", "DIGEST")


def now_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


def refused(r, call, match):
    """Runs call, which must fail with an error matching match and write
    nothing: neither the digest nor any write command's count moves."""
    before = digest(r)
    r.config_resetstat()
    with pytest.raises(redis.ResponseError, match=match):
        call()
    stats = r.info("commandstats")
    ran = {k[len("cmdstat_"):]: v["calls"] for k, v in stats.items()}
    assert not [c for c in WRITES if ran.get(c)], ran
    assert digest(r) == before


# --- create: more tasks than one call may hold ---------------------------

def create_argv(q, n, p="C", per=10):
    argv = [q.ev, q.k("t:"), q.k("x:"), str(per), "0"]
    for i in range(n):
        argv += ["%s%d" % (p, i), "job", b"", "0", "0", "0", "0", "0", "0", ""][:per]
    return argv


def create_keys(q):
    return [q.k("q"), q.k("delayed"), q.k("stats")]


@pytest.mark.parametrize("n", [65, 10000, 50000])
@pytest.mark.parametrize("per", [3, 10])
def test_create_refuses_more_than_64_tasks_before_writing(r, q, n, per):
    q.create([{"id": "OLD"}])  # the namespace holds a task, a queue and stats
    argv = create_argv(q, n, per=per)
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    t0 = time.monotonic()
    refused(r, lambda: q.s.call("create", create_keys(q), argv), "create: expected 1..64 tasks")
    wall = time.monotonic() - t0
    calls = [e for e in r.slowlog_get(16) if e["command"].startswith(b"EVALSHA")]
    assert len(calls) == 1
    # What Redis does with an argument list this long before any script
    # runs (reading it, making ARGV): a script that returns at once.
    r.slowlog_reset()
    r.eval("return 0", 0, *argv)
    base = [e for e in r.slowlog_get(16) if e["command"].startswith(b"EVAL")]
    print("create of %d tasks (%d args) refused in %d us in Redis (a script that returns at once: %d us), "
          "%.1f ms round trip" % (n, len(argv), calls[0]["duration"], base[0]["duration"], wall * 1000))
    assert r.llen(q.k("q")) == 1 and not r.exists(q.t("C0"))


@pytest.mark.parametrize("per", [3, 10])
def test_create_takes_64_tasks(r, q, per):
    out = q.s.call("create", create_keys(q), create_argv(q, 64, per=per))
    assert out[1:] == [1] * 64 and r.llen(q.k("q")) == 64


@pytest.mark.parametrize("per", ["", "0", "4", "03", "10.0", "3 "])
def test_create_refuses_a_values_per_task_other_than_3_or_10(r, q, per):
    q.create([{"id": "OLD"}])
    argv = create_argv(q, 2)
    argv[3] = per
    refused(r, lambda: q.s.call("create", create_keys(q), argv), "create: values per task must be 3 or 10")


@pytest.mark.parametrize("per,values", [(3, 10), (10, 3), (3, 4), (10, 11)])
def test_create_refuses_values_that_do_not_make_whole_tasks(r, q, per, values):
    # 2 tasks of `values` values each, sent as `per` per task: 20 values are
    # not a whole number of 3-value tasks, and 6 not of 10-value ones.
    q.create([{"id": "OLD"}])
    argv = create_argv(q, 2, per=values)
    argv[3] = str(per)
    if (len(argv) - 5) % per == 0:
        argv.append("extra")
    refused(r, lambda: q.s.call("create", create_keys(q), argv), "create: expected 1..64 tasks of %d" % per)


# --- create and finish: numbers that are not whole numbers in range ------

# Per task of create: offset in the task's 10 values -> the name in the error.
CREATE_NUMBERS = {3: "timeout_ms", 4: "max_retries", 5: "result_ttl_s", 6: "retry_backoff_ms",
                  7: "delay_ms", 8: "run_at_ms"}


@pytest.mark.parametrize("off", sorted(CREATE_NUMBERS))
def test_create_refuses_each_number_that_is_not_whole(r, q, off):
    q.create([{"id": "OLD"}])
    base = create_argv(q, 2)  # the hostile value is in the second task
    for v in HOSTILE:
        argv = list(base)
        argv[5 + 10 + off] = v
        refused(r, lambda: q.s.call("create", create_keys(q), argv),
                "create: %s must be a whole number" % CREATE_NUMBERS[off])
    assert q.s.call("create", create_keys(q), base)[1:] == [1, 1]


# finish's argv (below): index -> the text of its error.
FINISH_NUMBERS = {1: "default result ttl", 2: "history must be 1 or 0", 3: "history cap",
                  8: "histogram pairs", 10: "histogram increment", 12: "attempt", 15: "m must",
                  17: "jitter", 19: "(progress|p is too long)"}


def finish_argv(q, id, att):
    return [W, "86400", "1", "100", q.ev, q.k("t:"), q.k("x:"), q.k("w:"),
            "1", "le_1", "1",
            id, att, "failed", b"", "2", "j", "10", "p", "50"]


@pytest.mark.parametrize("i", sorted(FINISH_NUMBERS))
def test_finish_refuses_each_number_that_is_not_whole(r, q, i):
    q.create([{"id": "F", "max_retries": 1}])
    (e,) = q.take(W)
    assert e[0] == b"ok"
    base = finish_argv(q, "F", "1")
    for v in HOSTILE:
        argv = list(base)
        argv[i] = v
        refused(r, lambda: q.s.call("finish", q.finish_keys(W), argv), "finish: " + FINISH_NUMBERS[i])
        assert r.hget(q.t("F"), "s") == b"running" and r.lrange(q.k("p:" + W), 0, -1) == [b"F"]
        assert r.ttl(q.t("F")) == -1 and not r.exists(q.done("failed"), q.k("delayed"))
    assert q.s.call("finish", q.finish_keys(W), base)[0][0] == b"retry"


def test_finish_refuses_a_result_ttl_of_1e308(r, q):
    # The finding this file answers: result_ttl 1e308 once ended a task
    # with no TTL and left it in the running index.
    q.create([{"id": "R"}])
    q.take(W)
    argv = finish_argv(q, "R", "1")
    argv[1], argv[13] = "1e308", "completed"
    refused(r, lambda: q.s.call("finish", q.finish_keys(W), argv), "default result ttl")
    assert r.hget(q.t("R"), "s") == b"running" and r.lrange(q.k("p:" + W), 0, -1) == [b"R"]


# --- values read back from the task hash ---------------------------------

# Stored timeout_ms (`to`) that claim must refuse: not plain decimal
# digits, or out of 1..MAX_TIMEOUT_MS (10 years in ms).
BAD_TO = ["-1", "1e308", "nan", "inf", "abc", "1.5", "0x10", " 1", "0", "315360000001", "9" * 20]


def plant(r, q, id, **fields):
    q.create([{"id": id}])
    for f, v in fields.items():
        r.hset(q.t(id), f, v)


def take_or_claim(q, r, how, n):
    if how == "take":
        return q.take(W, deftmo=300000)
    for _ in range(n):  # as the worker's BLMOVE would
        r.lmove(q.k("q"), q.k("p:" + W), "RIGHT", "LEFT")
    ids = [i.decode() for i in reversed(r.lrange(q.k("p:" + W), 0, -1))]
    return q.claim(W, ids, deftmo=300000)


@pytest.mark.parametrize("how", ["take", "claim"])
def test_claim_refuses_a_stored_timeout_that_does_not_check_out(r, q, how):
    for i, v in enumerate(BAD_TO):
        plant(r, q, "B%d" % i, to=v)
    got = take_or_claim(q, r, how, len(BAD_TO))
    assert [(e[0], e[2]) for e in got] == [(b"bad", b"the task hash does not validate")] * len(BAD_TO)
    for i, v in enumerate(BAD_TO):
        h = q.task("B%d" % i)
        assert h["s"] == b"pending" and h["to"] == v.encode() and "dl" not in h and "w" not in h
    # Left in the processing list, for the worker to dead-letter.
    assert r.llen(q.k("p:" + W)) == len(BAD_TO) and not r.exists(q.k("slots"))


@pytest.mark.parametrize("how", ["take", "claim"])
def test_claim_deadline_comes_from_a_timeout_in_range_only(r, q, how):
    # '' is the default; 4294967295 ms (49.7 days) is a timeout in range.
    plant(r, q, "E", to="")
    plant(r, q, "H", to="4294967295")
    t0 = now_ms(r)
    got = {e[1]: e for e in take_or_claim(q, r, how, 2)}
    t1 = now_ms(r)
    for id, to in [(b"E", 300000), (b"H", 4294967295)]:
        e = got[id]
        assert e[0] == b"ok" and e[5] == to and t0 + to <= e[4] <= t1 + to
        h = q.task(id.decode())
        assert h["s"] == b"running" and int(h["dl"]) == e[4] and int(h["b"]) + to == e[4]


@pytest.mark.parametrize("how", ["take", "claim"])
def test_claim_ignores_a_stored_created_at(r, q, how):
    # claim reads no `c`: whatever it holds, the deadline is the claim's
    # time plus the timeout (readers check `c` against `b`, section 9).
    bad_c = HOSTILE + ["", "4294967295"]
    for i, v in enumerate(bad_c):
        plant(r, q, "C%d" % i, c=v, to="1000")
    t0 = now_ms(r)
    got = take_or_claim(q, r, how, len(bad_c))
    t1 = now_ms(r)
    assert len(got) == len(bad_c)
    for e in got:
        assert e[0] == b"ok" and e[5] == 1000 and t0 + 1000 <= e[4] <= t1 + 1000


@pytest.mark.parametrize("field", ["rt", "mr", "bo"])
def test_finish_uses_the_default_for_a_stored_option_that_does_not_check_out(r, q, field):
    # A stored result_ttl, max_retries or retry_backoff_ms that does not
    # check out is taken as unset: the task ends (or retries) with the
    # default, never with a nonsense lifetime or due time.
    values = HOSTILE + ["4294967295", "9" * 20]
    ids = ["O%d" % i for i in range(len(values))]
    for id in ids:
        q.create([{"id": id, "max_retries": 3 if field == "bo" else 0}])
    q.take(W)
    for id, v in zip(ids, values):
        r.hset(q.t(id), field, v)
    t0 = now_ms(r)
    out = q.finish(W, [(id, 1, "failed", b"", {"ec": "E"}) for id in ids])
    t1 = now_ms(r)
    assert r.llen(q.k("p:" + W)) == 0
    for id, e in zip(ids, out):
        h = q.task(id)
        if field == "bo":
            # 4294967295 is past the 86400000 ms cap of a backoff
            assert e[0] == b"retry" and t0 + 1000 <= e[1] <= t1 + 1000, (id, e)
            assert h["s"] == b"pending" and r.zscore(q.k("delayed"), id) == e[1]
        else:
            assert e == [b"ok", b"failed"] and h["s"] == b"failed"
            ttl = r.pttl(q.t(id))
            assert q.defttl * 1000 - 60000 < ttl <= q.defttl * 1000, (id, ttl)
