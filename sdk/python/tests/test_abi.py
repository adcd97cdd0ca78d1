"""The binding's struct declarations against the C header: a C program
compiled with the real header prints sizeof and offsetof of every struct
the binding allocates, and each must match what cffi computed from the
binding's copy. A header change not copied into rtq/_native.py fails here.

RTQ_INCLUDE names the include directories (run-tests.sh sets it: the
source tree's headers and the build's generated ones)."""

import os
import shutil
import subprocess

import pytest

from rtq._native import ffi

STRUCTS = {
    "rtq_client_options": ["redis_url", "ns", "cluster", "connect_timeout_ms",
                           "command_timeout_ms", "pool_size", "max_payload", "default_queue",
                           "task_result_ttl_s", "history", "reply_spin_us",
                           "redis_url_file", "wait_replicas", "wait_timeout_ms", "protocol",
                           "signing_key_file", "result_keys_file", "task_keys_file"],
    "rtq_task_options": ["queue", "id", "timeout_ms", "result_ttl_s", "delay_ms", "run_at_ms",
                         "max_retries", "retry_backoff_ms"],
    "rtq_task_spec": ["name", "args", "opts", "rc", "created", "id"],
    "rtq_task_filter": ["statuses", "queue", "name", "limit", "offset", "after"],
    "rtq_task_list": ["count", "tasks", "examined", "truncated", "next_after", "running_hidden",
                      "skipped"],
}


def test_struct_layouts_match_the_header(tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "rtq/client.h"',
             'int main(void) {']
    for s, fields in STRUCTS.items():
        lines.append(f'  printf("{s} %zu\\n", sizeof({s}));')
        for f in fields:
            lines.append(f'  printf("{s}.{f} %zu\\n", offsetof({s}, {f}));')
    lines += ['  return 0;', '}']
    src = tmp_path / "abi.c"
    src.write_text("\n".join(lines) + "\n")
    incs = [f"-I{d}" for d in os.environ.get("RTQ_INCLUDE", "").split(":") if d]
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c11", *incs, "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    want = dict(line.rsplit(" ", 1) for line in out.splitlines())
    for s, fields in STRUCTS.items():
        assert int(want[s]) == ffi.sizeof(s), f"sizeof({s})"
        for f in fields:
            assert int(want[f"{s}.{f}"]) == ffi.offsetof(s, f), f"offsetof({s}, {f})"
