"""benchenv.py - what the scripts in bench/exec share: a private Redis, a
worker, the Python binding over a build's librtq.so, quantiles.

Everything runs on 127.0.0.1; the caller stops what it starts (stop())."""
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
PY_NOOP = "bench.noop=/usr/bin/python3 -m rtq.run noop_handlers"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def binding(build, sdk=None):
    """Imports sdk/python's rtq (or sdk's) over BUILD/client/librtq.so,
    with its C accelerator built in place first where the tree has one."""
    sdk = sdk or os.path.join(root, "sdk", "python")
    if os.path.exists(os.path.join(sdk, "setup.py")):
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=sdk, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["RTQ_LIBRARY"] = os.path.join(build, "client", "librtq.so")
    sys.path.insert(0, sdk)
    import rtq
    return rtq


def accelerator(rtq):
    """A line saying whether the binding's C accelerator is in use."""
    import importlib
    on = getattr(importlib.import_module("rtq.client"), "_fast_create", None) is not None
    return "the binding's C accelerator (rtq/_speedups.c): %s" % ("in use" if on else "absent")


def build_dir(doc):
    """The build directory, the first argument of a bench tool, made
    absolute; None (after printing doc on stderr) when it is missing."""
    if len(sys.argv) < 2:
        sys.stderr.write(doc)
        return None
    return os.path.abspath(sys.argv[1])


def ms(iso):
    """A task's ISO-8601 UTC time (millisecond precision) -> epoch ms."""
    dt = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(dt.timestamp() * 1000)


def quantile(sorted_values, q):
    """Nearest-rank quantile of a sorted list."""
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def _proc_cpu_s(pid):
    """utime + stime of pid (all its threads), seconds; 0 when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def cpu_snapshot(env):
    """CPU seconds so far of the worker, its handler processes (its
    children), redis-server and this bench process: subtract two of them
    for what a phase cost each (Linux /proc, clock-tick resolution)."""
    w = env.worker.pid if env.worker is not None else 0
    return {"worker": _proc_cpu_s(w) if w else 0.0,
            "handlers": sum(_proc_cpu_s(k) for k in _children(w)) if w else 0.0,
            "redis": _proc_cpu_s(env.redis.pid),
            "bench": _proc_cpu_s(os.getpid())}


def load():
    return "%.2f" % os.getloadavg()[0]


class Env:
    """A private redis-server (no persistence) and, on demand, one worker."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="rtq-exec-bench-")
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.worker = None
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", self.work],
                                      stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def start_worker(self, build, flags):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(root, "sdk", "python") + ":" + here
        cmd = [os.path.join(build, "worker", "rtq-worker"), "--redis", self.url, "--log-level", "WARNING"] + flags
        log = open(os.path.join(self.work, "worker.log"), "a")
        self.worker = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        return " ".join(cmd[3:])

    def stop(self):
        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker = None
        self.redis.terminate()
        self.redis.wait(10)
