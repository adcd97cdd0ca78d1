"""rtqproto - an rtq producer and worker in Python, written from
docs/PROTOCOL.md alone (the section numbers below are that document's).

It uses only what PROTOCOL.md says: the key schema (section 2), the
envelope (section 3), the task hash (section 4), the steps and their order
(section 6, "A worker in another language" and "A producer in another
language"), the events (section 7), dead letters (section 9) and each
script's KEYS, ARGV and reply (section 10). The scripts themselves are read
from common/lua/, as section 6 says: the prelude prepended to each body and
run with EVALSHA, falling back to EVAL on NOSCRIPT.

Run as a program, it is a worker process (for the test that kills one):

    python3 rtqproto.py worker --redis URL --worker-id ID --queue Q ...
"""

import argparse
import os
import secrets
import signal
import socket
import sys
import threading
import time
import traceback

import msgpack
import redis

LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common", "lua")

# Section 1: ids, names and worker ids.
NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Section 3: decoders' limits.
MAX_ENVELOPE = 1 << 20
MAX_DEPTH = 32
ENVELOPE_VERSION = 1


def valid_name(s):
    return isinstance(s, str) and 1 <= len(s) <= 128 and all(c in NAME_CHARS for c in s)


def new_task_id(ms=None):
    """Section 1: ms << 80 | 80 random bits, 26 Crockford base32 digits."""
    if ms is None:
        ms = int(time.time() * 1000)
    n = (ms << 80) | int.from_bytes(secrets.token_bytes(10), "big")
    return "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


class Settings:
    """Section 6, "Settings every process must share": the values the rtq
    processes of the namespace run with (their defaults here)."""

    def __init__(self, result_ttl_s=86400, history=True, default_timeout_ms=300000,
                 cancel_flag_ttl_ms=3600000):
        self.result_ttl_s = result_ttl_s
        self.history = "1" if history else "0"
        self.default_timeout_ms = default_timeout_ms
        self.cancel_flag_ttl_ms = cancel_flag_ttl_ms


class Keys:
    """Section 2. P is the namespace on a single Redis."""

    def __init__(self, ns="rtq"):
        self.p = ns

    def task(self, tid): return f"{self.p}:task:{tid}"
    def queue(self, q): return f"{self.p}:queue:{q}"
    def queues(self): return f"{self.p}:queues"
    def processing(self, wid): return f"{self.p}:processing:{wid}"
    def worker(self, wid): return f"{self.p}:worker:{wid}"
    def workers(self): return f"{self.p}:workers"
    def cancel(self, tid): return f"{self.p}:cancel:{tid}"
    def delayed(self): return f"{self.p}:delayed"
    def deadlines(self): return f"{self.p}:deadlines"
    def status(self, st): return f"{self.p}:status:{st}"
    def history(self): return f"{self.p}:history"
    def dead(self): return f"{self.p}:dead"
    def stats(self): return f"{self.p}:stats"
    def chan_events(self): return f"{self.p}:chan:events"
    def chan_task(self, tid): return f"{self.p}:chan:task:{tid}"
    def chan_cancel(self): return f"{self.p}:chan:cancel"


class Scripts:
    """Section 6: each step is common/lua/<name>.lua with _prelude.lua
    prepended; redis-py's Script runs EVALSHA and loads on NOSCRIPT."""

    def __init__(self, r):
        with open(os.path.join(LUA_DIR, "_prelude.lua"), "rb") as f:
            prelude = f.read()
        self._scripts = {}
        for name in ("create", "claim", "progress", "finish", "heartbeat", "deadletter",
                     "cancel", "requeue"):
            with open(os.path.join(LUA_DIR, name + ".lua"), "rb") as f:
                self._scripts[name] = r.register_script(prelude + f.read())

    def __call__(self, name, keys, args):
        return self._scripts[name](keys=keys, args=args)


def s(b):
    """Reply strings arrive as bytes."""
    return b.decode() if isinstance(b, bytes) else b


def depth_ok(o, depth=1):
    if depth > MAX_DEPTH:
        return False
    if isinstance(o, dict):
        return all(depth_ok(k, depth + 1) and depth_ok(v, depth + 1) for k, v in o.items())
    if isinstance(o, (list, tuple)):
        return all(depth_ok(v, depth + 1) for v in o)
    return True


class DecodeError(Exception):
    def __init__(self, code, reason, tid=""):
        super().__init__(reason)
        self.code, self.reason, self.tid = code, reason, tid


def decode_envelope(raw):
    """Section 3. Returns the envelope as a dict, or raises DecodeError
    with the dead-letter code (section 6, worker step 4)."""
    if len(raw) > MAX_ENVELOPE:
        raise DecodeError("PAYLOAD_TOO_LARGE", f"envelope is {len(raw)} bytes")
    try:
        env = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as e:  # any msgpack error is a decode error
        raise DecodeError("DECODE_ERROR", f"envelope does not decode: {e}")
    if not isinstance(env, dict):
        raise DecodeError("DECODE_ERROR", "envelope is not a map")
    tid = env.get("id") if valid_name(env.get("id")) else ""
    if not depth_ok(env):
        raise DecodeError("PAYLOAD_TOO_DEEP", "envelope nests too deeply", tid)
    v = env.get("v")
    if not isinstance(v, int) or v < 1:
        raise DecodeError("DECODE_ERROR", "field v is missing or bad", tid)
    if v > ENVELOPE_VERSION:
        raise DecodeError("UNSUPPORTED_VERSION", f"envelope version {v}", tid)
    for f in ("id", "name", "queue"):
        if not valid_name(env.get(f)):
            raise DecodeError("DECODE_ERROR", f"field {f} is not a valid name", tid)
    if not isinstance(env.get("args"), dict):
        raise DecodeError("DECODE_ERROR", "field args is not a map", tid)
    return env


# ---- the producer --------------------------------------------------------


class Producer:
    """Section 6, "A producer in another language"."""

    def __init__(self, url, ns="rtq", settings=None):
        self.r = redis.Redis.from_url(url)
        self.k = Keys(ns)
        self.settings = settings or Settings()
        self.scripts = Scripts(self.r)

    def create(self, name, args=None, queue="default", tid=None, timeout_ms=0, max_retries=0,
               result_ttl_s=0, delay_ms=0, retry_backoff_ms=0):
        """Returns (id, created)."""
        tid = tid or new_task_id()
        packed_args = msgpack.packb(args or {}, use_bin_type=True)
        # v first, id second (step 2); the same args bytes as create's (step 3).
        env = {"v": ENVELOPE_VERSION, "id": tid, "name": name, "queue": queue,
               "args": args or {}, "created_at": int(time.time() * 1000),
               "timeout": timeout_ms, "max_retries": max_retries, "attempt": 1,
               "result_ttl": result_ttl_s}
        envelope = msgpack.packb(env, use_bin_type=True)
        k = self.k
        keys = [k.delayed(), k.status("pending"), k.queues(), k.stats(), k.task(tid), k.queue(queue)]
        argv = [k.chan_events(), tid, name, queue, envelope, packed_args, timeout_ms, max_retries,
                result_ttl_s, delay_ms, 0, retry_backoff_ms]
        reply = self.scripts("create", keys, argv)
        created = reply[0][0] == 1
        return tid, created

    def cancel(self, tid):
        k, st = self.k, self.settings
        keys = [k.task(tid), k.status("pending"), k.status("cancelled"), k.history(), k.cancel(tid),
                k.stats(), k.status("running")]
        argv = [tid, st.result_ttl_s, st.history, k.chan_events(), k.chan_task(tid),
                k.chan_cancel(), st.cancel_flag_ttl_ms]
        return s(self.scripts("cancel", keys, argv)[0])

    def task(self, tid):
        """Section 4: the hash, text fields decoded, msgpack ones unpacked."""
        h = self.r.hgetall(self.k.task(tid))
        out = {}
        for f, v in h.items():
            f = s(f)
            if f in ("args", "result", "error_details"):
                out[f] = msgpack.unpackb(v, raw=False)
            else:
                out[f] = s(v)
        return out

    def wait(self, tid, timeout_s):
        """Section 6 step 4: subscribe, read status, then wait."""
        ps = self.r.pubsub()
        ps.subscribe(self.k.chan_task(tid))
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                st = s(self.r.hget(self.k.task(tid), "status"))
                if st in ("completed", "failed", "cancelled", "timeout"):
                    return self.task(tid)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                ps.get_message(timeout=min(left, 0.5))
        finally:
            ps.close()


# ---- the worker ----------------------------------------------------------


class Stop(Exception):
    """Raised inside a handler when its task was cancelled or timed out."""


class HandlerError(Exception):
    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class TaskCtx:
    def __init__(self, worker, tid, attempt, deadline_mono):
        self.worker, self.id, self.attempt = worker, tid, attempt
        self._deadline = deadline_mono
        self.stop_reason = None
        self._last_progress = 0.0

    def check(self):
        """Raises Stop once the task is cancelled or past its timeout."""
        if self.stop_reason is None:
            if self.id in self.worker.cancelled:
                self.stop_reason = "cancelled"
            elif time.monotonic() >= self._deadline:
                self.stop_reason = "timeout"
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
        """Step 6: at most about 10 a second."""
        now = time.monotonic()
        if now - self._last_progress < 0.1 and pct < 100:
            return
        self._last_progress = now
        self.worker.send_progress(self, pct, message)


class Worker:
    """Section 6, "A worker in another language": one task at a time."""

    def __init__(self, url, queues, handlers, ns="rtq", worker_id=None, settings=None,
                 heartbeat_interval=5.0, heartbeat_ttl_ms=30000, block_timeout=1):
        self.r = redis.Redis.from_url(url)
        self.k = Keys(ns)
        self.queues = list(queues)
        self.handlers = dict(handlers)
        self.settings = settings or Settings()
        self.scripts = Scripts(self.r)
        # Step 1: a valid name no other live worker uses.
        self.id = worker_id or f"py-{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.id = "".join(c if c in NAME_CHARS else "-" for c in self.id)
        self.hb_interval, self.hb_ttl_ms = heartbeat_interval, heartbeat_ttl_ms
        self.block_timeout = block_timeout
        self.cancelled = set()
        self.busy = 0
        self.started_at = int(time.time() * 1000)
        self.state = "running"
        self._stop = threading.Event()
        self._threads = []
        self._sub = None
        self.log = []  # (what, id) for the tests

    # -- heartbeat (step 2) --
    def heartbeat(self):
        # queues: name:weight joined by ',' (every queue weight 1 here).
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

    # -- cancellation (step 6) --
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
        self._sub.subscribe(self.k.chan_cancel())  # before claiming anything
        self.heartbeat()  # before claiming anything
        for fn in (self._heartbeats, self._listen_cancel):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, delete_record=True):
        """Step 8, for a worker with no task left."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._sub is not None:
            self._sub.close()
        if delete_record and self.r.llen(self.k.processing(self.id)) == 0:
            self.r.delete(self.k.worker(self.id))
            self.r.zrem(self.k.workers(), self.id)

    # -- the steps --
    def deadletter(self, raw, code, reason, queue, tid):
        k, st = self.k, self.settings
        keys = [k.dead(), k.processing(self.id), k.stats()]
        if tid:
            keys += [k.task(tid), k.status("pending"), k.status("running"), k.status("failed"),
                     k.history(), k.cancel(tid), k.deadlines()]
        argv = [raw, code, reason, self.id, queue, tid, st.result_ttl_s, st.history,
                k.chan_events(), k.chan_task(tid) if tid else ""]
        self.log.append(("deadletter", tid, code))
        return self.scripts("deadletter", keys, argv)

    def claim(self, tid, raw):
        k = self.k
        keys = [k.processing(self.id), k.status("pending"), k.status("running"), k.deadlines(),
                k.task(tid)]
        argv = [self.id, self.settings.default_timeout_ms, k.chan_events(), tid, raw]
        e = self.scripts("claim", keys, argv)[0]
        return [s(e[0])] + list(e[1:])

    def send_progress(self, ctx, pct, message):
        pct = max(0.0, min(100.0, float(pct)))
        self.scripts("progress", [self.k.task(ctx.id)],
                     [ctx.id, self.id, ctx.attempt, f"{pct:g}", message, self.k.chan_events()])

    def finish(self, tid, raw, attempt, status, result=None, pairs=()):
        k, st = self.k, self.settings
        keys = [k.processing(self.id), k.status("running"), k.deadlines(), k.history(), k.stats(),
                k.status("pending"), k.delayed(), k.status("completed"), k.status("failed"),
                k.status("cancelled"), k.status("timeout")]
        res = b"" if result is None else msgpack.packb(result, use_bin_type=True)
        argv = [self.id, st.result_ttl_s, st.history, k.chan_events(), f"{k.p}:task:",
                f"{k.p}:cancel:", f"{k.p}:chan:task:", f"{k.p}:runtime:", 0,  # no run-time groups
                tid, raw, attempt, status, res,
                len(pairs) // 2] + list(pairs)
        e = self.scripts("finish", keys, argv)[0]
        return [s(x) if isinstance(x, bytes) else x for x in e]

    def poll_once(self, timeout=None):
        """Steps 3 to 7 for at most one envelope. Returns what happened."""
        raw, queue = None, None
        for q in self.queues:
            raw = self.r.blmove(self.k.queue(q), self.k.processing(self.id),
                                timeout if timeout is not None else self.block_timeout, "RIGHT", "LEFT")
            if raw is not None:
                queue = q
                break
        if raw is None:
            return None
        try:
            env = decode_envelope(raw)
        except DecodeError as e:
            self.deadletter(raw, e.code, e.reason, queue, e.tid)
            return ("deadletter", e.tid, e.code)
        tid = env["id"]
        if env["name"] not in self.handlers:
            self.deadletter(raw, "UNKNOWN_TASK", f"no handler {env['name']}", queue, tid)
            return ("deadletter", tid, "UNKNOWN_TASK")
        c = self.claim(tid, raw)
        if c[0] == "skip":
            return ("skip", tid, s(c[1]))
        if c[0] == "missing":
            self.deadletter(raw, "NO_TASK_RECORD", "no task hash", queue, tid)
            return ("deadletter", tid, "NO_TASK_RECORD")
        attempt, _deadline_ms, timeout_ms = int(c[1]), int(c[2]), int(c[3])
        # The message may have gone out before the claim.
        if self.r.exists(self.k.cancel(tid)):
            self.cancelled.add(tid)
        ctx = TaskCtx(self, tid, attempt, time.monotonic() + timeout_ms / 1000.0)
        self.busy = 1
        self.log.append(("claimed", tid, attempt))
        try:
            result = self.handlers[env["name"]](ctx, env["args"])
            reply = self.finish(tid, raw, attempt, "completed", result)
        except Stop as st:
            reply = self.finish(tid, raw, attempt, st.args[0])  # finish writes the code
        except HandlerError as he:
            pairs = ["error_code", he.code, "error_message", he.message,
                     "jitter", secrets.randbelow(500)]
            if he.details is not None:
                pairs += ["error_details", msgpack.packb(he.details, use_bin_type=True)]
            reply = self.finish(tid, raw, attempt, "failed", None, pairs)
        except Exception as ex:
            reply = self.finish(tid, raw, attempt, "failed", None,
                                ["error_code", "HANDLER_ERROR", "error_message", str(ex),
                                 "error_traceback", traceback.format_exc(), "jitter",
                                 secrets.randbelow(500)])
        finally:
            self.busy = 0
            self.cancelled.discard(tid)
        self.log.append(("finished", tid, reply[0]))
        return ("finished", tid, reply)

    def run(self, until):
        """Polls until until() is true."""
        while not until() and not self._stop.is_set():
            self.poll_once()


# ---- a worker process ----------------------------------------------------


def _block_handler(ctx, args):
    """Reports progress, then waits for cancellation (or its timeout)."""
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
               heartbeat_interval=a.heartbeat_interval, heartbeat_ttl_ms=a.heartbeat_ttl_ms)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    w.start()
    print("ready", flush=True)
    w.run(lambda: False)


if __name__ == "__main__":
    main()
