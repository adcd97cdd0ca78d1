"""rtqproto2 - an rtq producer and worker in Python for protocol 2, written
from docs/PROTOCOL.md alone (the section numbers below are that
document's) and the KEYS, ARGV and replies in the headers of the scripts
it names.

It uses only what the spec says: the ids with their queue's slot (section
1), the key schema (section 2), the task hash (section 3), the steps and
their order ("A worker in another language", "A producer in another
language", section 5), the events (section 7), dead letters (section 8)
and the version mark (section 10). The scripts are read from common/lua2/
as section 5 says: the prelude's head, the prelude parts the script's
"-- Prelude:" lines name, then the script, run with EVALSHA and, on
NOSCRIPT, with EVAL.

redis-py 4.3.4 (Debian bookworm) has no SSUBSCRIBE: the waiter sends it on
a connection of its own and reads the pushes itself (ShardSub).

Run as a program, it is a worker process (for the tests that kill or stop
one):

    python3 rtqproto2.py worker --redis URL --worker-id ID --queue Q ...
"""

import argparse
import hashlib
import os
import secrets
import signal
import socket
import threading
import time
import traceback

import msgpack
import redis

LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common", "lua2")

# Section 1.
NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
NS_CHARS = NAME_CHARS - {":"}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SLOTS = 16384
TERMINAL = ("completed", "failed", "cancelled", "timeout")

# Section 5, "A producer in another language", step 2.
MAX_BATCH = 64
MAX_BATCH_ARGS = 256 * 1024

# Section 2, {ns:Q}:rt: the upper bounds (s) of the run-time buckets.
RT_BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
             "30", "60", "120", "300", "600")


class ProtocolError(Exception):
    """A namespace this code must not touch (section 10), or bad input."""


def valid_name(s):
    return isinstance(s, str) and 1 <= len(s) <= 128 and all(c in NAME_CHARS for c in s)


def valid_ns(s):
    return isinstance(s, str) and 1 <= len(s) <= 64 and all(c in NS_CHARS for c in s)


def crc16(data):
    """CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def queue_slot(ns, queue):
    """Section 1: the Redis Cluster slot of the tag {ns:Q}."""
    return crc16(f"{ns}:{queue}".encode()) % SLOTS


def _b32(n):
    return "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


class IdMaker:
    """Section 1: ms << 82 | r << 14 | slot, r random and counting up
    within one millisecond so that one producer's ids sort."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ms = -1
        self._r = 0

    def new(self, ns, queue, ms=None):
        with self._lock:
            if ms is None:
                ms = int(time.time() * 1000)
            if ms == self._ms:
                self._r = (self._r + 1) & ((1 << 68) - 1)
            else:
                self._ms = ms
                self._r = int.from_bytes(secrets.token_bytes(9), "big") >> 4  # 68 bits
            n = (ms << 82) | (self._r << 14) | queue_slot(ns, queue)
        return _b32(n)


def id_slot(tid):
    """The slot carried by an rtq-made id (its low 14 bits), or None."""
    if len(tid) != 26 or any(c not in CROCKFORD for c in tid):
        return None
    n = 0
    for c in tid:
        n = n * 32 + CROCKFORD.index(c)
    return n & (SLOTS - 1)


class Settings:
    """Section 5, "Settings every process must share" (their defaults)."""

    def __init__(self, result_ttl_s=86400, history=True, history_cap=10000,
                 default_timeout_ms=300000):
        self.result_ttl_s = result_ttl_s
        self.history = "1" if history else "0"
        self.history_cap = history_cap
        self.default_timeout_ms = default_timeout_ms


class Keys:
    """Section 2: {ns} keys of the namespace, {ns:Q} keys of queue Q."""

    def __init__(self, ns="rtq"):
        if not valid_ns(ns):
            raise ProtocolError(f"bad namespace {ns!r}")
        self.ns = ns

    def version(self): return f"{{{self.ns}}}:version"
    def queues(self): return f"{{{self.ns}}}:queues"
    def workers(self): return f"{{{self.ns}}}:workers"
    def worker(self, wid): return f"{{{self.ns}}}:worker:{wid}"
    def cancel(self): return f"{{{self.ns}}}:cancel"

    def tag(self, q): return f"{{{self.ns}:{q}}}"
    def queue(self, q): return f"{self.tag(q)}:q"
    def processing(self, q, wid): return f"{self.tag(q)}:p:{wid}"
    def delayed(self, q): return f"{self.tag(q)}:delayed"
    def done(self, q, status): return f"{self.tag(q)}:done:{status}"
    def stats(self, q): return f"{self.tag(q)}:stats"
    def runtime(self, q): return f"{self.tag(q)}:rt"
    def dead(self, q): return f"{self.tag(q)}:dead"
    def limit(self, q): return f"{self.tag(q)}:limit"
    def bucket(self, q): return f"{self.tag(q)}:bucket"
    def slots(self, q): return f"{self.tag(q)}:slots"
    def events(self, q): return f"{self.tag(q)}:ev"
    # The prefixes the scripts build a task's own keys and channel from.
    def task_prefix(self, q): return f"{self.tag(q)}:t:"
    def side_prefix(self, q): return f"{self.tag(q)}:x:"
    def waiter_prefix(self, q): return f"{self.tag(q)}:w:"
    def task(self, q, tid): return self.task_prefix(q) + tid
    def side(self, q, tid): return self.side_prefix(q) + tid
    def waiter(self, q, tid): return self.waiter_prefix(q) + tid


def script_body(name):
    """Section 5: the script sent for a step. _prelude.lua's head (the text
    before its first line that starts with "--@ "), then each part (a "--@
    <part>" line and the lines up to the next one) whose name the script's
    "-- Prelude:" lines list, in the prelude's order, then <name>.lua."""
    with open(os.path.join(LUA_DIR, "_prelude.lua"), "rb") as f:
        lines = f.read().splitlines(keepends=True)
    with open(os.path.join(LUA_DIR, name + ".lua"), "rb") as f:
        script = f.read()
    wanted = set()
    for line in script.splitlines():
        if line.startswith(b"-- Prelude:"):
            wanted.update(line[len(b"-- Prelude:"):].split())
    body, keep = [], True
    for line in lines:
        if line.startswith(b"--@ "):
            keep = line[4:].strip() in wanted
        if keep:
            body.append(line)
    return b"".join(body) + script


class Scripts:
    """Section 5: the body script_body() assembles, EVALSHA, then EVAL on
    NOSCRIPT."""

    NAMES = ("create", "take", "claim", "progress", "finish", "requeue", "deadletter",
             "heartbeat", "cancel", "wait")

    def __init__(self, r):
        self.r = r
        self._src = {}
        for name in self.NAMES:
            body = script_body(name)
            self._src[name] = (body, hashlib.sha1(body).hexdigest())

    def __call__(self, name, keys, args):
        body, sha = self._src[name]
        try:
            return self.r.evalsha(sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return self.r.eval(body, len(keys), *keys, *args)


def s(b):
    """Reply strings arrive as bytes."""
    return b.decode() if isinstance(b, bytes) else b


def check_namespace(r, k):
    """Section 10: mark the namespace as protocol 2, refusing one that holds
    protocol-1 data or another mark."""
    v = r.get(k.version())
    if v is None:
        if r.exists(f"{k.ns}:stats", f"{{{k.ns}}}:stats"):
            raise ProtocolError(f"namespace {k.ns} holds protocol-1 data")
        r.set(k.version(), "2", nx=True)
        v = r.get(k.version())
    if v != b"2":
        raise ProtocolError(f"namespace {k.ns} is marked protocol {s(v)}")


def read_task(r, k, queue, tid):
    """Section 3: the task hash (args chunks joined) with its side hash
    merged over it; x, r and ed unpacked. None when there is no such task."""
    h = r.hgetall(k.task(queue, tid))
    if not h:
        return None
    if b"x2" in h:  # args of 65..256 bytes: 64-byte chunks x, x2, x3, x4
        h[b"x"] = b"".join(h.pop(f, b"") for f in (b"x", b"x2", b"x3", b"x4"))
    if h.get(b"xs") == b"1":
        h.update(r.hgetall(k.side(queue, tid)))
    out = {}
    for f, v in h.items():
        f = s(f)
        out[f] = msgpack.unpackb(v, raw=False) if f in ("x", "r", "ed") else s(v)
    return out


class ShardSub:
    """SSUBSCRIBE on a connection of its own; get() returns the next
    smessage's data, or None at the timeout."""

    def __init__(self, r, channel):
        self.conn = r.connection_pool.make_connection()
        self.conn.connect()
        self.channel = channel.encode()
        self.conn.send_command("SSUBSCRIBE", channel)
        kind, ch, _n = self.conn.read_response()
        if kind != b"ssubscribe" or ch != self.channel:
            raise ProtocolError(f"unexpected SSUBSCRIBE reply {kind!r}")

    def get(self, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.conn.can_read(timeout=left):
                return None
            m = self.conn.read_response()
            if m[0] == b"smessage" and m[1] == self.channel:
                return m[2]

    def close(self):
        self.conn.disconnect()


# ---- the producer --------------------------------------------------------


class Task:
    """One task to create (section 5, create's per-task values)."""

    def __init__(self, name, args=None, tid=None, timeout_ms=0, max_retries=0, result_ttl_s=0,
                 retry_backoff_ms=0, delay_ms=0, run_at_ms=0):
        self.name, self.args, self.id = name, args, tid
        self.timeout_ms, self.max_retries, self.result_ttl_s = timeout_ms, max_retries, result_ttl_s
        self.retry_backoff_ms, self.delay_ms, self.run_at_ms = retry_backoff_ms, delay_ms, run_at_ms


class Producer:
    """Section 5, "A producer in another language"."""

    def __init__(self, url, ns="rtq", settings=None):
        self.r = redis.Redis.from_url(url)
        self.k = Keys(ns)
        self.settings = settings or Settings()
        check_namespace(self.r, self.k)
        self.scripts = Scripts(self.r)
        self.ids = IdMaker()
        self._known = set()

    def create_batch(self, queue, tasks):
        """Step 2: up to 64 tasks of one queue in one call. Returns one
        (id, created, created_at or existing status) per task."""
        if not valid_name(queue):
            raise ProtocolError(f"bad queue name {queue!r}")
        if not 1 <= len(tasks) <= MAX_BATCH:
            raise ProtocolError(f"a batch holds 1..{MAX_BATCH} tasks")
        if queue not in self._known:  # step 1, once per queue
            self.r.sadd(self.k.queues(), queue)
            self._known.add(queue)
        k = self.k
        # 3 values per task when no task gives an option (no signature
        # here), else 10.
        opts = any((t.timeout_ms, t.max_retries, t.result_ttl_s, t.retry_backoff_ms, t.delay_ms,
                    t.run_at_ms) != (0,) * 6 for t in tasks)
        # Fresh ids when this call made every one of them.
        fresh = all(t.id is None for t in tasks)
        argv = [k.events(queue), k.task_prefix(queue), k.side_prefix(queue), "10" if opts else "3",
                "1" if fresh else "0"]
        total = 0
        for t in tasks:
            t.id = t.id or self.ids.new(k.ns, queue)
            if not valid_name(t.id) or not valid_name(t.name):
                raise ProtocolError(f"bad id or name {t.id!r} {t.name!r}")
            packed = b"" if t.args is None else msgpack.packb(t.args, use_bin_type=True)
            total += len(packed)
            argv += [t.id, t.name, packed]
            if opts:
                argv += [t.timeout_ms, t.max_retries, t.result_ttl_s, t.retry_backoff_ms, t.delay_ms,
                         t.run_at_ms, ""]
        if total > MAX_BATCH_ARGS:
            raise ProtocolError(f"a batch's args are {total} bytes, above {MAX_BATCH_ARGS}")
        reply = self.scripts("create", [k.queue(queue), k.delayed(queue), k.stats(queue)], argv)
        if len(reply) != len(tasks) + 1:
            raise ProtocolError(f"create replied {len(reply)} values for {len(tasks)} tasks")
        # The call's time, then per task 1 (created) or the existing status.
        return [(t.id, e == 1, reply[0] if e == 1 else s(e)) for t, e in zip(tasks, reply[1:])]

    def create(self, name, args=None, queue="default", **kw):
        """One task; returns (id, created)."""
        tid, created, _ = self.create_batch(queue, [Task(name, args, **kw)])[0]
        return tid, created

    def queue_of(self, tid):
        """Section 1: the queue of an id by its slot among {ns}:queues, else
        by probing every known queue. None when no queue has it."""
        queues = sorted(s(q) for q in self.r.smembers(self.k.queues()))
        slot = id_slot(tid)
        first = [q for q in queues if queue_slot(self.k.ns, q) == slot]
        for q in first + [q for q in queues if q not in first]:
            if self.r.exists(self.k.task(q, tid)):
                return q
        return None

    def task(self, queue, tid):
        return read_task(self.r, self.k, queue, tid)

    def wait(self, queue, tid, timeout_s):
        """Step 3: subscribe to w:<id>, register with wait, then read the
        task at the terminal event. None at the timeout."""
        sub = ShardSub(self.r, self.k.waiter(queue, tid))
        try:
            st = s(self.scripts("wait", [self.k.task(queue, tid)], []))
            if st is None:
                raise ProtocolError(f"no task {tid} in {queue}")
            if st not in TERMINAL and sub.get(timeout_s) is None:
                return None
            return self.task(queue, tid)
        finally:
            sub.close()

    def cancel(self, queue, tid):
        """Step 4. Returns cancelled, requested, notfound or state:<status>."""
        k, st = self.k, self.settings
        reply = self.scripts("cancel",
                             [k.task(queue, tid), k.delayed(queue), k.stats(queue),
                              k.done(queue, "cancelled")],
                             [tid, st.result_ttl_s, st.history, st.history_cap, k.events(queue),
                              k.waiter_prefix(queue), k.cancel(), k.task_prefix(queue),
                              k.side_prefix(queue)])
        out = s(reply[0])
        return f"state:{s(reply[1])}" if out == "state" else out


# ---- the worker ----------------------------------------------------------


class Stop(Exception):
    """Raised inside a handler when its task was cancelled or timed out,
    or the worker is shutting down."""


class HandlerError(Exception):
    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class TaskCtx:
    def __init__(self, worker, queue, tid, attempt, deadline_mono):
        self.worker, self.queue, self.id, self.attempt = worker, queue, tid, attempt
        self._deadline = deadline_mono
        self.stop_reason = None
        self._last_progress = 0.0
        self._last_cr = time.monotonic()

    def check(self):
        """Raises Stop once the task is cancelled, past its timeout, or the
        worker is shutting down (step 4; step 6)."""
        w = self.worker
        if self.stop_reason is None:
            now = time.monotonic()
            if now - self._last_cr >= 1.0:  # the message may have gone out before the claim
                self._last_cr = now
                if w.r.hexists(w.k.task(self.queue, self.id), "cr"):
                    w.cancelled.add(self.id)
            if self.id in w.cancelled:
                self.stop_reason = "cancelled"
            elif now >= self._deadline:
                self.stop_reason = "timeout"
            elif w.shutting_down.is_set():
                self.stop_reason = "requeue"
        if self.stop_reason:
            raise Stop(self.stop_reason)

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    def progress(self, pct, message=""):
        """Step 4: at most about 10 a second."""
        now = time.monotonic()
        if now - self._last_progress < 0.1 and pct < 100:
            return
        self._last_progress = now
        self.worker.send_progress(self, pct, message)
        if self.worker.r.hexists(self.worker.k.task(self.queue, self.id), "cr"):
            self.worker.cancelled.add(self.id)


def runtime_pairs(seconds):
    """Section 2, {ns:Q}:rt: one run's increments (field, increment)."""
    field = "le_inf"
    for b in RT_BOUNDS:
        if seconds <= float(b):
            field = "le_" + b
            break
    return [field, 1, "sum_ms", int(seconds * 1000), "count", 1]


class Worker:
    """Section 5, "A worker in another language": one task at a time."""

    def __init__(self, url, queues, handlers, ns="rtq", worker_id=None, settings=None,
                 heartbeat_interval=5.0, heartbeat_ttl_ms=30000, block_timeout=1, take_n=1):
        self.r = redis.Redis.from_url(url)
        self.k = Keys(ns)
        self.queues = list(queues)
        self.handlers = dict(handlers)
        self.settings = settings or Settings()
        check_namespace(self.r, self.k)
        self.scripts = Scripts(self.r)
        # Step 1: a valid name no other live worker uses.
        wid = worker_id or f"py-{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.id = "".join(c if c in NAME_CHARS else "-" for c in wid)
        self.hb_interval, self.hb_ttl_ms = heartbeat_interval, heartbeat_ttl_ms
        self.block_timeout = block_timeout
        self.take_n = take_n
        self.cancelled = set()
        self.busy = 0
        self.started_at = int(time.time() * 1000)
        self.state = "running"
        self.shutting_down = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        self._sub = None
        self._claimed = []  # (queue, entry) taken and not yet run
        self.log = []  # (what, id, ...) for the tests

    # -- step 1: heartbeat and the cancel channel --
    def heartbeat(self):
        fields = ["host", socket.gethostname(), "pid", os.getpid(),
                  "queues", ",".join(f"{q}:1" for q in self.queues), "busy", self.busy,
                  "slots", 1, "started_at", self.started_at, "state", self.state]
        return self.scripts("heartbeat", [self.k.worker(self.id), self.k.workers()],
                            [self.id, self.hb_ttl_ms] + fields)

    def _heartbeats(self):
        while not self._stop.wait(self.hb_interval):
            try:
                self.heartbeat()
            except redis.RedisError:
                pass

    def _listen_cancel(self):
        while not self._stop.is_set():
            try:
                m = self._sub.get_message(timeout=0.2)
            except (redis.RedisError, ValueError):
                return
            if m and m["type"] == "message":
                self.cancelled.add(s(m["data"]))

    def start(self):
        self._sub = self.r.pubsub()
        self._sub.subscribe(self.k.cancel())
        self.heartbeat()  # before claiming anything
        for fn in (self._heartbeats, self._listen_cancel):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self):
        """Step 6: requeue what was taken and not run, then delete the
        worker record and its {ns}:workers entry."""
        for queue, e in self._claimed:
            self.requeue(queue, e["id"], e["attempt"])
        self._claimed = []
        self.state = "stopping"
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._sub is not None:
            self._sub.close()
        self.r.delete(self.k.worker(self.id))
        self.r.zrem(self.k.workers(), self.id)

    # -- the steps --
    def _claim_keys(self, q):
        k = self.k
        return [k.queue(q), k.processing(q, self.id), k.limit(q), k.bucket(q), k.slots(q)]

    def _claim_argv(self, q):
        k = self.k
        return [self.id, self.settings.default_timeout_ms, k.events(q), k.task_prefix(q),
                k.side_prefix(q)]

    def take(self, q, n):
        reply = self.scripts("take", self._claim_keys(q), self._claim_argv(q) + [n, 1 << 20])
        return [parse_entry(e) for e in reply]

    def claim(self, q, ids):
        reply = self.scripts("claim", self._claim_keys(q), self._claim_argv(q) + list(ids))
        return [parse_entry(e) for e in reply]

    def deadletter(self, q, entry, code, reason):
        k, st = self.k, self.settings
        reply = self.scripts("deadletter",
                             [k.dead(q), k.processing(q, self.id), k.stats(q), k.done(q, "failed"),
                              k.slots(q)],
                             [entry, code, reason, self.id, q, st.result_ttl_s, st.history,
                              st.history_cap, k.events(q), k.task_prefix(q), k.side_prefix(q),
                              k.waiter_prefix(q)])
        return [s(reply[0]), reply[1]]

    def send_progress(self, ctx, pct, message):
        pct = max(0, min(100, int(pct)))
        q = ctx.queue
        return self.scripts("progress", [self.k.task(q, ctx.id)],
                            [ctx.id, self.id, ctx.attempt, pct, message, self.k.events(q),
                             self.k.side_prefix(q)])

    def finish(self, q, tid, attempt, status, result=None, pairs=(), runtime=()):
        k, st = self.k, self.settings
        res = b"" if result is None else msgpack.packb(result, use_bin_type=True)
        keys = [k.processing(q, self.id), k.delayed(q), k.stats(q)] + \
               [k.done(q, x) for x in TERMINAL] + [k.runtime(q), k.slots(q)]
        argv = [self.id, st.result_ttl_s, st.history, st.history_cap, k.events(q),
                k.task_prefix(q), k.side_prefix(q), k.waiter_prefix(q), len(runtime) // 2,
                *runtime, tid, attempt, status, res, len(pairs) // 2, *pairs]
        e = self.scripts("finish", keys, argv)[0]
        return [s(x) for x in e]

    def requeue(self, q, tid, attempt):
        k = self.k
        reply = self.scripts("requeue", [k.queue(q), k.processing(q, self.id), k.slots(q)],
                             [tid, self.id, attempt, k.events(q), k.task_prefix(q)])
        self.log.append(("requeued", tid, s(reply[0])))
        return [s(x) for x in reply]

    def _next(self, block_timeout):
        """Step 2: the next claimed entry, taking from each queue in turn,
        then blocking with BLMOVE on the first. None when nothing came."""
        while True:
            if self._claimed:
                return self._claimed.pop(0)
            for q in self.queues:
                got = self.take(q, self.take_n)
                if got:
                    self._claimed = [(q, e) for e in got if e["kind"] != "limited"]
                    break
            else:
                q = self.queues[0]
                tid = self.r.blmove(self.k.queue(q), self.k.processing(q, self.id),
                                    block_timeout, "RIGHT", "LEFT")
                if tid is None:
                    return None
                self._claimed = [(q, e) for e in self.claim(q, [tid])]

    def poll_once(self, timeout=None):
        """Steps 2 to 5 for at most one entry. Returns what happened."""
        got = self._next(self.block_timeout if timeout is None else timeout)
        if got is None:
            return None
        q, e = got
        kind = e["kind"]
        if kind == "skip":
            self.log.append(("skip", e["id"]))
            return ("skip", e["id"])
        if kind in ("missing", "bad"):
            code = "NO_TASK_RECORD" if kind == "missing" else e["code"]
            r = self.deadletter(q, e["entry"], code, e.get("why") or f"{kind} task")
            self.log.append(("deadletter", e["id"], code, r[0]))
            return ("deadletter", e["id"], code)
        if kind == "limited":
            return ("limited", e["id"])
        tid, attempt = e["id"], e["attempt"]
        if e["name"] not in self.handlers:  # step 3
            r = self.deadletter(q, tid.encode(), "UNKNOWN_TASK", f"no handler {e['name']}")
            self.log.append(("deadletter", tid, "UNKNOWN_TASK", r[0]))
            return ("deadletter", tid, "UNKNOWN_TASK")
        ctx = TaskCtx(self, q, tid, attempt, time.monotonic() + e["timeout_ms"] / 1000.0)
        self.busy = 1
        self.log.append(("claimed", tid, attempt))
        t0 = time.monotonic()
        try:
            result = self.handlers[e["name"]](ctx, e["args"])
            reply = self.finish(q, tid, attempt, "completed", result,
                                runtime=runtime_pairs(time.monotonic() - t0))
        except Stop as st:
            if st.args[0] == "requeue":  # step 6
                reply = self.requeue(q, tid, attempt)
            else:  # finish writes the code (CANCELLED, TIMEOUT)
                reply = self.finish(q, tid, attempt, st.args[0],
                                    runtime=runtime_pairs(time.monotonic() - t0))
        except HandlerError as he:
            pairs = ["ec", he.code, "em", he.message, "j", secrets.randbelow(500)]
            if he.details is not None:
                pairs += ["ed", msgpack.packb(he.details, use_bin_type=True)]
            reply = self.finish(q, tid, attempt, "failed", None, pairs,
                                runtime_pairs(time.monotonic() - t0))
        except Exception as ex:
            reply = self.finish(q, tid, attempt, "failed", None,
                                ["ec", "HANDLER_ERROR", "em", str(ex), "et",
                                 traceback.format_exc(), "j", secrets.randbelow(500)],
                                runtime_pairs(time.monotonic() - t0))
        finally:
            self.busy = 0
            self.cancelled.discard(tid)
        self.log.append(("finished", tid, reply[0]))
        return ("finished", tid, reply)

    def run(self, until):
        """Polls until until() is true or shutdown() was called."""
        while not until() and not self.shutting_down.is_set():
            self.poll_once()

    def shutdown(self):
        """Graceful stop: a running handler stops at its next check and its
        task is requeued (step 6)."""
        self.shutting_down.set()


def parse_entry(e):
    """take's and claim's entries (the shapes listed in section 5)."""
    kind = s(e[0])
    if kind == "ok":
        return {"kind": "ok", "id": s(e[1]), "name": s(e[2]), "attempt": int(e[3]),
                "deadline_ms": int(e[4]), "timeout_ms": int(e[5]),
                "args": msgpack.unpackb(e[6], raw=False) if e[6] else {},
                "signature": s(e[7]) if len(e) > 7 else ""}
    if kind == "skip":
        return {"kind": "skip", "id": s(e[1]), "status": s(e[2]) if len(e) > 2 else None}
    if kind == "missing":
        return {"kind": "missing", "id": s(e[1]), "entry": e[1]}
    if kind == "bad":
        # An entry that is no valid id is BAD_ID; else its hash is bad.
        entry = e[1]
        try:
            tid = entry.decode()
        except UnicodeDecodeError:
            tid = ""
        if not valid_name(tid):
            return {"kind": "bad", "id": "", "entry": entry, "code": "BAD_ID", "why": s(e[2])}
        return {"kind": "bad", "id": tid, "entry": entry, "code": "BAD_TASK_RECORD",
                "why": s(e[2])}
    if kind == "limited":  # take: {'limited', wait_ms}; claim: {'limited', id, wait_ms}
        return {"kind": "limited", "id": s(e[1]) if len(e) > 2 else "", "wait_ms": int(e[-1])}
    raise ProtocolError(f"unknown claim entry {e!r}")


# ---- a worker process ----------------------------------------------------


def _block_handler(ctx, args):
    """Reports progress, then waits for cancellation, its timeout or the
    worker's shutdown."""
    ctx.progress(10, "holding")
    while True:
        ctx.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["worker"])
    ap.add_argument("--redis", required=True)
    ap.add_argument("--worker-id", required=True)
    ap.add_argument("--queue", action="append", required=True)
    ap.add_argument("--handler", action="append", required=True,
                    help="a handler name to serve with a handler that blocks")
    ap.add_argument("--heartbeat-interval", type=float, default=0.5)
    ap.add_argument("--heartbeat-ttl-ms", type=int, default=3000)
    a = ap.parse_args()
    w = Worker(a.redis, a.queue, {h: _block_handler for h in a.handler}, worker_id=a.worker_id,
               heartbeat_interval=a.heartbeat_interval, heartbeat_ttl_ms=a.heartbeat_ttl_ms,
               block_timeout=0.2)
    signal.signal(signal.SIGTERM, lambda *_: w.shutdown())
    w.start()
    print("ready", flush=True)
    w.run(lambda: False)
    w.close()  # step 6
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
