"""examples/python/app.py, the endpoint that starts a task and returns at
once, run as a real server against a real worker."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from conftest import wait_for

APP = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "python", "app.py")


def call(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_endpoint_starts_a_task_and_reports_it(url, worker):
    worker()
    app = subprocess.Popen([sys.executable, APP, "--port", "0", "--redis", url],
                           stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = app.stdout.readline()
        assert line.startswith("listening on"), line
        port = int(line.rsplit(":", 1)[1])
        code, body = call(port, "POST", "/exports", {"seconds": 0.5, "steps": 5})
        assert code == 202
        tid = body["id"]
        done = wait_for(lambda: call(port, "GET", f"/exports/{tid}")[1]["status"] == "completed",
                        20, "the task to complete")
        assert done
        code, task = call(port, "GET", f"/exports/{tid}")
        assert task["progress"] == 100 and task["result"]["steps"] == 5

        code, body = call(port, "POST", "/exports", {"seconds": 30})
        tid = body["id"]
        wait_for(lambda: call(port, "GET", f"/exports/{tid}")[1]["status"] == "running", 20,
                 "the long task to start")
        assert call(port, "POST", f"/exports/{tid}/cancel") == (200, {"id": tid, "cancel": "requested"})
        wait_for(lambda: call(port, "GET", f"/exports/{tid}")[1]["status"] == "cancelled", 20,
                 "the cancel")
        assert call(port, "POST", f"/exports/{tid}/cancel")[0] == 409
        assert call(port, "GET", "/exports/no-such-task")[0] == 404
        assert call(port, "GET", "/exports/bad%20id")[0] == 400
        assert call(port, "POST", "/exports", [1, 2])[0] == 400
    finally:
        app.send_signal(signal.SIGINT)
        app.wait(timeout=10)
