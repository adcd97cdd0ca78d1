#!/usr/bin/python3
"""slowlog.py - read a Redis SLOWLOG and summarise it (standard library only).

  slowlog.py PORT list [MIN_US]     every entry of at least MIN_US (default 0):
                                    duration, command, first key
  slowlog.py PORT summary [FILTER]  per command and first key (or script):
                                    count, median, p99, max duration in us
  slowlog.py PORT reset             SLOWLOG RESET

Scripts are named by their SHA1 and, when it is one of rtq's (SCRIPT LOAD
has been run by an rtq process), by the first key they were given.
"""
import socket
import sys


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)))
    return s, s.makefile("rb")


def send(s, f, *args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    s.sendall(b"".join(out))
    return read(f)


def read(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [read(f) for _ in range(n)]
    raise RuntimeError("unexpected reply %r" % line)


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def label(args):
    cmd = text(args[0]).upper()
    if cmd in ("EVALSHA", "EVAL") and len(args) > 3:
        nkeys = text(args[2])
        first = text(args[3]) if nkeys.isdigit() and int(nkeys) > 0 else "-"
        return "%s %s.. keys=%s first=%s" % (cmd, text(args[1])[:8], nkeys, first)
    return "%s %s" % (cmd, text(args[1]) if len(args) > 1 else "")


def group(args):
    """label() without the task-specific part: scripts by SHA and key count
    (and the first key's kind), commands by name."""
    cmd = text(args[0]).upper()
    if cmd in ("EVALSHA", "EVAL") and len(args) > 3:
        nkeys = text(args[2])
        first = text(args[3]) if nkeys.isdigit() and int(nkeys) > 0 else "-"
        kind = first.split(":")[1] if first.count(":") >= 1 else first
        return "%s %s.. keys=%s first=<ns>:%s..." % (cmd, text(args[1])[:8], nkeys, kind)
    return cmd


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    i = min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    s, f = connect(sys.argv[1])
    what = sys.argv[2]
    if what == "reset":
        print(send(s, f, "SLOWLOG", "RESET"))
        return 0
    entries = send(s, f, "SLOWLOG", "GET", "-1") or []
    entries.reverse()  # oldest first
    if what == "list":
        least = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        n = 0
        for e in entries:
            if e[2] >= least:
                n += 1
                print("%8d us  %s" % (e[2], label(e[3])))
        print("%d entries of at least %d us (of %d logged)" % (n, least, len(entries)))
        return 0
    if what == "summary":
        want = sys.argv[3] if len(sys.argv) > 3 else ""
        groups = {}
        for e in entries:
            l = group(e[3])
            if want in label(e[3]):
                groups.setdefault(l, []).append(e[2])
        print("%-56s %8s %8s %8s %8s %8s" % ("command (durations in us)", "count", "median", "p99",
                                             "max", ">1ms"))
        for l, v in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            v.sort()
            print("%-56s %8d %8d %8d %8d %8d" % (l[:56], len(v), pct(v, 50), pct(v, 99), v[-1],
                                                 sum(1 for x in v if x > 1000)))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
