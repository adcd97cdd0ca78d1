#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_envelope into tests/fuzz/corpus/.

Valid envelopes give the fuzzer a head start into the field checks; the
hostile seeds are the inputs the decoders must refuse cheaply (huge declared
lengths, deep nesting, reserved bytes, trailing bytes). Plain args maps and
JSON texts feed the other two entry points of the target.

Needs only the Python standard library; the msgpack encoder below covers
what the seeds use. Rerun after changing the envelope format:
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


def envelope(**over):
    e = {
        "v": 1,
        "id": "01JDQ3ZK5V8X4M2T9QH7R6W1YB",
        "name": "send_email",
        "queue": "default",
        "args": {"to": "a@example.com", "n": 3},
        "created_at": 1700000000000,
        "timeout": 30000,
        "max_retries": 3,
        "attempt": 1,
        "result_ttl": 86400,
    }
    for k, v in over.items():
        if v is DROP:
            del e[k]
        else:
            e[k] = v
    return pack(e)


DROP = object()
ALL_TYPES = {
    "s": "text", "i": -5, "u": 2**64 - 1, "d": 1.5, "t": True, "f": False, "n": None,
    "b": b"\x00\x01\xff", "l": [1, [2, [3]], {}], "m": {"k": "v"}, "e": "",
}

SEEDS = {
    # valid envelopes
    "env_full": envelope(),
    "env_minimal": pack({"v": 1, "id": "t1", "name": "n", "queue": "q", "args": {}}),
    "env_all_types": envelope(args=ALL_TYPES),
    "env_unknown_keys": envelope(priority=[1, 2], extra={"x": None}),
    "env_ext_in_args": envelope(args={"when": Ext(-1, b"\x00\x00\x00\x01")}),
    "env_deep_args": envelope(args={"a": [[[[[[[[[[1]]]]]]]]]]}),
    # envelopes one field away from valid
    "env_v2": envelope(v=2),
    "env_no_args": envelope(args=DROP),
    "env_bad_id": envelope(id="bad id\n"),
    "env_args_array": envelope(args=[1, 2]),
    "env_attempt_negative": envelope(attempt=-1),
    "env_dup_field": b"\x8b" + envelope()[1:] + pack("queue") + pack("x"),
    "env_trailing": envelope() + b"\xc0",
    "env_truncated": envelope()[:40],
    # hostile structure
    "array32_4g": b"\xdd\xff\x00\x00\x00",
    "map32_huge": b"\xdf\xff\xff\xff\xff",
    "str32_huge": b"\xdb\xff\xff\xff\xff" + b"abc",
    "bin32_huge": b"\xc6\xff\xff\xff\xff" + b"abc",
    "ext32_wrap": b"\xc9\xff\xff\xff\xff\x01",
    "args_map32_huge": b"\x82\xa1v\x01\xa4args\xdf\x10\x00\x00\x00",
    "deep_40": b"\x91" * 40 + b"\xc0",
    "deep_args_33": b"\x81\xa4args" + b"\x91" * 32 + b"\xc0",
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


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
