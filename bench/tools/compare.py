#!/usr/bin/python3
"""compare.py - two rtq-bench result files side by side, with the ratio
B / A of each figure (standard library only).

usage: compare.py A.json B.json [LABEL_A LABEL_B]

Typically the medians of two builds' runs (bench/builds.sh) taken in the same
session (rtq-bench --median). Prints a Markdown table.
"""
import json
import sys

# (label, path into the result, format)
ROWS = [
    ("enqueue 1-by-1, tasks/s", ("enqueue_single", "tasks_per_s"), "%.0f"),
    ("  call p50, us", ("enqueue_single", "call_us", "p50"), "%.0f"),
    ("  call p99, us", ("enqueue_single", "call_us", "p99"), "%.0f"),
    ("  Redis CPU per task, us", ("enqueue_single", "redis_cpu_us_per_task"), "%.2f"),
    ("  Redis commands per task", ("enqueue_single", "commands_per_task"), "%.2f"),
    ("enqueue bulk (chunks of 1000), tasks/s", ("enqueue_batch", "tasks_per_s"), "%.0f"),
    ("  Redis CPU per task, us", ("enqueue_batch", "redis_cpu_us_per_task"), "%.2f"),
    ("  Redis commands per task", ("enqueue_batch", "commands_per_task"), "%.2f"),
    ("  Redis memory per pending task, B", ("enqueue_batch", "redis_memory_per_pending_task_bytes"), "%.0f"),
    ("drain, 1 worker process, tasks/s", ("drain", "tasks_per_s"), "%.0f"),
    ("  Redis CPU per task, us", ("drain", "redis_cpu_us_per_task"), "%.2f"),
    ("  Redis commands per task", ("drain", "commands_per_task"), "%.2f"),
    ("  EVALSHA calls per task", ("drain", "commandstats", "evalsha", "calls_per_task"), "%.3f"),
    ("  EVALSHA us per task", ("drain", "commandstats", "evalsha", "usec_per_task"), "%.2f"),
    ("  memory kept per finished task, B", ("drain", "redis_memory_per_task_bytes"), "%.0f"),
    ("  one finished task hash, B", ("drain", "memory", "task_hash_bytes"), "%.0f"),
    ("  worker CPU per task, us", ("drain", "worker_cpu_us_per_task"), "%.2f"),
    ("  worker peak RSS, kB", ("drain", "worker_peak_rss_kb"), "%.0f"),
    ("enqueue->start p50, ms", ("latency", "start_ms", "p50"), "%.3f"),
    ("enqueue->start p99, ms", ("latency", "start_ms", "p99"), "%.3f"),
    ("enqueue->complete p50, ms", ("latency", "complete_ms", "p50"), "%.3f"),
    ("enqueue->complete p99, ms", ("latency", "complete_ms", "p99"), "%.3f"),
    ("  event delivery (calibration), us", ("latency", "event_hop_us"), "%.0f"),
]


def get(d, path):
    for p in path:
        if isinstance(d, list):
            d = d[p] if p < len(d) else None
        elif isinstance(d, dict):
            d = d.get(p)
        else:
            return None
    return d if isinstance(d, (int, float)) else None


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    a, b = (json.load(open(f)) for f in sys.argv[1:3])
    la, lb = (sys.argv[3:5] + ["A", "B"])[:2] if len(sys.argv) >= 5 else ("A", "B")
    rows = list(ROWS)
    for i, s in enumerate(a.get("scaling") or []):
        w = int(s.get("workers", 0))
        rows.append(("drain, %d worker process%s, tasks/s" % (w, "es" if w > 1 else ""),
                     ("scaling", i, "tasks_per_s"), "%.0f"))
        rows.append(("  Redis CPU per task, us", ("scaling", i, "redis_cpu_us_per_task"), "%.2f"))
    print("| measure | %s | %s | %s / %s |" % (la, lb, lb, la))
    print("|---|---|---|---|")
    for label, path, fmt in rows:
        x, y = get(a, path), get(b, path)
        if x is None and y is None:
            continue
        ratio = "%.2f" % (y / x) if x and y is not None else "-"
        print("| %s | %s | %s | %s |" % (label, fmt % x if x is not None else "-",
                                         fmt % y if y is not None else "-", ratio))
    for name, d in ((la, a), (lb, b)):
        m = d.get("machine", {})
        print("\n%s: load average %s at start, %s at end; %s" % (
            name, m.get("loadavg_at_start"), m.get("loadavg_at_end"), m.get("redis")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
