"""web_check.py PORT TOKEN MODE - tests/containers/run.sh's look at the
compose project's rtq-web through its loopback port: the API answers with
the token and refuses without it, /metrics is Prometheus text, and a cancel
is refused (403) when MODE is "ro" (read-only, logged in as the monitor)
and reaches the library (404 for a task that does not exist) when "rw"."""
import json
import sys
import urllib.error
import urllib.request

port, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"


def call(path, method="GET", auth=True):
    req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
    if auth:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


code, body = call("/api/stats")
assert code == 200, (code, body[:200])
done = json.loads(body)["statuses"]["completed"]
code, _ = call("/api/stats", auth=False)
assert code == 401, f"/api/stats without the token: {code}"
code, body = call("/metrics")
assert code == 200 and b"rtq_tasks_total" in body, (code, body[:200])
code, _ = call("/api/tasks/no-such-task/cancel", "POST")
want = 403 if mode == "ro" else 404
assert code == want, f"cancel ({mode}): {code}, expected {want}"
print(f"  rtq-web: /api/stats with the token ({done} completed), 401 without it, /metrics, cancel {code}")
