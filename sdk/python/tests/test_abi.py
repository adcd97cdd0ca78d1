"""The binding's declarations against the C header. Structs: a C program
compiled with the real header prints sizeof and offsetof of every struct
the binding allocates, and each must match what cffi computed from the
binding's copy. Functions: each declaration of the binding, and each
function pointer of rtq/_speedups.c, must have the header's type. A header
change not copied into rtq/_native.py (or _speedups.c) fails here.

RTQ_INCLUDE names the include directories (run-tests.sh sets it: the
source tree's headers and the build's generated ones)."""

import os
import shutil
import subprocess

import pytest

from rtq import client as rtq_client
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
             'int main(void) {', '  printf("RTQ_TASK_ID_SIZE %d\\n", RTQ_TASK_ID_SIZE);']
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
    # The id buffers: the spec's field, and the one create_task allocates.
    assert int(want["RTQ_TASK_ID_SIZE"]) == ffi.sizeof(dict(ffi.typeof("rtq_task_spec").fields)["id"].type)
    assert int(want["RTQ_TASK_ID_SIZE"]) == ffi.sizeof(rtq_client._ID)
    for s, fields in STRUCTS.items():
        assert int(want[s]) == ffi.sizeof(s), f"sizeof({s})"
        for f in fields:
            assert int(want[f"{s}.{f}"]) == ffi.offsetof(s, f), f"offsetof({s}, {f})"


def _prototypes():
    """The binding's function declarations, as (name, C declaration)."""
    import re
    from rtq._native import CDEF
    text = re.sub(r"\s+", " ", CDEF)
    return [(m.group(1), m.group(0).rstrip(";")) for m in
            re.finditer(r"(?:const )?\w+ \**(rtq_\w+)\(([^)]*)\);", text)]


def _compile(tmp_path, lines, extra=()):
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler")
    src = tmp_path / "check.c"
    src.write_text("\n".join(lines) + "\n")
    incs = [f"-I{d}" for d in os.environ.get("RTQ_INCLUDE", "").split(":") if d]
    r = subprocess.run([cc, "-std=gnu11", "-fsyntax-only", *incs, *extra, str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_function_prototypes_match_the_header(tmp_path):
    """Each function the binding declares has the header's type: cffi
    calls through these declarations, and a mismatch corrupts arguments."""
    protos = _prototypes()
    assert len(protos) >= 20, protos
    lines = ['#include "rtq/client.h"']
    for name, decl in protos:
        mine = decl.replace(name + "(", "(*)(", 1)
        lines.append(f"_Static_assert(__builtin_types_compatible_p(__typeof__(&{name}), {mine}), "
                     f"\"{name}: the binding's declaration differs from the header\");")
    _compile(tmp_path, lines)


def test_speedups_function_table_matches_the_header(tmp_path):
    """rtq/_speedups.c declares the librtq functions it calls through
    pointers, and rtq_task_spec, itself (it is built without rtq's
    headers); compiled with them here, each pointer's type must be the
    function's and the struct's layout the header's."""
    import sysconfig
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.join(here, "..", "rtq", "_speedups.c")
    fields = {"args_new": "rtq_args_new", "args_free": "rtq_args_free", "set_strn": "rtq_args_set_strn",
              "set_int": "rtq_args_set_int", "set_double": "rtq_args_set_double",
              "set_bool": "rtq_args_set_bool", "set_nil": "rtq_args_set_nil", "create": "rtq_create_task"}
    lines = ['#include <stddef.h>', '#include "rtq/client.h"', f'#include "{source}"']
    for field, fn in fields.items():
        lines.append(f"_Static_assert(__builtin_types_compatible_p(__typeof__(((librtq_fns *)0)->{field}), "
                     f"__typeof__(&{fn})), \"{field} is not {fn}'s type\");")
    # create_tasks takes the module's copy of rtq_task_spec: the same
    # function with the header's struct, and the same layout.
    lines.append("_Static_assert(__builtin_types_compatible_p(__typeof__(&rtq_create_tasks), "
                 "int (*)(rtq_client *, rtq_task_spec *, size_t)), \"rtq_create_tasks's type\");")
    lines.append("_Static_assert(sizeof(spec_abi) == sizeof(rtq_task_spec), \"spec_abi's size\");")
    lines.append("_Static_assert(sizeof(((spec_abi *)0)->id) == RTQ_TASK_ID_SIZE, \"spec_abi.id's size\");")
    for f in STRUCTS["rtq_task_spec"]:
        lines.append(f"_Static_assert(offsetof(spec_abi, {f}) == offsetof(rtq_task_spec, {f}), "
                     f"\"spec_abi.{f}\");")
    _compile(tmp_path, lines, ["-I" + sysconfig.get_paths()["include"]])
