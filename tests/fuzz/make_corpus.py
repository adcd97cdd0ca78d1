#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_args (tests/fuzz/corpus-fuzz_args/) and
fuzz_replies (tests/fuzz/corpus-fuzz_replies/).

fuzz_args: args maps as a task hash's `x` holds them give the fuzzer a head
start; the hostile seeds are the inputs the readers must refuse cheaply
(huge declared lengths, deep nesting, reserved bytes, ext values, keys that
are not strings); JSON texts feed the JSON entry point.
fuzz_replies: the scripts' replies in RESP, as a connection reads them.

Needs only the Python standard library; the msgpack encoder below covers
what the seeds use. Rerun after changing what the seeds cover:
    python3 tests/fuzz/make_corpus.py
"""
import os
import shutil
import struct


class Ext:
    def __init__(self, code, data):
        self.code, self.data = code, data


def pack(v):
    """Shortest-form msgpack, as rtq's encoders write it."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if v >= 0:
            for fmt, tag in ((">B", 0xCC), (">H", 0xCD), (">I", 0xCE), (">Q", 0xCF)):
                if v < 1 << (8 * struct.calcsize(fmt)):
                    return bytes([tag]) + struct.pack(fmt, v)
        for fmt, tag in ((">b", 0xD0), (">h", 0xD1), (">i", 0xD2), (">q", 0xD3)):
            if v >= -(1 << (8 * struct.calcsize(fmt) - 1)):
                return bytes([tag]) + struct.pack(fmt, v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        return (b"\xd9" + struct.pack(">B", n) if n < 256 else b"\xda" + struct.pack(">H", n)) + b
    if isinstance(v, bytes):
        return b"\xc4" + struct.pack(">B", len(v)) + v
    if isinstance(v, Ext):
        return b"\xc7" + struct.pack(">Bb", len(v.data), v.code) + v.data
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


ALL_TYPES = {
    "s": "text", "i": -5, "u": 2**64 - 1, "d": 1.5, "t": True, "f": False, "n": None,
    "b": b"\x00\x01\xff", "l": [1, [2, [3]], {}], "m": {"k": "v"}, "e": "",
}

SEEDS = {
    # args maps a task hash may hold
    "args_deep": pack({"a": [[[[[[[[[[1]]]]]]]]]]}),
    "args_ext": pack({"when": Ext(-1, b"\x00\x00\x00\x01")}),
    "args_nested_map_key": b"\x81\x81\xa1k\x01\x02",
    "args_trailing": pack({"k": 1}) + b"\xc0",
    "args_truncated": pack(ALL_TYPES)[:40],
    # hostile structure
    "array32_4g": b"\xdd\xff\x00\x00\x00",
    "map32_huge": b"\xdf\xff\xff\xff\xff",
    "str32_huge": b"\xdb\xff\xff\xff\xff" + b"abc",
    "bin32_huge": b"\xc6\xff\xff\xff\xff" + b"abc",
    "ext32_wrap": b"\xc9\xff\xff\xff\xff\x01",
    "args_map32_huge": b"\x82\xa1v\x01\xa1x\xdf\x10\x00\x00\x00",
    "deep_40": b"\x91" * 40 + b"\xc0",
    "deep_args_32": b"\x81\xa1x" + b"\x91" * 31 + b"\xc0",
    "reserved_c1": b"\x81\xa1k\xc1",
    # args maps and JSON texts
    "args_all_types": pack(ALL_TYPES),
    "args_dup_key": b"\x82\xa1k\x01\xa1k\x02",
    "args_int_key": b"\x81\x01\x02",
    "args_bad_utf8": b"\x81\xa2k\xff\xa3a\xc3(",
    "json_object": b'{"name":"report.csv","rows":[1,2.5,-3],"opts":{"gzip":true,"x":null}}',
    "json_escapes": b'["\\u0000\\ud83d\\ude00",1e308,-0.0,123456789012345678]',
    "json_deep": b"[" * 33 + b"]" * 33,
}


def resp(v):
    """RESP2, as Redis writes a script's reply."""
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, bytes):
        return b"$%d\r\n%s\r\n" % (len(v), v)
    if isinstance(v, str):
        return resp(v.encode())
    if v is None:
        return b"$-1\r\n"
    return b"*%d\r\n" % len(v) + b"".join(resp(x) for x in v)


ARGS = pack({"to": "a@example.com", "n": 3})
REPLIES = {
    "take_ok": resp([["ok", "T1", "send_email", 1, 1700000030000, 30000, ARGS, "",
                      "", "", "", ""]]),
    "claim_mixed": resp([["ok", "T1", "n", 2, 1, 30000, b"", "k1:00ff", "30000", "3", "60", "500"],
                         ["skip", "T2", "cancelled"], ["missing", "T3"], ["bad", "T4", "id"],
                         ["limited", "T5", 250]]),
    "take_limited": resp([["limited", 1000]]),
    "claim_old_ok": resp([["ok", "T1", "n", 1, 1, 1, ARGS, ""]]),
    "create": resp([1700000000000, 1, "running"]),
    "finish": resp([["ok", "completed"], ["retry", 1700000001000], ["stale", ""]]),
    "recover": resp([["gone"], ["requeued", 2], ["failed", 3], ["dropped", "completed"],
                     ["dead", "WORKER_LOST"]]),
    "promote": resp([2, ["bad\x00entry"], -1]),
    "backstop": resp([100, ["T1", "T2"]]),
    "counts": resp([1, 0, 5]),
    "tag": resp(["handed_back", 3, "due"]),
    "error_and_nil": b"-ERR no\r\n$-1\r\n+OK\r\n",
    "deep": b"*1\r\n" * 9 + b":1\r\n",
}


def write(name, seeds):
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for seed, data in seeds.items():
        with open(os.path.join(out, seed), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}")


def main():
    write("corpus-fuzz_args", SEEDS)
    write("corpus-fuzz_replies", REPLIES)


if __name__ == "__main__":
    main()
