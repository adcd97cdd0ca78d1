"""broker_calls.py PORT [PID] - the SLOWLOG of the Redis on 127.0.0.1:PORT,
summed per command: count, max, median and total µs, for the connections of
process PID (found with `ss -tnp`; the broker) and for the rest.
Used by bench/broker_p99.sh; needs python3-redis."""
import collections
import subprocess
import sys

import redis


def main():
    port, pid = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""
    ports = set()
    if pid:
        out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if f"pid={pid}," in line:
                ports.add(line.split()[3].rsplit(":", 1)[1])
    r = redis.Redis(port=port)
    raw = r.execute_command("SLOWLOG", "GET", -1, NEVER_DECODE=True)
    mine, rest = collections.defaultdict(list), collections.defaultdict(list)
    for entry in raw:
        cmd = [a.decode(errors="replace") for a in entry[3]]
        name = " ".join(cmd[:2])
        if cmd[0].upper() in ("EVALSHA", "EVAL") and len(cmd) > 3:
            name = f"{cmd[0]} {cmd[1][:8]} {cmd[3]}"
        addr = entry[4].decode() if len(entry) > 4 else ""
        (mine if addr.rsplit(":", 1)[-1] in ports else rest)[name].append(int(entry[2]))
    for title, d in ((f"broker ({len(ports)} connections)", mine), ("others", rest)):
        print(title)
        for k, v in sorted(d.items(), key=lambda kv: -max(kv[1]))[:20]:
            v.sort()
            print(f"  {len(v):6d} max {v[-1]:6d} p50 {v[len(v) // 2]:6d} sum {sum(v):8d}  {k[:90]}")


if __name__ == "__main__":
    main()
