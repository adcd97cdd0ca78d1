"""The handler bench/exec/drain.py runs under rtq-worker --exec."""

import rtq


@rtq.handler("bench.noop")
def noop(task):
    return None
