"""The Python handler bench/exec/latency.py runs under rtq-worker --exec: a
no-op that returns the wall-clock time (time.time()) at which it was entered."""
import time

import rtq


@rtq.handler("bench.noop")
def noop(task):
    return {"entered": time.time()}
