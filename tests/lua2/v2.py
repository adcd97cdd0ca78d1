"""v2 keys and script calls, as the C call builders will make them
(docs/design/protocol-v2.md section 2)."""

import os

import redis

from lua2_body import assemble, declared_parts, prelude_parts  # noqa: F401

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common", "lua2")


class Scripts:
    def __init__(self, r):
        self.r = r
        self.body = {}
        for f in os.listdir(LUA):
            if f.endswith(".lua") and not f.startswith("_"):
                self.body[f[:-4]] = assemble(f[:-4], LUA)
        self.sha = {}

    def call(self, name, keys, args):
        body = self.body[name]
        if name not in self.sha:
            self.sha[name] = self.r.script_load(body)
        try:
            return self.r.evalsha(self.sha[name], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return self.r.eval(body, len(keys), *keys, *args)


class Queue:
    """One queue of one namespace."""

    def __init__(self, r, ns, name, scripts=None):
        self.r, self.ns, self.name = r, ns, name
        self.tag = "{%s:%s}" % (ns, name)
        self.s = scripts or Scripts(r)
        self.defttl, self.cap, self.hist = 86400, 10000, "1"

    def k(self, suffix):
        return self.tag + ":" + suffix

    def t(self, id):
        return self.k("t:" + id)

    @property
    def ev(self):
        return self.k("ev")

    def done(self, status):
        return self.k("done:" + status)

    # --- calls -------------------------------------------------------
    def create(self, tasks, fresh=False):
        """tasks: list of dicts with id, name and optional args, timeout_ms,
        max_retries, result_ttl, backoff_ms, delay_ms, run_at_ms, sig.
        fresh: the ids are fresh (made for this call: not looked up)."""
        opts = any(set(t) - {"id", "name", "args"} for t in tasks)
        argv = [self.ev, self.k("t:"), self.k("x:"), "10" if opts else "3", "1" if fresh else "0"]
        for t in tasks:
            if not opts:
                argv += [t["id"], t.get("name", "job"), t.get("args", b"")]
                continue
            argv += [t["id"], t.get("name", "job"), t.get("args", b""), str(t.get("timeout_ms", 0)),
                     str(t.get("max_retries", 0)), str(t.get("result_ttl", 0)),
                     str(t.get("backoff_ms", 0)), str(t.get("delay_ms", 0)),
                     str(t.get("run_at_ms", 0)), t.get("sig", "")]
        return self.s.call("create", [self.k("q"), self.k("delayed"), self.k("stats")], argv)

    def gate(self):
        return [self.k("limit"), self.k("bucket"), self.k("slots")]

    def take(self, wid, n=64, deftmo=300000, budget=1 << 20):
        return self.s.call("take", [self.k("q"), self.k("p:" + wid)] + self.gate(),
                           [wid, str(deftmo), self.ev, self.k("t:"), self.k("x:"), str(n), str(budget)])

    def claim(self, wid, ids, deftmo=300000):
        return self.s.call("claim", [self.k("q"), self.k("p:" + wid)] + self.gate(),
                           [wid, str(deftmo), self.ev, self.k("t:"), self.k("x:"), *ids])

    def finish_keys(self, wid):
        return [self.k("p:" + wid), self.k("delayed"), self.k("stats"), self.done("completed"),
                self.done("failed"), self.done("cancelled"), self.done("timeout"), self.k("rt"), self.k("slots")]

    def finish(self, wid, outcomes, hist_pairs=()):
        """outcomes: list of (id, attempt, final, result, {field: value})."""
        argv = [wid, str(self.defttl), self.hist, str(self.cap), self.ev, self.k("t:"), self.k("x:"),
                self.k("w:"), str(len(hist_pairs))]
        for f, n in hist_pairs:
            argv += [f, str(n)]
        for id, att, final, result, fields in outcomes:
            argv += [id, str(att), final, result, str(len(fields))]
            for f, v in fields.items():
                argv += [f, v]
        return self.s.call("finish", self.finish_keys(wid), argv)

    def progress(self, id, wid, att, p, msg=""):
        return self.s.call("progress", [self.t(id)], [id, wid, str(att), str(p), msg, self.ev, self.k("x:")])

    def wait(self, id):
        return self.s.call("wait", [self.t(id)], [])

    def cancel(self, id, cancel_chan="{rtq}:cancel", sigs=()):
        return self.s.call("cancel", [self.t(id), self.k("delayed"), self.k("stats"), self.done("cancelled")],
                           [id, str(self.defttl), self.hist, str(self.cap), self.ev, self.k("w:"),
                            cancel_chan, self.k("t:"), self.k("x:"), *sum(sigs, ())])

    def retry(self, id, status):
        return self.s.call("retry", [self.t(id), self.k("q"), self.done(status)], [id, status, self.ev, self.k("x:")])

    def requeue(self, id, wid, att):
        return self.s.call("requeue", [self.k("q"), self.k("p:" + wid), self.k("slots")], [id, wid, str(att), self.ev, self.k("t:")])

    def handback(self, id, wid, att, delay=1000, most=3):
        return self.s.call("handback", [self.k("p:" + wid), self.k("delayed"), self.k("slots")],
                           [id, wid, str(att), str(delay), str(most), self.ev, self.k("t:")])

    def deadletter(self, entry, code, reason, wid, source=None, sigs=()):
        src = source or self.k("p:" + wid)
        return self.s.call("deadletter", [self.k("dead"), src, self.k("stats"), self.done("failed"), self.k("slots")],
                           [entry, code, reason, wid, self.name, str(self.defttl), self.hist, str(self.cap),
                            self.ev, self.k("t:"), self.k("x:"), self.k("w:"), *sum(sigs, ())])

    def dead_requeue(self, record):
        return self.s.call("dead_requeue", [self.k("dead"), self.k("q"), self.done("failed"), self.done("timeout"),
                                            self.done("cancelled")],
                           [record, self.name, self.ev, self.k("t:"), self.k("x:")])

    def recover(self, wid, entries, most=3, grace=1000, sigs=()):
        """sigs: end signature records (id, a, b, status, sig)."""
        keys = [self.k("p:" + wid), self.k("q"), self.k("dead"), self.k("stats"), self.k("delayed"),
                self.done("failed"), self.done("cancelled"), self.done("timeout"), self.k("slots")]
        return self.s.call("recover", keys, [wid, str(most), str(grace), str(self.defttl), self.hist, str(self.cap),
                                             self.ev, self.k("t:"), self.k("x:"), self.k("w:"), self.name,
                                             str(len(entries)), *entries, *sum(sigs, ())])

    def purge(self, n=100):
        return self.s.call("purge", [self.k("q"), self.k("delayed"), self.k("stats"), self.done("cancelled"),
                                     self.k("dead")],
                           [str(n), str(self.defttl), self.hist, str(self.cap), self.ev, self.k("t:"), self.k("x:"),
                            self.k("w:"), self.name])

    def delete(self, status, n=100, cutoff=0):
        return self.s.call("delete", [self.done(status)], [self.k("t:"), self.k("x:"), str(n), str(cutoff)])

    def backstop(self, wid, grace=0, offset=0, n=100, sigs=()):
        keys = [self.k("p:" + wid), self.k("stats"), self.done("timeout"), self.k("slots")]
        return self.s.call("backstop", keys, [wid, str(grace), str(self.defttl), self.hist, str(self.cap), self.ev,
                                              self.k("t:"), self.k("x:"), self.k("w:"), str(offset), str(n),
                                              *sum(sigs, ())])

    def promote(self, n=100):
        return self.s.call("promote", [self.k("delayed"), self.k("q")], [str(n)])

    def prune(self, status, n=100):
        return self.s.call("prune", [self.done(status)], [self.k("t:"), str(n)])

    def task(self, id):
        h = {k.decode(): v for k, v in self.r.hgetall(self.t(id)).items()}
        if h.get("xs"):
            for k, v in self.r.hgetall(self.k("x:" + id)).items():
                h[k.decode()] = v
        return h
